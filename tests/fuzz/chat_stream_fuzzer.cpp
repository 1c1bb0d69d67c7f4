// libFuzzer target: the Chat Completions stream parser and the non-streaming
// response parser, fed untrusted bytes from a model endpoint, in random splits.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "providers/chat_stream.h"
#include "providers/script.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace continuum;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  ChatStreamParser parser([](std::string_view) {});
  size_t split = size > 0 ? data[0] % 17 + 1 : 1;
  for (size_t offset = 0; offset < size; offset += split) {
    if (!parser.feed(text.substr(offset, split)).is_ok()) break;
  }
  (void)parser.finish();
  (void)parse_chat_completion(text);
  auto book = ScriptBook::parse(text);
  if (book.is_ok()) {
    auto request = parse_json_object(R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
    (void)book->respond(*request);
  }
  return 0;
}
