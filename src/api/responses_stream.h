// A run as a stream of OpenAI Responses events (docs/openai-sdk.md).
//
// Sequence numbers are a function of the journal, so a stream resumed with
// `starting_after` continues exactly where the client stopped, whether the
// events are replayed from the store or arrive live. The events of journal
// step S are numbered from S * kBlock:
//   run_created         S*B        response.created
//   run_started         S*B        response.in_progress
//   model_call (text)   S*B        output_item.added, S*B+1 content_part.added,
//                       S*B+2+end  output_text.delta (end: bytes of text so far),
//                       D+1..D+3   text.done, content_part.done, output_item.done
//                                  (D = S*B+2+length), then from D+4+4k the k-th
//                                  tool call: output_item.added (a client's function
//                                  call also function_call_arguments.delta/.done and
//                                  output_item.done)
//   tool_call           S*B+3      output_item.done of that call
//   approval_requested  T*B+1,+2   output_item.added/.done of its mcp_approval_request,
//                                  in the block of the held call T: sent as soon as it
//                                  commits, ahead of the gap the call leaves (T < S)
//   terminal            S*B        response.completed | failed | incomplete (cancelled)
// Live text deltas of a model call are numbered by the bytes streamed so far;
// when its step commits, what the client has not seen is sent as one delta.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>

#include "api/openai_items.h"
#include "net/http_server.h"

namespace continuum {

class ResponseEventStream {
 public:
  static constexpr int64_t kBlock = 1'000'000'000;

  // `created` is the run's run_created step; events numbered up to
  // `starting_after` are not sent.
  ResponseEventStream(RunRecord run, const StepRecord& created, int64_t starting_after);

  // Writes the events of the next committed step (in seq order). `latest`
  // reads the run as stored now (for the final response object). Returns
  // true once the terminal event is written.
  bool on_step(const StepRecord& step, const std::function<RunRecord()>& latest, ResponseWriter& out);
  // An approval_requested step: announced at once, though it lies beyond
  // the gap of the call it holds (once; on_step skips it later).
  void on_approval_requested(const StepRecord& step, ResponseWriter& out);
  // A streamed piece of model call `model_seq`'s text, starting at byte
  // `offset` of the attempt's text (a retried call starts at 0 again).
  void on_text_delta(int64_t model_seq, int64_t offset, std::string_view delta, ResponseWriter& out);

  int64_t last_step_seq() const { return last_step_seq_; }

 private:
  void emit(int64_t number, const char* type, json::object body, ResponseWriter& out);
  void open_message(int64_t model_seq, ResponseWriter& out);
  void on_model_call(const StepRecord& step, const std::vector<size_t>& touched, ResponseWriter& out);
  // A tool call item of a model call: numbers `number` to `number + 3`.
  void emit_tool_call(int64_t number, size_t index, const json::object& item, ResponseWriter& out);
  json::object response_now(const RunRecord& run) const;

  RunRecord run_;
  StepRecord created_;
  ResponseOutput output_;
  int64_t last_number_;
  int64_t last_step_seq_ = -1;
  std::map<int64_t, size_t> streamed_bytes_;  // live text sent per model call seq
  std::set<int64_t> announced_approvals_;      // approval_requested steps sent
};

}  // namespace continuum
