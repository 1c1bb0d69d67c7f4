// Engine internals shared by engine.cpp and effects.cpp. Not a public header.
#pragma once

#include <deque>
#include <set>

#include "engine/engine.h"

namespace continuum {

// A run loaded in memory because it is executing. `committed` is what the
// decider sees; `projected` additionally includes steps whose commit was
// requested but not yet confirmed, and is what new steps are built on, so that
// commits requested back to back (parallel tool results) each write a snapshot
// that includes the ones before it.
struct Engine::ActiveRun {
  RunRecord record;
  uint64_t generation = 0;        // distinguishes loads of the same run (see Engine::find_run)
  int64_t lease_epoch = 0;        // the session lease this incarnation writes under (0 = one node)
  int64_t projected_version = 0;  // runs.version after the last requested update
  std::shared_ptr<const AgentSpec> agent;
  RunSnapshot committed;
  RunSnapshot projected;
  std::set<int64_t> effects_in_flight;  // seqs of effects started and not yet committed
  // The session's newest conversation items (newest first), covering at least
  // the model's token budget: loaded once, then extended as items commit, so
  // a step never reads the session's history from the store.
  ContextItems context;
  int64_t context_tokens = 0;
  bool context_loaded = false;
  // Text streamed so far by the model call in flight (not journaled), so a
  // listener that subscribes mid-stream can be sent what it missed.
  int64_t streaming_seq = -1;
  std::string streaming_text;
  std::vector<int64_t> streaming_ends;  // byte offsets where the streamed deltas ended
  // Its session was made with it (RunOptions::new_session) and no other run
  // was submitted to the session since (submit_run clears it): the session
  // has no items to read at its start and, on one node, no queue at its end.
  bool alone_in_new_session = false;
  bool terminal_requested = false;
  bool cancel_requested = false;
  // The tools of the agent's MCP servers as last listed for this run (at its
  // latest model call, or when a call must be resumed); nullopt = not listed yet.
  std::optional<std::vector<McpToolEntry>> mcp_tools;
  std::map<int64_t, int> mcp_listing_attempts;  // by tool seq: listings of an unavailable server so far
  std::optional<std::string> session_user;  // the session's end user, read at the first policy check
  // Audit events (policy decisions on effects) written with the run's next commit.
  std::vector<AuditEventRecord> audit_backlog;
  // Steps folded into `projected` and not yet given to the store: the steps a
  // run makes one after another (running ahead) go to it as one batch with
  // one run update, sent by a continuation posted at the first of them, after
  // run_ahead's (Engine::commit_step, Engine::send_unsent).
  struct UnsentStep {
    StepRecord step;
    std::shared_ptr<const json::object> payload;  // as folded (see commit_step)
    std::function<void(ActiveRun&)> after_commit;
  };
  WriteBatch unsent;
  std::vector<UnsentStep> unsent_steps;
  bool send_posted = false;
};

struct Engine::Metrics {
  explicit Metrics(MetricsRegistry* registry);
  Counter* steps_committed;
  Counter* runs_completed;
  Counter* runs_failed;
  Counter* runs_cancelled;
  Counter* runs_created;
  Counter* model_calls;
  Counter* model_errors;
  Counter* tool_calls;
  Counter* tool_errors;
  Counter* commit_failures;
};


inline std::string session_key(const std::string& tenant, const std::string& session) {
  return tenant + "/" + session;
}

// The stored form of a run's input in the session: {"role":"user","content":input}.
std::string user_message(const std::string& input);

}  // namespace continuum
