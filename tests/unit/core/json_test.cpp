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

TEST(JsonTest, CanonicalTextIsTheSortedCopySerialized) {
  auto value = parse_json(R"({"z":[3,{"b":1,"a":[true,null,"x\u00e9\n"]}],"a":{"y":1.5,"x":-2,"\u00e9":"\"q\""},
                             "m":{},"n":[],"k":1E300})");
  ASSERT_TRUE(value.is_ok());
  EXPECT_EQ(to_canonical_json(*value), to_json(sorted_keys(*value)));
  EXPECT_EQ(to_canonical_json(json::value("plain")), "\"plain\"");
  std::string out = "prefix:";
  append_json_string(out, "tab\there \"and\" \x01");
  EXPECT_EQ(out, "prefix:" + to_json(json::value("tab\there \"and\" \x01")));
  std::string long_text;  // longer than the writer's buffer, escapes across its edges
  for (int i = 0; i < 700; ++i) long_text += (i % 7 == 0) ? "\"\n" : "ab";
  json::value long_value{{"k", long_text}, {"n", -1234567890123}};
  EXPECT_EQ(to_canonical_json(long_value), to_json(sorted_keys(long_value)));
}

}  // namespace
}  // namespace continuum
