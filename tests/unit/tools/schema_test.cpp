// JsonSchemaValidator: schemas come from API callers (agent tool parameters,
// MCP servers), so a bad one is an error, never a crash.
#include "tools/schema.h"

#include <gtest/gtest.h>

namespace continuum {
namespace {

Result<std::shared_ptr<const JsonSchemaValidator>> compile(const std::string& text) {
  auto schema = parse_json_object(text);
  EXPECT_TRUE(schema.is_ok()) << text;
  return JsonSchemaValidator::compile(*schema, "parameters");
}

TEST(JsonSchemaTest, ValidatesArgumentsAgainstLocalReferences) {
  auto schema = compile(R"({"type": "object", "$defs": {"id": {"type": "string"}},
                            "properties": {"id": {"$ref": "#/$defs/id"}}, "required": ["id"]})");
  ASSERT_TRUE(schema.is_ok()) << schema.status().to_string();
  EXPECT_TRUE((*schema)->validate(*parse_json(R"({"id": "C-1"})")).is_ok());
  EXPECT_FALSE((*schema)->validate(*parse_json(R"({"id": 7})")).is_ok());
}

TEST(JsonSchemaTest, ARecursiveSchemaThroughItsPropertiesIsFine) {
  auto schema = compile(R"({"type": "object", "properties": {"child": {"$ref": "#"}, "n": {"type": "number"}}})");
  ASSERT_TRUE(schema.is_ok()) << schema.status().to_string();
  EXPECT_TRUE((*schema)->validate(*parse_json(R"({"child": {"child": {"n": 1}}})")).is_ok());
  EXPECT_FALSE((*schema)->validate(*parse_json(R"({"child": {"n": "x"}})")).is_ok());
}

// Regression (fuzzer): "$ref": "number" is a relative URI naming the document
// itself, whose root is that reference again: valijson recursed until the
// stack overflowed, and POST /v1/agents crashed the server.
TEST(JsonSchemaTest, ReferencesThatLoopOrLeaveTheDocumentAreRefused) {
  for (const char* text : {R"({"$ref": "number", "properties": {"a": {"type": "string"}}})",
                           R"({"$ref": "#"})",
                           R"({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})",
                           R"({"properties": {"x": {"$ref": "#/$defs/missing"}}})",
                           R"({"properties": {"x": {"$ref": "https://example.invalid/schema.json"}}})",
                           R"({"properties": {"x": {"$ref": 7}}})"}) {
    auto schema = compile(text);
    ASSERT_FALSE(schema.is_ok()) << text;
    EXPECT_EQ(schema.status().code(), Code::kInvalidArgument) << text;
    EXPECT_EQ(schema.status().param(), "parameters");
  }
}

}  // namespace
}  // namespace continuum
