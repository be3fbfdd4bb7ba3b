// check_archive: reads a whole archive offline and proves what it can
// (`replog archive verify`, `replog archive status`).
//
// For every origin in the bucket it follows the segments from seq 1 (the one
// reaching furthest at each step), opens each, recomputes the origin's chain
// from c_0 across them, and checks every segment's head: its chain equals the
// recomputed one and its signature verifies under the origin's key (carried
// by the segment from seq 1, and certified when it is not a device key).
// Fork evidence in the archive is checked too (check_evidence); past a fork it
// proves, a segment of the other branch is counted, not a problem.
// Nothing is written anywhere; each problem names the object's key.
//
// Thread safety: uses `bucket` from the calling thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "protocol/archive_format.h"
#include "storage/object_store.h"

namespace replog {

struct OriginArchive {
  uint64_t verified = 0;  // seqs 1..verified are in the archive and proved
  uint64_t listed = 0;    // the highest seq any of its segment names reaches
  size_t segments = 0;    // segment objects listed (merged ones overlap)
  uint64_t bytes = 0;
  std::string key_hex;    // the origin's key, from its first segment
  uint64_t fork_seq = 0;  // archived evidence proves a fork from this seq (0: none)
  size_t branch_segments = 0;  // segments past it that chain on another branch
};

struct ArchiveCheck {
  std::map<OriginId, OriginArchive> origins;
  size_t feed_entries = 0;
  size_t evidence = 0;  // evidence objects that prove a fork
  std::vector<std::string> problems;  // "KEY: why", one line each
  bool ok() const { return problems.empty(); }
};

struct CheckOptions {
  std::string cluster;  // the chains start from it
  // When set, an origin whose key (or certifying device) is no member's is a problem.
  std::function<bool(std::string_view device_key)> is_member;
  // Only list (no GET, no proof): what `archive status` needs.
  bool list_only = false;
  std::function<void(const OriginArchive&, OriginId)> on_origin;  // progress
};

Result<ArchiveCheck> check_archive(ObjectStore& bucket, const archive::Keyring& keys, const CheckOptions& options);

}  // namespace replog
