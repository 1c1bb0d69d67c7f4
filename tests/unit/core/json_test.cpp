#include <gtest/gtest.h>

#include "core/json.h"

namespace continuum {
namespace {

TEST(JsonTest, ParseErrorsAreValuesNotExceptions) {
  EXPECT_EQ(parse_json("{").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(parse_json_object("[1]").status().code(), Code::kInvalidArgument);
  std::string deep(200, '[');
  EXPECT_FALSE(parse_json(deep + std::string(200, ']')).is_ok()) << "depth limit";
}

TEST(JsonTest, TypedAccessNamesTheParam) {
  auto obj = parse_json_object(R"({"a": 1, "b": "x", "c": 2.0, "d": 2.5})");
  ASSERT_TRUE(obj.is_ok());
  auto wrong = get_string(*obj, "a", "model.a");
  EXPECT_EQ(wrong.status().param(), "model.a");
  EXPECT_EQ(*get_optional_int(*obj, "c", "c").value(), 2);
  EXPECT_FALSE(get_optional_int(*obj, "d", "d").is_ok());
  EXPECT_FALSE(get_optional_int(*obj, "missing", "missing")->has_value());
  EXPECT_EQ(first_unknown_key(*obj, {"a", "b", "c"}).value(), "d");
}

}  // namespace
}  // namespace continuum
