// Model providers: one call of a chat model, streaming text deltas.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "agent/agent_spec.h"
#include "agent/context.h"
#include "core/json.h"
#include "engine/retry.h"
#include "engine/snapshot.h"

namespace continuum {

struct ModelRequest {
  ModelSpec spec;
  ContextMessages messages;  // Chat Completions messages, oldest first
  json::array tools;      // Chat Completions function tool definitions
  std::string run_id;
  int64_t seq = 0;
};

struct ModelResponse {
  // The assistant message, normalized: {"role":"assistant","content":string|null,
  // "tool_calls":[{"id","type":"function","function":{"name","arguments"}}]?}
  json::object message;
  Usage usage;
  std::string finish_reason;
};

struct ModelOutcome {
  std::optional<ModelResponse> response;  // set on success
  EffectError error;                      // meaningful when !response
};

// Contract: complete() returns at once and keeps no reference to `request`
// (the engine keeps it for retries: a provider copies what it needs later);
// `on_text_delta` and then `done` exactly once are called later on the
// engine's event loop thread.
class ModelProvider {
 public:
  virtual ~ModelProvider() = default;
  virtual void complete(const ModelRequest& request, std::function<void(std::string_view)> on_text_delta,
                        std::function<void(ModelOutcome)> done) = 0;
  // Whether a call reaches nothing outside this process (a scripted model):
  // the engine may then make it before the steps it follows are durable.
  virtual bool in_process() const { return false; }
};

}  // namespace continuum
