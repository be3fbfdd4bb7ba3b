// Replayer: folds updates into a State in key order (docs/ARCHITECTURE.md "Replay").
//
// apply() takes the next update at the head. Each applied update leaves an
// UndoEntry in a window of the most recent `undo_window` updates, so that
// rollback_to() can take state back to just before a late key in O(k); when
// the late key lies beyond the window, can_rollback_to() says no and the owner
// reloads from a checkpoint instead. An update whose method fails, whose
// argument does not decode, or that breaks the schema or a constraint is
// skipped (its partial changes undone) and recorded as a conflict; one whose
// method is unknown is skipped and counted.
//
// A method that throws MethodFailure has failed like one that returns it: a
// conflict. Any other exception (std::bad_alloc, an I/O error, a bug) is not
// known to be a function of the log, so it must not become a conflict that
// only this node records: the update is not applied at all (kHalted, its
// partial changes undone, last_applied() unchanged) and the owner stops the
// fold there, reports it and tries again later.
//
// Thread safety: none; the node's writer thread (or a read-only command) owns it.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <optional>

#include "node/core/methods.h"
#include "node/core/state.h"
#include "protocol/update.h"
#include "protocol/version_vector.h"

namespace replog {

class Replayer {
 public:
  enum class Outcome { kApplied, kConflict, kUnknownMethod, kLeftOut, kHalted };
  struct Applied {
    Outcome outcome = Outcome::kApplied;
    std::optional<MethodFailure> failure;  // kConflict: why
    std::string halt;                      // kHalted: what was thrown, naming the update
  };

  // The window keeps at least the newest update, so that a refused local
  // call can always be taken back.
  Replayer(const MethodRegistry& methods, size_t undo_window)
      : methods_(methods), window_(std::max<size_t>(undo_window, 1)) {}

  // REQUIRES: !last_applied() || u.id > *last_applied().
  Applied apply(const UpdateView& u);

  // What the observer hears: an update applied (kApplied or kConflict) or
  // taken back (kRolledBack), with the undo entry listing the places it
  // changed. Updates left out, of unknown methods or halted change no data
  // and are not heard. Called on the replayer's thread; must not block.
  struct Event {
    enum class Kind { kApplied, kConflict, kRolledBack };
    Kind kind;
    const UndoEntry& entry;
  };
  using Observer = std::function<void(const Event&)>;
  void set_observer(Observer observer) { observer_ = std::move(observer); }

  // Origins whose updates from a seq on are left out of the fold (signed
  // origins: a fork proved by evidence), origin -> first seq left out. A
  // left-out update changes nothing but counts as applied, so that the order
  // and the undo window stay as they are. Setting it does not refold: the
  // owner refolds from the first held update it newly leaves out.
  void set_left_out(std::map<OriginId, uint64_t> left_out) { left_out_ = std::move(left_out); }
  const std::map<OriginId, uint64_t>& left_out() const { return left_out_; }

  // True when every applied update with key >= id can be undone from memory.
  bool can_rollback_to(const UpdateId& id) const;
  // Undoes every applied update with key >= id. REQUIRES: can_rollback_to(id).
  void rollback_to(const UpdateId& id);
  // Undoes the newest `n` applied updates (at most what the window holds).
  void rollback_newest(size_t n);

  // Starts over from `state`, the fold of every update up to `cut` (none: empty).
  void reset(State state, std::optional<UpdateId> cut, VersionVector applied);

  const State& state() const { return state_; }
  std::optional<UpdateId> last_applied() const { return last_; }
  // Per origin, the highest seq folded into state.
  const VersionVector& applied_vector() const { return applied_; }
  size_t undo_depth() const { return undo_size_; }
  const MethodRegistry& methods() const { return methods_; }

 private:
  const MethodRegistry& methods_;
  size_t window_;
  // The i-th oldest entry in the undo window (i < undo_size_).
  UndoEntry& undo_at(size_t i) { return undo_[(undo_head_ + i) % undo_.size()]; }
  // The slot the next update's entry is built in: past the newest, and never
  // one the window holds, so an update that halts loses nothing.
  UndoEntry& next_undo_slot();

  State state_;
  // The undo window as a ring of (at most) window_ + 1 slots, reused: an entry keeps
  // the capacity of its ops between updates, so applying allocates nothing
  // for undo beyond the values the ops hold.
  std::vector<UndoEntry> undo_;
  size_t undo_head_ = 0;  // the oldest entry
  size_t undo_size_ = 0;
  std::optional<UpdateId> floor_;  // last applied update not in the undo window
  std::optional<UpdateId> last_;
  VersionVector applied_;
  std::map<OriginId, uint64_t> left_out_;
  Observer observer_;
  Path set_path_;  // the built-in set's path, split anew for each update
};

}  // namespace replog
