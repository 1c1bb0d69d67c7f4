// The OpenAI-compatible Responses API (docs/openai-sdk.md): a response is a
// run, `model` names the agent, and the conversation is the run's session.
#include <map>
#include <set>

#include "agent/agent_spec.h"
#include "api/access.h"
#include "api/errors.h"
#include "api/handlers.h"
#include "api/openai_items.h"
#include "api/responses_stream.h"
#include "engine/snapshot.h"

namespace continuum {

namespace {

using Writer = std::shared_ptr<ResponseWriter>;
constexpr int64_t kWaitMs = 600'000;
constexpr int kJournalPage = 1000;

// Accepted and ignored: sampling and presentation settings belong to the agent.
constexpr std::string_view kResponseFields[] = {
    "model", "input", "instructions", "previous_response_id", "conversation", "metadata", "store", "stream",
    "background", "tools", "temperature", "top_p", "max_output_tokens", "parallel_tool_calls", "tool_choice",
    "text", "truncation", "user", "include", "reasoning", "service_tier", "prompt_cache_key",
    "safety_identifier", "stream_options", "top_logprobs", "max_tool_calls"};

// An mcp_approval_response item: a decision on an approval the response asked for.
struct ApprovalAnswer {
  std::string approval_id;
  bool approve = false;
  std::string reason;
};

struct ResponseRequest {
  std::vector<ApprovalAnswer> approval_answers;  // instead of input, answering approvals
  std::string model;
  ResponseInput input;
  std::string instructions;
  std::optional<std::string> previous_response_id;
  std::optional<std::string> conversation;
  json::object metadata;
  json::array client_tools;  // chat tool definitions
  json::value tools_shown;    // the request's `tools`, echoed in the response
  bool store = true;
  bool stream = false;
  bool background = false;
};

// The mcp_approval_response items of an input list: all of its items, or none.
Result<std::vector<ApprovalAnswer>> parse_approval_answers(const json::value& input) {
  std::vector<ApprovalAnswer> answers;
  if (!input.is_array()) return answers;
  size_t index = 0;
  for (const auto& item : input.as_array()) {
    std::string at = "input[" + std::to_string(index++) + "]";
    const json::object* obj = item.if_object();
    const json::value* type = obj ? obj->if_contains("type") : nullptr;
    if (!type || !type->is_string() || type->as_string() != "mcp_approval_response") continue;
    ApprovalAnswer answer;
    ASSIGN_OR_RETURN(answer.approval_id, get_string(*obj, "approval_request_id", at + ".approval_request_id"));
    ASSIGN_OR_RETURN(auto approve, get_optional_bool(*obj, "approve", at + ".approve"));
    if (!approve) return invalid_argument(at + ".approve (true or false) is required", at + ".approve");
    answer.approve = *approve;
    ASSIGN_OR_RETURN(auto reason, get_optional_string(*obj, "reason", at + ".reason"));
    answer.reason = reason.value_or("");
    if (answer.reason.size() > 4096) return invalid_argument(at + ".reason is over 4096 bytes", at + ".reason");
    answers.push_back(std::move(answer));
  }
  if (!answers.empty() && answers.size() != input.as_array().size()) {
    return invalid_argument("mcp_approval_response items cannot be mixed with other input items", "input");
  }
  return answers;
}

Result<ResponseRequest> parse_response_request(const json::object& body) {
  for (const auto& entry : body) {
    if (std::find(std::begin(kResponseFields), std::end(kResponseFields), entry.key()) == std::end(kResponseFields)) {
      return invalid_argument("unknown parameter '" + std::string(entry.key()) + "'", entry.key());
    }
  }
  ResponseRequest request;
  ASSIGN_OR_RETURN(request.model, get_string(body, "model", "model"));
  if (!body.contains("input")) return invalid_argument("input is required", "input");
  ASSIGN_OR_RETURN(request.approval_answers, parse_approval_answers(body.at("input")));
  if (request.approval_answers.empty()) {
    ASSIGN_OR_RETURN(request.input, parse_response_input(body.at("input"), "input"));
  }
  ASSIGN_OR_RETURN(auto instructions, get_optional_string(body, "instructions", "instructions"));
  request.instructions = instructions.value_or("");
  if (!request.input.instructions.empty()) {
    request.instructions += (request.instructions.empty() ? "" : "\n\n") + request.input.instructions;
  }
  ASSIGN_OR_RETURN(request.previous_response_id,
                   get_optional_string(body, "previous_response_id", "previous_response_id"));
  if (const json::value* conversation = body.if_contains("conversation"); conversation && !conversation->is_null()) {
    const json::object* obj = conversation->if_object();
    if (conversation->is_string()) {
      request.conversation = std::string(conversation->as_string());
    } else if (obj && obj->contains("id") && obj->at("id").is_string()) {
      request.conversation = std::string(obj->at("id").as_string());
    } else {
      return invalid_argument("conversation must be an id or {\"id\": ...}", "conversation");
    }
  }
  if (request.previous_response_id && request.conversation) {
    return invalid_argument("previous_response_id and conversation cannot both be given", "previous_response_id");
  }
  if (const json::value* tools = body.if_contains("tools")) {
    ASSIGN_OR_RETURN(request.client_tools, parse_client_tools(*tools, "tools"));
    request.tools_shown = *tools;
  }
  ASSIGN_OR_RETURN(request.metadata, parse_metadata(body, "metadata"));
  ASSIGN_OR_RETURN(auto store, get_optional_bool(body, "store", "store"));
  ASSIGN_OR_RETURN(auto stream, get_optional_bool(body, "stream", "stream"));
  ASSIGN_OR_RETURN(auto background, get_optional_bool(body, "background", "background"));
  request.store = store.value_or(true);
  request.stream = stream.value_or(false);
  request.background = background.value_or(false);
  return request;
}

// The whole journal, oldest first.
Result<std::vector<StepRecord>> journal(ApiContext& ctx, const RunRecord& run) {
  std::vector<StepRecord> steps;
  for (int64_t after = -1;;) {
    ASSIGN_OR_RETURN(auto page, ctx.store->list_steps(run.tenant_id, run.id, after, kJournalPage));
    if (page.empty()) break;
    after = page.back().seq;
    bool last = static_cast<int>(page.size()) < kJournalPage;
    for (auto& step : page) steps.push_back(std::move(step));
    if (last) break;
  }
  if (steps.empty() || steps.front().kind != kStepRunCreated) return internal_error("run " + run.id + " has no journal");
  return steps;
}

Result<json::object> load_response(ApiContext& ctx, const std::string& tenant, const std::string& run_id) {
  ASSIGN_OR_RETURN(RunRecord run, ctx.store->get_run(tenant, run_id));
  ASSIGN_OR_RETURN(auto steps, journal(ctx, run));
  ResponseOutput output(run.id);
  for (const auto& step : steps) output.add_step(step);
  return response_object(run, steps.front(), output);
}

void send_response(ApiContext& ctx, const std::string& tenant, const std::string& run_id, Writer writer) {
  auto response = load_response(ctx, tenant, run_id);
  if (!response.is_ok()) return writer->send(error_response(response.status()));
  writer->send(json_response(200, *response));
}

// ---- streaming ----

struct LiveStream {
  ResponseEventStream events;
  std::string tenant, run_id;
};

// The approval_requested steps among `steps`, by the seq of the call each holds.
std::map<int64_t, const StepRecord*> approvals_by_call(const std::vector<StepRecord>& steps) {
  std::map<int64_t, const StepRecord*> approvals;
  for (const auto& step : steps) {
    if (step.kind != kStepApprovalRequested) continue;
    auto payload = parse_json_object(step.payload_json);
    const json::value* held = payload.is_ok() ? payload->if_contains("tool_seq") : nullptr;
    if (held && held->is_int64()) approvals[held->as_int64()] = &step;
  }
  return approvals;
}

// Sends the committed steps after those sent, in seq order; while the run is
// not terminal, up to the first gap (parallel tool results commit out of
// order). Returns true once the terminal event is sent.
Result<bool> pump(ApiContext& ctx, LiveStream& live, bool run_terminal, ResponseWriter& out) {
  auto latest = [&] {
    auto run = ctx.store->get_run(live.tenant, live.run_id);
    return run.is_ok() ? *run : RunRecord{};
  };
  for (;;) {
    int64_t after = live.events.last_step_seq();
    ASSIGN_OR_RETURN(auto steps, ctx.store->list_steps(live.tenant, live.run_id, after, kJournalPage));
    // An approval holding call E is sent before E's result, and while the
    // run waits for it, though its step comes later in the journal.
    auto approvals = approvals_by_call(steps);
    for (const auto& step : steps) {
      int64_t expected = live.events.last_step_seq() + 1;
      if (auto held = approvals.find(expected); held != approvals.end()) {
        live.events.on_approval_requested(*held->second, out);
      }
      if (!run_terminal && step.seq != expected) return false;
      if (live.events.on_step(step, latest, out)) return true;
    }
    if (static_cast<int>(steps.size()) < kJournalPage) return false;
  }
}

void text_delta(LiveStream& live, const RunEvent& event, ResponseWriter& out) {
  auto data = parse_json_object(event.data);
  if (!data.is_ok() || !data->contains("seq") || !data->at("seq").is_int64() || !data->contains("offset") ||
      !data->at("offset").is_int64() || !data->contains("delta") || !data->at("delta").is_string()) {
    return;
  }
  live.events.on_text_delta(data->at("seq").as_int64(), data->at("offset").as_int64(),
                            std::string_view(data->at("delta").as_string()), out);
}

void stream_response(ApiContext& ctx, const RunRecord& run, int64_t starting_after, Writer writer) {
  auto first = ctx.store->list_steps(run.tenant_id, run.id, -1, 1);
  if (!first.is_ok() || first->empty()) {
    return writer->send(error_response(first.is_ok() ? internal_error("run has no journal") : first.status()));
  }
  writer->start_stream(200, "text/event-stream", {{"X-Accel-Buffering", "no"}, {"Cache-Control", "no-cache"}});
  auto live = std::make_shared<LiveStream>(LiveStream{ResponseEventStream(run, first->front(), starting_after),
                                                      run.tenant_id, run.id});
  auto ended = pump(ctx, *live, is_terminal_status(run.status), *writer);
  if (!ended.is_ok() || *ended) return writer->end();
  std::weak_ptr<ResponseWriter> weak = writer;
  std::string run_id = run.id;
  if (auto partial = ctx.engine->partial_text(run_id)) text_delta(*live, *partial, *writer);
  int64_t token = ctx.engine->subscribe(run_id, [&ctx, weak, live](const RunEvent& event) {
    auto out = weak.lock();
    if (!out || out->closed()) return;
    if (event.seq < 0) {
      if (event.type == "text_delta") text_delta(*live, event, *out);
    } else {
      auto done = pump(ctx, *live, event.terminal, *out);
      if (!done.is_ok() || *done) return out->end();
    }
    if (out->queued_bytes() > ctx.sse_queued_bytes_max) out->end();  // it resumes with starting_after
  });
  ctx.engine->follow_remote(run.tenant_id, run_id);
  Engine* engine = ctx.engine;
  int64_t hook = ctx.add_shutdown_hook([weak] {
    if (auto out = weak.lock()) out->end();
  });
  writer->on_close([&ctx, engine, run_id, token, hook] {
    engine->unsubscribe(run_id, token);
    ctx.remove_shutdown_hook(hook);
  });
  keep_sse_alive(ctx, weak);
}

// ---- handlers ----

// Answers with the response once its run has ended or waits for a person's
// approval (an mcp_approval_request item the client may answer).
void respond_when_settled(ApiContext& ctx, const std::string& tenant, const std::string& run_id, Writer writer) {
  // The run's status as stored, not the event's kind: a run executing on
  // another node is followed by polling, one wake-up per poll.
  when_run_ends(
      ctx, tenant, run_id, kWaitMs, [&ctx, tenant, run_id, writer](bool, std::shared_ptr<const RunRecord>) {
        send_response(ctx, tenant, run_id, writer);
      },
      [&ctx, tenant, run_id](const RunEvent& event) {
        if (event.seq < 0) return false;  // a text delta
        auto run = ctx.store->get_run(tenant, run_id);
        return run.is_ok() && run->status == kRunWaiting;
      });
}

// Decides the approvals the previous response asked for, one after the
// other, then answers with that response once it settles again.
void answer_approvals(ApiContext& ctx, const Principal& who, RunRecord run, std::vector<ApprovalAnswer> answers,
                      size_t next, Writer writer) {
  if (next == answers.size()) return respond_when_settled(ctx, run.tenant_id, run.id, writer);
  const ApprovalAnswer& answer = answers[next];
  auto approval = ctx.store->get_approval(who.tenant, answer.approval_id);
  if (!approval.is_ok() || approval->run_id != run.id) {
    return writer->send(error_response(invalid_argument(
        "response " + run.id + " asked for no approval '" + answer.approval_id + "'", "input")));
  }
  Principal decider = who;
  decide_approval_as(ctx, decider, answer.approval_id, answer.approve, answer.reason,
                     [&ctx, decider, run, answers, next, writer](Result<ApprovalRecord> decided) {
                       if (!decided.is_ok()) return writer->send(error_response(decided.status()));
                       answer_approvals(ctx, decider, run, answers, next + 1, writer);
                     });
}

void submit(ApiContext& ctx, const ResponseRequest& request, const SessionRecord& session,
            const AgentRecord& agent, Writer writer) {
  RunOptions options;
  options.instructions = request.instructions;
  options.input_messages = request.input.messages;
  options.client_tools = request.client_tools;
  options.annotations = json::object{{"metadata", request.metadata},
                                     {"store", request.store},
                                     {"background", request.background}};
  if (request.previous_response_id) options.annotations["previous_response_id"] = *request.previous_response_id;
  if (request.tools_shown.is_array()) options.annotations["tools"] = request.tools_shown;
  bool stream = request.stream, background = request.background;
  options.audit_events = take_pending_audit(ctx);
  ctx.engine->submit_run(
      session, agent, request.input.text,
      [&ctx, stream, background, writer](Result<RunRecord> run) {
        if (!run.is_ok()) return writer->send(error_response(run.status()));
        if (stream) return stream_response(ctx, *run, -1, writer);
        if (background) return send_response(ctx, run->tenant_id, run->id, writer);
        respond_when_settled(ctx, run->tenant_id, run->id, writer);
      },
      std::move(options));
}

// A client's function tool may not take the name of one of the agent's own.
Status check_client_tool_names(const AgentRecord& agent, const json::array& client_tools) {
  if (client_tools.empty()) return Status::ok();
  ASSIGN_OR_RETURN(json::object spec_json, parse_json_object(agent.spec_json));
  ASSIGN_OR_RETURN(AgentSpec spec, parse_agent_spec(spec_json));
  for (const auto& tool : client_tools) {
    std::string name(tool.as_object().at("function").as_object().at("name").as_string());
    if (spec.find_tool(name) != nullptr) {
      return invalid_argument("tool '" + name + "' is one of the agent's own tools", "tools");
    }
  }
  return Status::ok();
}

// A response that ended awaiting the client's function calls continues only
// with an output for each of them (the model cannot see a call without one).
Status check_call_outputs(ApiContext& ctx, const RunRecord& previous, const ResponseInput& input) {
  std::set<std::string> awaited;
  if (previous.status == kRunCompleted) {
    ASSIGN_OR_RETURN(auto steps, journal(ctx, previous));
    auto payload = parse_json_object(steps.back().payload_json);
    const json::value* calls = payload.is_ok() ? payload->if_contains("awaiting_client_calls") : nullptr;
    if (calls && calls->is_array()) {
      for (const auto& call : calls->as_array()) {
        if (call.is_string()) awaited.insert(std::string(call.as_string()));
      }
    }
  }
  std::set<std::string> given(input.call_outputs.begin(), input.call_outputs.end());
  for (const auto& call_id : given) {
    if (!awaited.count(call_id)) {
      return invalid_argument("no function call '" + call_id + "' awaits an output in response " + previous.id,
                              "input");
    }
  }
  for (const auto& call_id : awaited) {
    if (!given.count(call_id)) {
      return invalid_argument("response " + previous.id + " awaits the output of function call '" + call_id +
                                  "' (a function_call_output item)", "input");
    }
  }
  return Status::ok();
}

void create_response(ApiContext& ctx, HttpRequest& http, Writer writer) {
  auto body = parse_json_object(http.body);
  if (!body.is_ok()) return writer->send(error_response(body.status()));
  auto request = parse_response_request(*body);
  if (!request.is_ok()) return writer->send(error_response(request.status()));
  const Principal& who = caller(http);
  auto agent = ctx.store->get_agent(who.tenant, request->model, std::nullopt);
  if (!agent.is_ok()) {
    Status shown = agent.status().code() == Code::kNotFound
                       ? Status(Code::kNotFound, "model '" + request->model + "' names no agent", "model")
                       : agent.status();
    return writer->send(error_response(shown));
  }
  if (Status distinct = check_client_tool_names(*agent, request->client_tools); !distinct.is_ok()) {
    return writer->send(error_response(distinct));
  }
  if (!request->approval_answers.empty()) {
    if (!request->previous_response_id) {
      return writer->send(error_response(invalid_argument(
          "mcp_approval_response items answer the approvals of previous_response_id, which is missing",
          "previous_response_id")));
    }
    auto previous = authorized_run(ctx, who, *request->previous_response_id, "run:read", writer);
    if (!previous) return;
    return answer_approvals(ctx, who, std::move(*previous), std::move(request->approval_answers), 0, writer);
  }
  std::optional<std::string> session_id = request->conversation;
  if (request->previous_response_id) {
    auto previous = authorized_run(ctx, who, *request->previous_response_id, "run:read", writer);
    if (!previous) return;
    if (Status answered = check_call_outputs(ctx, *previous, request->input); !answered.is_ok()) {
      return writer->send(error_response(answered));
    }
    session_id = previous->session_id;
  }
  if (session_id) {
    auto session = authorized_session(ctx, who, *session_id, "run:create", writer);
    if (!session) return;
    return submit(ctx, *request, *session, *agent, writer);
  }
  // A new conversation: a session of this agent, owned by the caller.
  if (!allowed(ctx, who, "session:create", "session:*", {{"owner", who.user_id}, {"agent", request->model}},
               writer)) {
    return;
  }
  SessionRecord session{who.tenant, "sess_" + time_ordered_hex(ctx.clock->now_ms(), *ctx.random), request->model, "{}", ctx.clock->now_ms(),
                        who.user_id};
  WriteBatch batch;
  batch.session_inserts.push_back(session);
  ctx.store->commit(std::move(batch), [&ctx, session, request = std::move(*request), agent = std::move(*agent),
                                       writer](Status result) {
    ctx.loop->post([&ctx, session, request, agent, writer, result] {
      if (!result.is_ok()) return writer->send(error_response(result));
      submit(ctx, request, session, agent, writer);
    });
  });
}

Result<int64_t> starting_after(const HttpRequest& request) {
  if (!request.has_query_param("starting_after")) return int64_t{-1};
  std::string text = request.query_param("starting_after");
  char* end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < 0) {
    return invalid_argument("starting_after must be a sequence number", "starting_after");
  }
  return static_cast<int64_t>(value);
}

void get_response(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  std::string stream = request.query_param("stream");
  if (!stream.empty() && stream != "true" && stream != "false") {
    return writer->send(error_response(invalid_argument("stream must be true or false", "stream")));
  }
  auto after = starting_after(request);
  if (!after.is_ok()) return writer->send(error_response(after.status()));
  auto run = authorized_run(ctx, caller(request), params.at("id"), "run:read", writer);
  if (!run) return;
  if (stream == "true") return stream_response(ctx, *run, *after, writer);
  send_response(ctx, run->tenant_id, run->id, writer);
}

void cancel_response(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto run = authorized_run(ctx, caller(request), params.at("id"), "run:cancel", writer);
  if (!run) return;
  std::string tenant = run->tenant_id, run_id = run->id;
  if (is_terminal_status(run->status)) {
    return writer->send(error_response(conflict("response " + run_id + " is already " + run->status)));
  }
  ctx.engine->cancel_run(tenant, run_id, [&ctx, tenant, run_id, writer](Status status) {
    if (!status.is_ok()) return writer->send(error_response(status));
    when_run_ends(ctx, tenant, run_id, 60'000,
                  [&ctx, tenant, run_id, writer](bool, std::shared_ptr<const RunRecord>) {
                    send_response(ctx, tenant, run_id, writer);
                  });
  });
}

void list_input_items(ApiContext& ctx, HttpRequest& request, const PathParams& params, Writer writer) {
  auto run = authorized_run(ctx, caller(request), params.at("id"), "run:read", writer);
  if (!run) return;
  auto first = ctx.store->list_steps(run->tenant_id, run->id, -1, 1);
  if (!first.is_ok() || first->empty()) {
    return writer->send(error_response(first.is_ok() ? internal_error("run has no journal") : first.status()));
  }
  std::vector<ItemRecord> items;
  auto payload = parse_json_object(first->front().payload_json);
  const json::value* messages = payload.is_ok() ? payload->if_contains("input_messages") : nullptr;
  if (messages && messages->is_array()) {
    for (const auto& message : messages->as_array()) items.push_back(ItemRecord{0, "", "", run->id, to_json(message)});
  } else {
    items.push_back(ItemRecord{0, "", "", run->id, to_json(json::object{{"role", "user"}, {"content", run->input}})});
  }
  json::array data;
  for (size_t i = 0; i < items.size(); ++i) {
    for (auto& item : conversation_items(items[i])) {
      item.as_object()["id"] = "in_" + run->id + "_" + std::to_string(i);
      data.push_back(std::move(item));
    }
  }
  auto page = list_page(data, request.query_param("after"), request.query_param("limit"),
                        request.query_param("order"));
  if (!page.is_ok()) return writer->send(error_response(page.status()));
  writer->send(json_response(200, *page));
}

}  // namespace

void add_response_routes(Router& router, ApiContext& ctx) {
  router.add("POST", "/v1/responses", [&ctx](HttpRequest& r, const PathParams&, Writer w) { create_response(ctx, r, w); });
  router.add("GET", "/v1/responses/{id}",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { get_response(ctx, r, p, w); });
  router.add("DELETE", "/v1/responses/{id}", [&ctx](HttpRequest& r, const PathParams& p, Writer w) {
    delete_finished_run(ctx, r, p.at("id"), "response", w);
  });
  router.add("POST", "/v1/responses/{id}/cancel",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { cancel_response(ctx, r, p, w); });
  router.add("GET", "/v1/responses/{id}/input_items",
             [&ctx](HttpRequest& r, const PathParams& p, Writer w) { list_input_items(ctx, r, p, w); });
}

}  // namespace continuum
