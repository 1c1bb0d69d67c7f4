#include "tools/tool_runner.h"

#include "core/utf8.h"
#include "net/http_client.h"

namespace continuum {

namespace {

constexpr size_t kErrorBodyShownMax = 500;

ToolOutcome builtin_call(const ToolCall& call) {
  ToolOutcome outcome;
  outcome.ok = true;
  outcome.output = call.spec->name == "echo" ? call.arguments_json : "ok";
  return outcome;
}

// A tool that echoes its credential back must not hand it to the model.
void redact(std::string& text, const std::string& secret) {
  if (secret.empty()) return;
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
    text.replace(at, secret.size(), "[redacted]");
  }
}

// `credential` (the tool's vault secret, or "") is blanked out of the body
// before anything is cut from it, so no part of it can survive.
ToolOutcome outcome_from_response(Result<HttpClientResponse> result, const std::string& credential) {
  ToolOutcome outcome;
  if (!result.is_ok()) {
    const Status& status = result.status();
    outcome.error.code = status.code() == Code::kDeadlineExceeded  ? "timeout"
                         : status.code() == Code::kPermissionDenied ? "forbidden_address"
                         : status.code() == Code::kInvalidArgument  ? "bad_url"
                         : status.code() == Code::kPayloadTooLarge  ? "response_too_large"
                                                                    : "connection";
    outcome.error.message = status.message();
    redact(outcome.error.message, credential);
    outcome.error.retryable = status.code() == Code::kDeadlineExceeded || status.code() == Code::kUnavailable;
    return outcome;
  }
  redact(result->body, credential);
  if (result->status >= 200 && result->status < 300) {
    outcome.ok = true;
    outcome.output = sanitize_utf8(result->body);
    return outcome;
  }
  outcome.error.code = "http_" + std::to_string(result->status);
  outcome.error.message = sanitize_utf8(truncate_utf8(result->body, kErrorBodyShownMax));
  outcome.error.retryable = is_retryable_http_status(result->status);
  outcome.error.retry_after_ms = parse_retry_after_ms(result->header("Retry-After"));
  return outcome;
}

}  // namespace

void DefaultToolRunner::call(ToolCall call, std::function<void(ToolOutcome)> done) {
  if (call.spec->type == "builtin") {
    loop_.post([outcome = builtin_call(call), done = std::move(done)]() mutable { done(std::move(outcome)); });
    return;
  }
  std::string credential;
  if (call.spec->auth) {
    auto secret = options_.secrets ? options_.secrets(call.tenant, call.spec->auth->secret)
                                   : Result<std::string>(not_found("no vault"));
    if (!secret.is_ok()) {
      ToolOutcome outcome;
      outcome.error = EffectError{"credential_unavailable",
                                  "the tool's credential '" + call.spec->auth->secret + "' is not in the vault",
                                  secret.status().code() == Code::kUnavailable, -1};
      loop_.post([outcome = std::move(outcome), done = std::move(done)]() mutable { done(std::move(outcome)); });
      return;
    }
    credential = std::move(*secret);
  }
  HttpClientRequest request;
  request.method = "POST";
  request.url = call.spec->url;
  request.body = call.arguments_json;
  request.timeout_ms = call.spec->timeout_ms;
  request.response_bytes_max = options_.response_bytes_max;
  request.deny_private_addresses = !options_.allow_private_addresses;
  request.headers = {{"Content-Type", "application/json"},
                     {"Idempotency-Key", call.idempotency_key},
                     {"Continuum-Run-Id", call.run_id},
                     {"Continuum-Step", std::to_string(call.seq)}};
  if (call.spec->auth) request.headers.emplace_back(call.spec->auth->header, call.spec->auth->prefix + credential);
  if (options_.identity_token) {
    auto token = options_.identity_token(call);
    if (!token.is_ok()) {
      ToolOutcome outcome;
      outcome.error = EffectError{"identity_unavailable", "cannot sign the call's identity token", false, -1};
      loop_.post([outcome = std::move(outcome), done = std::move(done)]() mutable { done(std::move(outcome)); });
      return;
    }
    request.headers.emplace_back("Continuum-Identity", std::move(*token));
  }
  http_.send(std::move(request), nullptr,
             [done = std::move(done), credential = std::move(credential)](Result<HttpClientResponse> result) {
               done(outcome_from_response(std::move(result), credential));
             });
}

}  // namespace continuum
