#include <gtest/gtest.h>

#include <set>

#include "core/clock.h"

namespace continuum {
namespace {

TEST(TimeOrderedHexTest, SortsByTimeThenStaysUniqueWithinAMillisecond) {
  SeededRandom random(7);
  std::string earlier = time_ordered_hex(1'700'000'000'000, random);
  std::string later = time_ordered_hex(1'700'000'000'001, random);
  EXPECT_EQ(earlier.size(), 24u);
  EXPECT_EQ(earlier.substr(0, 12), "018bcfe56800");  // 1700000000000 in hex, zero-padded
  EXPECT_LT(earlier, later);
  std::set<std::string> same_ms;
  for (int i = 0; i < 1000; ++i) same_ms.insert(time_ordered_hex(1'700'000'000'002, random));
  EXPECT_EQ(same_ms.size(), 1000u);
  EXPECT_LT(later, *same_ms.begin());
  EXPECT_EQ(time_ordered_hex(-5, random, 2).substr(0, 12), "000000000000");
  EXPECT_EQ(time_ordered_hex(0, random, 2).size(), 16u);
}

}  // namespace
}  // namespace continuum
