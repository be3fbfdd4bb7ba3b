#include "node/archive/listing.h"

namespace replog::archive {

std::vector<SegmentName> segment_names(const std::vector<StoredObject>& objects, OriginId origin) {
  std::vector<SegmentName> out;
  for (const StoredObject& o : objects)
    if (auto n = parse_segment_key(o.key); n && n->origin == origin) out.push_back(*n);
  return out;
}

Result<std::vector<OriginId>> origins_in_bucket(ObjectStore& bucket) {
  auto dirs = bucket.list_prefixes(std::string(kLogPrefix));
  if (!dirs) return dirs.status();
  std::vector<OriginId> out;
  for (const std::string& dir : *dirs)
    if (auto origin = parse_origin_prefix(dir)) out.push_back(*origin);
  return out;
}

}  // namespace replog::archive
