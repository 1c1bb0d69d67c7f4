// The audit hash chain: how an event is encoded, hashed and linked, and what
// a checkpoint signs. Shared by both stores (which append), the checkpointer
// (which signs) and the verifier (which checks, offline).
//
// hash(seq) = SHA-256( hash(seq-1) || seq as 8 bytes big-endian || event )
// where `event` is canonical_event() and hash(0) is 32 zero bytes.
#pragma once

#include <cstdint>
#include <string>

#include "core/json.h"
#include "core/status.h"
#include "store/records.h"

namespace continuum {

inline constexpr size_t kAuditHashBytes = 32;

// The genesis "previous hash": 32 zero bytes.
std::string audit_genesis_hash();

// The event's fields (tenant, at_ms, principal, action, resource, run_id,
// outcome, details) as JSON with a fixed key order and details' keys sorted.
// Deterministic: the same record always gives the same bytes.
std::string canonical_event(const AuditEventRecord& event);

// The chain link for `canonical` at `seq` after `prev_hash` (raw bytes).
std::string audit_chain_hash(const std::string& prev_hash, int64_t seq, const std::string& canonical);

// What a checkpoint's signature covers.
std::string audit_checkpoint_message(const std::string& tenant, int64_t seq, const std::string& hash, int64_t at_ms);

// Parses a canonical event back into the record's fields (seq and hashes
// untouched); kInvalidArgument if it is not one.
Status parse_canonical_event(const std::string& canonical, AuditEventRecord& event);

}  // namespace continuum
