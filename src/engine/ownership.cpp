// The engine's side of session leases: which sessions this node executes when
// several nodes share one store (see cluster/cluster.h).
#include "core/log.h"
#include "engine/engine_internal.h"

namespace continuum {

Result<int64_t> Engine::lease_for(const std::string& tenant, const std::string& session) {
  if (!shared_cluster()) return int64_t{0};
  std::string key = session_key(tenant, session);
  if (auto held = held_leases_.find(key); held != held_leases_.end()) return held->second;
  ASSIGN_OR_RETURN(int64_t epoch, options_.cluster->acquire(tenant, session));
  held_leases_[key] = epoch;
  return epoch;
}

void Engine::release_lease(const std::string& tenant, const std::string& session) {
  auto held = held_leases_.find(session_key(tenant, session));
  if (held == held_leases_.end()) return;
  int64_t epoch = held->second;
  held_leases_.erase(held);
  options_.cluster->release(tenant, session, epoch);
}

void Engine::release_all_leases() {
  if (!shared_cluster()) return;
  std::vector<std::pair<std::string, std::string>> sessions;
  for (const auto& [key, epoch] : held_leases_) {
    size_t slash = key.find('/');
    sessions.emplace_back(key.substr(0, slash), key.substr(slash + 1));
  }
  for (const auto& [tenant, session] : sessions) release_lease(tenant, session);
}

ClusterHandlers Engine::cluster_handlers() {
  EventLoop* loop = &loop_;
  return ClusterHandlers{
      [this, loop](const std::string& tenant, const std::string& session, int64_t epoch) {
        loop->post([this, tenant, session, epoch] { on_session_claimed(tenant, session, epoch); });
      },
      [this, loop](const std::string& tenant, const std::string& session) {
        loop->post([this, tenant, session] { on_session_lost(tenant, session); });
      },
      [this, loop](const std::string& tenant, const std::string& run_id) {
        loop->post([this, tenant, run_id] { on_cancel_requested(tenant, run_id); });
      },
  };
}

void Engine::on_session_claimed(const std::string& tenant, const std::string& session, int64_t epoch) {
  if (draining_) {
    options_.cluster->release(tenant, session, epoch);
    return;
  }
  std::string key = session_key(tenant, session);
  if (auto held = held_leases_.find(key); held != held_leases_.end() && held->second >= epoch) {
    return;  // this node acquired the session again since (its own sweep raced its own start)
  }
  held_leases_[key] = epoch;
  if (auto active = active_run_by_session_.find(key); active != active_run_by_session_.end()) {
    // Still running here under an older epoch, which the store now refuses:
    // continue from what is durable.
    ActiveRun* run = find_run(active->second);
    if (run == nullptr || run->lease_epoch < epoch) evict_and_reload(tenant, active->second);
    return;
  }
  auto runs = store_.list_unfinished_runs_of_session(tenant, session, 16);
  if (!runs.is_ok()) {
    log::error("cannot adopt session", {{"session_id", session}, {"error", runs.status().to_string()}});
    release_lease(tenant, session);  // another sweep, here or elsewhere, tries again
    return;
  }
  for (auto& record : *runs) {
    if (!is_active_status(record.status)) continue;
    auto agent = load_agent(tenant, record.agent_name, record.agent_version);
    if (!agent.is_ok()) {
      log::error("cannot resume run: agent missing", {{"run_id", record.id}});
      continue;
    }
    log::info("resuming run of an adopted session", {{"run_id", record.id}, {"epoch", std::to_string(epoch)}});
    activate(std::move(record), *agent);
    return;
  }
  try_start_session(tenant, session);  // queued work, or nothing: then the lease goes back
}

void Engine::step_down(const std::string& run_id) {
  ActiveRun* run = find_run(run_id);
  if (run == nullptr) return;
  // Its in-flight effects finish unobserved (generation check); the new owner
  // re-sends unfinished tool calls with the same idempotency keys.
  active_run_by_session_.erase(session_key(run->record.tenant_id, run->record.session_id));
  runs_.erase(run_id);
  active_runs_gauge_.store(static_cast<int64_t>(runs_.size()));
}

void Engine::on_session_lost(const std::string& tenant, const std::string& session) {
  std::string key = session_key(tenant, session);
  held_leases_.erase(key);
  auto active = active_run_by_session_.find(key);
  if (active == active_run_by_session_.end()) return;
  log::warn("lease lost; run stops here", {{"run_id", active->second}, {"session_id", session}});
  std::string run_id = active->second;
  step_down(run_id);
}

void Engine::on_cancel_requested(const std::string& tenant, const std::string& run_id) {
  ActiveRun* run = find_run(run_id);
  if (run == nullptr || run->record.tenant_id != tenant || run->terminal_requested) return;
  run->cancel_requested = true;
  advance(run_id);
}

void Engine::follow_remote(const std::string& tenant, const std::string& run_id) {
  if (!shared_cluster() || remote_follows_.count(run_id)) return;
  remote_follows_[run_id] = RemoteFollow{tenant, -1};
  loop_.post_after(options_.remote_poll_ms, [this, run_id] { poll_remote(run_id); });
}

void Engine::poll_remote(const std::string& run_id) {
  auto follow = remote_follows_.find(run_id);
  if (follow == remote_follows_.end()) return;
  if (!listeners_.count(run_id)) {
    remote_follows_.erase(follow);  // nobody listens any more
    return;
  }
  if (find_run(run_id) == nullptr) {  // executing elsewhere (or queued): read what it committed
    auto steps = store_.list_steps(follow->second.tenant, run_id, follow->second.last_seq, 1000);
    if (steps.is_ok() && !steps->empty()) {
      const StepRecord& newest = steps->back();
      follow->second.last_seq = newest.seq;
      bool terminal = newest.kind == kStepRunCompleted || newest.kind == kStepRunFailed ||
                      newest.kind == kStepRunCancelled;
      // One wake-up per poll: listeners read the steps themselves, in order.
      publish(RunEvent{run_id, newest.seq, newest.kind, step_to_json_text(newest), terminal});
      if (terminal) {
        remote_follows_.erase(run_id);
        return;
      }
    }
  }
  loop_.post_after(options_.remote_poll_ms, [this, run_id] { poll_remote(run_id); });
}

}  // namespace continuum
