// Consistency tokens (issue 13): encoding, decoding, merging.
#include <gtest/gtest.h>

#include "api/service/consistency.h"

namespace attune::service {
namespace {

TEST(ConsistencyTokenTest, EncodesEveryPartitionInOrderAndDecodesBack) {
  Positions p{{{"attune.definitions", 0}, 13},
              {{"attune.events", 0}, 5},
              {{"attune.events", 2}, 9},
              {{"attune.executions", 1}, 4}};
  const std::string token = encode_positions(p);
  EXPECT_EQ(token, "definitions=13;events=5.0.9;executions=0.4");
  auto back = decode_positions(token);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, p);  // zeros are "nothing wanted" and dropped
  EXPECT_TRUE(decode_positions("")->empty());
}

TEST(ConsistencyTokenTest, MalformedTokensAreBadRequests) {
  for (const char* bad : {"events", "=1", "events=", "events=1..2", "events=-1", "events=x",
                          "events=1;;", "events=99999999999999999999"}) {
    auto r = decode_positions(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::kBadRequest) << bad;
    EXPECT_NE(r.error().message.find("X-Attune-Consistency"), std::string::npos);
  }
  EXPECT_FALSE(decode_positions(std::string(5000, '1')).ok());
}

TEST(ConsistencyTokenTest, MergeTakesTheLaterPositionOfEachPartition) {
  Positions a{{{"attune.events", 0}, 5}, {{"attune.events", 1}, 2}};
  merge_positions(a, Positions{{{"attune.events", 1}, 7}, {{"attune.definitions", 0}, 3}});
  EXPECT_EQ(encode_positions(a), "definitions=3;events=5.7");
}

}  // namespace
}  // namespace attune::service
