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
#include <string_view>

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

// Replay's short way through the built-in set, which nearly every update
// calls: the argument is read straight from its bytes, its path as a view and
// only its value decoded, instead of decoding the whole argument map.
struct SetArgument {
  std::string_view path;  // the dotted path, inside the argument's bytes
  Value value;
};
// True when `fn` is the built-in set (an application may register another
// method under that name in a registry without the built-ins).
bool is_builtin_set(const MethodFn& fn);
// The argument when its bytes are a map of exactly "path" (a string) and
// "value", in that order (what every encoder of ours writes), that the whole
// decode would accept; else nothing, and the caller decodes the whole
// argument. What it returns is what the whole decode gives, so apply_set
// with it does what set does with the decoded argument.
std::optional<SetArgument> read_set_argument(std::string_view bytes);
// `path` is the caller's to reuse from update to update, so that splitting the
// path allocates nothing once it has held one as long.
std::optional<MethodFailure> apply_set(MethodContext& ctx, SetArgument& arg, Path& path);

}  // namespace replog
