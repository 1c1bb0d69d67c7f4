// One live conversation with one MCP server over one transport: revision
// negotiation, request ids and their deadlines, progress, cancellation, the
// tools/list cache, and answers to what the server asks of the client.
//
// Negotiation ("auto"): server/discover is sent first (2026-07-28, stateless);
// a discover result naming 2026-07-28 selects it. Any other answer, an error
// or no answer within half the connect timeout falls back to the 2025-11-25
// initialize handshake, within the rest of it. A pinned revision skips the probe.
//
// Contract: created, used and destroyed on the loop thread; held in a
// shared_ptr (timers keep a weak reference). Every callback runs exactly
// once, on the loop thread, never inside the call that registered it.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "engine/event_loop.h"
#include "tools/mcp/mcp_protocol.h"
#include "tools/mcp/mcp_transport.h"

namespace continuum {

struct McpConnectionOptions {
  std::string server_name;
  std::string protocol = "auto";           // "auto", "2026-07-28" or "2025-11-25"
  int64_t connect_timeout_ms = 10'000;     // the whole negotiation
  int64_t list_timeout_ms = 30'000;        // each tools/list page
  int64_t tools_cache_ttl_ms = 300'000;    // a listing is reused this long unless the server says it changed
  bool listen_for_changes = true;          // 2026-07-28: subscriptions/listen for tools list changes
  std::string elicitation = "none";        // "none" (not offered), "decline" or "defaults" (mcp_elicitation_answer)
};

struct McpCallOptions {
  std::string tool;
  json::object arguments;
  std::string idempotency_key;  // sent as _meta["io.continuum/idempotency-key"]
  int64_t idle_timeout_ms = 30'000;    // without a reply or progress for this long, the call times out
  int64_t total_timeout_ms = 600'000;  // and in any case after this long
};

using McpToolList = std::shared_ptr<const std::vector<McpTool>>;

class McpConnection : public std::enable_shared_from_this<McpConnection> {
 public:
  McpConnection(EventLoop& loop, const Clock& clock, std::unique_ptr<McpTransport> transport,
                McpConnectionOptions options);
  ~McpConnection();

  // Starts the transport and the negotiation. Requests made before it ends wait.
  void start();
  // Every tool, all pages; from the cache while it is fresh.
  void list_tools(std::function<void(Result<McpToolList>)> done);
  // `done` gets the tools/call result object (a tool's own failure is a
  // result with isError), or kDeadlineExceeded / kUnavailable / kCancelled-like
  // statuses. Returns a handle for cancel().
  int64_t call_tool(McpCallOptions call, std::function<void(Result<json::value>)> done);
  // Tells the server (notifications/cancelled) and fails the call at once.
  void cancel(int64_t handle, const std::string& reason);
  // Stops the transport; pending requests fail with kUnavailable.
  void close();

  bool usable() const { return state_ != State::kClosed; }
  bool ready() const { return state_ == State::kReady; }
  const std::string& revision() const { return revision_; }
  // Requests awaiting an answer, not counting the change subscription (which
  // stays open while the server is idle).
  size_t requests_in_flight() const { return pending_.size() - (listen_id_ != 0 && pending_.count(listen_id_) ? 1 : 0); }
  int pid() const { return transport_ ? transport_->pid() : 0; }
  // Runs when the server says its tools changed (the cache is already dropped).
  void on_tools_changed(std::function<void()> handler) { on_tools_changed_ = std::move(handler); }
  // Runs once when the transport dies or the session ends (not after close()).
  void on_lost(std::function<void(Status)> handler) { on_lost_ = std::move(handler); }

 private:
  enum class State { kNew, kNegotiating, kReady, kClosed };
  struct Pending {
    std::string method;
    std::function<void(Result<json::value>)> done;
    int64_t idle_timeout_ms = 0;
    int64_t deadline_ms = 0;        // idle deadline, pushed back by progress
    int64_t hard_deadline_ms = 0;
    bool keep_open = false;         // a subscription: no deadline
  };

  int64_t send_request(const std::string& method, json::object params, std::string name, int64_t idle_timeout_ms,
                       int64_t total_timeout_ms, std::function<void(Result<json::value>)> done);
  json::object request_meta() const;
  void when_ready(std::function<void(Status)> task);
  void negotiate();
  void on_discovered(Result<json::value> result);
  void initialize_legacy();
  void become_ready(std::string revision);
  void fail_negotiation(Status status);
  void listen_for_changes();
  void fetch_page(std::optional<std::string> cursor, std::shared_ptr<std::vector<McpTool>> acc, int pages,
                  int64_t changes_at_start);
  void finish_listing(Result<McpToolList> result, bool cacheable = true);
  void on_message(std::string_view text);
  void on_server_message(McpMessage message);
  void on_progress(const json::object& params);
  void resolve(int64_t id, Result<json::value> result);
  void schedule_deadline_check(int64_t id, int64_t at_ms);
  void check_deadline(int64_t id);
  void lost(Status status);
  void post_done(std::function<void(Result<json::value>)> done, Result<json::value> result);

  EventLoop& loop_;
  const Clock& clock_;
  std::unique_ptr<McpTransport> transport_;
  McpConnectionOptions options_;
  State state_ = State::kNew;
  std::string revision_;
  int64_t next_id_ = 1;
  std::map<int64_t, Pending> pending_;
  std::deque<std::function<void(Status)>> waiting_for_ready_;
  McpToolList tools_cache_;
  int64_t tools_cached_until_ms_ = 0;
  int64_t tools_changes_ = 0;  // list_changed notices so far: a listing that spans one is not cached
  int64_t negotiation_deadline_ms_ = 0;
  bool listing_ = false;
  std::vector<std::function<void(Result<McpToolList>)>> listing_waiters_;
  int64_t listen_id_ = 0;
  std::function<void()> on_tools_changed_;
  std::function<void(Status)> on_lost_;
};

}  // namespace continuum
