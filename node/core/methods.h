// The library's side of methods: what replay and the built-in methods may do
// that an application's methods may not (include/replog/methods.h has the
// public part). MethodAccess makes a MethodContext over the state being
// folded, hands the built-ins the state itself with the undo entry their
// changes go to (schema, resolve and retire change more than data), and runs
// the record checks when a method returns.
//
// Thread safety: as MethodContext's; only the thread folding state uses these.
#pragma once

#include <optional>

#include "node/core/state.h"
#include "replog/methods.h"

namespace replog {

class MethodAccess {
 public:
  static MethodContext context(State& state, const UpdateId& id, UndoEntry* undo) {
    return MethodContext(state, id, undo);
  }
  static State& state(MethodContext& ctx) { return ctx.state_; }
  static UndoEntry* undo(MethodContext& ctx) { return ctx.undo_; }
  static std::optional<MethodFailure> check_records(MethodContext& ctx) { return ctx.check_records(); }
};

// Parses a path argument: a list of strings, or a string split at '.'.
std::optional<MethodFailure> parse_path(const Value* v, Path& out);

}  // namespace replog
