#include "api/handlers.h"

#include "agent/agent_spec.h"
#include "api/access.h"
#include "audit/audit_log.h"
#include "api/errors.h"
#include "engine/snapshot.h"

namespace continuum {

int64_t ApiContext::add_shutdown_hook(std::function<void()> hook) {
  int64_t token = next_hook_token_++;
  shutdown_hooks_.emplace(token, std::move(hook));
  return token;
}

void ApiContext::remove_shutdown_hook(int64_t token) { shutdown_hooks_.erase(token); }

void ApiContext::run_shutdown_hooks() {
  auto hooks = std::move(shutdown_hooks_);
  shutdown_hooks_.clear();
  for (auto& [token, hook] : hooks) hook();
}

namespace {

using Writer = std::shared_ptr<ResponseWriter>;
constexpr int kPageLimitMax = 1000;
constexpr size_t kInputBytesMax = 1024 * 1024;
constexpr int64_t kWaitTimeoutDefaultMs = 600'000;

Result<int> page_limit(const HttpRequest& request, int default_limit) {
  if (!request.has_query_param("limit")) return default_limit;
  std::string text = request.query_param("limit");
  char* end = nullptr;
  long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < 1 || value > kPageLimitMax) {
    return invalid_argument("limit must be an integer between 1 and 1000", "limit");
  }
  return static_cast<int>(value);
}

Result<int64_t> seq_param(const HttpRequest& request, const char* name) {
  if (!request.has_query_param(name)) return int64_t{-1};
  std::string text = request.query_param(name);
  char* end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < 0) return invalid_argument(std::string(name) + " must be >= 0", name);
  return static_cast<int64_t>(value);
}

json::object agent_view(const AgentRecord& record) {
  json::object view{{"object", "agent"}, {"name", record.name}, {"version", record.version},
                    {"created_at_ms", record.created_at_ms}};
  auto spec = parse_json_object(record.spec_json);
  if (spec.is_ok()) {
    for (auto& entry : *spec) {
      if (entry.key() != "name") view[entry.key()] = entry.value();
    }
  }
  return view;
}

json::object session_view(const SessionRecord& record) {
  json::value metadata = json::object{};
  if (auto parsed = parse_json(record.metadata_json); parsed.is_ok()) metadata = std::move(*parsed);
  return json::object{{"object", "session"},
                      {"id", record.id},
                      {"agent", record.agent_name},
                      {"user", record.user_id.empty() ? json::value(nullptr) : json::value(record.user_id)},
                      {"metadata", std::move(metadata)},
                      {"created_at_ms", record.created_at_ms}};
}

// ---- agents ----

void put_agent(ApiContext& ctx, const Principal& who, json::object body, const std::string& name, bool must_be_new,
               Writer writer) {
  body["name"] = name;
  auto spec = parse_agent_spec(body);
  if (!spec.is_ok()) return writer->send(error_response(spec.status()));
  auto latest = ctx.store->get_agent(who.tenant, name, std::nullopt);
  if (latest.is_ok() && must_be_new) {
    return writer->send(error_response(conflict("agent '" + name + "' already exists; PUT /v1/agents/" + name +
                                                " makes a new version")));
  }
  if (!latest.is_ok() && latest.status().code() != Code::kNotFound) {
    return writer->send(error_response(latest.status()));
  }
  AgentRecord record{who.tenant, name, latest.is_ok() ? latest->version + 1 : 1,
                     to_json(agent_spec_to_json(*spec)), ctx.clock->now_ms()};
  int status = record.version == 1 ? 201 : 200;
  WriteBatch batch;
  batch.agent_inserts.push_back(record);
  batch.audit_events.push_back(audit_event(who.tenant, record.created_at_ms, who.label(), "agent:write",
                                           "agent:" + name, "ok", {{"version", record.version}}));
  ctx.store->commit(std::move(batch), [&ctx, record, status, writer](Status result) {
    ctx.loop->post([record, status, writer, result] {
      if (!result.is_ok()) {
        Status shown = result.code() == Code::kConflict
                           ? conflict("agent '" + record.name + "' was changed concurrently; retry")
                           : result;
        return writer->send(error_response(shown));
      }
      writer->send(json_response(status, agent_view(record)));
    });
  });
}

void create_agent(ApiContext& ctx, HttpRequest& request, Writer writer) {
  auto body = parse_json_object(request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  auto name = get_string(*body, "name", "name");
  if (!name.is_ok()) return writer->send(error_response(name.status()));
  if (!is_valid_name(*name)) {
    return writer->send(error_response(invalid_argument("name must be 1-64 characters of [A-Za-z0-9_-]", "name")));
  }
  const Principal& who = caller(request);
  if (!allowed(ctx, who, "agent:write", "agent:" + *name, {}, writer)) return;
  put_agent(ctx, who, std::move(*body), *name, /*must_be_new=*/true, writer);
}

void update_agent(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  const std::string& name = params.at("name");
  if (!is_valid_name(name)) return writer->send(error_response(not_found("agent '" + name + "' not found")));
  auto body = parse_json_object(request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  auto given = get_optional_string(*body, "name", "name");
  if (!given.is_ok()) return writer->send(error_response(given.status()));
  if (*given && **given != name) {
    return writer->send(error_response(invalid_argument("name in the body must match the URL", "name")));
  }
  const Principal& who = caller(request);
  if (!allowed(ctx, who, "agent:write", "agent:" + name, {}, writer)) return;
  put_agent(ctx, who, std::move(*body), name, /*must_be_new=*/false, writer);
}

void get_agent(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto version = seq_param(request, "version");
  if (!version.is_ok()) return writer->send(error_response(version.status()));
  std::optional<int64_t> wanted;
  if (*version >= 1) wanted = *version;
  if (*version == 0) return writer->send(error_response(invalid_argument("version must be >= 1", "version")));
  const Principal& who = caller(request);
  if (!allowed(ctx, who, "agent:read", "agent:" + params.at("name"), {}, writer)) return;
  auto record = ctx.store->get_agent(who.tenant, params.at("name"), wanted);
  if (!record.is_ok()) return writer->send(error_response(record.status()));
  writer->send(json_response(200, agent_view(*record)));
}

void list_agents(ApiContext& ctx, HttpRequest& request, Writer writer) {
  const Principal& who = caller(request);
  if (!allowed(ctx, who, "agent:read", "agent:*", {}, writer)) return;
  auto records = ctx.store->list_agents(who.tenant);
  if (!records.is_ok()) return writer->send(error_response(records.status()));
  json::array data;
  for (const auto& record : *records) data.push_back(agent_view(record));
  writer->send(json_response(200, json::object{{"object", "list"}, {"data", std::move(data)}}));
}

}  // namespace

void add_agent_routes(Router& router, ApiContext& ctx) {
  router.add("POST", "/v1/agents", [&ctx](HttpRequest& r, const PathParams&, Writer w) { create_agent(ctx, r, w); });
  router.add("GET", "/v1/agents", [&ctx](HttpRequest& r, const PathParams&, Writer w) { list_agents(ctx, r, w); });
  router.add("GET", "/v1/agents/{name}",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { get_agent(ctx, r, p, w); });
  router.add("PUT", "/v1/agents/{name}",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { update_agent(ctx, r, p, w); });
}

// ---- sessions ----

namespace {

// A new session (and its agent, as read) from a request body's "agent", "user"
// and "metadata", validated and authorized (session:create), or nullopt once an
// error was sent.
struct NewSession {
  SessionRecord session;
  AgentRecord agent;
};

std::optional<NewSession> new_session_from(ApiContext& ctx, HttpRequest& request, const json::object& body,
                                              const Writer& writer) {
  auto agent = get_string(body, "agent", "agent");
  if (!agent.is_ok()) return writer->send(error_response(agent.status())), std::nullopt;
  auto user = get_optional_string(body, "user", "user");
  if (!user.is_ok()) return writer->send(error_response(user.status())), std::nullopt;
  // End-user ids key user-scoped encryption and appear in logs: a plain alphabet.
  if (*user && !is_valid_subject(**user)) {
    writer->send(error_response(invalid_argument("user must be 1-128 characters of letters, digits and . _ @ : -", "user")));
    return std::nullopt;
  }
  auto metadata = get_optional_object(body, "metadata", "metadata");
  if (!metadata.is_ok()) return writer->send(error_response(metadata.status())), std::nullopt;
  // A session belongs to the end user it names, else to its creator.
  const Principal& who = caller(request);
  std::string owner = user->value_or(who.user_id);
  if (!allowed(ctx, who, "session:create", "session:*", {{"owner", owner}, {"agent", *agent}}, writer)) {
    return std::nullopt;
  }
  auto agent_record = ctx.store->get_agent(who.tenant, *agent, std::nullopt);
  if (!agent_record.is_ok()) return writer->send(error_response(agent_record.status())), std::nullopt;
  SessionRecord session{who.tenant, "sess_" + time_ordered_hex(ctx.clock->now_ms(), *ctx.random), *agent,
                        *metadata ? to_json(**metadata) : "{}", ctx.clock->now_ms(), owner};
  return NewSession{std::move(session), std::move(*agent_record)};
}

void create_session(ApiContext& ctx, HttpRequest& request, Writer writer) {
  auto body = parse_json_object(request.body.empty() ? "{}" : request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  if (auto unknown = first_unknown_key(*body, {"agent", "metadata", "user"})) {
    return writer->send(error_response(invalid_argument("unknown field '" + *unknown + "'", *unknown)));
  }
  auto created = new_session_from(ctx, request, *body, writer);
  if (!created) return;
  WriteBatch batch;
  batch.session_inserts.push_back(created->session);
  take_pending_audit(ctx, batch);
  ctx.store->commit(std::move(batch), [&ctx, session = created->session, writer](Status result) {
    ctx.loop->post([session, writer, result] {
      if (!result.is_ok()) return writer->send(error_response(result));
      writer->send(json_response(201, session_view(session)));
    });
  });
}

void list_sessions(ApiContext& ctx, HttpRequest& request, Writer writer) {
  auto limit = page_limit(request, 20);
  if (!limit.is_ok()) return writer->send(error_response(limit.status()));
  // Everyone's sessions if policy allows reading any; else the caller's own.
  const Principal& who = caller(request);
  auto read_any = permits(ctx, who, "session:read", "session:*", {{"owner", nullptr}});
  if (!read_any.is_ok()) return writer->send(error_response(read_any.status()));
  std::optional<std::string> only_user;
  if (!*read_any) {
    if (!allowed(ctx, who, "session:read", "session:*", {{"owner", who.user_id}}, writer)) return;
    only_user = who.user_id;
  }
  auto records = ctx.store->list_sessions(who.tenant, only_user, request.query_param("after"), *limit + 1);
  if (!records.is_ok()) return writer->send(error_response(records.status()));
  bool has_more = static_cast<int>(records->size()) > *limit;
  if (has_more) records->pop_back();
  json::array data;
  for (const auto& record : *records) data.push_back(session_view(record));
  json::value next = has_more ? json::value(records->back().id) : json::value(nullptr);
  writer->send(json_response(200, json::object{{"object", "list"}, {"data", std::move(data)},
                                               {"has_more", has_more}, {"next_cursor", next}}));
}

void get_session(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto record = authorized_session(ctx, caller(request), params.at("id"), "session:read", writer);
  if (!record) return;
  writer->send(json_response(200, session_view(*record)));
}

void delete_session(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto record = authorized_session(ctx, caller(request), params.at("id"), "session:delete", writer);
  if (!record) return;
  delete_idle_session(ctx, caller(request), *record, "session", writer);
}

void list_items(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto limit = page_limit(request, 100);
  if (!limit.is_ok()) return writer->send(error_response(limit.status()));
  auto after = seq_param(request, "after");
  if (!after.is_ok()) return writer->send(error_response(after.status()));
  auto session = authorized_session(ctx, caller(request), params.at("id"), "session:read", writer);
  if (!session) return;
  auto items = ctx.store->list_items(session->tenant_id, session->id, std::max<int64_t>(*after, 0), *limit + 1);
  if (!items.is_ok()) return writer->send(error_response(items.status()));
  bool has_more = static_cast<int>(items->size()) > *limit;
  if (has_more) items->pop_back();
  json::array data;
  for (const auto& item : *items) {
    auto message = parse_json(item.message_json);
    data.push_back(json::object{{"seq", item.seq}, {"run_id", item.run_id}, {"created_at_ms", item.created_at_ms},
                                {"message", message.is_ok() ? *message : json::value(nullptr)}});
  }
  json::value next = has_more ? json::value(items->back().seq) : json::value(nullptr);
  writer->send(json_response(200, json::object{{"object", "list"}, {"data", std::move(data)},
                                               {"has_more", has_more}, {"next_cursor", next}}));
}

void list_session_runs(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto session = authorized_session(ctx, caller(request), params.at("id"), "session:read", writer);
  if (!session) return;
  auto runs = ctx.store->list_runs(session->tenant_id, session->id, kPageLimitMax);
  if (!runs.is_ok()) return writer->send(error_response(runs.status()));
  json::array data;
  for (const auto& run : *runs) data.push_back(run_view(run));
  writer->send(json_response(200, json::object{{"object", "list"}, {"data", std::move(data)}}));
}

}  // namespace

void add_session_routes(Router& router, ApiContext& ctx) {
  router.add("POST", "/v1/sessions", [&ctx](HttpRequest& r, const PathParams&, Writer w) { create_session(ctx, r, w); });
  router.add("GET", "/v1/sessions", [&ctx](HttpRequest& r, const PathParams&, Writer w) { list_sessions(ctx, r, w); });
  router.add("GET", "/v1/sessions/{id}",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { get_session(ctx, r, p, w); });
  router.add("DELETE", "/v1/sessions/{id}",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { delete_session(ctx, r, p, w); });
  router.add("GET", "/v1/sessions/{id}/items",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { list_items(ctx, r, p, w); });
  router.add("GET", "/v1/sessions/{id}/runs",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { list_session_runs(ctx, r, p, w); });
}

// ---- runs ----

json::object run_view(const RunRecord& run) {
  json::object view{{"object", "run"},        {"id", run.id},
                    {"session_id", run.session_id}, {"agent", run.agent_name},
                    {"agent_version", run.agent_version}, {"status", run.status},
                    {"input", run.input},     {"created_at_ms", run.created_at_ms},
                    {"updated_at_ms", run.updated_at_ms}};
  auto snapshot = snapshot_from_json(run.snapshot_json);
  if (snapshot.is_ok()) {
    view["output"] = snapshot->status == kRunCompleted ? json::value(snapshot->output) : json::value(nullptr);
    view["error"] = snapshot->error_code.empty()
                        ? json::value(nullptr)
                        : json::value(json::object{{"code", snapshot->error_code},
                                                   {"message", snapshot->error_message}});
    view["usage"] = usage_to_json(snapshot->usage);
    view["model_calls"] = snapshot->model_calls;
    view["tool_calls"] = snapshot->tool_calls;
  }
  return view;
}


namespace {
// The waiter is owned by the subscription and the shutdown hook; the timeout
// timer only holds a weak reference, so an answered request leaves nothing
// behind but an empty timer.
struct RunWaiter {
  std::function<void(bool, std::shared_ptr<const RunRecord>)> respond;
};
}  // namespace

void when_run_ends(ApiContext& ctx, const std::string& tenant, const std::string& run_id, int64_t timeout_ms,
                   std::function<void(bool ended, std::shared_ptr<const RunRecord> final_run)> then,
                   std::function<bool(const RunEvent&)> or_when) {
  auto waiter = std::make_shared<RunWaiter>();
  auto token = std::make_shared<int64_t>(0);
  auto hook = std::make_shared<int64_t>(0);
  std::weak_ptr<RunWaiter> weak = waiter;
  waiter->respond = [&ctx, run_id, token, hook, then = std::move(then)](bool ended,
                                                                       std::shared_ptr<const RunRecord> final_run) {
    ctx.engine->unsubscribe(run_id, *token);  // drops the listener's reference
    ctx.remove_shutdown_hook(*hook);          // drops the hook's reference
    then(ended, std::move(final_run));
  };
  auto fire = [weak](bool ended, std::shared_ptr<const RunRecord> final_run) {
    if (auto live = weak.lock()) {
      auto respond = std::move(live->respond);  // once; `live` may die inside
      if (respond) respond(ended, std::move(final_run));
    }
  };
  bool terminal_only = !or_when;
  *token = ctx.engine->subscribe(run_id, [waiter, fire, or_when = std::move(or_when)](const RunEvent& event) {
    if (event.terminal || (or_when && or_when(event))) fire(true, event.terminal ? event.final_run : nullptr);
  }, terminal_only);
  ctx.engine->follow_remote(tenant, run_id);  // it may execute on another node
  *hook = ctx.add_shutdown_hook([waiter, fire] { fire(false, nullptr); });
  if (!ctx.engine->is_executing(run_id)) {  // else its end is still to come: no read needed
    auto current = ctx.store->get_run(tenant, run_id);
    if (current.is_ok() && is_terminal_status(current->status)) {
      return fire(true, std::make_shared<const RunRecord>(std::move(*current)));
    }
  }
  ctx.loop->post_after(timeout_ms, [fire] { fire(false, nullptr); });
}

namespace {

void respond_when_finished(ApiContext& ctx, const std::string& tenant, const std::string& run_id, int64_t timeout_ms,
                           int finished_status, Writer writer) {
  when_run_ends(ctx, tenant, run_id, timeout_ms,
                [&ctx, tenant, run_id, finished_status, writer](bool, std::shared_ptr<const RunRecord> final_run) {
                  if (final_run) return writer->send(json_response(finished_status, run_view(*final_run)));
                  auto record = ctx.store->get_run(tenant, run_id);
                  if (!record.is_ok()) return writer->send(error_response(record.status()));
                  writer->send(json_response(is_terminal_status(record->status) ? finished_status : 202,
                                             run_view(*record)));
                });
}

// What a run request may say besides its session: the input and how to answer.
struct RunRequest {
  std::string input;
  bool wait = false;
  int64_t wait_timeout_ms = kWaitTimeoutDefaultMs;
};

std::optional<RunRequest> run_request_from(const json::object& body, const Writer& writer) {
  RunRequest run;
  auto input = get_string(body, "input", "input");
  if (!input.is_ok()) return writer->send(error_response(input.status())), std::nullopt;
  if (input->empty() || input->size() > kInputBytesMax) {
    writer->send(error_response(invalid_argument("input must be 1 byte to 1 MiB of text", "input")));
    return std::nullopt;
  }
  run.input = std::move(*input);
  auto wait = get_optional_bool(body, "wait", "wait");
  if (!wait.is_ok()) return writer->send(error_response(wait.status())), std::nullopt;
  run.wait = wait->value_or(false);
  auto wait_timeout = get_optional_int(body, "wait_timeout_ms", "wait_timeout_ms");
  if (!wait_timeout.is_ok()) return writer->send(error_response(wait_timeout.status())), std::nullopt;
  run.wait_timeout_ms = wait_timeout->value_or(kWaitTimeoutDefaultMs);
  if (run.wait_timeout_ms < 1 || run.wait_timeout_ms > 3'600'000) {
    writer->send(error_response(invalid_argument("wait_timeout_ms must be 1-3600000", "wait_timeout_ms")));
    return std::nullopt;
  }
  return run;
}

// With `new_session`, the session is new and inserted with the run (in its batch).
void submit_and_respond(ApiContext& ctx, const SessionRecord& session, const AgentRecord& agent, RunRequest run,
                        Writer writer, bool new_session = false) {
  RunOptions options;
  options.audit_events = take_pending_audit(ctx);
  options.new_session = new_session;
  if (new_session) options.session_insert = session;
  bool wait_for_end = run.wait;
  int64_t timeout_ms = run.wait_timeout_ms;
  ctx.engine->submit_run(session, agent, std::move(run.input),
                         [&ctx, wait_for_end, timeout_ms, writer](Result<RunRecord> run) {
                           if (!run.is_ok()) return writer->send(error_response(run.status()));
                           if (wait_for_end) {
                             return respond_when_finished(ctx, run->tenant_id, run->id, timeout_ms, 200, writer);
                           }
                           writer->send(json_response(202, run_view(*run)));
                         },
                         std::move(options));
}

void create_run(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto body = parse_json_object(request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  if (auto unknown = first_unknown_key(*body, {"input", "wait", "wait_timeout_ms"})) {
    return writer->send(error_response(invalid_argument("unknown field '" + *unknown + "'", *unknown)));
  }
  auto run = run_request_from(*body, writer);
  if (!run) return;
  auto session = authorized_session(ctx, caller(request), params.at("id"), "run:create", writer);
  if (!session) return;
  auto agent = ctx.store->get_agent(session->tenant_id, session->agent_name, std::nullopt);
  if (!agent.is_ok()) return writer->send(error_response(agent.status()));
  submit_and_respond(ctx, *session, *agent, std::move(*run), writer);
}

// POST /v1/runs: a run in a session of its own, created with it: the session
// is inserted in the run's own batch, so both are durable or neither is.
void create_run_in_new_session(ApiContext& ctx, HttpRequest& request, Writer writer) {
  auto body = parse_json_object(request.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  if (auto unknown = first_unknown_key(*body, {"agent", "metadata", "user", "input", "wait", "wait_timeout_ms"})) {
    return writer->send(error_response(invalid_argument("unknown field '" + *unknown + "'", *unknown)));
  }
  auto run = run_request_from(*body, writer);
  if (!run) return;
  auto created = new_session_from(ctx, request, *body, writer);
  if (!created) return;
  const SessionRecord& session = created->session;
  json::object fields{{"owner", session.user_id}, {"agent", session.agent_name}};
  if (!allowed(ctx, caller(request), "run:create", "session:" + session.id, std::move(fields), writer)) return;
  submit_and_respond(ctx, session, created->agent, std::move(*run), writer, /*new_session=*/true);
}

void get_run(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto record = authorized_run(ctx, caller(request), params.at("id"), "run:read", writer);
  if (!record) return;
  writer->send(json_response(200, run_view(*record)));
}

void list_steps(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto limit = page_limit(request, 100);
  if (!limit.is_ok()) return writer->send(error_response(limit.status()));
  auto after = seq_param(request, "after");
  if (!after.is_ok()) return writer->send(error_response(after.status()));
  auto record = authorized_run(ctx, caller(request), params.at("id"), "run:read", writer);
  if (!record) return;
  auto steps = ctx.store->list_steps(record->tenant_id, record->id, *after, *limit + 1);
  if (!steps.is_ok()) return writer->send(error_response(steps.status()));
  bool has_more = static_cast<int>(steps->size()) > *limit;
  if (has_more) steps->pop_back();
  json::array data;
  for (const auto& step : *steps) data.push_back(step_to_json(step));
  json::value next = has_more ? json::value(steps->back().seq) : json::value(nullptr);
  writer->send(json_response(200, json::object{{"object", "list"}, {"data", std::move(data)},
                                               {"has_more", has_more}, {"next_cursor", next}}));
}

void cancel_run(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  std::string run_id = params.at("id");
  auto record = authorized_run(ctx, caller(request), run_id, "run:cancel", writer);
  if (!record) return;
  if (is_terminal_status(record->status)) {
    return writer->send(error_response(conflict("run " + run_id + " is already " + record->status)));
  }
  std::string tenant = record->tenant_id;
  ctx.engine->cancel_run(tenant, run_id, [&ctx, tenant, run_id, writer](Status status) {
    if (!status.is_ok()) return writer->send(error_response(status));
    respond_when_finished(ctx, tenant, run_id, 60'000, 200, writer);
  });
}

}  // namespace

void delete_idle_session(ApiContext& ctx, const Principal& who, const SessionRecord& session,
                         const std::string& object, Writer writer) {
  auto unfinished = ctx.store->list_unfinished_runs_of_session(session.tenant_id, session.id, 1);
  if (!unfinished.is_ok()) return writer->send(error_response(unfinished.status()));
  if (!unfinished->empty()) {
    return writer->send(error_response(
        conflict(object + " has an unfinished run " + unfinished->front().id + "; cancel it first")));
  }
  WriteBatch batch;
  batch.session_deletes.push_back(session);
  batch.audit_events.push_back(audit_event(session.tenant_id, ctx.clock->now_ms(), who.label(), "session:delete",
                                           "session:" + session.id, "ok"));
  std::string id = session.id;
  ctx.store->commit(std::move(batch), [&ctx, id, object, writer](Status result) {
    ctx.loop->post([id, object, writer, result] {
      if (!result.is_ok()) return writer->send(error_response(result));
      // OpenAI's conversations answer "conversation.deleted".
      std::string shown = object == "session" ? object : object + ".deleted";
      writer->send(json_response(200, json::object{{"id", id}, {"object", shown}, {"deleted", true}}));
    });
  });
}

void delete_finished_run(ApiContext& ctx, const HttpRequest& request, const std::string& run_id,
                         const std::string& object, Writer writer) {
  auto record = authorized_run(ctx, caller(request), run_id, "run:delete", writer);
  if (!record) return;
  if (!is_terminal_status(record->status)) {
    return writer->send(error_response(conflict(object + " " + run_id + " has not finished; cancel it first")));
  }
  WriteBatch batch;
  batch.run_deletes.push_back(*record);
  batch.audit_events.push_back(audit_event(record->tenant_id, ctx.clock->now_ms(), caller(request).label(),
                                           "run:delete", "run:" + run_id, "ok", {{"session", record->session_id}},
                                           run_id));
  ctx.store->commit(std::move(batch), [&ctx, run_id, object, writer](Status result) {
    ctx.loop->post([run_id, object, writer, result] {
      if (!result.is_ok()) return writer->send(error_response(result));
      writer->send(json_response(200, json::object{{"id", run_id}, {"object", object}, {"deleted", true}}));
    });
  });
}

void add_run_routes(Router& router, ApiContext& ctx) {
  router.add("DELETE", "/v1/runs/{id}", [&ctx](HttpRequest& r, const PathParams& p, Writer w) {
    delete_finished_run(ctx, r, p.at("id"), "run", w);
  });
  router.add("POST", "/v1/sessions/{id}/runs",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { create_run(ctx, r, p, w); });
  router.add("POST", "/v1/runs", [&ctx](HttpRequest& r, const PathParams&, Writer w) { create_run_in_new_session(ctx, r, w); });
  router.add("GET", "/v1/runs/{id}", [&ctx](HttpRequest& r, const PathParams& p, Writer w) { get_run(ctx, r, p, w); });
  router.add("GET", "/v1/runs/{id}/steps",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { list_steps(ctx, r, p, w); });
  router.add("POST", "/v1/runs/{id}/cancel",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { cancel_run(ctx, r, p, w); });
}

}  // namespace continuum
