// merge_segments: keeps one origin's objects few (docs/ARCHIVE.md "Merging").
//
// Segments are ranked by size: level L holds 4^L to 4^(L+1) - 1 updates. Where
// the chain of segments from seq 1 has four consecutive ones of one level,
// they become one segment of the next (its bytes are again a function of the
// log: the updates, the last head, the key when it starts at seq 1). So an
// origin of n updates keeps O(log n) objects, and an append-only stream of one
// update per call costs one PUT per call plus one merge per four.
//
// The small objects are deleted only after the merged one has been written and
// read back whole, so the archive always holds the whole log. Parts that do
// not chain on from each other (two branches of a forked origin) are never
// joined. Segments that a
// chain segment covers entirely (left by a crash, or by two writers) are
// deleted in the same way. Any member may merge at any time; two merges at
// once write equal bytes and delete what is covered twice, which is harmless,
// and a reader that lists a segment and then gets a 404 lists again.
//
// Thread safety: uses `bucket` from the calling thread only.
#pragma once

#include <cstdint>

#include "protocol/archive_format.h"
#include "storage/object_store.h"

namespace replog {

struct MergeOptions {
  size_t fan_in = 4;                              // segments of one level merged at once
  uint64_t max_plaintext = uint64_t{64} << 20;   // a merge stops growing past this
};

struct MergeReport {
  size_t merged = 0;   // objects written
  size_t deleted = 0;  // objects deleted
};

// `origin_key`: the origin's key (32 bytes), with which each part is checked
// to chain on from the one before; without it nothing is merged.
Status merge_segments(ObjectStore& bucket, const archive::Keyring& keys, OriginId origin, std::string_view origin_key,
                      const MergeOptions& options, MergeReport& report);

}  // namespace replog
