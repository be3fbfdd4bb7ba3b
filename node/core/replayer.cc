#include "node/core/replayer.h"

#include "protocol/msgpack_codec.h"

namespace replog {

namespace {

std::string halt_reason(const UpdateView& u, const std::string& what) {
  return "method " + std::string(u.method) + " of update " + u.id.to_string() + " threw " + what;
}

}  // namespace

UndoEntry& Replayer::next_undo_slot() {
  // The ring grows to window_ + 1 slots as the window fills; the head moves
  // only once it is that large, so a ring without a free slot starts at 0.
  if (undo_size_ == undo_.size()) undo_.emplace_back();
  UndoEntry& slot = undo_[(undo_head_ + undo_size_) % undo_.size()];
  slot.ops.clear();  // what an entry that left the window held
  slot.heard = false;
  return slot;
}

Replayer::Applied Replayer::apply(const UpdateView& u) {
  UndoEntry& entry = next_undo_slot();
  entry.id = u.id;
  entry.seq = u.seq;
  auto prev = applied_.find(u.id.origin);
  entry.prev_origin_seq = prev == applied_.end() ? 0 : prev->second;
  entry.method = u.method;

  Applied result;
  const MethodFn* fn = methods_.find(u.method);
  auto out = left_out_.find(u.id.origin);
  if (out != left_out_.end() && u.seq >= out->second) {
    result.outcome = Outcome::kLeftOut;
  } else if (fn == nullptr) {
    state_.count_unknown(&entry);
    result.outcome = Outcome::kUnknownMethod;
  } else {
    std::optional<MethodFailure> failure;
    // set's argument read straight from its bytes when it has the usual
    // shape; any other argument decoded whole for the method.
    std::optional<SetArgument> set_arg;
    if (is_builtin_set(*fn)) set_arg = read_set_argument(u.arg);
    std::optional<Result<Value>> arg;
    if (!set_arg) arg.emplace(decode_msgpack(u.arg));
    if (arg && !*arg) {
      failure = MethodFailure{ConflictKind::kBadArgument, arg->status().message(), {}, {}};
    } else {
      auto ctx = MethodAccess::context(state_, u.id, &entry);
      try {
        failure = set_arg ? apply_set(ctx, *set_arg, set_path_) : (*fn)(ctx, **arg);
        if (!failure) failure = MethodAccess::check_records(ctx);
      } catch (MethodFailure& thrown) {
        failure = std::move(thrown);
      } catch (const std::exception& e) {
        result.halt = halt_reason(u, e.what());
      } catch (...) {
        result.halt = halt_reason(u, "an exception that is not a std::exception");
      }
    }
    if (!result.halt.empty()) {
      // Not applied at all: the fold stops before this update.
      state_.undo(entry);
      result.outcome = Outcome::kHalted;
      return result;
    }
    if (failure) {
      // Skipped by every node alike: undo what the method did, record why.
      state_.undo(entry);
      entry.ops.clear();
      state_.add_conflict(Conflict{u.id, failure->kind, failure->involved, failure->path}, &entry);
      result.outcome = Outcome::kConflict;
      result.failure = std::move(failure);
    }
  }
  applied_[u.id.origin] = u.seq;
  last_ = u.id;
  if (observer_ && (result.outcome == Outcome::kApplied || result.outcome == Outcome::kConflict)) {
    entry.heard = true;
    observer_({result.outcome == Outcome::kApplied ? Event::Kind::kApplied : Event::Kind::kConflict, entry});
  }
  if (undo_size_ < window_) {
    ++undo_size_;
  } else {
    floor_ = undo_[undo_head_].id;
    undo_head_ = (undo_head_ + 1) % undo_.size();
  }
  return result;
}

bool Replayer::can_rollback_to(const UpdateId& id) const {
  if (!last_ || id > *last_) return true;
  // Everything at or above id must be in the window: the newest update not in
  // the window has to sort below id.
  return !floor_ || *floor_ < id;
}

void Replayer::rollback_newest(size_t n) {
  while (n-- > 0 && undo_size_ > 0) {
    UndoEntry& e = undo_at(undo_size_ - 1);
    state_.undo(e);
    if (observer_ && e.heard) observer_({Event::Kind::kRolledBack, e});
    if (e.prev_origin_seq == 0) applied_.erase(e.id.origin);
    else applied_[e.id.origin] = e.prev_origin_seq;
    e.ops.clear();
    --undo_size_;
    last_ = undo_size_ == 0 ? floor_ : std::optional<UpdateId>(undo_at(undo_size_ - 1).id);
  }
}

void Replayer::rollback_to(const UpdateId& id) {
  while (undo_size_ > 0 && undo_at(undo_size_ - 1).id >= id) rollback_newest(1);
}

void Replayer::reset(State state, std::optional<UpdateId> cut, VersionVector applied) {
  state_ = std::move(state);
  undo_.clear();  // and the values the entries held
  undo_head_ = 0;
  undo_size_ = 0;
  floor_ = cut;
  last_ = cut;
  applied_ = std::move(applied);
}

}  // namespace replog
