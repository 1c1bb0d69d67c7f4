// Versioned schema migrations of the PostgreSQL store. Migration N is applied
// once, in one transaction, under an advisory lock, so several nodes starting
// at once on one database migrate it exactly once.
#pragma once

#include "store/postgres/pg_connection.h"

namespace continuum {

Status migrate_postgres(PgConnection& connection);

}  // namespace continuum
