#include "engine/engine.h"

#include "audit/audit_log.h"

#include "agent/decider.h"
#include "core/log.h"
#include "engine/engine_internal.h"

#include <utility>

namespace continuum {

Engine::Metrics::Metrics(MetricsRegistry* registry) {
  static MetricsRegistry fallback;  // metrics are optional for tests; a private registry absorbs them
  MetricsRegistry& r = registry ? *registry : fallback;
  steps_committed = &r.counter("continuum_steps_committed_total", "Journal steps made durable.");
  runs_completed = &r.counter("continuum_runs_finished_total", "Runs that reached a terminal status.",
                              "status=\"completed\"");
  runs_failed = &r.counter("continuum_runs_finished_total", "Runs that reached a terminal status.",
                           "status=\"failed\"");
  runs_cancelled = &r.counter("continuum_runs_finished_total", "Runs that reached a terminal status.",
                              "status=\"cancelled\"");
  runs_created = &r.counter("continuum_runs_created_total", "Runs created.");
  model_calls = &r.counter("continuum_model_calls_total", "Model call attempts.");
  model_errors = &r.counter("continuum_model_call_errors_total", "Model call attempts that failed.");
  tool_calls = &r.counter("continuum_tool_calls_total", "Tool call attempts.");
  tool_errors = &r.counter("continuum_tool_call_errors_total", "Tool call attempts that failed.");
  commit_failures = &r.counter("continuum_engine_commit_failures_total", "Step commits the store refused.");
}

Engine::Engine(Store& store, EventLoop& loop, const Clock& clock, Random& random, ProviderResolver providers,
               ToolRunner& tools, MetricsRegistry* metrics, EngineOptions options)
    : store_(store),
      loop_(loop),
      clock_(clock),
      random_(random),
      providers_(std::move(providers)),
      tools_(tools),
      options_(options),
      metrics_(std::make_unique<Metrics>(metrics)) {
  if (metrics != nullptr) {
    metrics->gauge("continuum_runs_active", "Runs loaded and executing on this node.",
                   [this] { return static_cast<double>(active_runs_gauge_.load()); });
  }
}

Engine::~Engine() = default;

Engine::ActiveRun* Engine::find_run(const std::string& run_id) {
  auto found = runs_.find(run_id);
  return found == runs_.end() ? nullptr : found->second.get();
}

Engine::ActiveRun* Engine::find_run(const std::string& run_id, uint64_t generation) {
  ActiveRun* run = find_run(run_id);
  return run != nullptr && run->generation == generation ? run : nullptr;
}

Result<std::shared_ptr<const AgentSpec>> Engine::load_agent(const std::string& tenant, const std::string& name,
                                                            int64_t version) {
  std::string key = tenant + "/" + name + "/" + std::to_string(version);
  if (auto found = agents_.find(key); found != agents_.end()) return found->second;
  ASSIGN_OR_RETURN(AgentRecord record, store_.get_agent(tenant, name, version));
  ASSIGN_OR_RETURN(json::object obj, parse_json_object(record.spec_json));
  ASSIGN_OR_RETURN(AgentSpec spec, parse_agent_spec(obj));
  auto shared = std::make_shared<const AgentSpec>(std::move(spec));
  agents_.emplace(key, shared);
  return shared;
}

Status Engine::recover() {
  if (shared_cluster()) return Status::ok();  // sessions arrive through on_session_claimed
  ASSIGN_OR_RETURN(auto runs, store_.list_unfinished_runs());
  std::set<std::pair<std::string, std::string>> sessions_with_queue;
  int resumed = 0;
  for (auto& record : runs) {
    if (record.status == kRunQueued) {
      sessions_with_queue.emplace(record.tenant_id, record.session_id);
      continue;
    }
    auto agent = load_agent(record.tenant_id, record.agent_name, record.agent_version);
    if (!agent.is_ok()) {
      log::error("cannot resume run: agent missing", {{"run_id", record.id}, {"error", agent.status().to_string()}});
      continue;
    }
    activate(std::move(record), *agent);
    ++resumed;
  }
  for (const auto& [tenant, session] : sessions_with_queue) try_start_session(tenant, session);
  log::info("recovered runs", {{"resumed", std::to_string(resumed)},
                               {"sessions_with_queue", std::to_string(sessions_with_queue.size())}});
  return Status::ok();
}

void Engine::submit_run(const SessionRecord& session, const AgentRecord& agent, std::string input,
                        std::function<void(Result<RunRecord>)> done, RunOptions options) {
  if (draining_) {
    done(Status(Code::kUnavailable, "the server is shutting down"));
    return;
  }
  RunRecord run;
  run.tenant_id = session.tenant_id;
  run.id = "run_" + time_ordered_hex(clock_.now_ms(), random_);
  run.session_id = session.id;
  run.agent_name = agent.name;
  run.agent_version = agent.version;
  run.status = kRunQueued;
  run.input = std::move(input);
  run.created_at_ms = run.updated_at_ms = clock_.now_ms();

  json::object created_payload{{"input", run.input}, {"agent", agent.name}, {"agent_version", agent.version}};
  if (!options.instructions.empty()) created_payload["instructions"] = options.instructions;
  if (!options.input_messages.empty()) {
    json::array messages;
    for (const auto& message : options.input_messages) {
      auto parsed = parse_json(message);
      if (!parsed.is_ok()) return done(invalid_argument("an input message is not JSON"));
      messages.push_back(std::move(*parsed));
    }
    created_payload["input_messages"] = std::move(messages);
  }
  if (!options.client_tools.empty()) created_payload["client_tools"] = std::move(options.client_tools);
  if (!options.annotations.empty()) created_payload["annotations"] = std::move(options.annotations);
  StepRecord created{run.tenant_id, run.id, 0, kStepRunCreated, to_json(created_payload), run.created_at_ms};
  RunSnapshot snapshot;
  Status folded = fold_step(snapshot, created);
  CONTINUUM_CHECK(folded.is_ok(), "a fresh snapshot accepts run_created at seq 0");
  run.snapshot_json = snapshot_to_json_text(snapshot);

  WriteBatch batch;
  batch.audit_events = std::move(options.audit_events);
  if (options.session_insert) batch.session_inserts.push_back(std::move(*options.session_insert));
  batch.run_inserts.push_back(run);
  batch.steps.push_back(created);
  batch.audit_events.push_back(audit_event(run.tenant_id, run.created_at_ms, "agent:" + run.agent_name, "run:create",
                                           "run:" + run.id, kRunQueued,
                                           {{"session", run.session_id}, {"agent_version", run.agent_version}},
                                           run.id));
  if (shared_cluster() && !active_run_by_session_.count(session_key(run.tenant_id, run.session_id))) {
    // Lease first: a queued run in an unleased session is what other nodes'
    // sweeps adopt, and this node is about to start it. Failing is fine:
    // another node holds the session (it runs the queue next) or the store
    // is unreachable (the commit fails too, or a sweep adopts the run).
    (void)lease_for(run.tenant_id, run.session_id);
  }
  std::string key = session_key(run.tenant_id, run.session_id);
  if (auto owner = active_run_by_session_.find(key); owner != active_run_by_session_.end()) {
    if (ActiveRun* active = find_run(owner->second)) active->alone_in_new_session = false;  // this one queues behind it
  }
  std::shared_ptr<const AgentSpec> agent_spec;
  bool start_now = can_start_at_once(run.tenant_id, run.session_id, options.new_session);
  if (start_now) {
    auto loaded = load_agent(run.tenant_id, run.agent_name, run.agent_version);
    if (loaded.is_ok()) agent_spec = *loaded;
    start_now = agent_spec != nullptr;
  }
  ++inserts_in_flight_[key];
  ++commits_in_flight_;
  store_.commit(std::move(batch), [this, loop = &loop_, run, start_now, done = std::move(done)](Status status) mutable {
    loop->post([this, run = std::move(run), start_now, done = std::move(done), status = std::move(status)]() mutable {
      --commits_in_flight_;
      std::string tenant = run.tenant_id, session = run.session_id;
      if (--inserts_in_flight_[session_key(tenant, session)] == 0) inserts_in_flight_.erase(session_key(tenant, session));
      if (!status.is_ok()) {
        if (start_now) forget_unwritten_run(run);
        done(status);
      } else {
        metrics_->runs_created->inc();
        if (start_now) run.status = kRunRunning;
        done(std::move(run));
      }
      try_start_session(tenant, session);  // or give back the lease taken above
      maybe_finish_drain();
    });
  });
  if (start_now) {
    // Started before its insert is durable: run_started is committed after
    // it, in order (in the same group, as a rule), and nothing of the run is
    // shown before its commit; if the insert fails, so does everything after.
    std::string run_id = run.id;
    activate(std::move(run), agent_spec);
    if (ActiveRun* active = find_run(run_id)) {
      active->session_user = session.user_id;  // the session may not be durable yet either (POST /v1/runs)
      active->alone_in_new_session = options.new_session;
      if (options.new_session) active->context_loaded = true;  // a new session has no items: nothing to read
      start_run(*active);
    }
  }
}

bool Engine::can_start_at_once(const std::string& tenant, const std::string& session, bool new_session) {
  // A shared cluster starts runs through the session's lease (try_start_session).
  if (draining_ || shared_cluster()) return false;
  std::string key = session_key(tenant, session);
  // Runs of a session start in the order they were submitted: not before an
  // active one, one whose insert is not yet durable, or one queued earlier.
  if (active_run_by_session_.count(key) || inserts_in_flight_.count(key)) return false;
  if (new_session) return true;
  auto queued = store_.list_queued_runs(tenant, session, 1);
  return queued.is_ok() && queued->empty();
}

void Engine::forget_unwritten_run(const RunRecord& run) {
  ActiveRun* active = find_run(run.id);
  if (active == nullptr) return;
  auto owner = active_run_by_session_.find(session_key(run.tenant_id, run.session_id));
  if (owner != active_run_by_session_.end() && owner->second == run.id) active_run_by_session_.erase(owner);
  runs_.erase(run.id);  // its later commits fail too and find no run (generation check)
  active_runs_gauge_.store(static_cast<int64_t>(runs_.size()));
}

void Engine::try_start_session(const std::string& tenant, const std::string& session_id, int attempt) {
  if (draining_ || active_run_by_session_.count(session_key(tenant, session_id))) return;
  auto queued = store_.list_queued_runs(tenant, session_id, 1);
  if (!queued.is_ok()) {
    log::error("cannot read queued runs", {{"session_id", session_id}, {"error", queued.status().to_string()}});
    retry_session_start(tenant, session_id, attempt);
    return;
  }
  if (queued->empty()) {
    release_lease(tenant, session_id);  // nothing left to run here
    return;
  }
  if (auto lease = lease_for(tenant, session_id); !lease.is_ok()) {
    // Another node holds the session: it runs the queue when its run ends
    // (and any node claims the session if that node dies).
    if (lease.status().code() != Code::kConflict) {
      log::error("cannot lease session", {{"session_id", session_id}, {"error", lease.status().to_string()}});
      retry_session_start(tenant, session_id, attempt);
    }
    return;
  }
  RunRecord record = std::move(queued->front());
  auto agent = load_agent(tenant, record.agent_name, record.agent_version);
  if (!agent.is_ok()) {
    log::error("cannot start run: agent unreadable",
               {{"run_id", record.id}, {"error", agent.status().to_string()}});
    retry_session_start(tenant, session_id, attempt);
    return;
  }
  std::string run_id = record.id;
  activate(std::move(record), *agent);
  if (ActiveRun* run = find_run(run_id)) start_run(*run);
}

void Engine::retry_session_start(const std::string& tenant, const std::string& session_id, int attempt) {
  // The store could not be read (unreachable, restarting): a session left
  // leased here with nothing running would be stranded, as no sweep claims a
  // live lease. So the lease goes back (any node's sweep may take the
  // session) and this node tries again after a backoff.
  release_lease(tenant, session_id);
  int64_t delay_ms = std::min<int64_t>(30'000, 250LL << std::min(attempt, 7));
  loop_.post_after(delay_ms, [this, tenant, session_id, attempt] {
    try_start_session(tenant, session_id, attempt + 1);
  });
}

void Engine::activate(RunRecord record, std::shared_ptr<const AgentSpec> agent) {
  auto snapshot = snapshot_from_json(record.snapshot_json);
  if (!snapshot.is_ok()) {
    log::error("run snapshot unreadable", {{"run_id", record.id}, {"error", snapshot.status().to_string()}});
    return;
  }
  auto run = std::make_unique<ActiveRun>();
  run->record = std::move(record);
  run->generation = next_generation_++;
  if (auto lease = held_leases_.find(session_key(run->record.tenant_id, run->record.session_id));
      lease != held_leases_.end()) {
    run->lease_epoch = lease->second;
  }
  run->projected_version = run->record.version;
  run->agent = std::move(agent);
  run->committed = *snapshot;
  run->projected = *snapshot;
  std::string run_id = run->record.id;
  active_run_by_session_[session_key(run->record.tenant_id, run->record.session_id)] = run_id;
  bool running = is_active_status(run->committed.status);
  int64_t deadline = run->committed.deadline_at_ms;
  runs_.emplace(run_id, std::move(run));
  active_runs_gauge_.store(static_cast<int64_t>(runs_.size()));
  if (running) {
    if (deadline > 0) loop_.post_after(std::max<int64_t>(0, deadline - clock_.now_ms()), [this, run_id] {
      advance(run_id);
    });
    advance(run_id);
  }
}

void Engine::start_run(ActiveRun& run) {
  int64_t now = clock_.now_ms();
  int64_t deadline = run.agent->limits.deadline_ms > 0 ? now + run.agent->limits.deadline_ms : 0;
  StepRecord started{run.record.tenant_id, run.record.id, run.projected.next_seq, kStepRunStarted,
                     to_json(json::object{{"started_at_ms", now}, {"deadline_at_ms", deadline}}), now};
  // The context is read now, before this turn's items: a model call run ahead
  // of run_started's commit finds them in memory (a failed read: at the first call).
  (void)load_context(run);
  auto items = turn_input_items(run);
  if (!items.is_ok()) {
    log::error("cannot read a run's input", {{"run_id", run.record.id}, {"error", items.status().to_string()}});
    return evict_and_reload(run.record.tenant_id, run.record.id);
  }
  commit_step(run, std::move(started), std::move(*items), [this, deadline](ActiveRun& started_run) {
    if (deadline > 0) {
      std::string run_id = started_run.record.id;
      loop_.post_after(std::max<int64_t>(0, deadline - clock_.now_ms()), [this, run_id] { advance(run_id); });
    }
  });
}

Result<std::vector<std::string>> Engine::turn_input_items(const ActiveRun& run) {
  if (!run.committed.has_input_messages) return std::vector<std::string>{user_message(run.record.input)};
  // Given as messages (kept in run_created, not in the snapshot written at every step).
  ASSIGN_OR_RETURN(auto steps, store_.list_steps(run.record.tenant_id, run.record.id, -1, 1));
  if (steps.empty() || steps.front().kind != kStepRunCreated) return internal_error("run_created step missing");
  ASSIGN_OR_RETURN(json::object payload, parse_json_object(steps.front().payload_json));
  std::vector<std::string> items;
  if (const json::value* messages = payload.if_contains("input_messages"); messages && messages->is_array()) {
    for (const auto& message : messages->as_array()) items.push_back(to_json(message));
  }
  if (items.empty()) return internal_error("run_created has no input_messages");
  return items;
}

void Engine::advance(const std::string& run_id) {
  ActiveRun* run = find_run(run_id);
  if (run == nullptr || run->terminal_requested || draining_) return;
  if (run->cancel_requested) {
    request_terminal(*run, kStepRunCancelled,
                     json::object{{"code", "cancelled"}, {"message", "the run was cancelled"}});
    return;
  }
  act(*run, run->committed, false);
}

// In-process effects (a scripted model, builtin tools) reach nothing outside
// this process, so they need not wait for the steps before them to be
// durable: their own steps are committed after those, in order, and nothing
// is shown to anyone (step events, results) before its commit. A crash loses
// them together with the steps they followed, and recovery runs them again.
// Effects that reach outside start from `committed` only (advance), so
// everything they depend on is durable first.
void Engine::run_ahead(const std::string& run_id, uint64_t generation) {
  ActiveRun* run = find_run(run_id, generation);
  if (run == nullptr || run->terminal_requested || run->cancel_requested || draining_) return;
  // A model call builds its context from memory only once it was loaded (at the run's start).
  if (!run->context_loaded || run->projected.next_seq == run->committed.next_seq) return;
  act(*run, run->projected, true);
}

bool Engine::model_in_process(const ActiveRun& run) const {
  ModelProvider* provider = providers_(run.agent->model);
  return provider != nullptr && provider->in_process();
}

bool Engine::tool_in_process(const ActiveRun& run, const PendingTool& tool) const {
  const ToolSpec* spec = run.agent->find_tool(tool.name);
  return spec != nullptr && spec->type == "builtin";
}

void Engine::act(ActiveRun& run, const RunSnapshot& state, bool in_process_only) {
  for (const Command& command : decide(*run.agent, state, clock_.now_ms())) {
    switch (command.kind) {
      case Command::Kind::kCallModel:
        if (run.effects_in_flight.count(command.seq) || (in_process_only && !model_in_process(run))) break;
        start_model_call(run, command.seq);
        break;
      case Command::Kind::kCallTool:
        if (run.effects_in_flight.count(command.seq) || (in_process_only && !tool_in_process(run, command.tool))) break;
        start_tool_call(run, command.tool);
        break;
      case Command::Kind::kComplete: {  // from `projected` too: no effect is left pending there
        json::object payload{{"output", command.output}};
        // Calls left pending are the client's: their outputs come with the next run.
        json::array awaiting;
        for (const auto& tool : state.pending_tools) awaiting.push_back(json::string(tool.call_id));
        if (!awaiting.empty()) payload["awaiting_client_calls"] = std::move(awaiting);
        request_terminal(run, kStepRunCompleted, std::move(payload));
        return;
      }
      case Command::Kind::kFail:
        request_terminal(run, kStepRunFailed,
                         json::object{{"code", command.error_code}, {"message", command.error_message}});
        return;
    }
    if (run.terminal_requested) return;  // e.g. a model call denied by policy
  }
}

// Run lifecycle events and the run's pending policy decisions go into the
// audit chain in the same transaction as the step.
void Engine::record_lifecycle(ActiveRun& run, const StepRecord& step, WriteBatch& batch) {
  for (auto& event : run.audit_backlog) batch.audit_events.push_back(std::move(event));
  run.audit_backlog.clear();
  static const std::map<std::string, std::string> kAudited = {
      {kStepRunStarted, "run:start"},       {kStepRunCompleted, "run:complete"},
      {kStepRunFailed, "run:fail"},         {kStepRunCancelled, "run:cancel"},
      {kStepApprovalRequested, "approval:request"}, {kStepApprovalDecided, "approval:record"}};
  auto audited = kAudited.find(step.kind);
  if (audited == kAudited.end()) return;
  json::object details{{"seq", step.seq}, {"session", run.record.session_id}};
  auto payload = parse_json_object(step.payload_json);
  if (payload.is_ok()) {
    for (const char* key : {"code", "approval_id", "tool", "decision", "statement", "arguments_hash"}) {
      if (const json::value* value = payload->if_contains(key)) details[key] = *value;
    }
  }
  batch.audit_events.push_back(audit_event(run.record.tenant_id, step.created_at_ms, "agent:" + run.record.agent_name,
                                           audited->second, "run:" + run.record.id, run.projected.status,
                                           std::move(details), run.record.id));
}

void Engine::commit_step(ActiveRun& run, StepRecord step, std::vector<std::string> item_messages,
                         std::function<void(ActiveRun&)> after_commit, WriteBatch extra,
                         std::shared_ptr<const json::object> payload,
                         std::vector<std::shared_ptr<const json::object>> parsed_items) {
  // A step with writes of its own (an approval record) starts a batch: they
  // are not merged into the steps before it. Sent before it is folded, so
  // the update sent covers exactly the steps in the batch.
  if (!extra.empty()) send_unsent(run);
  if (!payload) {  // parsed once for both folds: projected now, committed later
    auto parsed = payload_for_fold(step);
    CONTINUUM_CHECK(parsed.is_ok(), "the engine builds each step's payload as a JSON object");
    payload = std::move(*parsed);
  }
  Status folded = fold_step(run.projected, step, payload.get());
  CONTINUUM_CHECK(folded.is_ok(), "the engine builds each step from the projected snapshot it folds into");
  if (run.unsent_steps.empty()) run.unsent = std::move(extra);
  WriteBatch& batch = run.unsent;
  record_lifecycle(run, step, batch);
  // At projection: a step run ahead sees it (a failed commit reloads).
  remember_context_items(run, item_messages, parsed_items);
  step.lease_epoch = run.lease_epoch;
  for (auto& message : item_messages) {
    batch.items.push_back(ItemRecord{0, run.record.tenant_id, run.record.session_id, run.record.id,
                                     std::move(message), step.created_at_ms});
  }
  batch.steps.push_back(step);
  run.unsent_steps.push_back({std::move(step), std::move(payload), std::move(after_commit)});
  loop_.post_continuation(
      [this, run_id = run.record.id, generation = run.generation] { run_ahead(run_id, generation); });
  if (run.send_posted) return;
  // A continuation posted after run_ahead's: the in-process steps that follow
  // this one (run_ahead and the continuations it posts, which go first) join
  // the batch before it is sent, when the run has nothing more to do at once.
  run.send_posted = true;
  ++commits_in_flight_;
  loop_.post_continuation([this, run_id = run.record.id, generation = run.generation] {
    --commits_in_flight_;
    if (ActiveRun* posted_for = find_run(run_id, generation)) {  // an evicted run's steps are dropped with it
      posted_for->send_posted = false;
      send_unsent(*posted_for);
    }
    maybe_finish_drain();
  });
}

void Engine::send_unsent(ActiveRun& run) {
  if (run.unsent_steps.empty()) return;
  WriteBatch batch = std::exchange(run.unsent, WriteBatch{});
  std::vector<ActiveRun::UnsentStep> steps = std::exchange(run.unsent_steps, {});
  RunRecord update;  // an update writes status and snapshot only; the input is not copied per batch
  update.tenant_id = run.record.tenant_id;
  update.id = run.record.id;
  update.session_id = run.record.session_id;
  update.lease_epoch = run.lease_epoch;
  update.version = ++run.projected_version;
  update.status = run.projected.status;
  update.snapshot_json = snapshot_to_json_text(run.projected);
  update.updated_at_ms = steps.back().step.created_at_ms;
  batch.run_updates.push_back(std::move(update));
  ++commits_in_flight_;
  store_.commit(std::move(batch), [this, loop = &loop_, run_id = run.record.id, generation = run.generation,
                                   steps = std::move(steps)](Status status) mutable {
    loop->post([this, run_id = std::move(run_id), generation, steps = std::move(steps),
                status = std::move(status)] {
      --commits_in_flight_;
      // In order; after a failure the first evicts the run and the rest find none.
      for (const auto& sent : steps) {
        on_step_committed(run_id, generation, sent.step, sent.payload.get(), status, sent.after_commit);
      }
      maybe_finish_drain();
    });
  });
}

void Engine::on_step_committed(const std::string& run_id, uint64_t generation, const StepRecord& step,
                               const json::object* payload, Status status,
                               const std::function<void(ActiveRun&)>& after_commit) {
  ActiveRun* run = find_run(run_id, generation);
  if (run == nullptr) return;  // a commit of an incarnation evicted after an earlier failed commit
  if (!status.is_ok()) {
    metrics_->commit_failures->inc();
    log::error("step commit failed; reloading run", {{"run_id", run_id}, {"error", status.to_string()}});
    evict_and_reload(run->record.tenant_id, run_id);
    return;
  }
  metrics_->steps_committed->inc();
  Status folded = fold_step(run->committed, step, payload);
  CONTINUUM_CHECK(folded.is_ok(), "committed steps arrive in the order they were folded into projected");
  run->effects_in_flight.erase(step.seq);
  bool terminal = is_terminal_status(run->committed.status);
  bool listened = terminal && listeners_.count(run_id) > 0;
  publish_step(step, terminal, listened ? final_record(*run, step) : nullptr);
  if (after_commit) after_commit(*run);
  if (terminal) {
    finish_run(*run);
  } else {
    advance(run_id);
  }
}

void Engine::request_terminal(ActiveRun& run, const char* kind, json::object payload) {
  if (run.terminal_requested) return;
  run.terminal_requested = true;
  int64_t now = clock_.now_ms();
  // Tool calls left without a result get one in the conversation, so the
  // session stays a valid chat for the next run (providers reject a tool
  // call without its result). The journal records them in the terminal step.
  std::vector<std::string> items;
  json::array abandoned;
  for (const auto& tool : run.projected.pending_tools) {
    // The client's calls of a completed run await its outputs in the next run.
    if (kind == std::string_view(kStepRunCompleted) && is_client_tool(run.projected.client_tools, tool.name)) continue;
    // A call still running is abandoned; a tool that can be told (MCP) stops it.
    if (run.effects_in_flight.count(tool.seq)) tools_.cancel(run.record.id + ":" + std::to_string(tool.seq));
    std::string reason = std::string("error: the run ended (") + kind + ") before this tool call finished";
    items.push_back(to_json(json::object{{"role", "tool"}, {"tool_call_id", tool.call_id}, {"content", reason}}));
    abandoned.push_back(json::object{{"seq", tool.seq}, {"call_id", tool.call_id}, {"name", tool.name}});
  }
  if (!abandoned.empty()) payload["abandoned_tool_calls"] = std::move(abandoned);
  // Approvals still awaited are withdrawn with the run: nobody can decide them any more.
  WriteBatch extra;
  for (const auto& [seq, approval] : run.projected.approvals) {
    if (!approval.decision.empty()) continue;
    ApprovalRecord withdrawn;
    withdrawn.tenant_id = run.record.tenant_id;
    withdrawn.id = approval.approval_id;
    withdrawn.status = kApprovalWithdrawn;
    withdrawn.decided_at_ms = now;
    withdrawn.decided_by = "system";
    withdrawn.comment = std::string("the run ended (") + kind + ")";
    extra.approval_decisions.push_back(std::move(withdrawn));
  }
  StepRecord step{run.record.tenant_id, run.record.id, run.projected.next_seq, kind, to_json(payload), now};
  commit_step(run, std::move(step), std::move(items), nullptr, std::move(extra));
}

void Engine::finish_run(ActiveRun& run) {
  const std::string& status = run.committed.status;
  if (status == kRunCompleted) metrics_->runs_completed->inc();
  if (status == kRunFailed) metrics_->runs_failed->inc();
  if (status == kRunCancelled) metrics_->runs_cancelled->inc();
  std::string tenant = run.record.tenant_id, session = run.record.session_id, run_id = run.record.id;
  bool queue_empty = run.alone_in_new_session && !shared_cluster();  // on one node, nothing was queued behind it
  active_run_by_session_.erase(session_key(tenant, session));
  runs_.erase(run_id);
  active_runs_gauge_.store(static_cast<int64_t>(runs_.size()));
  if (!queue_empty) try_start_session(tenant, session);
}

void Engine::evict_and_reload(std::string tenant, std::string run_id) {  // by value: the run is erased below
  ActiveRun* run = find_run(run_id);
  if (run == nullptr) return;
  // The store refused a write (disk full, I/O error, or a version conflict):
  // continue from what is durable, not from unconfirmed state. The session
  // stays reserved for this run until the reload decides. Results of effects
  // of the evicted incarnation are dropped (generation check).
  runs_.erase(run_id);
  active_runs_gauge_.store(static_cast<int64_t>(runs_.size()));
  loop_.post_after(200, [this, tenant, run_id] { reload_run(tenant, run_id, 1); });
}

void Engine::reload_run(const std::string& tenant, const std::string& run_id, int attempt) {
  if (find_run(run_id) != nullptr || draining_) return;
  auto record = store_.get_run(tenant, run_id);
  if (record.is_ok() && shared_cluster() && is_active_status(record->status)) {
    // The refused write may mean the lease moved on: take it afresh (a new
    // epoch; still ours or expired), or step down if another node holds it.
    held_leases_.erase(session_key(tenant, record->session_id));
    auto lease = lease_for(tenant, record->session_id);
    if (!lease.is_ok() && lease.status().code() == Code::kConflict) {
      log::warn("run moved to another node", {{"run_id", run_id}});
      auto owner = active_run_by_session_.find(session_key(tenant, record->session_id));
      if (owner != active_run_by_session_.end() && owner->second == run_id) active_run_by_session_.erase(owner);
      return;
    }
    if (!lease.is_ok()) record = lease.status();  // retried below
  }
  auto agent = record.is_ok() ? load_agent(tenant, record->agent_name, record->agent_version)
                              : Result<std::shared_ptr<const AgentSpec>>(record.status());
  if (!record.is_ok() || !agent.is_ok()) {
    int64_t delay_ms = std::min<int64_t>(30'000, 200LL << std::min(attempt, 8));
    log::error("cannot reload run; retrying", {{"run_id", run_id}, {"attempt", std::to_string(attempt)}});
    loop_.post_after(delay_ms, [this, tenant, run_id, attempt] { reload_run(tenant, run_id, attempt + 1); });
    return;
  }
  std::string session = record->session_id;
  if (!is_active_status(record->status)) {
    // Finished (a racing cancel won) or never started: release the session.
    auto owner = active_run_by_session_.find(session_key(tenant, session));
    if (owner != active_run_by_session_.end() && owner->second == run_id) active_run_by_session_.erase(owner);
    try_start_session(tenant, session);
    return;
  }
  activate(std::move(*record), *agent);
}

void Engine::cancel_run(const std::string& tenant, const std::string& run_id, std::function<void(Status)> done) {
  if (ActiveRun* run = find_run(run_id); run && run->record.tenant_id == tenant) {
    if (run->terminal_requested) {
      done(conflict("run " + run_id + " is already finishing"));
      return;
    }
    run->cancel_requested = true;
    advance(run_id);
    done(Status::ok());
    return;
  }
  auto record = store_.get_run(tenant, run_id);
  if (!record.is_ok()) {
    done(record.status());
    return;
  }
  if (is_active_status(record->status) && shared_cluster()) {
    done(options_.cluster->request_cancel(tenant, run_id));  // its node cancels it
    return;
  }
  if (record->status != kRunQueued) {
    done(conflict("run " + run_id + " is " + record->status + " and cannot be cancelled"));
    return;
  }
  auto snapshot = snapshot_from_json(record->snapshot_json);
  if (!snapshot.is_ok()) {
    done(snapshot.status());
    return;
  }
  int64_t now = clock_.now_ms();
  StepRecord step{tenant, run_id, snapshot->next_seq, kStepRunCancelled,
                  to_json(json::object{{"code", "cancelled"}, {"message", "the run was cancelled while queued"}}),
                  now};
  Status folded = fold_step(*snapshot, step);
  CONTINUUM_CHECK(folded.is_ok(), "a queued run's snapshot accepts a cancel step at next_seq");
  WriteBatch batch;
  RunRecord update = *record;
  update.version = record->version + 1;  // fails if the run was started meanwhile
  update.status = kRunCancelled;
  update.snapshot_json = snapshot_to_json_text(*snapshot);
  update.updated_at_ms = now;
  batch.run_updates.push_back(std::move(update));
  batch.steps.push_back(step);
  batch.audit_events.push_back(audit_event(tenant, now, "system", "run:cancel", "run:" + run_id, kRunCancelled,
                                           {{"seq", step.seq}, {"while", "queued"}}, run_id));
  ++commits_in_flight_;
  store_.commit(std::move(batch), [this, loop = &loop_, step, done = std::move(done)](Status status) mutable {
    loop->post([this, step = std::move(step), status = std::move(status), done = std::move(done)] {
      --commits_in_flight_;
      if (status.is_ok()) {
        metrics_->runs_cancelled->inc();
        publish_step(step, /*terminal=*/true);
      }
      done(status);
      maybe_finish_drain();
    });
  });
}

int64_t Engine::subscribe(const std::string& run_id, Listener listener, bool terminal_only) {
  int64_t token = next_listener_token_++;
  listeners_[run_id].emplace(token, Subscription{std::move(listener), terminal_only});
  return token;
}

void Engine::unsubscribe(const std::string& run_id, int64_t token) {
  auto found = listeners_.find(run_id);
  if (found == listeners_.end()) return;
  found->second.erase(token);
  if (found->second.empty()) listeners_.erase(found);
}

void Engine::publish(const RunEvent& event) {
  auto found = listeners_.find(event.run_id);
  if (found == listeners_.end()) return;
  // Listeners may unsubscribe while being called: iterate over a copy of the tokens.
  std::vector<int64_t> tokens;
  for (const auto& [token, subscription] : found->second) {
    if (event.terminal || !subscription.terminal_only) tokens.push_back(token);
  }
  for (int64_t token : tokens) {
    auto again = listeners_.find(event.run_id);
    if (again == listeners_.end()) return;
    auto subscription = again->second.find(token);
    if (subscription != again->second.end()) {
      Listener copy = subscription->second.listener;
      copy(event);
    }
  }
}

std::shared_ptr<const RunRecord> Engine::final_record(const ActiveRun& run, const StepRecord& terminal_step) const {
  auto record = std::make_shared<RunRecord>(run.record);  // as commit_step writes the terminal update
  record->status = run.committed.status;
  record->snapshot_json = snapshot_to_json_text(run.committed);
  record->updated_at_ms = terminal_step.created_at_ms;
  record->version = run.projected_version;
  return record;
}

void Engine::publish_step(const StepRecord& step, bool terminal, std::shared_ptr<const RunRecord> final_run) {
  // Rendering the step costs a copy of its payload: skip it when nobody listens for it.
  auto found = listeners_.find(step.run_id);
  if (found == listeners_.end()) return;
  bool wanted = terminal;
  for (const auto& [token, subscription] : found->second) wanted = wanted || !subscription.terminal_only;
  if (!wanted) return;
  publish(RunEvent{step.run_id, step.seq, step.kind, own_step_to_json_text(step), terminal, std::move(final_run)});
}

void Engine::drain(std::function<void()> done) {
  draining_ = true;
  drain_done_ = std::move(done);
  maybe_finish_drain();
}

void Engine::maybe_finish_drain() {
  if (!draining_ || commits_in_flight_ > 0 || !drain_done_) return;
  release_all_leases();  // other nodes take the sessions over at once
  auto done = std::move(drain_done_);
  drain_done_ = nullptr;
  done();
}

}  // namespace continuum
