#include "api/responses_stream.h"

#include "engine/snapshot.h"

namespace continuum {

namespace {

std::string frame(const char* type, const json::object& body) {
  return std::string("event: ") + type + "\ndata: " + to_json(body) + "\n\n";
}

std::string message_text(const json::object& item) {
  std::string text;
  for (const auto& part : item.at("content").as_array()) text += part.as_object().at("text").as_string();
  return text;
}

// The byte offsets where a model call's live deltas ended, if it streamed.
std::vector<int64_t> stream_ends(const StepRecord& step) {
  std::vector<int64_t> ends;
  auto payload = parse_json_object(step.payload_json);
  const json::value* list = payload.is_ok() ? payload->if_contains("stream_ends") : nullptr;
  if (!list || !list->is_array()) return ends;
  for (const auto& end : list->as_array()) {
    if (end.is_int64() && (ends.empty() || end.as_int64() > ends.back())) ends.push_back(end.as_int64());
  }
  return ends;
}

}  // namespace

ResponseEventStream::ResponseEventStream(RunRecord run, const StepRecord& created, int64_t starting_after)
    : run_(std::move(run)), created_(created), output_(run_.id), last_number_(starting_after) {}

void ResponseEventStream::emit(int64_t number, const char* type, json::object body, ResponseWriter& out) {
  if (number <= last_number_) return;  // the client has it
  last_number_ = number;
  body["type"] = type;
  body["sequence_number"] = number;
  out.write(frame(type, body));
}

json::object ResponseEventStream::response_now(const RunRecord& run) const {
  return response_object(run, created_, output_);
}

void ResponseEventStream::open_message(int64_t model_seq, ResponseWriter& out) {
  int64_t base = model_seq * kBlock;
  std::string id = output_.message_id(model_seq);
  int64_t index = static_cast<int64_t>(output_.message_index(model_seq));
  emit(base, "response.output_item.added",
       json::object{{"output_index", index},
                    {"item", json::object{{"type", "message"}, {"id", id}, {"status", "in_progress"},
                                          {"role", "assistant"}, {"content", json::array{}}}}},
       out);
  emit(base + 1, "response.content_part.added",
       json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                    {"part", json::object{{"type", "output_text"}, {"text", ""}, {"annotations", json::array{}}}}},
       out);
}

void ResponseEventStream::on_text_delta(int64_t model_seq, int64_t offset, std::string_view delta,
                                        ResponseWriter& out) {
  // Only the model call right after what was sent: an earlier step not yet
  // read would number its events below these.
  if (model_seq != last_step_seq_ + 1 || delta.empty() || offset < 0) return;
  open_message(model_seq, out);
  // Text the client has (sent live, or held by a resumed client) is not sent
  // again; a retried call streams from offset 0 again and goes on past it.
  int64_t base = model_seq * kBlock + 2;
  int64_t held = std::max<int64_t>(static_cast<int64_t>(streamed_bytes_[model_seq]), last_number_ - base);
  int64_t end = offset + static_cast<int64_t>(delta.size());
  if (end <= held) return;
  std::string_view unseen = held > offset ? delta.substr(static_cast<size_t>(held - offset)) : delta;
  streamed_bytes_[model_seq] = static_cast<size_t>(end);
  emit(base + end, "response.output_text.delta",
       json::object{{"item_id", output_.message_id(model_seq)},
                    {"output_index", static_cast<int64_t>(output_.message_index(model_seq))},
                    {"content_index", 0}, {"delta", json::string(unseen)}, {"logprobs", json::array{}}},
       out);
}

void ResponseEventStream::on_model_call(const StepRecord& step, const std::vector<size_t>& touched,
                                        ResponseWriter& out) {
  int64_t base = step.seq * kBlock;
  int64_t tool_number = base + 2;
  for (size_t index : touched) {
    const json::object& item = output_.items()[index].as_object();
    if (item.at("type").as_string() == "message") {
      std::string text = message_text(item);
      std::string id = item.at("id").as_string().c_str();
      open_message(step.seq, out);
      int64_t length = static_cast<int64_t>(text.size());
      int64_t sent = std::clamp<int64_t>(last_number_ - (base + 2), 0, length);
      auto common = [&] {
        return json::object{{"item_id", id}, {"output_index", static_cast<int64_t>(index)}, {"content_index", 0}};
      };
      // Split where the live deltas ended (numbers as they had), the rest as one.
      std::vector<int64_t> ends = stream_ends(step);
      if (ends.empty() || ends.back() != length) ends.push_back(length);
      for (int64_t end : ends) {
        if (end <= sent || end > length) continue;
        json::object delta = common();
        delta["delta"] = text.substr(static_cast<size_t>(sent), static_cast<size_t>(end - sent));
        delta["logprobs"] = json::array{};
        emit(base + 2 + end, "response.output_text.delta", std::move(delta), out);
        sent = end;
      }
      // After every delta sent, even if a failed attempt streamed more than the final text.
      int64_t done = base + 2 + std::max(length, static_cast<int64_t>(streamed_bytes_[step.seq]));
      json::object text_done = common();
      text_done["text"] = text;
      text_done["logprobs"] = json::array{};
      emit(done + 1, "response.output_text.done", std::move(text_done), out);
      json::object part_done = common();
      part_done["part"] = json::object{{"type", "output_text"}, {"text", text}, {"annotations", json::array{}}};
      emit(done + 2, "response.content_part.done", std::move(part_done), out);
      emit(done + 3, "response.output_item.done", json::object{{"output_index", static_cast<int64_t>(index)},
                                                               {"item", item}}, out);
      tool_number = done + 4;
      continue;
    }
    emit_tool_call(tool_number, index, item, out);
    tool_number += 4;
  }
}

void ResponseEventStream::emit_tool_call(int64_t number, size_t index, const json::object& item,
                                         ResponseWriter& out) {
  auto output_index = static_cast<int64_t>(index);
  if (item.at("type").as_string() != "function_call") {  // runs on the server: done at its tool_call step
    emit(number, "response.output_item.added", json::object{{"output_index", output_index}, {"item", item}}, out);
    return;
  }
  // The client's call: complete as the model made it.
  json::object added = item;
  added["status"] = "in_progress";
  added["arguments"] = "";
  std::string id(item.at("id").as_string());
  emit(number, "response.output_item.added", json::object{{"output_index", output_index}, {"item", added}}, out);
  emit(number + 1, "response.function_call_arguments.delta",
       json::object{{"item_id", id}, {"output_index", output_index}, {"delta", item.at("arguments")}}, out);
  emit(number + 2, "response.function_call_arguments.done",
       json::object{{"item_id", id}, {"output_index", output_index}, {"name", item.at("name")},
                    {"arguments", item.at("arguments")}},
       out);
  emit(number + 3, "response.output_item.done", json::object{{"output_index", output_index}, {"item", item}}, out);
}

void ResponseEventStream::on_approval_requested(const StepRecord& step, ResponseWriter& out) {
  auto payload = parse_json_object(step.payload_json);
  if (!payload.is_ok() || !announced_approvals_.insert(step.seq).second) return;
  int64_t tool_seq = payload->contains("tool_seq") && payload->at("tool_seq").is_int64()
                         ? payload->at("tool_seq").as_int64() : step.seq;
  for (size_t index : output_.add_step(step)) {
    json::object index_and_item{{"output_index", static_cast<int64_t>(index)}, {"item", output_.items()[index]}};
    emit(tool_seq * kBlock + 1, "response.output_item.added", index_and_item, out);
    emit(tool_seq * kBlock + 2, "response.output_item.done", std::move(index_and_item), out);
  }
}

bool ResponseEventStream::on_step(const StepRecord& step, const std::function<RunRecord()>& latest,
                                  ResponseWriter& out) {
  last_step_seq_ = std::max(last_step_seq_, step.seq);
  if (step.kind == kStepApprovalRequested) {
    on_approval_requested(step, out);  // announced ahead, if it was
    return false;
  }
  int64_t base = step.seq * kBlock;
  std::vector<size_t> touched = output_.add_step(step);
  if (step.kind == kStepRunCreated) {
    RunRecord queued = run_;
    queued.status = kRunQueued;
    emit(base, "response.created", json::object{{"response", response_now(queued)}}, out);
  } else if (step.kind == kStepRunStarted) {
    RunRecord started = run_;
    started.status = kRunRunning;
    emit(base, "response.in_progress", json::object{{"response", response_now(started)}}, out);
  } else if (step.kind == kStepModelCall) {
    on_model_call(step, touched, out);
  } else if (step.kind == kStepToolCall) {
    for (size_t index : touched) {
      emit(base + 3, "response.output_item.done",
           json::object{{"output_index", static_cast<int64_t>(index)}, {"item", output_.items()[index]}}, out);
    }
  } else if (step.kind == kStepRunCompleted || step.kind == kStepRunFailed || step.kind == kStepRunCancelled) {
    RunRecord final_run = latest();
    json::object response = response_now(final_run);
    if (step.kind == kStepRunCancelled) response["incomplete_details"] = json::object{{"reason", "cancelled"}};
    // A run stopped by its limits is incomplete (response_object), as is a cancelled one.
    std::string status = response.at("status").as_string().c_str();
    const char* type = step.kind == kStepRunCompleted ? "response.completed"
                       : status == "failed"           ? "response.failed"
                                                      : "response.incomplete";
    emit(base, type, json::object{{"response", std::move(response)}}, out);
    return true;
  }
  return false;
}

}  // namespace continuum
