#include "tools/mcp/mcp_connection.h"

#include "core/log.h"
#include "tools/mcp/oauth_client.h"

namespace continuum {

namespace {

constexpr int kListPagesMax = 100;
constexpr size_t kToolsPerServerMax = 1000;
constexpr int64_t kListenRetryMs = 5000;
constexpr int64_t kCacheTtlFloorMs = 1000;
constexpr int64_t kJsonRpcUnsupportedVersion = -32022;

Status from_rpc_error(const McpMessage& message) {
  // A JSON-RPC error is the server's considered answer: retrying the same request will not change it.
  return invalid_argument("MCP error " + std::to_string(message.error_code) + ": " + message.error_message);
}

bool names_revision(const json::value& list, std::string_view revision) {
  if (!list.is_array()) return false;
  for (const auto& entry : list.get_array()) {
    if (entry.is_string() && entry.get_string() == revision) return true;
  }
  return false;
}

}  // namespace

McpConnection::McpConnection(EventLoop& loop, const Clock& clock, std::unique_ptr<McpTransport> transport,
                             McpConnectionOptions options)
    : loop_(loop), clock_(clock), transport_(std::move(transport)), options_(std::move(options)) {}

McpConnection::~McpConnection() { close(); }

void McpConnection::start() {
  if (state_ != State::kNew) return;
  state_ = State::kNegotiating;
  std::weak_ptr<McpConnection> weak = weak_from_this();
  McpTransport::Handlers handlers;
  handlers.on_message = [weak](std::string_view text) {
    if (auto self = weak.lock()) self->on_message(text);
  };
  handlers.on_request_failed = [weak](int64_t id, Status status) {
    auto self = weak.lock();
    if (!self) return;
    if (status.code() == Code::kNotFound || status.code() == Code::kUnauthenticated) {
      // The HTTP session ended, or the credential is refused: a new connection starts afresh.
      // An OAuth server waiting for a person keeps its own error (not retried).
      self->lost(is_authorization_required(status) ? status
                 : unavailable(status.code() == Code::kNotFound ? "the MCP server ended the session"
                                                                : "the MCP server refused the credential: " + status.message()));
      return;
    }
    self->resolve(id, std::move(status));
  };
  handlers.on_closed = [weak](Status status) {
    if (auto self = weak.lock()) self->lost(std::move(status));
  };
  Status started = transport_->start(std::move(handlers));
  if (!started.is_ok()) {
    // Reported from the loop, not from inside start().
    loop_.post([weak, started] {
      if (auto self = weak.lock()) self->lost(started);
    });
    return;
  }
  negotiate();
}

json::object McpConnection::request_meta() const {
  if (revision_ != kMcpRevision2026) return {};
  return json::object{{"io.modelcontextprotocol/protocolVersion", kMcpRevision2026},
                      {"io.modelcontextprotocol/clientCapabilities", json::object{}},
                      {"io.modelcontextprotocol/clientInfo", mcp_client_info()}};
}

void McpConnection::negotiate() {
  negotiation_deadline_ms_ = clock_.now_ms() + options_.connect_timeout_ms;
  if (options_.protocol == kMcpRevision2025) return initialize_legacy();
  revision_ = std::string(kMcpRevision2026);  // for the probe's _meta and headers
  transport_->set_protocol_version(revision_);
  std::weak_ptr<McpConnection> weak = weak_from_this();
  // A 2025-11-25 server may ignore the probe: it gets half the budget, so
  // initialize still has the other half.
  int64_t probe_ms = options_.protocol == kMcpRevision2026 ? options_.connect_timeout_ms
                                                           : std::max<int64_t>(1, options_.connect_timeout_ms / 2);
  send_request("server/discover", json::object{{"_meta", request_meta()}}, "", probe_ms, probe_ms,
               [weak](Result<json::value> result) {
                 if (auto self = weak.lock()) self->on_discovered(std::move(result));
               });
}

void McpConnection::on_discovered(Result<json::value> result) {
  if (state_ != State::kNegotiating) return;
  bool modern = result.is_ok() && result->is_object() &&
                names_revision(result->get_object().contains("supportedVersions")
                                   ? result->get_object().at("supportedVersions")
                                   : json::value(),
                               kMcpRevision2026);
  if (modern) return become_ready(std::string(kMcpRevision2026));
  if (options_.protocol == kMcpRevision2026) {
    return fail_negotiation(unavailable("MCP server '" + options_.server_name + "' does not speak " +
                                        std::string(kMcpRevision2026) + ": " +
                                        (result.is_ok() ? "no such version in its discover result"
                                                        : result.status().message())));
  }
  log::debug("mcp server is not 2026-07-28; trying initialize", {{"server", options_.server_name}});
  initialize_legacy();
}

void McpConnection::initialize_legacy() {
  revision_.clear();  // no protocol header until the server agrees to one
  transport_->set_protocol_version("");
  json::object params{{"protocolVersion", kMcpRevision2025},
                      {"capabilities", options_.elicitation == "none"
                                           ? json::object{}
                                           : json::object{{"elicitation", json::object{{"form", json::object{}}}}}},
                      {"clientInfo", mcp_client_info()}};
  std::weak_ptr<McpConnection> weak = weak_from_this();
  int64_t left_ms = std::max<int64_t>(1, negotiation_deadline_ms_ - clock_.now_ms());  // of the whole negotiation
  send_request("initialize", std::move(params), "", left_ms, left_ms,
               [weak](Result<json::value> result) {
                 auto self = weak.lock();
                 if (!self || self->state_ != State::kNegotiating) return;
                 if (!result.is_ok()) return self->fail_negotiation(result.status());
                 const json::value* version =
                     result->is_object() ? result->get_object().if_contains("protocolVersion") : nullptr;
                 std::string agreed = version != nullptr && version->is_string() ? std::string(version->get_string()) : "";
                 // Older 2025 revisions differ from 2025-11-25 only in what this client does not use.
                 if (agreed != kMcpRevision2025 && agreed != "2025-06-18" && agreed != "2025-03-26") {
                   return self->fail_negotiation(unavailable("MCP server '" + self->options_.server_name +
                                                             "' answered initialize with unsupported revision '" +
                                                             agreed + "'"));
                 }
                 self->transport_->set_protocol_version(agreed);
                 McpOutgoing initialized{mcp_notification_text("notifications/initialized", {}), std::nullopt,
                                         "notifications/initialized", "", 10'000, nullptr};
                 // Ready once the server has it: over HTTP a request sent sooner, on
                 // another connection, can reach it first ("not initialized").
                 initialized.delivered = [weak, agreed] {
                   auto ready = weak.lock();
                   if (ready && ready->state_ == State::kNegotiating) ready->become_ready(agreed);
                 };
                 self->transport_->send(std::move(initialized));
               });
}

void McpConnection::become_ready(std::string revision) {
  revision_ = std::move(revision);
  state_ = State::kReady;
  log::info("mcp server ready", {{"server", options_.server_name}, {"revision", revision_}});
  if (revision_ == kMcpRevision2026 && options_.listen_for_changes) listen_for_changes();
  if (revision_ != kMcpRevision2026 && options_.listen_for_changes) transport_->open_server_stream();
  auto waiting = std::move(waiting_for_ready_);
  waiting_for_ready_.clear();
  for (auto& task : waiting) task(Status::ok());
}

void McpConnection::fail_negotiation(Status status) {
  log::warn("mcp server negotiation failed", {{"server", options_.server_name}, {"error", status.message()}});
  lost(std::move(status));
}

void McpConnection::when_ready(std::function<void(Status)> task) {
  if (state_ == State::kReady) return task(Status::ok());
  if (state_ == State::kClosed) return task(unavailable("MCP server '" + options_.server_name + "' is not connected"));
  waiting_for_ready_.push_back(std::move(task));
  start();
}

void McpConnection::listen_for_changes() {
  json::object params{{"_meta", request_meta()}, {"notifications", json::object{{"toolsListChanged", true}}}};
  std::weak_ptr<McpConnection> weak = weak_from_this();
  listen_id_ = send_request("subscriptions/listen", std::move(params), "", 0, 0, [weak](Result<json::value> result) {
    auto self = weak.lock();
    if (!self || self->state_ != State::kReady) return;
    self->listen_id_ = 0;
    // The server ended the subscription (or refused it): listen again later, and meanwhile trust the cache less.
    self->tools_cached_until_ms_ = 0;
    if (!result.is_ok() && result.status().code() == Code::kInvalidArgument) return;  // not supported
    self->loop_.post_after(kListenRetryMs, [weak] {
      auto again = weak.lock();
      if (again && again->state_ == State::kReady && again->listen_id_ == 0) again->listen_for_changes();
    });
  });
}

int64_t McpConnection::send_request(const std::string& method, json::object params, std::string name,
                                    int64_t idle_timeout_ms, int64_t total_timeout_ms,
                                    std::function<void(Result<json::value>)> done) {
  int64_t id = next_id_++;
  int64_t now = clock_.now_ms();
  Pending pending{method, std::move(done), idle_timeout_ms, now + idle_timeout_ms, now + total_timeout_ms,
                  idle_timeout_ms == 0};
  pending_.emplace(id, std::move(pending));
  // A subscription stays open as long as the transport allows (HTTP: one hour, then it is renewed).
  int64_t exchange_ms = idle_timeout_ms == 0 ? 3'600'000 : total_timeout_ms + 5000;
  transport_->send(McpOutgoing{mcp_request_text(id, method, std::move(params)), id, method, std::move(name), exchange_ms, nullptr});
  if (idle_timeout_ms > 0) schedule_deadline_check(id, now + idle_timeout_ms);
  return id;
}

void McpConnection::schedule_deadline_check(int64_t id, int64_t at_ms) {
  std::weak_ptr<McpConnection> weak = weak_from_this();
  loop_.post_after(std::max<int64_t>(0, at_ms - clock_.now_ms()), [weak, id] {
    if (auto self = weak.lock()) self->check_deadline(id);
  });
}

void McpConnection::check_deadline(int64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  int64_t now = clock_.now_ms();
  int64_t due = std::min(it->second.deadline_ms, it->second.hard_deadline_ms);
  if (now < due) return schedule_deadline_check(id, due);
  std::string method = it->second.method;
  if (method != "initialize" && method != "server/discover") {
    transport_->send(McpOutgoing{
        mcp_notification_text("notifications/cancelled", json::object{{"requestId", id}, {"reason", "timed out"}}),
        std::nullopt, "notifications/cancelled", "", 10'000, nullptr});
  }
  resolve(id, Status(Code::kDeadlineExceeded, "MCP " + method + " timed out"));
  transport_->cancel_request(id);
}

void McpConnection::list_tools(std::function<void(Result<McpToolList>)> done) {
  if (tools_cache_ && clock_.now_ms() < tools_cached_until_ms_) {
    loop_.post([done = std::move(done), tools = tools_cache_] { done(tools); });
    return;
  }
  listing_waiters_.push_back(std::move(done));
  if (listing_) return;
  listing_ = true;
  std::weak_ptr<McpConnection> weak = weak_from_this();
  when_ready([weak](Status status) {
    auto self = weak.lock();
    if (!self) return;
    if (!status.is_ok()) return self->finish_listing(status);
    self->fetch_page(std::nullopt, std::make_shared<std::vector<McpTool>>(), 0, self->tools_changes_);
  });
}

void McpConnection::fetch_page(std::optional<std::string> cursor, std::shared_ptr<std::vector<McpTool>> acc,
                               int pages, int64_t changes_at_start) {
  json::object params;
  if (cursor) params["cursor"] = *cursor;
  json::object meta = request_meta();
  if (!meta.empty()) params["_meta"] = std::move(meta);
  std::weak_ptr<McpConnection> weak = weak_from_this();
  send_request("tools/list", std::move(params), "", options_.list_timeout_ms, options_.list_timeout_ms,
               [weak, acc, pages, changes_at_start](Result<json::value> result) {
                 auto self = weak.lock();
                 if (!self) return;
                 if (!result.is_ok()) return self->finish_listing(result.status());
                 auto page = parse_tools_page(*result);
                 if (!page.is_ok()) return self->finish_listing(page.status());
                 for (auto& tool : page->tools) acc->push_back(std::move(tool));
                 if (acc->size() > kToolsPerServerMax) {
                   return self->finish_listing(invalid_argument("MCP server lists more than " +
                                                                std::to_string(kToolsPerServerMax) + " tools"));
                 }
                 if (page->next_cursor && pages + 1 < kListPagesMax) {
                   return self->fetch_page(page->next_cursor, acc, pages + 1, changes_at_start);
                 }
                 if (page->next_cursor) {
                   return self->finish_listing(invalid_argument("MCP server lists more than 100 pages of tools"));
                 }
                 int64_t ttl = self->options_.tools_cache_ttl_ms;
                 const json::value* server_ttl = result->get_object().if_contains("ttlMs");
                 if (server_ttl != nullptr && server_ttl->is_int64()) {
                   ttl = std::max(kCacheTtlFloorMs, std::min(ttl, server_ttl->get_int64()));
                 } else if (self->revision_ == kMcpRevision2026) {
                   ttl = kCacheTtlFloorMs;  // 2026-07-28: no ttlMs means "do not reuse"
                 }
                 self->tools_cached_until_ms_ = self->clock_.now_ms() + ttl;
                 // Pages read across a change may mix old and new: answer, but do not keep them.
                 self->finish_listing(McpToolList(acc), self->tools_changes_ == changes_at_start);
               });
}

void McpConnection::finish_listing(Result<McpToolList> result, bool cacheable) {
  listing_ = false;
  if (result.is_ok() && cacheable) tools_cache_ = *result;
  if (!cacheable) tools_cached_until_ms_ = 0;
  auto waiters = std::move(listing_waiters_);
  listing_waiters_.clear();
  for (auto& waiter : waiters) {
    loop_.post([waiter = std::move(waiter), result] { waiter(result); });
  }
}

int64_t McpConnection::call_tool(McpCallOptions call, std::function<void(Result<json::value>)> done) {
  // The handle is known before the request is sent (it waits for negotiation):
  // it is the id the request will carry, reserved now.
  int64_t handle = next_id_++;
  std::weak_ptr<McpConnection> weak = weak_from_this();
  auto shared_done = std::make_shared<std::function<void(Result<json::value>)>>(std::move(done));
  pending_.emplace(handle, Pending{"tools/call (waiting)", [shared_done](Result<json::value> result) {
                                     (*shared_done)(std::move(result));
                                   }, 0, 0, 0, true});
  when_ready([weak, handle, call = std::move(call), shared_done](Status status) mutable {
    auto self = weak.lock();
    if (!self) return;
    auto placeholder = self->pending_.find(handle);
    if (placeholder == self->pending_.end()) return;  // cancelled (or lost) while waiting
    self->pending_.erase(placeholder);
    if (!status.is_ok()) return self->post_done(*shared_done, status);
    json::object meta = self->request_meta();
    meta["progressToken"] = handle;
    meta[kMcpIdempotencyMetaKey] = call.idempotency_key;
    json::object params{{"name", call.tool}, {"arguments", std::move(call.arguments)}, {"_meta", std::move(meta)}};
    int64_t now = self->clock_.now_ms();
    Pending pending{"tools/call", *shared_done, call.idle_timeout_ms, now + call.idle_timeout_ms,
                    now + call.total_timeout_ms, false};
    self->pending_.emplace(handle, std::move(pending));
    self->transport_->send(McpOutgoing{mcp_request_text(handle, "tools/call", std::move(params)), handle,
                                       "tools/call", call.tool, call.total_timeout_ms + 5000, nullptr});
    self->schedule_deadline_check(handle, now + call.idle_timeout_ms);
  });
  return handle;
}

void McpConnection::cancel(int64_t handle, const std::string& reason) {
  auto it = pending_.find(handle);
  if (it == pending_.end()) return;
  bool sent = it->second.method == "tools/call";
  if (sent && state_ == State::kReady) {
    transport_->send(McpOutgoing{
        mcp_notification_text("notifications/cancelled", json::object{{"requestId", handle}, {"reason", reason}}),
        std::nullopt, "notifications/cancelled", "", 10'000, nullptr});
  }
  resolve(handle, Status(Code::kCancelled, "the call was cancelled: " + reason));
  transport_->cancel_request(handle);
}

void McpConnection::on_message(std::string_view text) {
  auto messages = parse_mcp_messages(text);
  if (!messages.is_ok()) {
    log::warn("mcp server sent a malformed message", {{"server", options_.server_name},
                                                      {"error", messages.status().message()}});
    return;
  }
  for (auto& message : *messages) on_server_message(std::move(message));
}

void McpConnection::on_server_message(McpMessage message) {
  using Kind = McpMessage::Kind;
  if (message.kind == Kind::kResult || message.kind == Kind::kError) {
    if (!message.id.is_int64()) return;  // not one of ours
    int64_t id = message.id.get_int64();
    if (message.kind == Kind::kError) {
      if (message.error_code == kJsonRpcUnsupportedVersion) {
        return resolve(id, unavailable("MCP server refused the protocol revision: " + message.error_message));
      }
      return resolve(id, from_rpc_error(message));
    }
    return resolve(id, std::move(message.result));
  }
  if (message.kind == Kind::kRequest) {
    bool elicits = message.method == "elicitation/create" && options_.elicitation != "none";
    std::string reply =
        message.method == "ping"         ? mcp_result_text(message.id, json::object{})
        : message.method == "roots/list" ? mcp_result_text(message.id, json::object{{"roots", json::array{}}})
        : elicits ? mcp_result_text(message.id, mcp_elicitation_answer(message.params, options_.elicitation))
                  : mcp_error_text(message.id, kJsonRpcMethodNotFound, "the client does not offer " + message.method);
    transport_->send(McpOutgoing{std::move(reply), std::nullopt, "", "", 10'000, nullptr});
    return;
  }
  if (message.method == "notifications/progress") return on_progress(message.params);
  if (message.method == "notifications/tools/list_changed") {
    log::info("mcp server tools changed", {{"server", options_.server_name}});
    tools_cached_until_ms_ = 0;
    ++tools_changes_;
    if (on_tools_changed_) on_tools_changed_();
    return;
  }
  if (message.method == "notifications/message") {
    log::debug("mcp server log", {{"server", options_.server_name}, {"message", to_json(message.params).substr(0, 2000)}});
  }
}

void McpConnection::on_progress(const json::object& params) {
  const json::value* token = params.if_contains("progressToken");
  if (token == nullptr || !token->is_int64()) return;
  auto it = pending_.find(token->get_int64());
  if (it == pending_.end() || it->second.keep_open) return;
  it->second.deadline_ms = clock_.now_ms() + it->second.idle_timeout_ms;  // still working: not idle
}

void McpConnection::resolve(int64_t id, Result<json::value> result) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;  // late, after a timeout or a cancel
  auto done = std::move(it->second.done);
  pending_.erase(it);
  post_done(std::move(done), std::move(result));
}

void McpConnection::post_done(std::function<void(Result<json::value>)> done, Result<json::value> result) {
  loop_.post([done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
}

void McpConnection::lost(Status status) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  if (transport_) transport_->close();
  Status failure = status.code() == Code::kUnavailable || is_authorization_required(status) ? status
                                                                                           : unavailable(status.message());
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, entry] : pending) post_done(std::move(entry.done), failure);
  auto waiting = std::move(waiting_for_ready_);
  waiting_for_ready_.clear();
  for (auto& task : waiting) task(failure);
  // A listing in progress is answered here: its own callbacks hold only a weak
  // reference and do not run once this connection is gone.
  if (listing_) finish_listing(failure);
  if (on_lost_) {
    auto handler = std::move(on_lost_);
    on_lost_ = nullptr;
    loop_.post([handler = std::move(handler), failure] { handler(failure); });
  }
}

void McpConnection::close() {
  if (state_ == State::kClosed) return;
  on_lost_ = nullptr;
  lost(unavailable("MCP server '" + options_.server_name + "' was stopped"));
}

}  // namespace continuum
