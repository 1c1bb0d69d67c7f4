// Opens the store a URL names:
//   ""                         SQLite at <data_dir>/continuum.db (the default)
//   sqlite:PATH                SQLite at PATH
//   postgres://... | postgresql://...   PostgreSQL (libpq URI; options such as
//                              sslmode go in its query string)
#pragma once

#include <memory>
#include <string>

#include "core/clock.h"
#include "obs/metrics.h"
#include "store/store.h"

namespace continuum {

// A form of the URL safe to log: any password is replaced by "***".
std::string redacted_store_url(const std::string& url);
// InvalidArgument (param "store") for a URL of no known scheme.
Result<std::unique_ptr<Store>> open_store(const std::string& url, const std::string& data_dir, const Clock& clock,
                                          MetricsRegistry* metrics);

}  // namespace continuum
