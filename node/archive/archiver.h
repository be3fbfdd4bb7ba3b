// Archiver: one node's side of the archive (docs/ARCHIVE.md): it uploads
// segments of the log to an object store and pulls the segments it lacks.
//
// push(): the node's own origin is uploaded at once, from what the archive
// holds up to the newest head the node holds, one segment per call under light
// load and a batch under heavy load. Another origin's updates are uploaded by
// this node only when the archive has lacked them for longer than the grace
// period, which archives a device that never reaches the bucket without every
// node paying a PUT for every update. After each segment an empty change feed
// entry is written.
//
// pull(): lists the change feed from the last position seen (less a clock-skew
// window), and sweeps one origin's prefix per call in turn (a device that was
// away for a month writes feed entries with old times; the sweep finds them).
// Segments are opened, checked and handed to SyncStore::ingest with their head,
// so everything that reaches the log passes the same proof a peer's range does.
//
// Fork evidence travels too: push() uploads what the node holds and the
// archive lacks, and each sweep round (and a full pull, before any segment)
// takes the evidence objects it has not seen, so a restore leaves out what the
// cluster's nodes leave out.
//
// What the archive holds is learned from listings and from this node's own
// uploads; nothing is persisted, so a restart lists again and resumes without
// a gap or an overwrite (object names are functions of the log, and a put
// never replaces an object).
//
// Thread safety: one thread drives an Archiver (push, pull); status() may be
// read from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "node/core/clock.h"
#include "node/archive/merge.h"
#include "node/sync/sync_store.h"
#include "protocol/archive_format.h"
#include "storage/object_store.h"

namespace replog {

struct ArchiveCounters {
  uint64_t segments_put = 0, updates_put = 0, bytes_put = 0;
  uint64_t segments_got = 0, updates_got = 0, bytes_got = 0, updates_stored = 0;
  uint64_t bytes_planned = 0;  // the bytes of the segments listed to be taken (for progress)
  uint64_t segments_merged = 0, segments_deleted = 0;
  uint64_t feed_listings = 0, sweeps = 0;
  uint64_t evidence_put = 0, evidence_taken = 0;  // fork evidence objects
  uint64_t branch_segments = 0;  // segments of a proven fork's other branch: not taken, not damage
  uint64_t requests = 0;
};

struct ArchiveOptions {
  // Another origin's updates are uploaded after the archive lacked them this long.
  int64_t grace_ms = 10 * 60 * 1000;
  // A feed listing starts this far before the newest entry seen, because
  // uploaders' clocks differ: the whole window (S3 itself refuses requests
  // more than 15 minutes off) every 30th listing, the recent one otherwise.
  int64_t skew_window_ms = 15 * 60 * 1000;
  int64_t recent_window_ms = 30 * 1000;
  // Segments are cut near these (they run on to the next head).
  uint64_t segment_updates = 10'000;
  size_t segment_bytes = size_t{4} << 20;
  // pull() sweeps one origin's prefix every this many calls (0: never).
  uint32_t sweep_every = 2;
  // How the own origin's segments are merged (fan_in 0: never).
  MergeOptions merge;
  // Called at the start of each sweep round and by a full pull: may add keys
  // granted to this device by a rotation (archive_keys.h) to the keyring.
  std::function<Status(ObjectStore&, archive::Keyring&)> refresh_keys;
  // Called before each push: may rotate the key (a member left) and add it.
  std::function<Status(ObjectStore&, archive::Keyring&)> before_push;
  // Called on the archiver's thread after each segment it takes (progress bars).
  std::function<void(const ArchiveCounters&)> on_progress;
};


struct ArchiveStatus {
  ArchiveCounters counters;
  // Updates this node holds of its own origin that the archive does not (yet).
  uint64_t lag_updates = 0;
  // Since when the oldest of them waits (0: none waits).
  int64_t lag_since_ms = 0;
  int64_t last_push_ms = 0;
  int64_t last_poll_ms = 0;
  std::string last_snapshot;             // the newest snapshot's key, as last listed
  uint32_t writing_key = 0;              // the id of the key new objects are sealed with
  std::string last_error;                // empty after a clean round
  std::map<std::string, std::string> damaged;  // object key -> why it was not applied
  std::map<OriginId, uint64_t> archived;        // origin -> the prefix the archive is known to hold
};

class Archiver {
 public:
  Archiver(SyncStore& store, ObjectStore& bucket, archive::Keyring keys, const Clock& clock,
           ArchiveOptions options = {});

  // Uploads what this node owes the archive. An error (the bucket unreachable)
  // leaves nothing half done: the next push() resumes where this one stopped.
  Status push();
  // Lists the feed, sweeps one origin when due, and ingests the segments this
  // node lacks. `sweep_all` sweeps every origin in the bucket (a one-off pull,
  // a restore).
  Status pull(bool sweep_all = false);

  ArchiveStatus status() const;

 private:
  Status push_origin(OriginId origin, uint64_t held);
  Status put_segment(const archive::Segment& segment);
  Status refresh(OriginId origin);
  Status recheck_newest(const std::vector<archive::SegmentName>& chain);
  struct Plan {
    OriginId origin = 0;
    std::vector<archive::SegmentName> chain;
    uint64_t bytes = 0;
  };
  Result<Plan> plan_origin(OriginId origin);
  Status take_segment(const archive::SegmentName& name, bool& gone);
  Status pull_origin(Plan plan);
  Status list_feed();
  Status sweep_next();
  Status look_around();
  Status push_evidence();
  Status take_evidence();
  bool proven_fork(OriginId origin, uint64_t seq) const;
  void note_error(const Status& s);

  SyncStore& store_;
  ObjectStore& bucket_;
  archive::Keyring keys_;
  const Clock& clock_;
  ArchiveOptions options_;

  std::map<OriginId, uint64_t> archived_;      // the prefix the archive is known to hold
  std::map<OriginId, int64_t> lacking_since_;  // when this node first held more than the archive
  std::set<OriginId> wanted_;                  // origins the feed says have more than this node holds
  std::vector<OriginId> sweep_order_;
  size_t sweep_at_ = 0;
  uint64_t pulls_ = 0;
  int64_t feed_ms_ = 0;  // the newest feed entry's time seen
  uint64_t feed_listings_ = 0;
  bool wide_fits_ = true;  // the last whole-window listing was one page
  // Own segments put since the last merge; a fresh archiver does not know how
  // many earlier runs left, so its first push that puts anything merges.
  uint64_t unmerged_ = 0;
  bool merged_once_ = false;
  std::set<std::string> evidence_seen_;  // evidence keys the archive holds or this node took

  mutable std::mutex status_mu_;
  ArchiveStatus status_;  // guarded by status_mu_
};

}  // namespace replog
