#include "api/server_app.h"

#include <filesystem>
#include <fstream>

#include "api/access.h"
#include "api/errors.h"
#include "api/handlers.h"
#include "audit/audit_log.h"
#include "audit/checkpointer.h"
#include "auth/api_keys.h"
#include "auth/authorizer.h"
#include "auth/oidc.h"
#include "auth/tool_identity.h"
#include "auth/policy_gate.h"
#include "crypto/hash.h"
#include "core/log.h"
#include "core/private_file.h"
#include "net/event_loop.h"
#include "net/http_client.h"
#include "tools/mcp/mcp_hub.h"
#include "tools/mcp/tool_pins.h"
#include "net/http_server.h"
#include "providers/openai_chat.h"
#include "providers/scripted_provider.h"
#include "cluster/postgres_cluster.h"
#include "crypto/keyring.h"
#include "store/coalescing_store.h"
#include "store/open_store.h"
#include "store/sealing_store.h"

namespace continuum {

namespace {

constexpr const char* kDefaultOpenAiBaseUrl = "https://api.openai.com/v1";

std::string bearer_token(const HttpRequest& request) {
  std::string header = request.header("Authorization");
  const std::string prefix = "Bearer ";
  if (header.size() <= prefix.size() || header.compare(0, prefix.size(), prefix) != 0) return {};
  return header.substr(prefix.size());
}

struct App {
  ServerConfig config;
  std::string api_key;
  AsioEventLoop loop;
  MetricsRegistry metrics;
  std::unique_ptr<Store> backend;              // SQLite or PostgreSQL
  std::unique_ptr<KeyEncryptionKeys> keks;
  std::unique_ptr<Keyring> keyring;
  std::unique_ptr<SealingStore> sealing;       // over backend, when encryption is on
  std::unique_ptr<CoalescingStore> coalescing; // over those: groups the loop's commits
  std::unique_ptr<Cluster> cluster;            // leases when several nodes share PostgreSQL
  Store* store = nullptr;                      // what the engine and API use
  std::unique_ptr<Authorizer> authorizer;
  std::unique_ptr<PolicyEffectGate> gate;      // policy over the effects of runs
  std::unique_ptr<Ed25519Key> audit_key;       // signs audit checkpoints (<data>/audit-signing.key)
  std::unique_ptr<AuditCheckpointer> checkpointer;
  std::unique_ptr<OidcAuthenticator> oidc;     // null without oidc_issuers_file
  std::unique_ptr<ToolIdentity> tool_identity; // signs the identity tokens tools receive
  std::unique_ptr<HttpClient> http_client;
  std::unique_ptr<McpHub> mcp;                 // MCP servers' connections and processes
  std::unique_ptr<McpToolPins> mcp_pins;       // what MCP tools were approved as
  std::unique_ptr<DefaultToolRunner> tools;
  std::unique_ptr<OpenAiChatProvider> openai;
  std::unique_ptr<ScriptedProvider> scripted;
  std::unique_ptr<Engine> engine;
  ApiContext api;
  Router router;
  std::unique_ptr<HttpServer> server;
  bool ready = false;
  Counter* requests_total = nullptr;
  Counter* auth_failures_total = nullptr;
  Counter* auth_failures_unaudited_total = nullptr;
  // Auth failures audited per second at most: a flood of bad tokens must not
  // turn into a flood of writes. The rest are counted (metric) only.
  static constexpr int kAuthFailuresAuditedPerSecond = 20;
  int64_t auth_failure_second = 0;
  int auth_failures_this_second = 0;
};

constexpr const char* kJwksPath = "/.well-known/jwks.json";
constexpr int64_t kJwksRefreshMs = 600'000;

bool is_public_path(const std::string& path) {
  return path == "/healthz" || path == "/readyz" || path == kJwksPath || path == kMcpOAuthCallbackPath;
}

// The configured api_key (if any) is an admin of the system tenant; any
// other token must be a stored API key.
Result<Principal> authenticate(App& app, const HttpRequest& head) {
  std::string token = bearer_token(head);
  if (token.empty()) return Status(Code::kUnauthenticated, "missing or invalid API key");
  if (!app.api_key.empty() && constant_time_equal(token, app.api_key)) {
    return Principal{kSystemTenant, "admin", {"admin"}, "config"};
  }
  if (app.oidc && !token.starts_with("ck_") && OidcAuthenticator::looks_like_jwt(token)) {
    return app.oidc->authenticate(token);
  }
  return authenticate_api_key(*app.store, token);
}

// Authenticates before the body is read; the principal rides on the request.
std::optional<HttpResponse> check_head(App& app, HttpRequest& head) {
  if (is_public_path(head.path)) return std::nullopt;
  auto principal = authenticate(app, head);
  if (!principal.is_ok()) {
    bool unauthenticated = principal.status().code() == Code::kUnauthenticated;
    if (unauthenticated) app.auth_failures_total->inc();
    int64_t now = SystemClock::instance().now_ms();
    if (now / 1000 != app.auth_failure_second) {
      app.auth_failure_second = now / 1000;
      app.auth_failures_this_second = 0;
    }
    bool audited = unauthenticated && ++app.auth_failures_this_second <= App::kAuthFailuresAuditedPerSecond;
    if (unauthenticated && !audited) app.auth_failures_unaudited_total->inc();
    if (audited) {
      // The system tenant's chain: an unknown credential names no tenant.
      std::string token = bearer_token(head);
      json::object details{{"path", head.path}, {"remote", head.remote_address},
                           {"credential", token.empty() ? "none" : token.starts_with("ck_") ? "api_key" : "other"}};
      record_audit(app.api, audit_event(kSystemTenant, now, "anonymous", "auth:fail",
                                        "route:" + head.method + " " + head.path, "deny", std::move(details)));
    }
    return error_response(principal.status());
  }
  head.context = std::make_shared<const Principal>(std::move(*principal));
  return std::nullopt;
}

void handle_request(App& app, HttpRequest& request, std::shared_ptr<ResponseWriter> writer) {
  app.requests_total->inc();
  if (request.path == "/healthz") return writer->send(json_response(200, json::object{{"status", "ok"}}));
  if (request.path == kJwksPath && request.method == "GET") {
    return writer->send(json_response(200, app.tool_identity->jwks()));
  }
  if (request.path == kMcpOAuthCallbackPath) return handle_mcp_oauth_callback(app.api, request, std::move(writer));
  if (request.path == "/readyz") {
    return writer->send(app.ready ? json_response(200, json::object{{"status", "ready"}})
                                  : error_response(Status(Code::kUnavailable, "not ready")));
  }
  if (!request.context) {  // check_head did not run (a malformed head): refuse
    return writer->send(error_response(Status(Code::kUnauthenticated, "missing or invalid API key")));
  }
  if (request.path == "/metrics" && request.method == "GET") {
    if (!allowed(app.api, caller(request), "metrics:read", "metrics:*", {}, writer)) return;
    // Server-wide numbers: the system tenant's business only (checked after policy, as /v1/cluster).
    if (caller(request).tenant != kSystemTenant) {
      return writer->send(error_response(not_found("no route for GET /metrics")));
    }
    return writer->send(HttpResponse{200, "text/plain; version=0.0.4", app.metrics.render(), {}});
  }
  if (!app.ready && request.method != "GET") {
    return writer->send(error_response(Status(Code::kUnavailable, "the server is starting or shutting down")));
  }
  app.router.dispatch(request, std::move(writer));
}

// Tells the approval webhook (best effort, one attempt) that a call waits. The
// body names the approval, never the arguments: approvers read those through
// the API, under policy.
void notify_webhook(App& app, const ApprovalRecord& approval) {
  HttpClientRequest request;
  request.url = app.config.approval_webhook_url;
  request.headers.emplace_back("Content-Type", "application/json");
  request.timeout_ms = 10'000;
  request.body = to_json(json::object{{"type", "approval.requested"},
                                      {"tenant", approval.tenant_id},
                                      {"approval_id", approval.id},
                                      {"run_id", approval.run_id},
                                      {"session_id", approval.session_id},
                                      {"tool", approval.tool},
                                      {"arguments_hash", approval.arguments_hash},
                                      {"requested_by", approval.requested_by},
                                      {"agent", approval.agent},
                                      {"expires_at_ms", approval.expires_at_ms}});
  std::string id = approval.id;
  app.http_client->send(std::move(request), nullptr, [id](Result<HttpClientResponse> response) {
    if (!response.is_ok() || response->status >= 300) {
      log::warn("approval webhook failed", {{"approval_id", id},
                                            {"error", response.is_ok() ? std::to_string(response->status)
                                                                       : response.status().to_string()}});
    }
  });
}

Status open_sealing(App& app);

// The backend, over it the sealing layer unless encryption is off, and over
// that the coalescing of the loop's commits.
Status open_storage(App& app) {
  RETURN_IF_ERROR(open_sealing(app));
  CoalescingStore::Options options;
  options.max_delay_us = app.config.commit_coalesce_us;
  app.coalescing = std::make_unique<CoalescingStore>(*app.store, app.loop, SystemClock::instance(), options);
  app.store = app.coalescing.get();
  return Status::ok();
}

Status open_sealing(App& app) {
  ASSIGN_OR_RETURN(app.backend,
                   open_store(app.config.store, app.config.data_dir, SystemClock::instance(), &app.metrics));
  app.store = app.backend.get();
  if (!app.config.encryption) {
    log::warn("encryption at rest is off: payloads are stored in plaintext", {});
    return Status::ok();
  }
  std::string source = app.config.encryption_keys.empty() ? "file:" + app.config.data_dir + "/master.key"
                                                          : app.config.encryption_keys;
  ASSIGN_OR_RETURN(app.keks, LocalKeyEncryptionKeys::open(source, read_process_env));
  if (app.config.encryption_keys.empty()) {
    log::warn("the key-encryption key is stored beside the data; keep it elsewhere (encryption_keys)",
              {{"path", source.substr(5)}});
  }
  app.keyring = std::make_unique<Keyring>(*app.backend, *app.keks, SystemClock::instance());
  app.sealing = std::make_unique<SealingStore>(*app.backend, *app.keyring, SystemRandom::instance());
  app.store = app.sealing.get();
  return Status::ok();
}

Result<std::string> load_or_create_line(const std::string& path, const std::string& prefix, int random_bytes);
Status open_identity(App& app);

// Without a configured api_key, <data>/api-key holds an admin key of the
// system tenant. If it is missing or no longer valid, a new one is issued,
// written there (0600) and printed once.
Status ensure_bootstrap_key(App& app) {
  std::string path = app.config.data_dir + "/api-key";
  std::ifstream existing(path);
  std::string token;
  if (existing && std::getline(existing, token) && authenticate_api_key(*app.store, token).is_ok()) {
    return Status::ok();
  }
  IssuedApiKey issued = issue_api_key(kSystemTenant, "admin", {"admin"}, "bootstrap", "", SystemRandom::instance(),
                                      SystemClock::instance());
  WriteBatch batch;
  batch.api_key_inserts.push_back(issued.record);
  RETURN_IF_ERROR(app.store->commit_and_wait(std::move(batch)));
  RETURN_IF_ERROR(write_private_file(path, issued.token + "\n"));
  log::info("issued the bootstrap admin API key", {{"id", issued.record.id}, {"path", path}});
  std::printf("Bootstrap admin API key (shown once; also in %s):\n  %s\n", path.c_str(), issued.token.c_str());
  std::fflush(stdout);
  return Status::ok();
}

// PostgreSQL: several nodes may share the database, so sessions are leased.
Status open_cluster(App& app) {
  if (!app.config.store.starts_with("postgres")) {
    app.cluster = std::make_unique<LocalCluster>();
    return Status::ok();
  }
  PostgresClusterOptions options;
  options.url = app.config.store;
  options.node_id = app.config.node_id;
  if (options.node_id.empty()) {
    ASSIGN_OR_RETURN(options.node_id, load_or_create_line(app.config.data_dir + "/node-id", "node_", 6));
  }
  options.address = app.config.listen;
  options.lease_ttl_ms = app.config.lease_ttl_ms;
  options.poll_ms = app.config.cluster_poll_ms;
  ASSIGN_OR_RETURN(app.cluster, PostgresCluster::open(std::move(options), SystemClock::instance()));
  return Status::ok();
}

// The tool runner: HTTP tools with vault credentials and identity tokens.
void open_tools(App& app) {
  ToolRunnerOptions tool_options;
  tool_options.allow_private_addresses = app.config.allow_private_tool_addresses;
  tool_options.response_bytes_max = app.config.tool_response_bytes_max;
  tool_options.secrets = [&app](const std::string& tenant, const std::string& name) -> Result<std::string> {
    ASSIGN_OR_RETURN(auto secret, app.store->get_secret(tenant, name));
    return std::move(secret.value);
  };
  tool_options.identity_token = [&app](const ToolCall& call) {
    return app.tool_identity->token_for(ToolIdentityClaims{call.tenant, call.user_id, call.agent->name,
                                                           call.spec->url, call.run_id, call.session_id, call.seq});
  };
  McpHubOptions mcp_options;
  for (size_t start = 0; start <= app.config.mcp_stdio_commands.size();) {
    size_t comma = app.config.mcp_stdio_commands.find(',', start);
    if (comma == std::string::npos) comma = app.config.mcp_stdio_commands.size();
    std::string command = app.config.mcp_stdio_commands.substr(start, comma - start);
    command.erase(0, command.find_first_not_of(' '));
    command.erase(command.find_last_not_of(' ') + 1);
    if (!command.empty()) mcp_options.stdio_commands.push_back(command);
    start = comma + 1;
  }
  mcp_options.stdio_processes_max = static_cast<int>(app.config.mcp_stdio_processes_max);
  mcp_options.idle_stop_ms = app.config.mcp_idle_stop_ms;
  mcp_options.tools_cache_ttl_ms = app.config.mcp_tools_cache_ttl_ms;
  mcp_options.allow_private_addresses = app.config.allow_private_tool_addresses;
  mcp_options.secrets = tool_options.secrets;
  mcp_options.random = &SystemRandom::instance();
  // OAuth state of MCP servers: a vault secret, written with its audit event.
  mcp_options.write_secret = [&app](const std::string& tenant, const std::string& name, std::optional<std::string> value,
                                    const std::string& action, const std::string& resource, json::object details,
                                    std::function<void(Status)> done) {
    int64_t now = SystemClock::instance().now_ms();
    WriteBatch batch;
    if (value) {
      batch.secret_upserts.push_back(SecretRecord{tenant, name, std::move(*value), now, now});
    } else if (app.store->get_secret(tenant, name).is_ok()) {
      batch.secret_deletes.push_back(SecretRecord{tenant, name, "", 0, 0});
    }
    batch.audit_events.push_back(audit_event(tenant, now, "runtime", action, resource, "ok", std::move(details)));
    app.store->commit(std::move(batch), [&app, done = std::move(done)](Status status) {
      app.loop.post([done, status] { done(status); });
    });
  };
  app.mcp = std::make_unique<McpHub>(app.loop, SystemClock::instance(), *app.http_client, std::move(mcp_options));
  tool_options.mcp = app.mcp.get();
  app.mcp_pins = std::make_unique<McpToolPins>(*app.store, app.loop, SystemClock::instance());
  tool_options.pins = app.mcp_pins.get();
  app.tools = std::make_unique<DefaultToolRunner>(app.loop, *app.http_client, tool_options);
}

Status open_providers(App& app) {
  std::string base_url = app.config.model_base_url.empty() ? kDefaultOpenAiBaseUrl : app.config.model_base_url;
  app.openai = std::make_unique<OpenAiChatProvider>(*app.http_client, base_url,
                                                    read_process_env(app.config.model_api_key_env),
                                                    read_process_env);
  if (!app.config.scripted_model_file.empty()) {
    std::ifstream file(app.config.scripted_model_file);
    std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    ASSIGN_OR_RETURN(ScriptBook book, ScriptBook::parse(text));
    app.scripted = std::make_unique<ScriptedProvider>(app.loop, std::make_shared<ScriptBook>(std::move(book)));
  }
  return Status::ok();
}

// Policy (the authorizer and the gate over effects) and the audit checkpointer.
Status open_governance(App& app) {
  app.authorizer = std::make_unique<Authorizer>(*app.store, SystemClock::instance());
  std::string audit_key_file = app.config.audit_signing_key_file.empty() ? app.config.data_dir + "/audit-signing.key"
                                                                          : app.config.audit_signing_key_file;
  ASSIGN_OR_RETURN(auto audit_key, Ed25519Key::load_or_create(audit_key_file));
  app.audit_key = std::make_unique<Ed25519Key>(std::move(audit_key));
  app.checkpointer = std::make_unique<AuditCheckpointer>(*app.store, *app.audit_key, SystemClock::instance());
  app.gate = std::make_unique<PolicyEffectGate>(*app.store, *app.authorizer, SystemClock::instance());
  return Status::ok();
}

void open_engine(App& app) {
  auto resolver = [&app](const ModelSpec& spec) -> ModelProvider* {
    if (spec.provider == "openai") return app.openai.get();
    if (spec.provider == "scripted") return app.scripted.get();
    return nullptr;
  };
  EngineOptions engine_options;
  engine_options.cluster = app.cluster.get();
  engine_options.gate = app.gate.get();
  engine_options.approval_ttl_ms = app.config.approval_ttl_ms;
  engine_options.approval_poll_ms = app.config.approval_poll_ms;
  if (!app.config.approval_webhook_url.empty()) {
    engine_options.on_approval_requested = [&app](const ApprovalRecord& approval) { notify_webhook(app, approval); };
  }
  app.engine = std::make_unique<Engine>(*app.store, app.loop, SystemClock::instance(), SystemRandom::instance(),
                                        resolver, *app.tools, &app.metrics, engine_options);
}

void add_routes(App& app) {
  app.api.store = app.store;
  app.api.keyring = app.keyring.get();
  app.api.cluster = app.cluster.get();
  app.api.engine = app.engine.get();
  app.api.loop = &app.loop;
  app.api.clock = &SystemClock::instance();
  app.api.random = &SystemRandom::instance();
  app.api.authorizer = app.authorizer.get();
  app.api.tool_identity = app.tool_identity.get();
  app.api.mcp = app.mcp.get();
  app.api.mcp_pins = app.mcp_pins.get();
  app.api.approvals_allow_self = app.config.approvals_allow_self;
  app.api.audit_reads = app.config.audit_reads;
  add_agent_routes(app.router, app.api);
  add_session_routes(app.router, app.api);
  add_run_routes(app.router, app.api);
  add_event_routes(app.router, app.api);
  add_key_routes(app.router, app.api);
  add_cluster_routes(app.router, app.api);
  add_secret_routes(app.router, app.api);
  add_governance_routes(app.router, app.api);
  add_approval_routes(app.router, app.api);
  add_audit_routes(app.router, app.api);
  add_mcp_routes(app.router, app.api);
  add_mcp_oauth_routes(app.router, app.api);
  add_response_routes(app.router, app.api);
  add_conversation_routes(app.router, app.api);
}

Status start_listening(App& app) {
  app.requests_total = &app.metrics.counter("continuum_http_requests_total", "HTTP requests received.");
  app.auth_failures_total = &app.metrics.counter("continuum_auth_failures_total", "Requests refused as unauthenticated.");
  app.auth_failures_unaudited_total = &app.metrics.counter(
      "continuum_auth_failures_unaudited_total", "Authentication failures over the audit rate limit (not recorded).");
  HttpServerOptions options;
  options.body_bytes_max = app.config.request_body_bytes_max;
  options.check_head = [&app](HttpRequest& head) { return check_head(app, head); };
  app.server = make_http_server(app.loop, options, [&app](HttpRequest& request, std::shared_ptr<ResponseWriter> w) {
    handle_request(app, request, std::move(w));
  });
  app.metrics.gauge("continuum_http_connections_open", "Open HTTP connections.",
                    [&app] { return static_cast<double>(app.server->open_connections()); });
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(parse_listen(app.config.listen, &host, &port));
  RETURN_IF_ERROR(app.server->listen(host, port));
  app.api.public_url = app.config.public_url;
  if (app.api.public_url.empty()) {  // this host, as a local browser reaches it
    bool any = host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
    app.api.public_url = "http://" + (any ? std::string("127.0.0.1") : host) + ":" + std::to_string(app.server->bound_port());
  }
  while (!app.api.public_url.empty() && app.api.public_url.back() == '/') app.api.public_url.pop_back();
  return Status::ok();
}

Status build(App& app) {
  std::error_code fs_error;
  std::filesystem::create_directories(app.config.data_dir, fs_error);
  if (fs_error) return internal_error("cannot create data dir " + app.config.data_dir + ": " + fs_error.message());
  RETURN_IF_ERROR(open_storage(app));
  if (app.api_key.empty()) RETURN_IF_ERROR(ensure_bootstrap_key(app));
  RETURN_IF_ERROR(open_cluster(app));
  app.http_client = make_http_client(app.loop, app.config.tls_verify);
  RETURN_IF_ERROR(open_identity(app));
  open_tools(app);
  RETURN_IF_ERROR(open_providers(app));
  RETURN_IF_ERROR(open_governance(app));
  open_engine(app);
  add_routes(app);
  return start_listening(app);
}

// Fetches the keys of OIDC issuers configured with jwks_url, now and every
// kJwksRefreshMs. A failed fetch keeps the keys it had.
void refresh_oidc_keys(App& app) {
  for (const auto& issuer : app.oidc->issuers()) {
    if (issuer.jwks_url.empty()) continue;
    HttpClientRequest request;
    request.method = "GET";
    request.url = issuer.jwks_url;
    request.timeout_ms = 10'000;
    request.response_bytes_max = 1024 * 1024;
    std::string name = issuer.issuer;
    app.http_client->send(std::move(request), nullptr, [&app, name](Result<HttpClientResponse> response) {
      Status loaded = !response.is_ok()         ? response.status()
                      : response->status != 200 ? Status(Code::kUnavailable, "HTTP " + std::to_string(response->status))
                                                : app.oidc->set_keys_from_jwks(name, response->body);
      if (!loaded.is_ok()) log::warn("cannot fetch an OIDC issuer's keys", {{"issuer", name}, {"error", loaded.to_string()}});
    });
  }
  app.loop.post_after(kJwksRefreshMs, [&app] { refresh_oidc_keys(app); });
}

Status open_identity(App& app) {
  std::string keys_file = app.config.identity_keys_file.empty() ? app.config.data_dir + "/tool-identity.keys"
                                                                : app.config.identity_keys_file;
  ASSIGN_OR_RETURN(app.tool_identity, ToolIdentity::open(keys_file,
                                                         app.config.identity_issuer, app.config.tool_token_ttl_s,
                                                         SystemClock::instance(), SystemRandom::instance()));
  if (app.config.oidc_issuers_file.empty()) return Status::ok();
  std::ifstream file(app.config.oidc_issuers_file);
  if (!file) return invalid_argument("cannot read " + app.config.oidc_issuers_file, "oidc_issuers_file");
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  ASSIGN_OR_RETURN(auto issuers, parse_oidc_issuers(text));
  app.oidc = std::make_unique<OidcAuthenticator>(std::move(issuers), SystemClock::instance());
  return app.oidc->load_key_files();
}

// Signs checkpoints of the audit chains every audit_checkpoint_ms.
void schedule_checkpoints(App& app) {
  app.loop.post_after(app.config.audit_checkpoint_ms, [&app] {
    Status status = app.checkpointer->checkpoint(/*wait=*/false);
    if (!status.is_ok()) log::error("cannot sign audit checkpoints", {{"error", status.to_string()}});
    schedule_checkpoints(app);
  });
}

void shut_down(App& app, int signal_number) {
  log::info("shutting down", {{"signal", std::to_string(signal_number)}});
  app.ready = false;
  app.server->stop_accepting();
  app.api.run_shutdown_hooks();  // waiting clients get the run as it is (202); SSE streams end
  app.mcp->shutdown();           // stdio servers get EOF on stdin (then SIGTERM); calls in flight resume at next start
  app.loop.post_after(app.config.shutdown_grace_ms, [&app] {
    log::warn("shutdown grace period over; exiting with commits in flight");
    app.loop.stop();
  });
  app.engine->drain([&app] {
    log::info("drained; unfinished runs resume at next start");
    // A short pause lets the answers queued by the shutdown hooks reach their clients.
    app.loop.post_after(200, [&app] { app.loop.stop(); });
  });
}

}  // namespace

namespace {

// The first line of `path`, or a new random value written there (mode 0600).
Result<std::string> load_or_create_line(const std::string& path, const std::string& prefix, int random_bytes) {
  std::ifstream existing(path);
  std::string value;
  if (existing && std::getline(existing, value) && !value.empty()) return value;
  value = prefix + SystemRandom::instance().hex(random_bytes);
  RETURN_IF_ERROR(write_private_file(path, value + "\n"));
  log::info("created file", {{"path", path}});
  return value;
}

}  // namespace

int run_server(const ServerConfig& config) {
  auto app = std::make_unique<App>();
  app->config = config;
  app->api_key = config.api_key;
  Status built = build(*app);
  if (!built.is_ok()) {
    log::error("cannot start", {{"error", built.to_string()}});
    return 1;
  }
  app->loop.on_terminate_signal([&app = *app](int signal_number) { shut_down(app, signal_number); });
  app->loop.post([&app = *app] {
    app.coalescing->attach_to_loop_thread();
    Status recovered = app.engine->recover();
    if (!recovered.is_ok()) {
      log::error("recovery failed", {{"error", recovered.to_string()}});
      app.loop.stop();
      return;
    }
    app.cluster->start(app.engine->cluster_handlers());  // from here on, it may hand sessions over
    schedule_checkpoints(app);
    if (app.oidc) refresh_oidc_keys(app);  // then every kJwksRefreshMs
    app.ready = true;
    log::info("ready", {{"listen", app.config.listen}, {"port", std::to_string(app.server->bound_port())},
                        {"node_id", app.cluster->node_id()},
                        {"data_dir", app.config.data_dir},
                        {"store", redacted_store_url(app.config.store.empty() ? "sqlite:" + app.config.data_dir +
                                                                                    "/continuum.db"
                                                                              : app.config.store)}});
  });
  app->loop.run();
  app->cluster->stop();  // no more hand-overs; the loop no longer runs what it would post
  if (Status signed_last = app->checkpointer->checkpoint(/*wait=*/true); !signed_last.is_ok()) {
    log::error("cannot sign the final audit checkpoints", {{"error", signed_last.to_string()}});
  }
  app->server.reset();
  app->coalescing.reset();  // ends the transaction it holds open below
  app->sealing.reset();
  app->backend.reset();  // drains queued commits (their callbacks only post to the loop), then closes
  app->engine.reset();
  return 0;
}

}  // namespace continuum
