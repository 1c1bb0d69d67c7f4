// The OpenAI Responses/Conversations shapes over Continuum's sessions and
// runs (docs/openai-sdk.md). Pure conversions: no store, no I/O.
//
// A response is a run (same id); a conversation is a session (same id). Its
// output items are derived from the run's journal; conversation items from
// the session's items (chat messages).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/json.h"
#include "store/records.h"

namespace continuum {

// A request's `input` (a string, or a list of message items) as the run's turn.
struct ResponseInput {
  std::vector<std::string> messages;  // chat messages (JSON text), oldest first
  std::string text;                   // the newest user message's text: the run's input
  std::string instructions;           // system and developer messages, joined
  std::vector<std::string> call_outputs;  // call ids of its function_call_output items
};
Result<ResponseInput> parse_response_input(const json::value& input, const std::string& param);

// A request's `tools` (function tools only) as chat tool definitions.
Result<json::array> parse_client_tools(const json::value& tools, const std::string& param);

// Items for POST /v1/conversations[/{id}/items]: message items as chat messages.
Result<std::vector<std::string>> parse_conversation_items(const json::value& items, const std::string& param);

// The conversation items one stored session item shows as (an assistant
// message with tool calls is a message, if it has text, then one
// function_call per call). Ids: item_<seq>, and item_<seq>_c<n> for the
// n-th call of an assistant message.
json::array conversation_items(const ItemRecord& item);

// A request's `metadata` (absent: {}): at most 16 string values, keys of at
// most 64 characters, values of at most 512.
Result<json::object> parse_metadata(const json::object& body, const std::string& param);

// One page of a list in OpenAI's cursor style: `after` an item id, `limit`
// 1-100 (default 20), `order` asc or desc (default desc; `all` is oldest
// first). {object: "list", data, first_id, last_id, has_more}.
Result<json::object> list_page(const json::array& all, const std::string& after, const std::string& limit,
                               const std::string& order);

// Response status from a run status (waiting for an approval is in_progress).
std::string response_status(const std::string& run_status);

// Output items built from a run's journal, in the order the model produced
// them. Steps are added in seq order.
class ResponseOutput {
 public:
  explicit ResponseOutput(std::string run_id) : run_id_(std::move(run_id)) {}
  // Returns the indexes of the items the step added or completed.
  std::vector<size_t> add_step(const StepRecord& step);
  const json::array& items() const { return items_; }
  std::string output_text() const;
  // Where a model call's text message is (or will be): its output index and item id.
  size_t message_index(int64_t model_seq) const;
  std::string message_id(int64_t model_seq) const;

 private:
  std::string run_id_;
  json::array items_;
  std::map<std::string, size_t> tool_item_by_call_;
  std::map<int64_t, size_t> message_by_seq_;
  json::array client_tools_;  // from run_created: calls to these are function_call items
};

// The response object of a run: `created` is its run_created step (request
// options live there), `output` its output so far.
json::object response_object(const RunRecord& run, const StepRecord& created, const ResponseOutput& output);

}  // namespace continuum
