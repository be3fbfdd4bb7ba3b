// libFuzzer target: ListObjectsV2 listings (storage/s3_client.h
// parse_list_objects_v2), bytes a bucket's server sends. Invariants, each an
// abort when broken:
//  - a listing that parses has keys that are not empty, sizes within
//    kS3MaxObjectSize, and a continuation token whenever it is truncated;
//  - whatever the bytes, parsing returns (an error is a value, not a crash).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "check.h"
#include "storage/s3_client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace replog;
  auto listing = parse_list_objects_v2(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!listing) return 0;
  for (const S3Object& o : listing->objects) {
    FUZZ_CHECK(!o.key.empty());
    FUZZ_CHECK(o.size <= kS3MaxObjectSize);
  }
  FUZZ_CHECK(!listing->is_truncated || !listing->next_continuation_token.empty());
  return 0;
}
