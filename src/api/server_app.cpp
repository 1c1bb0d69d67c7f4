#include "api/server_app.h"

#include <openssl/crypto.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "api/errors.h"
#include "api/handlers.h"
#include "core/log.h"
#include "net/event_loop.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "providers/openai_chat.h"
#include "providers/scripted_provider.h"
#include "cluster/postgres_cluster.h"
#include "crypto/keyring.h"
#include "store/open_store.h"
#include "store/sealing_store.h"

namespace continuum {

namespace {

constexpr const char* kDefaultOpenAiBaseUrl = "https://api.openai.com/v1";

bool constant_time_equal(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

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
  std::unique_ptr<Cluster> cluster;            // leases when several nodes share PostgreSQL
  Store* store = nullptr;                      // what the engine and API use
  std::unique_ptr<HttpClient> http_client;
  std::unique_ptr<DefaultToolRunner> tools;
  std::unique_ptr<OpenAiChatProvider> openai;
  std::unique_ptr<ScriptedProvider> scripted;
  std::unique_ptr<Engine> engine;
  ApiContext api;
  Router router;
  std::unique_ptr<HttpServer> server;
  bool ready = false;
  Counter* requests_total = nullptr;
};

bool is_public_path(const std::string& path) { return path == "/healthz" || path == "/readyz"; }

// Refuses unauthenticated requests before their body is read.
std::optional<HttpResponse> check_head(const App& app, const HttpRequest& head) {
  if (is_public_path(head.path) || constant_time_equal(bearer_token(head), app.api_key)) return std::nullopt;
  return error_response(Status(Code::kUnauthenticated, "missing or invalid API key"));
}

void handle_request(App& app, HttpRequest& request, std::shared_ptr<ResponseWriter> writer) {
  app.requests_total->inc();
  if (request.path == "/healthz") return writer->send(json_response(200, json::object{{"status", "ok"}}));
  if (request.path == "/readyz") {
    return writer->send(app.ready ? json_response(200, json::object{{"status", "ready"}})
                                  : error_response(Status(Code::kUnavailable, "not ready")));
  }
  if (!constant_time_equal(bearer_token(request), app.api_key)) {
    return writer->send(error_response(Status(Code::kUnauthenticated, "missing or invalid API key")));
  }
  if (request.path == "/metrics" && request.method == "GET") {
    return writer->send(HttpResponse{200, "text/plain; version=0.0.4", app.metrics.render(), {}});
  }
  if (!app.ready && request.method != "GET") {
    return writer->send(error_response(Status(Code::kUnavailable, "the server is starting or shutting down")));
  }
  app.router.dispatch(request, std::move(writer));
}

// The backend, and over it the sealing layer unless encryption is off.
Status open_storage(App& app) {
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

Status build(App& app) {
  std::error_code fs_error;
  std::filesystem::create_directories(app.config.data_dir, fs_error);
  if (fs_error) return internal_error("cannot create data dir " + app.config.data_dir + ": " + fs_error.message());
  if (app.api_key.empty()) {
    ASSIGN_OR_RETURN(app.api_key, load_or_create_api_key(app.config.data_dir));
  }
  RETURN_IF_ERROR(open_storage(app));
  RETURN_IF_ERROR(open_cluster(app));
  app.http_client = make_http_client(app.loop, app.config.tls_verify);
  ToolRunnerOptions tool_options;
  tool_options.allow_private_addresses = app.config.allow_private_tool_addresses;
  tool_options.secrets = [&app](const std::string& tenant, const std::string& name) -> Result<std::string> {
    ASSIGN_OR_RETURN(auto secret, app.store->get_secret(tenant, name));
    return std::move(secret.value);
  };
  app.tools = std::make_unique<DefaultToolRunner>(app.loop, *app.http_client, tool_options);
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
  auto resolver = [&app](const ModelSpec& spec) -> ModelProvider* {
    if (spec.provider == "openai") return app.openai.get();
    if (spec.provider == "scripted") return app.scripted.get();
    return nullptr;
  };
  EngineOptions engine_options;
  engine_options.cluster = app.cluster.get();
  app.engine = std::make_unique<Engine>(*app.store, app.loop, SystemClock::instance(), SystemRandom::instance(),
                                        resolver, *app.tools, &app.metrics, engine_options);
  app.api.store = app.store;
  app.api.keyring = app.keyring.get();
  app.api.cluster = app.cluster.get();
  app.api.engine = app.engine.get();
  app.api.loop = &app.loop;
  app.api.clock = &SystemClock::instance();
  app.api.random = &SystemRandom::instance();
  add_agent_routes(app.router, app.api);
  add_session_routes(app.router, app.api);
  add_run_routes(app.router, app.api);
  add_event_routes(app.router, app.api);
  add_key_routes(app.router, app.api);
  add_cluster_routes(app.router, app.api);
  add_secret_routes(app.router, app.api);
  app.requests_total = &app.metrics.counter("continuum_http_requests_total", "HTTP requests received.");
  HttpServerOptions options;
  options.body_bytes_max = app.config.request_body_bytes_max;
  options.check_head = [&app](const HttpRequest& head) { return check_head(app, head); };
  app.server = make_http_server(app.loop, options, [&app](HttpRequest& request, std::shared_ptr<ResponseWriter> w) {
    handle_request(app, request, std::move(w));
  });
  app.metrics.gauge("continuum_http_connections_open", "Open HTTP connections.",
                    [&app] { return static_cast<double>(app.server->open_connections()); });
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(parse_listen(app.config.listen, &host, &port));
  return app.server->listen(host, port);
}

void shut_down(App& app, int signal_number) {
  log::info("shutting down", {{"signal", std::to_string(signal_number)}});
  app.ready = false;
  app.server->stop_accepting();
  app.api.run_shutdown_hooks();  // waiting clients get the run as it is (202); SSE streams end
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
  mode_t previous = umask(077);
  std::ofstream out(path, std::ios::trunc);
  umask(previous);
  out << value << "\n";
  if (!out) return internal_error("cannot write " + path);
  log::info("created file", {{"path", path}});
  return value;
}

}  // namespace

Result<std::string> load_or_create_api_key(const std::string& data_dir) {
  return load_or_create_line(data_dir + "/api-key", "ck_", 24);
}

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
    Status recovered = app.engine->recover();
    if (!recovered.is_ok()) {
      log::error("recovery failed", {{"error", recovered.to_string()}});
      app.loop.stop();
      return;
    }
    app.cluster->start(app.engine->cluster_handlers());  // from here on, it may hand sessions over
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
  app->server.reset();
  app->sealing.reset();
  app->backend.reset();  // drains queued commits (their callbacks only post to the loop), then closes
  app->engine.reset();
  return 0;
}

}  // namespace continuum
