// Change subscriptions: what each applied update changed, for an application
// that refreshes only what changed (a UI, a cache, an index).
//
// Node::subscribe() gives a ChangeFeed, a bounded queue the node fills after
// each commit (and after a re-fold) with one Change per update, in the order
// state went through them. A late update (one that sorts before updates
// already applied) shows as the story replay tells: kRolledBack for each
// update taken back, newest first, then kApplied (or kConflict) for the late
// update and for each one replayed after it. A local call that is refused and
// a batch that fails to commit leave no Change. When state is rebuilt rather
// than stepped (a catch-up folded from a checkpoint, a stopped fold that
// resumed) the feed gets one kReloaded: read everything again. A feed that
// fills up drops what it holds and keeps one kReloaded instead, so a consumer
// that falls behind costs bounded memory and still learns to refresh.
//
// Thread safety: a ChangeFeed may be read from any thread; the node fills it
// under its writer's turn (the writer thread or a caller that commits its own
// call), or from a reader that re-folds. Several threads may wait
// on one feed; each Change goes to one of them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "replog/types.h"

namespace replog {

struct Change {
  enum class Kind {
    kApplied,     // folded in: `paths` are the places it wrote
    kConflict,    // skipped by replay and recorded as a conflict (Node::conflicts)
    kRolledBack,  // taken back for a late update that sorts before it: `paths` were restored; it is replayed next
    kReloaded,    // state was rebuilt, or changes were missed: read everything again
  };
  Kind kind = Kind::kApplied;
  UpdateId id;         // none (zero) for kReloaded
  std::string method;  // none for kReloaded
  std::vector<Path> paths;
  // The records among `paths`: (type, id) of each record written or restored.
  std::vector<std::pair<std::string, std::string>> records;
};
const char* change_kind_name(Change::Kind kind);

class ChangeFeed {
 public:
  explicit ChangeFeed(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  // The next change, waiting at most `wait` for one; nothing on timeout, or
  // at once when the node has closed and the feed is empty.
  std::optional<Change> next(std::chrono::milliseconds wait = std::chrono::milliseconds(0));
  // Every change queued now, without waiting.
  std::vector<Change> take_all();
  // True once the node that fills it has closed (queued changes can still be read).
  bool closed() const;

  // For the node that fills the feed.
  void push(const std::vector<Change>& changes);
  void close();

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Change> queue_;  // guarded by mu_
  size_t capacity_;
  bool closed_ = false;  // guarded by mu_
};

}  // namespace replog
