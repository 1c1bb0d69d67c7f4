// The scripted in-process provider: answers from a ScriptBook (the same
// script format as continuum-mock-model) without any network, for engine
// tests and benchmarks. Injected failures become EffectErrors like a real
// endpoint's would.
#pragma once

#include <memory>

#include "engine/event_loop.h"
#include "providers/provider.h"
#include "providers/script.h"

namespace continuum {

class ScriptedProvider final : public ModelProvider {
 public:
  // `loop` must outlive the provider; callbacks are posted to it.
  ScriptedProvider(EventLoop& loop, std::shared_ptr<ScriptBook> book) : loop_(loop), book_(std::move(book)) {}
  void complete(const ModelRequest& request, std::function<void(std::string_view)> on_text_delta,
                std::function<void(ModelOutcome)> done) override;
  bool in_process() const override { return true; }

 private:
  EventLoop& loop_;
  std::shared_ptr<ScriptBook> book_;
};

}  // namespace continuum
