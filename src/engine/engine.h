// The engine: drives runs by folding committed journal steps into snapshots,
// asking the decider for commands and performing them as effects.
//
// Contract:
// - Every public method must be called on the event loop thread; all state is
//   owned by that thread (no locks). Store and effect callbacks are posted back
//   to the loop.
// - An effect's result is committed (durable) before the decider sees it and
//   before any listener is told ("acknowledged" means "committed").
// - A tool call's idempotency key is "{run_id}:{seq}"; seq is reserved by the
//   model step that asked for the call, so it is the same after any crash.
// - One active run per session; later runs of the session wait as "queued".
// - Waiting runs and queued runs hold no memory: only active runs are loaded.
// - With a shared cluster (options.cluster), a session's runs execute only on
//   the node holding the session's lease, and every step is written under the
//   lease's epoch (fencing). Work of nodes that die is claimed by the others.
// - Lifetime: store and loop outlive the engine. Store callbacks touch only the
//   loop (they post back to it); the closures they post use the engine, so the
//   loop must not run tasks posted by an engine after that engine is destroyed.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include "agent/agent_spec.h"
#include "agent/context.h"
#include "cluster/cluster.h"
#include "core/clock.h"
#include "engine/effect_gate.h"
#include "engine/event_loop.h"
#include "engine/snapshot.h"
#include "obs/metrics.h"
#include "providers/provider.h"
#include "store/store.h"
#include "tools/tool_runner.h"

namespace continuum {

// What listeners of a run see: committed steps (seq >= 0) and transient text
// deltas (seq < 0; not journaled, not resumable).
struct RunEvent {
  std::string run_id;
  int64_t seq = -1;
  std::string type;   // a step kind, or "text_delta"
  std::string data;   // JSON text
  bool terminal = false;
  // On the terminal event of a run that ended on this node: the run as its
  // last step stored it (plaintext), so a waiting request need not read it.
  std::shared_ptr<const RunRecord> final_run = nullptr;
};

// What a run may carry besides its input text (the OpenAI-compatible API).
struct RunOptions {
  // Added to the agent's instructions for this run only.
  std::string instructions;
  // The run's turn as chat messages (JSON text), stored in the session when
  // the run starts; empty = one user message with the input text.
  std::vector<std::string> input_messages;
  // Function tools the client runs (chat tool definitions): see
  // RunSnapshot::client_tools.
  json::array client_tools;
  // Kept in the run_created step as "annotations" (e.g. response metadata).
  json::object annotations;
  // Written in the same commit as the run (e.g. the API decision that allowed it).
  std::vector<AuditEventRecord> audit_events;
  // The session was made for this run by the same request: no run of it can
  // be queued, and it has no items yet. Its insert is `session_insert`, if
  // given (committed in the run's own batch: both become durable together,
  // or neither), else committed by the caller just before.
  bool new_session = false;
  std::optional<SessionRecord> session_insert;
};

using ProviderResolver = std::function<ModelProvider*(const ModelSpec&)>;

struct EngineOptions {
  int context_items_max = 512;  // newest items read from the store for context assembly
  // Several nodes on one store (null = this node is alone). Must outlive the engine.
  Cluster* cluster = nullptr;
  int64_t remote_poll_ms = 200;  // how often listeners of a run on another node see its new steps
  // Policy over tool and model calls (null = every effect allowed). Must outlive the engine.
  EffectGate* gate = nullptr;
  int64_t approval_ttl_ms = 7LL * 24 * 3600 * 1000;  // a pending approval expires (to a denial) after this
  int64_t approval_poll_ms = 2000;  // how often a waiting run looks for a decision made on another node
  // Told of each approval once its request is durable (e.g. to call a webhook).
  std::function<void(const ApprovalRecord&)> on_approval_requested;
};

class Engine {
 public:
  Engine(Store& store, EventLoop& loop, const Clock& clock, Random& random, ProviderResolver providers,
         ToolRunner& tools, MetricsRegistry* metrics, EngineOptions options = {});
  ~Engine();

  // Loads every unfinished run from the store and resumes it. With a shared
  // cluster, it does nothing: the cluster claims sessions and hands them over.
  Status recover();

  // What the cluster calls when this node gains or loses a session's lease or
  // a cancel arrives from elsewhere; each posts to the loop.
  ClusterHandlers cluster_handlers();

  // With a shared cluster: listeners of `run_id` also see the steps it commits
  // while executing on another node (polled). No-op on a single node.
  void follow_remote(const std::string& tenant, const std::string& run_id);

  // Creates a queued run in `session`, pinned to `agent`; `done` receives the
  // committed run. The run starts when the session has no active run.
  void submit_run(const SessionRecord& session, const AgentRecord& agent, std::string input,
                  std::function<void(Result<RunRecord>)> done, RunOptions options = {});

  // An approval of `run_id` was decided (through the API): if the run executes
  // here, it goes on now rather than at its next poll.
  void approval_decided(const std::string& tenant, const std::string& run_id);

  // Whether `run_id` is loaded and executing here (its terminal step is not
  // yet committed): a listener subscribed now will see its end.
  bool is_executing(const std::string& run_id) const { return runs_.count(run_id) > 0; }

  // Cancels a queued or active run; `done` receives the outcome.
  void cancel_run(const std::string& tenant, const std::string& run_id, std::function<void(Status)> done);

  using Listener = std::function<void(const RunEvent&)>;
  // With `terminal_only`, the listener is told of the run's terminal step only
  // (and steps are not rendered for it).
  int64_t subscribe(const std::string& run_id, Listener listener, bool terminal_only = false);
  void unsubscribe(const std::string& run_id, int64_t token);

  // Stops launching effects; `done` runs when no commit is in flight. Unfinished
  // runs stay in the store and resume on the next start.
  void drain(std::function<void()> done);

  // The text streamed so far by a run's model call in flight, as a text_delta
  // event (seq < 0), or nullopt. For listeners that subscribe mid-stream.
  std::optional<RunEvent> partial_text(const std::string& run_id);

 private:
  struct ActiveRun;
  struct Metrics;

  // Starts the session's oldest queued run if the session is idle here (and,
  // in a cluster, leasable); on a store error it retries after a backoff.
  void try_start_session(const std::string& tenant, const std::string& session_id, int attempt = 0);
  void retry_session_start(const std::string& tenant, const std::string& session_id, int attempt);
  // Whether a run submitted now may start before its insert is durable (this
  // node, the session idle, nothing queued or being inserted before it; a
  // `new_session` has no queue to read).
  bool can_start_at_once(const std::string& tenant, const std::string& session, bool new_session);
  // A run started at once whose insert failed: it never existed.
  void forget_unwritten_run(const RunRecord& run);
  void activate(RunRecord record, std::shared_ptr<const AgentSpec> agent);
  void start_run(ActiveRun& run);
  // The session items a run's turn begins with: its input as messages.
  Result<std::vector<std::string>> turn_input_items(const ActiveRun& run);
  void advance(const std::string& run_id);
  // Acts on what the decider wants from `state`; with `in_process_only`, only
  // on effects that reach nothing outside this process (run_ahead).
  void act(ActiveRun& run, const RunSnapshot& state, bool in_process_only);
  // Starts the in-process effects that follow steps not yet durable.
  void run_ahead(const std::string& run_id, uint64_t generation);
  bool model_in_process(const ActiveRun& run) const;
  bool tool_in_process(const ActiveRun& run, const PendingTool& tool) const;
  void record_lifecycle(ActiveRun& run, const StepRecord& step, WriteBatch& batch);
  // `extra` is written in the same transaction (e.g. an approval record).
  // `payload`: step.payload_json as an object if the caller has it (else it
  // is parsed here, when folding needs it). `parsed_items`: item_messages as
  // objects, in the same order, if the caller has them (else parsed here).
  void commit_step(ActiveRun& run, StepRecord step, std::vector<std::string> item_messages,
                   std::function<void(ActiveRun&)> after_commit, WriteBatch extra = {},
                   std::shared_ptr<const json::object> payload = nullptr,
                   std::vector<std::shared_ptr<const json::object>> parsed_items = {});
  // Gives the run's unsent steps to the store as one batch, with the run's
  // update to `projected` (which folds exactly those steps after the last sent).
  void send_unsent(ActiveRun& run);
  // `payload`: the step's payload as payload_for_fold parsed it.
  void on_step_committed(const std::string& run_id, uint64_t generation, const StepRecord& step,
                         const json::object* payload, Status status,
                         const std::function<void(ActiveRun&)>& after_commit);
  void request_terminal(ActiveRun& run, const char* kind, json::object payload);
  void finish_run(ActiveRun& run);
  void evict_and_reload(std::string tenant, std::string run_id);
  void publish(const RunEvent& event);
  void publish_step(const StepRecord& step, bool terminal, std::shared_ptr<const RunRecord> final_run = nullptr);
  // The run as its terminal step stores it (see RunEvent::final_run).
  std::shared_ptr<const RunRecord> final_record(const ActiveRun& run, const StepRecord& terminal_step) const;
  Result<std::shared_ptr<const AgentSpec>> load_agent(const std::string& tenant, const std::string& name,
                                                      int64_t version);
  void maybe_finish_drain();

  // Session leases (ownership.cpp). lease_for returns the held epoch or
  // acquires one (0 without a shared cluster).
  bool shared_cluster() const { return options_.cluster != nullptr && options_.cluster->shared(); }
  // Whether effects may start now: always on one node; on a shared cluster,
  // only while this node's leases are known to be live.
  bool lease_fresh() const { return !shared_cluster() || options_.cluster->lease_fresh(); }
  // Whether an effect of this session may start now: fresh, and the session's
  // lease not lost (a loss is dropped from the cluster's set before freshness
  // returns; the step-down it triggers arrives later, posted).
  bool lease_fresh_for(const std::string& tenant, const std::string& session) const {
    return !shared_cluster() || (options_.cluster->lease_fresh() && options_.cluster->holds(tenant, session));
  }
  static constexpr int64_t kStaleLeaseRecheckMs = 100;
  Result<int64_t> lease_for(const std::string& tenant, const std::string& session);
  void release_lease(const std::string& tenant, const std::string& session);
  void release_all_leases();
  void on_session_claimed(const std::string& tenant, const std::string& session, int64_t epoch);
  void on_session_lost(const std::string& tenant, const std::string& session);
  void on_cancel_requested(const std::string& tenant, const std::string& run_id);
  void step_down(const std::string& run_id);
  void poll_remote(const std::string& run_id);

  // Effects (effects.cpp).
  Result<ContextItems> read_context_items(const ActiveRun& run);
  // Reads the session's newest items into run.context once; later items are
  // added as their steps are projected.
  Status load_context(ActiveRun& run);
  // `parsed`: the messages as objects, if the caller has them (else parsed here).
  void remember_context_items(ActiveRun& run, const std::vector<std::string>& messages,
                              const std::vector<std::shared_ptr<const json::object>>& parsed = {});
  void start_model_call(ActiveRun& run, int64_t seq);
  // Effect callbacks carry the run's generation: a result for an earlier
  // incarnation of the run (before an eviction and reload) is dropped.
  void attempt_model_call(const std::string& run_id, uint64_t generation, std::shared_ptr<ModelRequest> request,
                          int attempt);
  void on_model_outcome(const std::string& run_id, uint64_t generation, std::shared_ptr<ModelRequest> request,
                        int attempt, ModelOutcome outcome);
  // Lists the agent's MCP tools into run.mcp_tools, then runs `next` (unless
  // the run was finished or reloaded meanwhile).
  void list_mcp_tools(ActiveRun& run, std::function<void(ActiveRun&)> next);
  void send_model_request(ActiveRun& run, std::shared_ptr<ModelRequest> request);
  void start_tool_call(ActiveRun& run, const PendingTool& tool);
  // A call to a tool of an MCP server that could not be listed: listed again
  // per the server's retry policy, then an error result.
  void retry_unlisted_tool(ActiveRun& run, const PendingTool& tool, const McpToolEntry& server);
  void attempt_tool_call(const std::string& run_id, uint64_t generation, std::shared_ptr<ToolCall> call,
                         int attempt);
  void on_tool_outcome(const std::string& run_id, uint64_t generation, std::shared_ptr<ToolCall> call, int attempt,
                       ToolOutcome outcome);
  void commit_tool_result(ActiveRun& run, const PendingTool& tool, const std::string& output, bool is_error,
                          int attempts, bool denied = false);
  // Approvals (approvals.cpp). A held call keeps its seq in effects_in_flight
  // until its approval_decided step commits; then advance() starts it again.
  // Returns true if the call may run now (approved with the same arguments).
  bool settle_approval(ActiveRun& run, const PendingTool& tool);
  void request_approval(ActiveRun& run, const PendingTool& tool, const EffectVerdict& verdict);
  void check_approval(const std::string& run_id, uint64_t generation, int64_t tool_seq, bool keep_polling);
  void record_decision(ActiveRun& run, int64_t tool_seq, const ApprovalRecord& approval, bool expire_now);
  // The session's end user, read once per run ("" = none or unreadable).
  std::string session_user_of(ActiveRun& run);
  // Whether the gate can decide the run's effects now: it needs the session's
  // end user. If the store cannot give it (a database restarting), the run
  // tries again in a second: the effect waits, it is not denied.
  bool gate_can_decide(ActiveRun& run);
  // Asks the gate about an effect; the session's end user is read once per run.
  EffectVerdict check_effect(ActiveRun& run, int64_t seq, std::string action, std::string resource,
                             json::value arguments);
  ActiveRun* find_run(const std::string& run_id);
  ActiveRun* find_run(const std::string& run_id, uint64_t generation);
  void reload_run(const std::string& tenant, const std::string& run_id, int attempt);

  Store& store_;
  EventLoop& loop_;
  const Clock& clock_;
  Random& random_;
  ProviderResolver providers_;
  ToolRunner& tools_;
  EngineOptions options_;
  std::unique_ptr<Metrics> metrics_;

  std::unordered_map<std::string, std::unique_ptr<ActiveRun>> runs_;         // by run id
  std::unordered_map<std::string, std::string> active_run_by_session_;       // "tenant/session" -> run id
  std::unordered_map<std::string, int64_t> held_leases_;                     // "tenant/session" -> epoch
  std::unordered_map<std::string, int> inserts_in_flight_;                   // "tenant/session" -> run inserts not yet durable
  struct RemoteFollow {
    std::string tenant;
    int64_t last_seq = -1;
  };
  std::unordered_map<std::string, RemoteFollow> remote_follows_;             // by run id
  std::unordered_map<std::string, std::shared_ptr<const AgentSpec>> agents_;  // "tenant/name/version"
  struct Subscription {
    Listener listener;
    bool terminal_only = false;
  };
  std::unordered_map<std::string, std::map<int64_t, Subscription>> listeners_;  // by run id
  int64_t next_listener_token_ = 1;
  uint64_t next_generation_ = 1;
  std::atomic<int64_t> active_runs_gauge_{0};  // runs_.size(), readable from the metrics thread
  int64_t commits_in_flight_ = 0;  // batches given to the store and sends posted (a drain waits for them)
  bool draining_ = false;
  std::function<void()> drain_done_;
};

}  // namespace continuum
