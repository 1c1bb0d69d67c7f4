// continuum-mock-model: a scripted OpenAI-compatible Chat Completions server
// for tests, benchmarks and the offline demo (script format: providers/script.h).
//
//   continuum-mock-model --script FILE [--listen HOST:PORT] [--port-file FILE]
//
// Routes: POST /v1/chat/completions (SSE when "stream": true), GET /healthz,
// GET /stats. No auth. One JSON log line per request on stderr. Exits 0 on
// SIGTERM/SIGINT, 1 on a startup failure, 2 on bad flags.
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/json.h"
#include "core/process.h"
#include "core/log.h"
#include "core/status.h"
#include "net/event_loop.h"
#include "net/http_server.h"
#include "providers/script.h"

namespace continuum {
namespace {

constexpr std::string_view kUsage =
    "usage: continuum-mock-model --script FILE [--listen HOST:PORT] [--port-file FILE]\n"
    "  --script FILE      script document (JSON), required\n"
    "  --listen HOST:PORT address to listen on (default 127.0.0.1:8090; port 0 picks one)\n"
    "  --port-file FILE   write the bound port to FILE once listening\n";
constexpr int64_t kScriptFileBytesMax = 64 * 1024 * 1024;
// Distinct model names tracked in /stats; later ones are counted under kOtherModels.
constexpr size_t kModelsTrackedMax = 1000;
constexpr std::string_view kOtherModels = "<other>";

struct Flags {
  std::string script_path;
  std::string host = "127.0.0.1";
  int port = 8090;
  std::string port_file;
};

// Splits "HOST:PORT" (IPv6 as "[::1]:PORT") at the last colon.
Status parse_listen(std::string_view text, Flags* flags) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return invalid_argument("--listen must be HOST:PORT");
  std::string host(text.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::string_view port_text = text.substr(colon + 1);
  int port = 0;
  if (port_text.empty() || port_text.size() > 5) return invalid_argument("--listen port must be 0-65535");
  for (char c : port_text) {
    if (c < '0' || c > '9') return invalid_argument("--listen port must be 0-65535");
    port = port * 10 + (c - '0');
  }
  if (port > 65535) return invalid_argument("--listen port must be 0-65535");
  flags->host = std::move(host);
  flags->port = port;
  return Status::ok();
}

// Accepts "--name VALUE" and "--name=VALUE".
Result<Flags> parse_flags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    size_t equals = arg.find('=');
    if (equals != std::string::npos) {
      value = arg.substr(equals + 1);
      arg.resize(equals);
    } else if (arg == "--script" || arg == "--listen" || arg == "--port-file") {
      if (i + 1 >= argc) return invalid_argument("flag " + arg + " needs a value");
      value = argv[++i];
    }
    if (arg == "--script") flags.script_path = value;
    else if (arg == "--listen") RETURN_IF_ERROR(parse_listen(value, &flags));
    else if (arg == "--port-file") flags.port_file = value;
    else return invalid_argument("unknown flag " + arg);
  }
  if (flags.script_path.empty()) return invalid_argument("--script FILE is required");
  return flags;
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return invalid_argument("cannot open " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) return internal_error("cannot read " + path);
  std::string contents = std::move(text).str();
  if (static_cast<int64_t>(contents.size()) > kScriptFileBytesMax) {
    return invalid_argument(path + " is larger than " + std::to_string(kScriptFileBytesMax) + " bytes");
  }
  return contents;
}

// Writes to a temporary file and renames it, so a test polling `path` never
// reads a half-written port.
Status write_file_atomically(const std::string& path, const std::string& text) {
  std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return internal_error("cannot write " + temporary);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) return internal_error("cannot rename to " + path);
  return Status::ok();
}

HttpResponse json_response(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

HttpResponse error_response(int status, std::string_view message, std::string_view code) {
  return json_response(status, openai_error_body(status, message, code));
}

bool wants_stream(const json::object& body) {
  const json::value* stream = body.if_contains("stream");
  return stream != nullptr && stream->is_bool() && stream->as_bool();
}

// Serves the routes. Lives on the loop thread only (handlers and timers run
// there), so its counters need no lock. Must outlive the server and the loop's
// pending timers, i.e. main()'s scope.
class MockModelServer {
 public:
  MockModelServer(AsioEventLoop& loop, ScriptBook book) : loop_(loop), book_(std::move(book)) {}

  void handle(HttpRequest& request, std::shared_ptr<ResponseWriter> writer) {
    int64_t start_us = SystemClock::instance().monotonic_us();
    if (request.path == "/v1/chat/completions") {
      if (request.method != "POST") return finish(request, writer, method_not_allowed("POST"), start_us, "");
      return handle_chat(request, std::move(writer), start_us);
    }
    if (request.path == "/healthz" || request.path == "/stats") {
      if (request.method != "GET") return finish(request, writer, method_not_allowed("GET"), start_us, "");
      std::string body = request.path == "/healthz" ? R"({"status":"ok"})" : json::serialize(stats_json());
      return finish(request, writer, json_response(200, std::move(body)), start_us, "");
    }
    finish(request, writer, error_response(404, "no route for " + request.path, "not_found"), start_us, "");
  }

 private:
  // What a deferred reply needs once its delay has passed.
  struct PendingReply {
    std::string method;
    std::string path;
    std::string model;
    bool stream = false;
    ScriptReply reply;
    CompletionMeta meta;
    int64_t start_us = 0;
  };

  static HttpResponse method_not_allowed(std::string_view allowed) {
    HttpResponse response = error_response(405, "method not allowed", "method_not_allowed");
    response.headers.emplace_back("Allow", std::string(allowed));
    return response;
  }

  void handle_chat(HttpRequest& request, std::shared_ptr<ResponseWriter> writer, int64_t start_us) {
    Result<json::object> body = parse_json_object(request.body);
    if (!body.is_ok()) {
      bad_requests_total_ += 1;
      return finish(request, writer, error_response(400, body.status().message(), "invalid_json"), start_us, "");
    }
    PendingReply pending;
    pending.method = request.method;
    pending.path = request.path;
    pending.stream = wants_stream(*body);
    pending.start_us = start_us;
    pending.reply = book_.respond(*body);
    pending.meta = completion_meta(*body, SystemClock::instance().now_ms() / 1000);
    pending.model = pending.meta.model;
    count_chat(pending);
    int64_t delay_ms = pending.reply.delay_ms;
    auto task = [this, writer, pending = std::move(pending)]() mutable { send_reply(writer, pending); };
    if (delay_ms > 0) loop_.post_after(delay_ms, std::move(task));
    else task();
  }

  void count_chat(const PendingReply& pending) {
    requests_total_ += 1;
    if (pending.reply.http_status != 200 && !pending.reply.failure_injected) bad_requests_total_ += 1;
    std::string model = pending.model;
    if (model_stats_.size() >= kModelsTrackedMax && model_stats_.find(model) == model_stats_.end()) {
      model = std::string(kOtherModels);
    }
    ModelStats& stats = model_stats_[model];
    stats.requests += 1;
    if (pending.reply.failure_injected) {
      errors_injected_total_ += 1;
      stats.errors_injected += 1;
    }
  }

  void send_reply(const std::shared_ptr<ResponseWriter>& writer, PendingReply& pending) {
    if (writer->closed()) {
      log::info("client went away before the reply", {{"path", pending.path}, {"model", pending.model}});
      return;
    }
    const ScriptReply& reply = pending.reply;
    if (reply.http_status != 200) {
      HttpResponse response = json_response(reply.http_status, reply.error_body);
      if (reply.retry_after_s >= 0) response.headers.emplace_back("Retry-After", std::to_string(reply.retry_after_s));
      writer->send(std::move(response));
    } else if (pending.stream) {
      writer->start_stream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
      for (const json::object& chunk : render_chat_chunks(reply, pending.meta)) {
        writer->write("data: " + json::serialize(chunk) + "\n\n");
      }
      writer->write("data: [DONE]\n\n");
      writer->end();
    } else {
      writer->send(json_response(200, json::serialize(render_chat_completion(reply, pending.meta))));
    }
    log_request(pending.method, pending.path, reply.http_status, pending.start_us, pending.model,
                pending.stream, reply.failure_injected);
  }

  void finish(const HttpRequest& request, const std::shared_ptr<ResponseWriter>& writer, HttpResponse response,
              int64_t start_us, std::string_view model) {
    int status = response.status;
    writer->send(std::move(response));
    log_request(request.method, request.path, status, start_us, model, false, false);
  }

  static void log_request(std::string_view method, std::string_view path, int status, int64_t start_us,
                          std::string_view model, bool stream, bool failure_injected) {
    int64_t latency_us = SystemClock::instance().monotonic_us() - start_us;
    log::info("request", {{"method", std::string(method)},
                          {"path", std::string(path)},
                          {"status", std::to_string(status)},
                          {"model", std::string(model)},
                          {"stream", stream ? "true" : "false"},
                          {"failure_injected", failure_injected ? "true" : "false"},
                          {"latency_us", std::to_string(latency_us)}});
  }

  json::object stats_json() const {
    json::object by_model;
    for (const auto& [model, stats] : model_stats_) {
      by_model[model] = json::object{{"requests", stats.requests}, {"errors_injected", stats.errors_injected}};
    }
    return {{"requests_total", requests_total_},
            {"errors_injected_total", errors_injected_total_},
            {"bad_requests_total", bad_requests_total_},
            {"by_model", std::move(by_model)}};
  }

  struct ModelStats {
    int64_t requests = 0;
    int64_t errors_injected = 0;
  };

  AsioEventLoop& loop_;
  ScriptBook book_;
  int64_t requests_total_ = 0;         // chat completion requests with a JSON body
  int64_t errors_injected_total_ = 0;  // replies from a step's `fail` list
  int64_t bad_requests_total_ = 0;     // 400/404 replies to chat completion requests
  std::map<std::string, ModelStats> model_stats_;
};

int run(int argc, char** argv) {
  Result<Flags> flags = parse_flags(argc, argv);
  if (!flags.is_ok()) {
    std::fprintf(stderr, "%s\n%.*s", flags.status().message().c_str(), static_cast<int>(kUsage.size()),
                 kUsage.data());
    return 2;
  }
  Result<std::string> text = read_file(flags->script_path);
  Result<ScriptBook> book = text.is_ok() ? ScriptBook::parse(*text) : Result<ScriptBook>(text.status());
  if (!book.is_ok()) {
    log::error("cannot load script", {{"path", flags->script_path}, {"error", book.status().to_string()}});
    return 1;
  }
  AsioEventLoop loop;
  MockModelServer mock(loop, std::move(book).value());
  std::unique_ptr<HttpServer> server = make_http_server(
      loop, HttpServerOptions{},
      [&mock](HttpRequest& request, std::shared_ptr<ResponseWriter> writer) { mock.handle(request, std::move(writer)); });
  Status listening = server->listen(flags->host, flags->port);
  if (!listening.is_ok()) {
    log::error("cannot listen", {{"host", flags->host}, {"error", listening.to_string()}});
    return 1;
  }
  int port = server->bound_port();
  if (!flags->port_file.empty()) {
    Status written = write_file_atomically(flags->port_file, std::to_string(port) + "\n");
    if (!written.is_ok()) {
      log::error("cannot write port file", {{"error", written.to_string()}});
      return 1;
    }
  }
  loop.on_terminate_signal([&loop, &server](int signal_number) {
    log::info("shutting down", {{"signal", std::to_string(signal_number)}});
    server->stop_accepting();
    loop.stop();
  });
  log::info("mock model listening", {{"host", flags->host}, {"port", std::to_string(port)},
                                     {"script", flags->script_path}});
  loop.run();
  return 0;
}

}  // namespace
}  // namespace continuum

int main(int argc, char** argv) {
  continuum::tune_process_resources();
  // The edge: nothing below is expected to throw, but a bug must end in a
  // logged error and a non-zero exit rather than std::terminate.
  try {
    return continuum::run(argc, argv);
  } catch (const std::exception& error) {
    continuum::log::error("fatal", {{"error", error.what()}});
    return 1;
  }
}
