// LogSequence: the log as a growing sequence in replay order, readable from
// any position and followable, for an application that shows history, feeds
// another system or audits what happened.
//
// Positions are update ids: read(after, n) gives the n updates that sort
// after `after`. The log only grows, but not only at its end: an update made
// on a device that was offline sorts where its clock put it, possibly before
// updates already read. follow() therefore tracks what it has handed out per
// origin (a version vector, which is exact: each origin's updates are held as
// a gap-free prefix), so it hands out every update exactly once, late ones
// included, each batch in replay order, and flags the ones that sort before
// an update it handed out earlier.
//
// Reads go to the store's memory map; nothing is copied into a second cache.
//
// Thread safety: read() may be used from any thread; follow() changes the
// sequence and must not overlap another use of the same LogSequence. The Node
// must outlive it.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "replog/node.h"

namespace replog {

class LogSequence {
 public:
  explicit LogSequence(const Node& node) : node_(node) {}
  // Resumes following where an earlier LogSequence stopped (its followed()
  // and newest_followed(), kept by the application across runs).
  LogSequence(const Node& node, VersionVector followed, std::optional<UpdateId> newest_followed)
      : node_(node), seen_(std::move(followed)), newest_(newest_followed) {}

  // At most `max` updates with ids after `after` (none: from the first), in replay order.
  Result<std::vector<LogEntry>> read(std::optional<UpdateId> after, size_t max) const {
    return node_.read_log(after, max);
  }

  // The updates stored since the last follow() (the first call: the whole
  // log), at most `max`, waiting up to `wait` while there are none.
  Result<std::vector<LogEntry>> follow(std::chrono::milliseconds wait, size_t max = 1024) {
    auto got = node_.read_log_since(seen_, max, wait);
    if (!got) return got;
    for (LogEntry& e : *got) {
      e.late = newest_ && e.id < *newest_;
      if (!newest_ || e.id > *newest_) newest_ = e.id;
    }
    return got;
  }

  // Per origin, the seq follow() has handed out up to.
  const VersionVector& followed() const { return seen_; }
  // The highest id follow() has handed out.
  std::optional<UpdateId> newest_followed() const { return newest_; }

 private:
  const Node& node_;
  VersionVector seen_;
  std::optional<UpdateId> newest_;  // the highest id follow() handed out
};

}  // namespace replog
