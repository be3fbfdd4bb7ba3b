// The S3 client against a real S3-compatible HTTP server (s3rver on loopback,
// tests/support/s3rver.h): objects round-trip byte for byte, listings page
// with continuation tokens, start-after and delimiters, a missing key is
// kNotFound, and a server that is gone is an error within the retry budget,
// never a hang. s3rver checks no signature; s3_client_test checks the signing.
#include <gtest/gtest.h>

#include <chrono>

#include "storage/s3_client.h"
#include "support/s3rver.h"
#include "temp_dir.h"

namespace replog {
namespace {

class S3Server : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = server_.start();
    ASSERT_EQ(why, "") << why;
    S3Config c;
    c.endpoint = server_.endpoint();
    c.bucket = server_.bucket();
    c.prefix = "archive/";
    c.access_key = "S3RVER";
    c.secret_key = "S3RVER";
    c.retries = 2;
    c.backoff_base_ms = 20;
    c.connect_timeout_ms = 2'000;
    c.timeout_ms = 10'000;
    client_ = std::make_unique<S3Client>(c);
  }

  testing::TempDir tmp_;
  testing::TestS3Server server_{REPLOG_S3RVER, tmp_.sub("s3"), "replog-test"};
  std::unique_ptr<S3Client> client_;
};

std::string every_byte() {
  std::string s;
  for (int round = 0; round < 64; ++round)
    for (int b = 0; b < 256; ++b) s.push_back(static_cast<char>(b));
  return s;
}

TEST_F(S3Server, AnObjectRoundTripsByteForByteAndHeadAgrees) {
  const std::string bytes = every_byte();
  auto etag = client_->put("log/00ff/a b+c=d.seg", bytes);
  ASSERT_TRUE(etag) << etag.status().message();
  auto got = client_->get("log/00ff/a b+c=d.seg");
  ASSERT_TRUE(got) << got.status().message();
  EXPECT_EQ(*got, bytes);
  auto head = client_->head("log/00ff/a b+c=d.seg");
  ASSERT_TRUE(head) << head.status().message();
  EXPECT_EQ(head->size, bytes.size());
  EXPECT_EQ(head->etag, *etag);
  ASSERT_TRUE(client_->del("log/00ff/a b+c=d.seg"));
  auto gone = client_->get("log/00ff/a b+c=d.seg");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.status().code(), Status::Code::kNotFound) << gone.status().message();
  EXPECT_EQ(client_->head("nothing/here").status().code(), Status::Code::kNotFound);
  ASSERT_TRUE(client_->put("big", bytes));
  auto capped = client_->get("big", bytes.size() - 1);
  ASSERT_FALSE(capped) << "a body over the caller's limit is not read into memory";
  EXPECT_EQ(capped.status().code(), Status::Code::kCorruption) << capped.status().message();
}

TEST_F(S3Server, ListingsPageStartAfterAndGroupByDelimiter) {
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(client_->put("changes/" + std::to_string(1000 + i), "x"));
  ASSERT_TRUE(client_->put("log/a/1.seg", "1"));
  ASSERT_TRUE(client_->put("log/b/1.seg", "2"));
  S3ListRequest page;
  page.prefix = "changes/";
  page.max_keys = 3;
  auto first = client_->list(page);
  ASSERT_TRUE(first) << first.status().message();
  ASSERT_EQ(first->objects.size(), 3u);
  EXPECT_EQ(first->objects.front().key, "changes/1000") << "keys come back without the config's prefix";
  EXPECT_TRUE(first->is_truncated);
  auto all = client_->list_all("changes/");
  ASSERT_TRUE(all) << all.status().message();
  ASSERT_EQ(all->size(), 7u);
  for (size_t i = 1; i < all->size(); ++i) EXPECT_LT((*all)[i - 1].key, (*all)[i].key);
  auto later = client_->list_all("changes/", "changes/1004");
  ASSERT_TRUE(later);
  ASSERT_EQ(later->size(), 2u);
  EXPECT_EQ(later->front().key, "changes/1005");
  S3ListRequest dirs;
  dirs.prefix = "log/";
  dirs.delimiter = "/";
  auto grouped = client_->list(dirs);
  ASSERT_TRUE(grouped) << grouped.status().message();
  EXPECT_TRUE(grouped->objects.empty());
  EXPECT_EQ(grouped->common_prefixes, (std::vector<std::string>{"log/a/", "log/b/"}));
}

TEST_F(S3Server, AServerThatIsGoneIsAnErrorWithinTheRetryBudget) {
  ASSERT_TRUE(client_->put("k", "v"));
  server_.stop();
  const auto start = std::chrono::steady_clock::now();
  auto got = client_->get("k");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(got);
  EXPECT_EQ(got.status().code(), Status::Code::kIOError) << got.status().message();
  EXPECT_LT(took, std::chrono::seconds(10)) << "two retries of a refused connection";
}

}  // namespace
}  // namespace replog
