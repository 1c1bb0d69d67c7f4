// The audit log: query (GET /v1/audit), JSONL export (GET /v1/audit/export,
// verifiable offline with `continuum audit verify --file`), and an online
// check of the caller's tenant's chain (GET /v1/audit/verify). audit:read.
#include "api/access.h"
#include "api/errors.h"
#include "api/handlers.h"
#include "audit/verifier.h"
#include "crypto/hash.h"

namespace continuum {

namespace {

using Writer = std::shared_ptr<ResponseWriter>;
constexpr int kExportPage = 1000;

Result<int64_t> number_param(const HttpRequest& request, const char* name, int64_t fallback, int64_t min,
                             int64_t max) {
  if (!request.has_query_param(name)) return fallback;
  std::string text = request.query_param(name);
  char* end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < min || value > max) {
    return invalid_argument(std::string(name) + " must be an integer from " + std::to_string(min) + " to " +
                                std::to_string(max),
                            name);
  }
  return static_cast<int64_t>(value);
}

json::object event_view(const AuditEventRecord& event) {
  auto details = parse_json(event.details_json);
  return json::object{{"object", "audit_event"},
                      {"seq", event.seq},
                      {"at_ms", event.at_ms},
                      {"principal", event.principal},
                      {"action", event.action},
                      {"resource", event.resource},
                      {"run_id", event.run_id.empty() ? json::value(nullptr) : json::value(event.run_id)},
                      {"outcome", event.outcome},
                      {"details", details.is_ok() ? *details : json::value(nullptr)},
                      {"hash", to_hex(event.hash)}};
}

Result<AuditQuery> query_from(const HttpRequest& request) {
  AuditQuery query;
  ASSIGN_OR_RETURN(query.after_seq, number_param(request, "after", 0, 0, INT64_MAX));
  ASSIGN_OR_RETURN(query.since_ms, number_param(request, "since_ms", 0, 0, INT64_MAX));
  ASSIGN_OR_RETURN(query.until_ms, number_param(request, "until_ms", 0, 0, INT64_MAX));
  ASSIGN_OR_RETURN(auto limit, number_param(request, "limit", 100, 1, 1000));
  query.limit = static_cast<int>(limit);
  query.principal = request.query_param("principal");
  query.action = request.query_param("action");
  query.run_id = request.query_param("run");
  return query;
}

void list_audit(ApiContext& ctx, HttpRequest& request, Writer writer) {
  auto query = query_from(request);
  if (!query.is_ok()) return writer->send(error_response(query.status()));
  int limit = query->limit;
  query->limit = limit + 1;
  auto events = ctx.store->list_audit_events(caller(request).tenant, *query);
  if (!events.is_ok()) return writer->send(error_response(events.status()));
  bool has_more = static_cast<int>(events->size()) > limit;
  if (has_more) events->pop_back();
  json::array data;
  for (const auto& event : *events) data.push_back(event_view(event));
  json::value next = has_more ? json::value(events->back().seq) : json::value(nullptr);
  writer->send(json_response(200, json::object{{"object", "list"}, {"data", std::move(data)},
                                               {"has_more", has_more}, {"next_cursor", next}}));
}

// Every event, then every checkpoint, one JSON object per line.
void export_audit(ApiContext& ctx, HttpRequest& request, Writer writer) {
  const std::string& tenant = caller(request).tenant;
  AuditQuery query;
  query.limit = kExportPage;
  auto first = ctx.store->list_audit_events(tenant, query);
  if (!first.is_ok()) return writer->send(error_response(first.status()));
  writer->start_stream(200, "application/x-ndjson", {});
  auto page = std::move(*first);
  while (!page.empty()) {
    std::string chunk;
    for (const auto& event : page) chunk += audit_event_export_line(event) + "\n";
    writer->write(std::move(chunk));
    if (static_cast<int>(page.size()) < kExportPage) break;
    query.after_seq = page.back().seq;
    auto next = ctx.store->list_audit_events(tenant, query);
    if (!next.is_ok()) return writer->end();  // a truncated export fails verification, visibly
    page = std::move(*next);
  }
  for (int64_t after = 0;;) {
    auto checkpoints = ctx.store->list_audit_checkpoints(tenant, after, kExportPage);
    if (!checkpoints.is_ok() || checkpoints->empty()) break;
    std::string chunk;
    for (const auto& checkpoint : *checkpoints) chunk += audit_checkpoint_export_line(checkpoint) + "\n";
    writer->write(std::move(chunk));
    after = checkpoints->back().seq;
  }
  writer->end();
}

void verify_audit(ApiContext& ctx, HttpRequest& request, Writer writer) {
  const std::string& tenant = caller(request).tenant;
  std::vector<AuditEventRecord> events;
  AuditQuery query;
  query.limit = kExportPage;
  for (;;) {
    auto page = ctx.store->list_audit_events(tenant, query);
    if (!page.is_ok()) return writer->send(error_response(page.status()));
    for (auto& event : *page) events.push_back(std::move(event));
    if (static_cast<int>(page->size()) < kExportPage) break;
    query.after_seq = events.back().seq;
  }
  std::vector<AuditCheckpointRecord> checkpoints;
  for (int64_t after = 0;;) {
    auto page = ctx.store->list_audit_checkpoints(tenant, after, kExportPage);
    if (!page.is_ok()) return writer->send(error_response(page.status()));
    if (page->empty()) break;
    after = page->back().seq;
    for (auto& checkpoint : *page) checkpoints.push_back(std::move(checkpoint));
  }
  AuditVerifyReport report = verify_audit_chain(tenant, events, checkpoints, {});
  writer->send(json_response(200, json::object{{"object", "audit_verification"},
                                               {"ok", report.ok},
                                               {"broken_seq", report.ok ? json::value(nullptr)
                                                                        : json::value(report.broken_seq)},
                                               {"problem", report.ok ? json::value(nullptr) : json::value(report.problem)},
                                               {"events_checked", report.events_checked},
                                               {"checkpoints_checked", report.checkpoints_checked}}));
}

}  // namespace

void add_audit_routes(Router& router, ApiContext& ctx) {
  router.add("GET", "/v1/audit",
             guarded(ctx, "audit:read", [&ctx](HttpRequest& r, const PathParams&, Writer w) { list_audit(ctx, r, w); }));
  router.add("GET", "/v1/audit/export", guarded(ctx, "audit:read", [&ctx](HttpRequest& r, const PathParams&, Writer w) {
               export_audit(ctx, r, w);
             }));
  router.add("GET", "/v1/audit/verify", guarded(ctx, "audit:read", [&ctx](HttpRequest& r, const PathParams&, Writer w) {
               verify_audit(ctx, r, w);
             }));
}

}  // namespace continuum
