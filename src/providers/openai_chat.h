// A ModelProvider for any server speaking the OpenAI Chat Completions API
// (OpenAI, vLLM, llama.cpp, Ollama, the mock model), always streaming.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "core/json.h"
#include "net/http_client.h"
#include "providers/provider.h"

namespace continuum {

// Reads an environment variable by name ("" when unset). Injected so tests
// need no real environment.
using EnvReader = std::function<std::string(const std::string& env_name)>;

// Calls POST {base_url}/chat/completions with `stream: true` and turns the
// response into a ModelOutcome.
//
// Contract: `http` must outlive this provider and every call in flight.
// complete() returns at once; `on_text_delta` (per streamed content delta)
// and then `done` (exactly once) run on the HttpClient's loop thread.
// The endpoint is spec.base_url, else the default; the key is read through
// `read_env` when spec.api_key_env is set, else the default key. Keys are
// sent only in the Authorization header and never logged.
// Failures are EffectErrors:
//   http_<status>     non-2xx; retryable per is_retryable_http_status,
//                     retry_after_ms from Retry-After
//   timeout           retryable
//   connection        retryable, except an address refused by policy or a bad URL
//   provider_error    the provider sent an error object inside a 2xx body; retryable
//   invalid_response  malformed or truncated body; retryable
//   response_too_large  a ChatStreamLimits limit was hit; not retryable
// Thread safety: complete() may be called from any thread; the provider
// holds no mutable state.
class OpenAiChatProvider final : public ModelProvider {
 public:
  OpenAiChatProvider(HttpClient& http, std::string default_base_url, std::string default_api_key,
                     EnvReader read_env);

  void complete(const ModelRequest& request, std::function<void(std::string_view)> on_text_delta,
                std::function<void(ModelOutcome)> done) override;

 private:
  HttpClientRequest build_http_request(const ModelRequest& request) const;

  HttpClient& http_;
  std::string default_base_url_;
  std::string default_api_key_;
  EnvReader read_env_;
};

// The JSON body of a streaming Chat Completions request: every key of
// spec.params, then model, messages, stream, stream_options and (when there
// are any) tools, which params cannot override.
json::object build_chat_request_body(const ModelRequest& request);

// "{base_url}/chat/completions", with trailing slashes of base_url removed.
std::string chat_completions_url(std::string_view base_url);

}  // namespace continuum
