// RunSnapshot: the fold of a run's journal. The engine keeps it materialized
// (runs.snapshot, written in the same transaction as each step) so resuming
// or stepping a run never replays the whole journal.
//
// Invariant: fold_step over a run's steps, in seq order, from an empty
// snapshot yields exactly the stored snapshot.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "store/records.h"

namespace continuum {

// Journal step kinds.
inline constexpr const char* kStepRunCreated = "run_created";
inline constexpr const char* kStepRunStarted = "run_started";
inline constexpr const char* kStepModelCall = "model_call";
inline constexpr const char* kStepToolCall = "tool_call";
inline constexpr const char* kStepRunCompleted = "run_completed";
inline constexpr const char* kStepRunFailed = "run_failed";
inline constexpr const char* kStepRunCancelled = "run_cancelled";
// A tool call that policy holds for a person's decision; the run waits.
inline constexpr const char* kStepApprovalRequested = "approval_requested";
// The decision (approved, denied or expired); the run goes on.
inline constexpr const char* kStepApprovalDecided = "approval_decided";

struct PendingTool {
  int64_t seq = 0;           // the journal seq its result will take; the idempotency key's suffix
  std::string call_id;       // the model's tool_call id
  std::string name;
  std::string arguments;     // JSON text as the model produced it
};

// A pending tool call's approval, from approval_requested until its
// tool_call step. `decision` is "" while the run waits for it.
struct ApprovalState {
  std::string approval_id;
  std::string arguments_hash;
  std::string decision;
};

struct Usage {
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t total_tokens = 0;
};

struct RunSnapshot {
  std::string status = kRunQueued;
  int64_t next_seq = 0;         // seq of the next journal entry
  int64_t model_calls = 0;
  int64_t tool_calls = 0;
  Usage usage;
  std::vector<PendingTool> pending_tools;    // tool calls of the last model step without a result yet
  std::map<int64_t, ApprovalState> approvals;  // by tool call seq; status is waiting while one is undecided
  std::optional<std::string> final_text;     // the model answered without tool calls
  std::string instructions;                  // the run's own, added to the agent's
  // Function tools the client offers with this run, as chat tool definitions:
  // the model may call them, the client runs them. A run whose only pending
  // calls are the client's completes, awaiting their outputs in a later run.
  json::array client_tools;
  bool has_input_messages = false;           // run_created holds the turn's input as messages
  int64_t started_at_ms = 0;
  int64_t deadline_at_ms = 0;                // 0 = none
  std::string output;
  std::string error_code;
  std::string error_message;
};

// Whether `name` is one of `client_tools` (chat tool definitions).
bool is_client_tool(const json::array& client_tools, std::string_view name);

// The snapshot as stored in a run row (JSON text; snapshot_from_json reads it).
// Written directly, not through a JSON object: it runs per step.
std::string snapshot_to_json_text(const RunSnapshot& snapshot);
Result<RunSnapshot> snapshot_from_json(std::string_view text);

// Applies one committed journal step. Fails (kInternal) if the step does not
// follow the snapshot (wrong seq or a kind impossible in this state).
Status fold_step(RunSnapshot& snapshot, const StepRecord& step);
// The same with the step's payload already parsed (`payload` must be
// step.payload_json parsed; null: parsed here when the kind needs it).
Status fold_step(RunSnapshot& snapshot, const StepRecord& step, const json::object* payload);
// The payload fold_step reads for this step, parsed; null for a kind whose
// payload it does not read (tool_call: the tool's output, up to MiBs).
Result<std::shared_ptr<const json::object>> payload_for_fold(const StepRecord& step);

json::object usage_to_json(const Usage& usage);

// The public view of a journal step: {"seq", "kind", "payload", "created_at_ms"},
// with the payload embedded as JSON.
json::object step_to_json(const StepRecord& step);
std::string step_to_json_text(const StepRecord& step);
// The same text for a step whose payload_json this process serialized (valid
// JSON, as serialize() writes it): spliced in, not parsed again.
std::string own_step_to_json_text(const StepRecord& step);

}  // namespace continuum
