// libFuzzer target: every parser that sees API request bodies — JSON with
// limits, agent definitions (including JSON Schema compilation), retry
// policies and the run snapshot decoder. Must never crash or leak.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/agent_spec.h"
#include "engine/snapshot.h"
#include "tools/schema.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace continuum;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto value = parse_json(text);
  if (!value.is_ok()) return 0;
  if (value->is_object()) {
    const json::object& obj = value->as_object();
    auto spec = parse_agent_spec(obj);
    if (spec.is_ok()) {
      auto again = parse_agent_spec(agent_spec_to_json(*spec));
      if (!again.is_ok()) __builtin_trap();  // a valid spec must round-trip
      for (const auto& tool : spec->tools) (void)tool.validator->validate(*value);
    }
    (void)parse_retry_policy(&obj, "retry", RetryPolicy{});
    (void)snapshot_from_json(text);
  }
  return 0;
}
