// Tests of McpConnection (src/tools/mcp/mcp_connection.h) over a scripted
// in-memory transport, on a ManualEventLoop and ManualClock: revision
// negotiation, tools/list paging and caching, tools/call with its _meta,
// deadlines, progress and cancellation, transport loss, and the answers to
// what a server asks of the client.
#include "tools/mcp/mcp_connection.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace continuum {
namespace {

constexpr int64_t kStart = 1'700'000'000'000;

// What the fake transport saw, and the handlers the connection gave it. Shared
// with the test so that it outlives the transport the connection owns.
struct FakeWire {
  McpTransport::Handlers handlers;
  Status start_status;
  int starts = 0;
  int closes = 0;
  std::vector<McpOutgoing> sent;
  std::vector<std::string> versions;  // every set_protocol_version()

  // --- the server's side -----------------------------------------------------
  void deliver(const json::value& message) { handlers.on_message(to_json(message)); }
  void reply(int64_t id, json::value result) {
    deliver(json::object{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}});
  }
  void reply_error(int64_t id, int64_t code, std::string message) {
    deliver(json::object{
        {"jsonrpc", "2.0"}, {"id", id}, {"error", json::object{{"code", code}, {"message", std::move(message)}}}});
  }
  void notify(std::string method, json::object params) {
    deliver(json::object{{"jsonrpc", "2.0"}, {"method", std::move(method)}, {"params", std::move(params)}});
  }

  // --- what the client sent --------------------------------------------------
  json::object body(std::size_t index) const {
    auto parsed = parse_json_object(sent.at(index).text);
    EXPECT_TRUE(parsed.is_ok()) << sent.at(index).text;
    return parsed.is_ok() ? *parsed : json::object{};
  }
  std::vector<std::string> methods() const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < sent.size(); ++i) {
      json::object message = body(i);
      const json::value* method = message.if_contains("method");
      out.push_back(method != nullptr && method->is_string() ? std::string(method->get_string()) : "(response)");
    }
    return out;
  }
  std::vector<json::object> all(std::string_view method) const {
    std::vector<json::object> out;
    for (std::size_t i = 0; i < sent.size(); ++i) {
      json::object message = body(i);
      const json::value* m = message.if_contains("method");
      if (m != nullptr && m->is_string() && m->get_string() == method) out.push_back(std::move(message));
    }
    return out;
  }
  std::size_t count(std::string_view method) const { return all(method).size(); }
  // The last message sent with `method`; fails the test if there is none.
  json::object last(std::string_view method) const {
    auto found = all(method);
    if (found.empty()) {
      ADD_FAILURE() << "nothing sent with method " << method;
      return {};
    }
    return found.back();
  }
  int64_t last_id(std::string_view method) const {
    json::object message = last(method);
    const json::value* id = message.if_contains("id");
    if (id == nullptr || !id->is_int64()) {
      ADD_FAILURE() << method << " has no integer id";
      return -1;
    }
    return id->get_int64();
  }
};

class FakeTransport final : public McpTransport {
 public:
  explicit FakeTransport(std::shared_ptr<FakeWire> wire) : wire_(std::move(wire)) {}
  Status start(Handlers handlers) override {
    ++wire_->starts;
    wire_->handlers = std::move(handlers);
    return wire_->start_status;
  }
  void send(McpOutgoing message) override {
    auto delivered = std::move(message.delivered);
    wire_->sent.push_back(std::move(message));
    if (delivered) delivered();
  }
  void set_protocol_version(std::string version) override { wire_->versions.push_back(std::move(version)); }
  void close() override { ++wire_->closes; }

 private:
  std::shared_ptr<FakeWire> wire_;
};

// Collects what a callback got, and how often.
template <typename T>
struct Outcome {
  int calls = 0;
  std::optional<Result<T>> result;
  std::function<void(Result<T>)> callback() {
    return [this](Result<T> r) {
      ++calls;
      result.emplace(std::move(r));
    };
  }
  bool ok() const { return result.has_value() && result->is_ok(); }
  Code code() const { return result.has_value() ? result->status().code() : Code::kInternal; }
};

json::object tool(std::string name) {
  return json::object{{"name", std::move(name)}, {"inputSchema", json::object{{"type", "object"}}}};
}

json::object page(std::vector<std::string> names, std::optional<std::string> cursor = std::nullopt) {
  json::array tools;
  for (auto& name : names) tools.push_back(tool(std::move(name)));
  json::object result{{"tools", std::move(tools)}};
  if (cursor) result["nextCursor"] = *cursor;
  return result;
}

std::vector<std::string> names_of(const Outcome<McpToolList>& outcome) {
  std::vector<std::string> names;
  if (!outcome.ok()) return names;
  for (const McpTool& t : ***outcome.result) names.push_back(t.name);
  return names;
}

const json::value* meta_field(const json::object& message, std::string_view key) {
  const json::value* params = message.if_contains("params");
  if (params == nullptr || !params->is_object()) return nullptr;
  const json::value* meta = params->get_object().if_contains("_meta");
  if (meta == nullptr || !meta->is_object()) return nullptr;
  return meta->get_object().if_contains(key);
}

class McpConnectionTest : public ::testing::Test {
 protected:
  ManualClock clock{kStart};
  ManualEventLoop loop{clock};
  std::shared_ptr<FakeWire> wire = std::make_shared<FakeWire>();

  std::shared_ptr<McpConnection> connect(std::string protocol = "auto", McpConnectionOptions options = {}) {
    options.server_name = "demo";
    options.protocol = std::move(protocol);
    return std::make_shared<McpConnection>(loop, clock, std::make_unique<FakeTransport>(wire), options);
  }

  void run() { loop.run_ready(); }

  // A connection that has completed the 2025-11-25 handshake.
  std::shared_ptr<McpConnection> legacy_ready(McpConnectionOptions options = {}) {
    auto connection = connect("2025-11-25", std::move(options));
    connection->start();
    wire->reply(wire->last_id("initialize"),
                json::object{{"protocolVersion", "2025-11-25"}, {"capabilities", json::object{}},
                             {"serverInfo", json::object{{"name", "demo"}, {"version", "1"}}}});
    run();
    EXPECT_TRUE(connection->ready());
    return connection;
  }

  // A connection that negotiated 2026-07-28 through server/discover.
  std::shared_ptr<McpConnection> modern_ready(McpConnectionOptions options = {}) {
    auto connection = connect("auto", std::move(options));
    connection->start();
    wire->reply(wire->last_id("server/discover"),
                json::object{{"supportedVersions", json::array{"2025-11-25", "2026-07-28"}},
                             {"capabilities", json::object{{"tools", json::object{{"listChanged", true}}}}}});
    run();
    EXPECT_TRUE(connection->ready());
    return connection;
  }
};

// --- negotiation -------------------------------------------------------------

TEST_F(McpConnectionTest, AutoPicksTheStatelessRevisionWhenDiscoverListsIt) {
  auto connection = connect();
  connection->start();
  ASSERT_EQ(wire->starts, 1);
  ASSERT_EQ(wire->methods(), (std::vector<std::string>{"server/discover"}));
  EXPECT_EQ(wire->sent[0].method, "server/discover");
  EXPECT_EQ(wire->sent[0].request_id, std::optional<int64_t>(wire->last_id("server/discover")));
  EXPECT_EQ(wire->versions, (std::vector<std::string>{"2026-07-28"})) << "the probe carries the header";
  EXPECT_FALSE(connection->ready());

  wire->reply(wire->last_id("server/discover"),
              json::object{{"supportedVersions", json::array{"2025-11-25", "2026-07-28"}}});
  run();
  EXPECT_TRUE(connection->ready());
  EXPECT_EQ(connection->revision(), "2026-07-28");
  EXPECT_EQ(wire->count("initialize"), 0u) << "no handshake in the stateless revision";
  EXPECT_EQ(wire->count("notifications/initialized"), 0u);

  // It listens for tool changes.
  json::object listen = wire->last("subscriptions/listen");
  EXPECT_EQ(listen.at("params").at("notifications"), json::value(json::object{{"toolsListChanged", true}}));

  // Later requests too: every one carries the revision in _meta.
  Outcome<McpToolList> listed;
  connection->list_tools(listed.callback());
  Outcome<json::value> called;
  connection->call_tool(McpCallOptions{"echo", json::object{{"text", "hi"}}, "run-1:1"}, called.callback());
  EXPECT_EQ(wire->count("tools/list"), 1u);
  EXPECT_EQ(wire->count("tools/call"), 1u);
  for (const json::object& message : std::vector<json::object>{wire->last("server/discover"),
                                                               wire->last("subscriptions/listen"),
                                                               wire->last("tools/list"), wire->last("tools/call")}) {
    const json::value* version = meta_field(message, "io.modelcontextprotocol/protocolVersion");
    ASSERT_NE(version, nullptr) << to_json(message);
    EXPECT_EQ(*version, json::value("2026-07-28")) << to_json(message);
    const json::value* info = meta_field(message, "io.modelcontextprotocol/clientInfo");
    ASSERT_NE(info, nullptr) << to_json(message);
    EXPECT_EQ(info->at("name"), json::value("continuum"));
  }
}

TEST_F(McpConnectionTest, AutoFallsBackToInitializeWhenDiscoverIsUnknown) {
  auto connection = connect();
  connection->start();
  // Asked for before negotiation ends: waits for it.
  Outcome<McpToolList> listed;
  connection->list_tools(listed.callback());
  EXPECT_EQ(wire->count("tools/list"), 0u);

  wire->reply_error(wire->last_id("server/discover"), kJsonRpcMethodNotFound, "Method not found");
  run();
  ASSERT_EQ(wire->methods(), (std::vector<std::string>{"server/discover", "initialize"}));
  json::object initialize = wire->last("initialize");
  EXPECT_EQ(initialize.at("params").at("protocolVersion"), json::value("2025-11-25"));
  EXPECT_EQ(initialize.at("params").at("clientInfo").at("name"), json::value("continuum"));
  EXPECT_TRUE(initialize.at("params").at("capabilities").is_object());
  EXPECT_EQ(meta_field(initialize, "io.modelcontextprotocol/protocolVersion"), nullptr)
      << "the legacy handshake carries no 2026 _meta";
  EXPECT_EQ(wire->versions.back(), "") << "no protocol header until the server agrees to one";
  EXPECT_FALSE(connection->ready());
  EXPECT_EQ(wire->count("notifications/initialized"), 0u) << "only after the initialize result";

  wire->reply(wire->last_id("initialize"),
              json::object{{"protocolVersion", "2025-11-25"}, {"capabilities", json::object{}}});
  run();
  EXPECT_TRUE(connection->ready());
  EXPECT_EQ(connection->revision(), "2025-11-25");
  EXPECT_EQ(wire->versions.back(), "2025-11-25");
  // notifications/initialized first, then the waiting tools/list; no subscription.
  EXPECT_EQ(wire->methods(),
            (std::vector<std::string>{"server/discover", "initialize", "notifications/initialized", "tools/list"}));
  EXPECT_EQ(meta_field(wire->last("tools/list"), "io.modelcontextprotocol/protocolVersion"), nullptr);
}

TEST_F(McpConnectionTest, AutoFallsBackToInitializeWhenDiscoverTimesOut) {
  McpConnectionOptions options;
  options.connect_timeout_ms = 4000;
  auto connection = connect("auto", options);
  connection->start();
  ASSERT_EQ(wire->count("server/discover"), 1u);
  ASSERT_TRUE(loop.fire_next_timer());
  run();
  EXPECT_EQ(clock.now_ms(), kStart + 2000) << "the probe gets half of connect_timeout_ms";
  EXPECT_EQ(wire->count("initialize"), 1u);
  EXPECT_EQ(wire->count("notifications/cancelled"), 0u);
  // The old server answers initialize: 2025-11-25 it is.
  wire->reply(wire->last_id("initialize"), json::object{{"protocolVersion", "2025-11-25"}});
  run();
  EXPECT_TRUE(connection->ready());
  EXPECT_EQ(connection->revision(), "2025-11-25");
  // A discover answer that arrives now changes nothing.
  wire->reply(wire->last_id("server/discover"), json::object{{"supportedVersions", json::array{"2026-07-28"}}});
  run();
  EXPECT_EQ(connection->revision(), "2025-11-25");
  EXPECT_EQ(wire->count("subscriptions/listen"), 0u);
}

TEST_F(McpConnectionTest, AutoFallsBackWhenDiscoverListsOnlyOtherRevisions) {
  auto connection = connect();
  connection->start();
  wire->reply(wire->last_id("server/discover"), json::object{{"supportedVersions", json::array{"2099-01-01"}}});
  run();
  EXPECT_EQ(wire->count("initialize"), 1u);
  EXPECT_FALSE(connection->ready());
}

TEST_F(McpConnectionTest, AcceptsOlder2025RevisionsFromInitialize) {
  auto connection = connect("2025-11-25");
  connection->start();
  wire->reply(wire->last_id("initialize"), json::object{{"protocolVersion", "2025-06-18"}});
  run();
  EXPECT_TRUE(connection->ready());
  EXPECT_EQ(connection->revision(), "2025-06-18");
  EXPECT_EQ(wire->versions.back(), "2025-06-18");
}

TEST_F(McpConnectionTest, FailsOnAnUnsupportedInitializeRevision) {
  auto connection = connect("2025-11-25");
  int lost_calls = 0;
  Status lost_status;
  connection->on_lost([&](Status status) {
    ++lost_calls;
    lost_status = std::move(status);
  });
  connection->start();
  Outcome<McpToolList> listed;
  connection->list_tools(listed.callback());
  wire->reply(wire->last_id("initialize"), json::object{{"protocolVersion", "2024-11-05"}});
  run();
  EXPECT_FALSE(connection->ready());
  EXPECT_FALSE(connection->usable());
  EXPECT_EQ(wire->count("notifications/initialized"), 0u);
  EXPECT_EQ(wire->count("tools/list"), 0u);
  EXPECT_EQ(wire->closes, 1);
  EXPECT_EQ(lost_calls, 1);
  EXPECT_EQ(lost_status.code(), Code::kUnavailable);
  EXPECT_NE(lost_status.message().find("2024-11-05"), std::string::npos) << lost_status.message();
  EXPECT_EQ(listed.calls, 1);
  EXPECT_EQ(listed.code(), Code::kUnavailable);
}

TEST_F(McpConnectionTest, AnInitializeWithoutAnswerFailsTheConnectionWithoutCancellingIt) {
  McpConnectionOptions options;
  options.connect_timeout_ms = 3000;
  auto connection = connect("2025-11-25", options);
  int lost_calls = 0;
  connection->on_lost([&](Status) { ++lost_calls; });
  connection->start();
  Outcome<json::value> called;
  connection->call_tool(McpCallOptions{"echo", {}, "k"}, called.callback());
  ASSERT_TRUE(loop.fire_next_timer());
  run();
  EXPECT_EQ(clock.now_ms(), kStart + 3000);
  EXPECT_FALSE(connection->usable());
  EXPECT_EQ(lost_calls, 1);
  EXPECT_EQ(called.calls, 1);
  EXPECT_EQ(called.code(), Code::kUnavailable);
  EXPECT_EQ(wire->count("notifications/cancelled"), 0u) << "initialize must not be cancelled";
  EXPECT_EQ(wire->count("tools/call"), 0u);
}

TEST_F(McpConnectionTest, PinnedLegacyRevisionSkipsDiscover) {
  auto connection = connect("2025-11-25");
  connection->start();
  EXPECT_EQ(wire->methods(), (std::vector<std::string>{"initialize"}));
  wire->reply(wire->last_id("initialize"), json::object{{"protocolVersion", "2025-11-25"}});
  run();
  EXPECT_TRUE(connection->ready());
  EXPECT_EQ(wire->count("server/discover"), 0u);
  EXPECT_EQ(wire->methods(), (std::vector<std::string>{"initialize", "notifications/initialized"}));
}

TEST_F(McpConnectionTest, PinnedStatelessRevisionDoesNotFallBack) {
  auto connection = connect("2026-07-28");
  int lost_calls = 0;
  connection->on_lost([&](Status) { ++lost_calls; });
  connection->start();
  wire->reply_error(wire->last_id("server/discover"), kJsonRpcMethodNotFound, "Method not found");
  run();
  EXPECT_FALSE(connection->usable());
  EXPECT_EQ(wire->count("initialize"), 0u);
  EXPECT_EQ(lost_calls, 1);
}

TEST_F(McpConnectionTest, AFailedTransportStartIsReportedFromTheLoop) {
  wire->start_status = unavailable("no such command");
  auto connection = connect();
  int lost_calls = 0;
  connection->on_lost([&](Status) { ++lost_calls; });
  connection->start();
  EXPECT_EQ(lost_calls, 0) << "not from inside start()";
  EXPECT_TRUE(wire->sent.empty());
  run();
  EXPECT_EQ(lost_calls, 1);
  EXPECT_FALSE(connection->usable());
}

// --- tools/list --------------------------------------------------------------

TEST_F(McpConnectionTest, ListsToolsAcrossThreePages) {
  auto connection = legacy_ready();
  Outcome<McpToolList> listed;
  connection->list_tools(listed.callback());
  json::object first = wire->last("tools/list");
  EXPECT_FALSE(first.at("params").as_object().contains("cursor"));
  wire->reply(wire->last_id("tools/list"), page({"a"}, "cursor-2"));
  run();
  EXPECT_EQ(wire->last("tools/list").at("params").at("cursor"), json::value("cursor-2"));
  EXPECT_EQ(listed.calls, 0);
  wire->reply(wire->last_id("tools/list"), page({"b", "c"}, "cursor-3"));
  run();
  EXPECT_EQ(wire->last("tools/list").at("params").at("cursor"), json::value("cursor-3"));
  wire->reply(wire->last_id("tools/list"), page({"d"}));
  run();
  EXPECT_EQ(wire->count("tools/list"), 3u);
  ASSERT_EQ(listed.calls, 1);
  ASSERT_TRUE(listed.ok()) << listed.result->status().to_string();
  EXPECT_EQ(names_of(listed), (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(connection->requests_in_flight(), 0u);
}

TEST_F(McpConnectionTest, ConcurrentListingsShareOneExchange) {
  auto connection = legacy_ready();
  Outcome<McpToolList> first, second;
  connection->list_tools(first.callback());
  connection->list_tools(second.callback());
  EXPECT_EQ(wire->count("tools/list"), 1u);
  wire->reply(wire->last_id("tools/list"), page({"a"}));
  run();
  EXPECT_EQ(names_of(first), std::vector<std::string>{"a"});
  EXPECT_EQ(names_of(second), std::vector<std::string>{"a"});
}

TEST_F(McpConnectionTest, ABadPageFailsTheListingAndIsNotCached) {
  auto connection = legacy_ready();
  Outcome<McpToolList> listed;
  connection->list_tools(listed.callback());
  wire->reply(wire->last_id("tools/list"), json::object{{"tools", json::array{json::object{{"name", "x"}}}}});
  run();
  ASSERT_EQ(listed.calls, 1);
  EXPECT_EQ(listed.code(), Code::kInvalidArgument);
  Outcome<McpToolList> again;
  connection->list_tools(again.callback());
  EXPECT_EQ(wire->count("tools/list"), 2u) << "a failure is not cached";
}

TEST_F(McpConnectionTest, CachesTheListingUntilTheServerSaysItChanged) {
  auto connection = legacy_ready();
  int changed = 0;
  connection->on_tools_changed([&] { ++changed; });
  Outcome<McpToolList> first;
  connection->list_tools(first.callback());
  wire->reply(wire->last_id("tools/list"), page({"a", "b"}));
  run();
  ASSERT_TRUE(first.ok());

  Outcome<McpToolList> cached;
  connection->list_tools(cached.callback());
  EXPECT_EQ(cached.calls, 0) << "never inside the call that registered it";
  run();
  EXPECT_EQ(wire->count("tools/list"), 1u) << "served from the cache";
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(cached.result->value(), first.result->value()) << "the same list, not a copy";

  wire->notify("notifications/tools/list_changed", {});
  run();
  EXPECT_EQ(changed, 1);
  Outcome<McpToolList> fresh;
  connection->list_tools(fresh.callback());
  EXPECT_EQ(wire->count("tools/list"), 2u);
  wire->reply(wire->last_id("tools/list"), page({"a", "b", "c"}));
  run();
  EXPECT_EQ(names_of(fresh), (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(McpConnectionTest, TheCachedListingExpiresAfterItsTtl) {
  McpConnectionOptions options;
  options.tools_cache_ttl_ms = 60'000;
  auto connection = legacy_ready(options);
  Outcome<McpToolList> first;
  connection->list_tools(first.callback());
  wire->reply(wire->last_id("tools/list"), page({"a"}));
  run();
  ASSERT_TRUE(first.ok());

  clock.advance_ms(59'999);
  Outcome<McpToolList> still;
  connection->list_tools(still.callback());
  run();
  EXPECT_TRUE(still.ok());
  EXPECT_EQ(wire->count("tools/list"), 1u);

  clock.advance_ms(1);
  Outcome<McpToolList> expired;
  connection->list_tools(expired.callback());
  EXPECT_EQ(wire->count("tools/list"), 2u) << "60 s later the listing is asked for again";
}

TEST_F(McpConnectionTest, AServerTtlShortensTheCacheButNotBelowASecond) {
  auto connection = legacy_ready();
  Outcome<McpToolList> first;
  connection->list_tools(first.callback());
  json::object result = page({"a"});
  result["ttlMs"] = 5000;
  wire->reply(wire->last_id("tools/list"), result);
  run();
  clock.advance_ms(4999);
  Outcome<McpToolList> cached;
  connection->list_tools(cached.callback());
  EXPECT_EQ(wire->count("tools/list"), 1u);
  clock.advance_ms(1);
  Outcome<McpToolList> refreshed;
  connection->list_tools(refreshed.callback());
  ASSERT_EQ(wire->count("tools/list"), 2u);

  result["ttlMs"] = 0;  // "do not cache" is floored at one second
  wire->reply(wire->last_id("tools/list"), result);
  run();
  clock.advance_ms(999);
  Outcome<McpToolList> floored;
  connection->list_tools(floored.callback());
  EXPECT_EQ(wire->count("tools/list"), 2u);
}

// --- tools/call --------------------------------------------------------------

TEST_F(McpConnectionTest, CallToolSendsItsMetaAndDeliversTheResult) {
  auto connection = legacy_ready();
  Outcome<json::value> called;
  int64_t handle = connection->call_tool(
      McpCallOptions{"create_issue", json::object{{"title", "Broken build"}}, "run-42:7"}, called.callback());
  ASSERT_EQ(wire->count("tools/call"), 1u);
  const McpOutgoing& outgoing = wire->sent.back();
  EXPECT_EQ(outgoing.method, "tools/call");
  EXPECT_EQ(outgoing.name, "create_issue") << "for the Mcp-Name header";
  EXPECT_EQ(outgoing.request_id, std::optional<int64_t>(handle));
  json::object request = wire->last("tools/call");
  EXPECT_EQ(request.at("id"), json::value(handle)) << "the handle is the request id";
  EXPECT_EQ(request.at("params").at("name"), json::value("create_issue"));
  EXPECT_EQ(request.at("params").at("arguments"), json::value(json::object{{"title", "Broken build"}}));
  ASSERT_NE(meta_field(request, "progressToken"), nullptr);
  EXPECT_EQ(*meta_field(request, "progressToken"), json::value(handle));
  ASSERT_NE(meta_field(request, "io.continuum/idempotency-key"), nullptr);
  EXPECT_EQ(*meta_field(request, "io.continuum/idempotency-key"), json::value("run-42:7"));
  EXPECT_EQ(connection->requests_in_flight(), 1u);

  json::object result{{"content", json::array{json::object{{"type", "text"}, {"text", "#12 opened"}}}},
                      {"isError", false}};
  wire->reply(handle, result);
  EXPECT_EQ(called.calls, 0) << "delivered from the loop";
  run();
  ASSERT_EQ(called.calls, 1);
  ASSERT_TRUE(called.ok());
  EXPECT_EQ(called.result->value(), json::value(result));
  EXPECT_EQ(connection->requests_in_flight(), 0u);
}

TEST_F(McpConnectionTest, ACallMadeDuringNegotiationIsSentWithItsHandleOnceReady) {
  auto connection = connect("2025-11-25");
  connection->start();
  Outcome<json::value> called;
  int64_t handle = connection->call_tool(McpCallOptions{"echo", {}, "run-1:1"}, called.callback());
  EXPECT_EQ(wire->count("tools/call"), 0u);
  wire->reply(wire->last_id("initialize"), json::object{{"protocolVersion", "2025-11-25"}});
  run();
  ASSERT_EQ(wire->count("tools/call"), 1u);
  EXPECT_EQ(wire->last_id("tools/call"), handle);
  EXPECT_EQ(wire->methods().back(), "tools/call");
  wire->reply(handle, json::object{{"content", json::array{}}});
  run();
  EXPECT_TRUE(called.ok());
}

TEST_F(McpConnectionTest, AToolErrorAnswerIsAnError) {
  auto connection = legacy_ready();
  Outcome<json::value> bad_params, refused_revision;
  int64_t first = connection->call_tool(McpCallOptions{"echo", {}, "k1"}, bad_params.callback());
  int64_t second = connection->call_tool(McpCallOptions{"echo", {}, "k2"}, refused_revision.callback());
  wire->reply_error(first, kJsonRpcInvalidParams, "title is required");
  wire->reply_error(second, -32022, "unsupported protocol version");
  run();
  EXPECT_EQ(bad_params.code(), Code::kInvalidArgument);
  EXPECT_NE(bad_params.result->status().message().find("title is required"), std::string::npos);
  EXPECT_EQ(refused_revision.code(), Code::kUnavailable);
}

TEST_F(McpConnectionTest, AnIdleCallTimesOutAndIsCancelledOnTheServer) {
  auto connection = legacy_ready();
  Outcome<json::value> called;
  McpCallOptions call{"slow", {}, "run-1:2"};
  call.idle_timeout_ms = 1000;
  int64_t handle = connection->call_tool(call, called.callback());
  ASSERT_TRUE(loop.fire_next_timer());
  run();
  EXPECT_EQ(clock.now_ms(), kStart + 1000);
  ASSERT_EQ(called.calls, 1);
  EXPECT_EQ(called.code(), Code::kDeadlineExceeded);
  json::object cancelled = wire->last("notifications/cancelled");
  EXPECT_EQ(cancelled.at("params").at("requestId"), json::value(handle));
  EXPECT_TRUE(cancelled.at("params").at("reason").is_string());
  EXPECT_EQ(wire->sent.back().request_id, std::nullopt) << "a notification has no request to fail";
  EXPECT_EQ(connection->requests_in_flight(), 0u);

  // The server finishes anyway: the answer is dropped, the caller already knows.
  wire->reply(handle, json::object{{"content", json::array{}}});
  run();
  EXPECT_EQ(called.calls, 1);
  EXPECT_EQ(called.code(), Code::kDeadlineExceeded);
}

TEST_F(McpConnectionTest, ProgressPushesTheIdleDeadlineBackButNotTheTotal) {
  auto connection = legacy_ready();
  Outcome<json::value> called;
  McpCallOptions call{"long", {}, "run-1:3"};
  call.idle_timeout_ms = 1000;
  call.total_timeout_ms = 2500;
  int64_t handle = connection->call_tool(call, called.callback());
  auto progress = [&](int step) {
    wire->notify("notifications/progress",
                 json::object{{"progressToken", handle}, {"progress", step}, {"total", 10}});
  };

  clock.advance_ms(800);
  progress(1);                          // idle deadline: 1800
  ASSERT_TRUE(loop.fire_next_timer());  // the check at 1000 finds it still busy
  run();
  EXPECT_EQ(clock.now_ms(), kStart + 1000);
  EXPECT_EQ(called.calls, 0) << "progress at 800 ms keeps a 1000 ms idle timeout from firing";

  clock.advance_ms(700);
  progress(2);                          // now 1700: idle deadline 2700, past the total
  ASSERT_TRUE(loop.fire_next_timer());  // the check at 1800
  run();
  EXPECT_EQ(clock.now_ms(), kStart + 1800);
  EXPECT_EQ(called.calls, 0);

  clock.advance_ms(600);
  progress(3);                          // now 2400: idle deadline 3400
  ASSERT_TRUE(loop.fire_next_timer());  // the total, at 2500
  run();
  EXPECT_EQ(clock.now_ms(), kStart + 2500);
  ASSERT_EQ(called.calls, 1);
  EXPECT_EQ(called.code(), Code::kDeadlineExceeded);
  EXPECT_EQ(wire->last("notifications/cancelled").at("params").at("requestId"), json::value(handle));
}

TEST_F(McpConnectionTest, ProgressForAnotherTokenDoesNotKeepACallAlive) {
  auto connection = legacy_ready();
  Outcome<json::value> called;
  McpCallOptions call{"slow", {}, "k"};
  call.idle_timeout_ms = 1000;
  int64_t handle = connection->call_tool(call, called.callback());
  clock.advance_ms(900);
  wire->notify("notifications/progress", json::object{{"progressToken", handle + 100}, {"progress", 1}});
  wire->notify("notifications/progress", json::object{{"progressToken", std::to_string(handle)}, {"progress", 1}});
  ASSERT_TRUE(loop.fire_next_timer());
  run();
  EXPECT_EQ(clock.now_ms(), kStart + 1000);
  EXPECT_EQ(called.code(), Code::kDeadlineExceeded);
}

TEST_F(McpConnectionTest, CancelTellsTheServerAndFailsTheCallAtOnce) {
  auto connection = legacy_ready();
  Outcome<json::value> called;
  int64_t handle = connection->call_tool(McpCallOptions{"deploy", {}, "run-9:1"}, called.callback());
  connection->cancel(handle, "the run was cancelled");
  json::object cancelled = wire->last("notifications/cancelled");
  EXPECT_EQ(cancelled.at("params").at("requestId"), json::value(handle));
  EXPECT_EQ(cancelled.at("params").at("reason"), json::value("the run was cancelled"));
  EXPECT_EQ(called.calls, 0) << "delivered from the loop";
  run();
  ASSERT_EQ(called.calls, 1);
  EXPECT_EQ(called.code(), Code::kCancelled);
  EXPECT_EQ(connection->requests_in_flight(), 0u);

  // A result that crossed the cancellation is ignored; so is a second cancel.
  wire->reply(handle, json::object{{"content", json::array{}}});
  connection->cancel(handle, "again");
  run();
  EXPECT_EQ(called.calls, 1);
  EXPECT_EQ(called.code(), Code::kCancelled);
  EXPECT_EQ(wire->count("notifications/cancelled"), 1u);
}

TEST_F(McpConnectionTest, CancellingACallStillWaitingForNegotiationSendsNothing) {
  auto connection = connect("2025-11-25");
  connection->start();
  Outcome<json::value> called;
  int64_t handle = connection->call_tool(McpCallOptions{"deploy", {}, "k"}, called.callback());
  connection->cancel(handle, "stop");
  run();
  EXPECT_EQ(called.code(), Code::kCancelled);
  wire->reply(wire->last_id("initialize"), json::object{{"protocolVersion", "2025-11-25"}});
  run();
  EXPECT_TRUE(connection->ready());
  EXPECT_EQ(wire->count("tools/call"), 0u) << "a cancelled call is never sent";
  EXPECT_EQ(wire->count("notifications/cancelled"), 0u) << "the server never saw the request";
  EXPECT_EQ(called.calls, 1);
}

// --- losing the transport ----------------------------------------------------

TEST_F(McpConnectionTest, ATransportCloseFailsEveryPendingRequestAndIsReportedOnce) {
  auto connection = legacy_ready();
  int lost_calls = 0;
  Status lost_status;
  connection->on_lost([&](Status status) {
    ++lost_calls;
    lost_status = std::move(status);
  });
  Outcome<json::value> first, second;
  Outcome<McpToolList> listed;
  connection->call_tool(McpCallOptions{"a", {}, "k1"}, first.callback());
  connection->call_tool(McpCallOptions{"b", {}, "k2"}, second.callback());
  connection->list_tools(listed.callback());
  EXPECT_EQ(connection->requests_in_flight(), 3u);

  wire->handlers.on_closed(internal_error("the process exited with status 1"));
  wire->handlers.on_closed(internal_error("and again"));  // a transport that repeats itself
  run();
  EXPECT_FALSE(connection->usable());
  EXPECT_EQ(wire->closes, 1);
  EXPECT_EQ(lost_calls, 1);
  EXPECT_EQ(lost_status.code(), Code::kUnavailable);
  EXPECT_NE(lost_status.message().find("exited"), std::string::npos) << lost_status.message();
  for (auto* call : {&first, &second}) {
    EXPECT_EQ(call->calls, 1);
    EXPECT_EQ(call->code(), Code::kUnavailable);
  }
  EXPECT_EQ(listed.calls, 1);
  EXPECT_EQ(listed.code(), Code::kUnavailable);
  EXPECT_EQ(connection->requests_in_flight(), 0u);

  // Nothing is sent on a dead connection; callers hear so from the loop.
  std::size_t sent_before = wire->sent.size();
  Outcome<json::value> late;
  connection->call_tool(McpCallOptions{"c", {}, "k3"}, late.callback());
  EXPECT_EQ(late.calls, 0);
  run();
  EXPECT_EQ(late.code(), Code::kUnavailable);
  EXPECT_EQ(wire->sent.size(), sent_before);
  // Neither do timers of the dead requests fire anything.
  while (loop.fire_next_timer()) run();
  EXPECT_EQ(wire->sent.size(), sent_before);
  EXPECT_EQ(lost_calls, 1);
}

TEST_F(McpConnectionTest, AFailedRequestFailsOnlyThatRequest) {
  auto connection = legacy_ready();
  int lost_calls = 0;
  connection->on_lost([&](Status) { ++lost_calls; });
  Outcome<json::value> failed, fine;
  int64_t first = connection->call_tool(McpCallOptions{"a", {}, "k1"}, failed.callback());
  int64_t second = connection->call_tool(McpCallOptions{"b", {}, "k2"}, fine.callback());
  wire->handlers.on_request_failed(first, unavailable("HTTP 502"));
  wire->reply(second, json::object{{"content", json::array{}}});
  run();
  EXPECT_EQ(failed.code(), Code::kUnavailable);
  EXPECT_TRUE(fine.ok());
  EXPECT_TRUE(connection->usable());
  EXPECT_EQ(lost_calls, 0);
}

TEST_F(McpConnectionTest, AnEndedHttpSessionLosesTheConnection) {
  // Streamable HTTP answers 404 to a request on a session the server dropped.
  auto connection = legacy_ready();
  int lost_calls = 0;
  connection->on_lost([&](Status) { ++lost_calls; });
  Outcome<json::value> first, second;
  int64_t handle = connection->call_tool(McpCallOptions{"a", {}, "k1"}, first.callback());
  connection->call_tool(McpCallOptions{"b", {}, "k2"}, second.callback());
  wire->handlers.on_request_failed(handle, not_found("HTTP 404"));
  run();
  EXPECT_FALSE(connection->usable());
  EXPECT_EQ(lost_calls, 1);
  EXPECT_EQ(first.code(), Code::kUnavailable);
  EXPECT_EQ(second.code(), Code::kUnavailable);
}

TEST_F(McpConnectionTest, CloseFailsPendingCallsWithoutReportingALoss) {
  auto connection = legacy_ready();
  int lost_calls = 0;
  connection->on_lost([&](Status) { ++lost_calls; });
  Outcome<json::value> called;
  connection->call_tool(McpCallOptions{"a", {}, "k1"}, called.callback());
  connection->close();
  run();
  EXPECT_EQ(called.code(), Code::kUnavailable);
  EXPECT_EQ(lost_calls, 0);
  EXPECT_EQ(wire->closes, 1);
  connection->close();
  EXPECT_EQ(wire->closes, 1);
}

// --- what the server asks of the client -------------------------------------

TEST_F(McpConnectionTest, AnswersPingAndRefusesUnknownServerRequests) {
  auto connection = legacy_ready();
  std::size_t before = wire->sent.size();
  wire->deliver(json::object{{"jsonrpc", "2.0"}, {"id", "srv-1"}, {"method", "ping"}});
  wire->deliver(json::object{{"jsonrpc", "2.0"},
                             {"id", 77},
                             {"method", "sampling/createMessage"},
                             {"params", json::object{{"maxTokens", 10}}}});
  ASSERT_EQ(wire->sent.size(), before + 2);

  json::object pong = wire->body(before);
  EXPECT_EQ(json::value(pong), json::value(json::object{{"jsonrpc", "2.0"}, {"id", "srv-1"}, {"result", json::object{}}}));
  EXPECT_EQ(wire->sent[before].request_id, std::nullopt);

  json::object refused = wire->body(before + 1);
  EXPECT_EQ(refused.at("id"), json::value(77));
  EXPECT_FALSE(refused.contains("result"));
  EXPECT_EQ(refused.at("error").at("code"), json::value(kJsonRpcMethodNotFound));
  EXPECT_TRUE(refused.at("error").at("message").is_string());
  EXPECT_TRUE(connection->usable());
}

TEST_F(McpConnectionTest, AnswersRootsListWithNoRoots) {
  auto connection = legacy_ready();
  wire->deliver(json::object{{"jsonrpc", "2.0"}, {"id", 5}, {"method", "roots/list"}});
  EXPECT_EQ(json::value(wire->body(wire->sent.size() - 1)),
            json::value(json::object{{"jsonrpc", "2.0"}, {"id", 5}, {"result", json::object{{"roots", json::array{}}}}}));
}

TEST_F(McpConnectionTest, MalformedOrForeignMessagesAreIgnored) {
  auto connection = legacy_ready();
  Outcome<json::value> called;
  int64_t handle = connection->call_tool(McpCallOptions{"a", {}, "k1"}, called.callback());
  std::size_t before = wire->sent.size();
  wire->handlers.on_message("{not json");
  wire->handlers.on_message(R"({"jsonrpc":"2.0","id":"not-ours","result":{}})");
  wire->handlers.on_message(R"({"jsonrpc":"2.0","id":999999,"result":{}})");
  wire->handlers.on_message(R"({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"hi"}})");
  run();
  EXPECT_EQ(called.calls, 0);
  EXPECT_EQ(wire->sent.size(), before) << "nothing to answer";
  EXPECT_TRUE(connection->usable());
  // A batch carrying the answer still works.
  wire->handlers.on_message(R"([{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":)" +
                            std::to_string(handle) + R"(,"progress":1}},{"jsonrpc":"2.0","id":)" +
                            std::to_string(handle) + R"(,"result":{"content":[]}}])");
  run();
  EXPECT_TRUE(called.ok());
}

// --- 2026-07-28 subscriptions ------------------------------------------------

TEST_F(McpConnectionTest, AListChangedOnTheSubscriptionDropsTheCache) {
  auto connection = modern_ready();
  Outcome<McpToolList> first;
  connection->list_tools(first.callback());
  wire->reply(wire->last_id("tools/list"), page({"a"}));
  run();
  ASSERT_TRUE(first.ok());
  wire->notify("notifications/tools/list_changed", {});
  Outcome<McpToolList> second;
  connection->list_tools(second.callback());
  EXPECT_EQ(wire->count("tools/list"), 2u);
}

TEST_F(McpConnectionTest, AnUnsupportedSubscriptionIsNotRetried) {
  auto connection = modern_ready();
  wire->reply_error(wire->last_id("subscriptions/listen"), kJsonRpcMethodNotFound, "Method not found");
  run();
  while (loop.fire_next_timer()) run();
  EXPECT_EQ(wire->count("subscriptions/listen"), 1u);
  EXPECT_TRUE(connection->ready());
}

TEST_F(McpConnectionTest, AnEndedSubscriptionIsRenewedLater) {
  auto connection = modern_ready();
  wire->reply(wire->last_id("subscriptions/listen"), json::object{});
  run();
  EXPECT_EQ(wire->count("subscriptions/listen"), 1u);
  int64_t at = clock.now_ms();
  // Fire timers until the subscription is renewed (stale deadline checks may come first).
  for (int i = 0; i < 10 && wire->count("subscriptions/listen") == 1; ++i) {
    ASSERT_TRUE(loop.fire_next_timer());
    run();
  }
  EXPECT_EQ(wire->count("subscriptions/listen"), 2u);
  EXPECT_EQ(clock.now_ms(), at + 5000);
}

// Regression: list_tools callbacks were dropped when the connection was destroyed.
TEST_F(McpConnectionTest, DestroyedWhileListingPendingStillAnswersTheListing) {
  Outcome<McpToolList> listed;
  Outcome<json::value> called;
  {
    auto connection = connect("2025-11-25");
    connection->start();
    connection->list_tools(listed.callback());
    connection->call_tool(McpCallOptions{"a", {}, "k"}, called.callback());
  }
  run();
  EXPECT_EQ(called.calls, 1);
  EXPECT_EQ(listed.calls, 1) << "list_tools callback dropped when the connection is destroyed";
}
TEST_F(McpConnectionTest, DestroyedWhileAPageIsInFlightStillAnswersTheListing) {
  Outcome<McpToolList> listed;
  {
    auto connection = legacy_ready();
    connection->list_tools(listed.callback());
  }
  run();
  EXPECT_EQ(listed.calls, 1) << "in-flight list_tools callback dropped when the connection is destroyed";
}
// Regression: a list_changed between pages used to leave the mixed listing cached.
TEST_F(McpConnectionTest, ListChangedDuringPagingIsNotCached) {
  auto connection = legacy_ready();
  Outcome<McpToolList> listed;
  connection->list_tools(listed.callback());
  wire->reply(wire->last_id("tools/list"), page({"old"}, "c2"));
  run();
  wire->notify("notifications/tools/list_changed", {});
  wire->reply(wire->last_id("tools/list"), page({"b"}));
  run();
  Outcome<McpToolList> again;
  connection->list_tools(again.callback());
  EXPECT_EQ(wire->count("tools/list"), 3u) << "stale mixed listing cached after list_changed mid-paging";
}
// Regression: the open subscription made an idle 2026 server look busy (never stopped when idle).
TEST_F(McpConnectionTest, SubscriptionDoesNotCountAsARequestInFlight) {
  auto connection = modern_ready();
  EXPECT_EQ(connection->requests_in_flight(), 0u) << "idle 2026 connection counts its subscription";
}
// Regression: discover timing out, then initialize, took twice connect_timeout_ms.
TEST_F(McpConnectionTest, NegotiationStaysWithinTheConnectTimeout) {
  McpConnectionOptions options;
  options.connect_timeout_ms = 4000;
  auto connection = connect("auto", options);
  connection->start();
  while (connection->usable() && loop.fire_next_timer()) run();
  EXPECT_EQ(clock.now_ms() - kStart, 4000) << "negotiation took longer than connect_timeout_ms";
}

TEST_F(McpConnectionTest, ElicitationIsDeclaredAndAnsweredOnlyWhenConfigured) {
  McpConnectionOptions options;
  options.elicitation = "defaults";
  auto connection = connect("2025-11-25", options);
  connection->start();
  auto init = wire->last("initialize");
  EXPECT_TRUE(init.at("params").at("capabilities").as_object().contains("elicitation"));
  wire->reply(wire->last_id("initialize"), json::object{{"protocolVersion", "2025-11-25"}});
  run();
  ASSERT_TRUE(connection->ready());
  auto request = parse_json(R"({"jsonrpc":"2.0","id":"e1","method":"elicitation/create","params":{"message":"x",
      "requestedSchema":{"type":"object","properties":{"ok":{"type":"boolean","default":true}},"required":["ok"]}}})");
  ASSERT_TRUE(request.is_ok());
  wire->deliver(*request);
  run();
  json::object answer = wire->body(wire->sent.size() - 1);
  EXPECT_EQ(answer.at("id"), json::value("e1"));
  EXPECT_EQ(answer.at("result"), json::value(json::object{{"action", "accept"}, {"content", json::object{{"ok", true}}}}));
}

}  // namespace
}  // namespace continuum
