#include "providers/scripted_provider.h"

#include "engine/retry.h"

namespace continuum {

namespace {

ModelOutcome outcome_from_reply(ScriptReply& reply) {
  ModelOutcome outcome;
  if (reply.http_status != 200) {
    outcome.error.code = "http_" + std::to_string(reply.http_status);
    outcome.error.message = reply.error_body.substr(0, 500);
    outcome.error.retryable = is_retryable_http_status(reply.http_status);
    outcome.error.retry_after_ms = reply.http_status == 429 ? reply.retry_after_s * 1000 : -1;
    return outcome;
  }
  ModelResponse response;
  response.message = std::move(reply.message);
  response.usage.input_tokens = reply.prompt_tokens;
  response.usage.output_tokens = reply.completion_tokens;
  response.usage.total_tokens = reply.prompt_tokens + reply.completion_tokens;
  response.finish_reason = reply.finish_reason;
  outcome.response = std::move(response);
  return outcome;
}

}  // namespace

void ScriptedProvider::complete(const ModelRequest& request, std::function<void(std::string_view)> on_text_delta,
                                std::function<void(ModelOutcome)> done) {
  ScriptReply reply = book_->respond(request.spec.model, request.messages);
  int64_t delay_ms = reply.delay_ms;
  auto deliver = [reply = std::move(reply), on_text_delta = std::move(on_text_delta), done = std::move(done)]() mutable {
    ModelOutcome outcome = outcome_from_reply(reply);
    if (outcome.response && on_text_delta) {
      const json::value* content = outcome.response->message.if_contains("content");
      if (content && content->is_string() && !content->as_string().empty()) on_text_delta(content->as_string());
    }
    done(std::move(outcome));
  };
  if (delay_ms > 0) {
    loop_.post_after(delay_ms, std::move(deliver));
  } else {
    loop_.post_continuation(std::move(deliver));
  }
}

}  // namespace continuum
