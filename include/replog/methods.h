// Methods: what an update means (docs/METHODS.md).
//
// A method is a pure function of (state, argument, update id): no wall clock,
// no randomness, no I/O, no state of its own, so every node replaying the same
// log computes the same state. It reads and changes state only through its
// MethodContext, which records how to undo each change and checks, when the
// method returns, every record it touched against the schema and its unique
// constraints. A method that returns a MethodFailure, or throws, is skipped by
// every node alike and becomes a Conflict.
//
// A method that cannot decide alike on every node must not decide at all: an
// exception other than MethodFailure (std::bad_alloc, an I/O error, a bug)
// does not become a conflict. The fold stops before that update, the node
// reports it (Node::fold_status) and folds again later; a local call whose
// method throws so is refused and nothing is stored.
//
// Built-in methods: set, unset, inc, add, remove, create, update, delete,
// schema, resolve, retire (docs/METHODS.md). Applications register their own
// with MethodRegistry::add, or with add_typed when the argument is one of
// their structs (a record, replog/binding.h); changing what a method's
// argument means requires a new name.
//
// Thread safety: build the registry before a node opens; afterwards it is
// read-only and may be shared by any number of nodes and threads. A method
// runs one at a time under the node's writer's turn: on its writer thread, on
// a calling thread that found the writer idle, or a read-only node's opening
// thread; its MethodContext is valid only during the call.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "replog/binding.h"
#include "replog/schema.h"
#include "replog/status.h"
#include "replog/types.h"
#include "replog/value.h"

namespace replog {

class State;       // the fold of the log; private to the library
struct UndoEntry;  // how to take one update back; private to the library
class MethodAccess;

// Why a method did not apply; replay turns it into a Conflict. A method
// returns it, or throws it (the one exception that becomes a conflict).
struct MethodFailure {
  ConflictKind kind = ConflictKind::kFailed;
  std::string message;  // for the person at the keyboard (local calls); not stored
  Path path;
  std::vector<UpdateId> involved;
};

// Read-only access to state, for a method and for a local check.
class StateView {
 public:
  // The node makes these; an application receives one.
  StateView(const State& state) : state_(state) {}  // NOLINT: implicit by design

  // The value at `path` (empty: the root), or null when nothing is there.
  const Value* get(const Path& path) const;
  const TypeRegistry& schema() const;
  // True while the update `id` is an open conflict.
  bool has_conflict(const UpdateId& id) const;

  // Record [T's type, id] as a T: NotFound when absent, InvalidArgument
  // (naming the place) when it does not convert.
  template <BoundRecord T>
  Result<T> record(const std::string& id) const {
    const std::string& type = Bind<T>::binding().type_name();
    const Value* v = get({type, id});
    if (!v) return Status::not_found("no record " + type + "." + id);
    return from_value<T>(*v, type + "." + id);
  }

 private:
  const State& state_;
};

class MethodContext {
 public:
  MethodContext(const MethodContext&) = delete;
  MethodContext& operator=(const MethodContext&) = delete;

  // The id of the update being applied: deterministic, the same on every node.
  const UpdateId& id() const { return id_; }
  const Value* get(const Path& path) const { return view_.get(path); }
  const TypeRegistry& schema() const { return view_.schema(); }
  const StateView& view() const { return view_; }

  // Writes `value` at `path` after resolving it against the type the schema
  // declares there (a record field's type under [type, id, field, ...]).
  std::optional<MethodFailure> set(const Path& path, Value value);
  std::optional<MethodFailure> unset(const Path& path);

 private:
  friend class MethodAccess;  // replay and the built-ins (node/core/methods.h)
  MethodContext(State& state, const UpdateId& id, UndoEntry* undo)
      : state_(state), view_(state), id_(id), undo_(undo) {}
  // Marks record [type, id] as written, remembering it as it was before.
  void touch(const std::string& type, const std::string& id);
  // Checks the records touched by set/unset (called by replay when the method returns).
  std::optional<MethodFailure> check_records();

  State& state_;
  StateView view_;
  UpdateId id_;
  UndoEntry* undo_;
  // (type, id) of records written -> the record before this update (none: absent)
  std::map<std::pair<std::string, std::string>, std::optional<Value>> touched_;
};

// The argument is the method's own decoded copy: a method may move parts of it
// into state. Functions taking `const Value&` fit too.
using MethodFn = std::function<std::optional<MethodFailure>(MethodContext&, Value& arg)>;

// An extra check of a local call, run before the method by the writer against
// the head state: refuses what is a mistake at the keyboard although replay
// would accept it (resolving a conflict that is not open). Never runs in
// replay. Returns the one-line reason to refuse, or nothing.
using LocalCheck = std::function<std::optional<std::string>(const StateView&, const Value& arg)>;

// A method whose argument is an application's record (replog/binding.h):
// the call site passes the C++ object, the update stores it as a record, and
// replay hands it back as the C++ object. An argument that does not convert
// (another record type, a wrong field) is a bad-argument conflict.
template <typename Arg>
using TypedMethodFn = std::function<std::optional<MethodFailure>(MethodContext&, const Arg& arg)>;
template <typename Arg>
using TypedLocalCheck = std::function<std::optional<std::string>(const StateView&, const Arg& arg)>;

class MethodRegistry {
 public:
  // The built-in methods.
  static MethodRegistry with_builtins();

  // Registers a method. `version` changes when the method's code changes in a
  // way that could change state: it feeds the digest that checkpoints record.
  Status add(const std::string& name, const std::string& version, MethodFn fn, LocalCheck check = nullptr);
  template <BoundRecord Arg>
  Status add_typed(const std::string& name, const std::string& version, TypedMethodFn<Arg> fn,
                   TypedLocalCheck<Arg> check = nullptr) {
    MethodFn untyped = [fn = std::move(fn)](MethodContext& ctx, const Value& arg) -> std::optional<MethodFailure> {
      auto typed = from_value<Arg>(arg);
      if (!typed) return MethodFailure{ConflictKind::kBadArgument, typed.status().message(), {}, {}};
      return fn(ctx, *typed);
    };
    LocalCheck untyped_check;
    if (check)
      untyped_check = [check = std::move(check)](const StateView& state, const Value& arg) -> std::optional<std::string> {
        auto typed = from_value<Arg>(arg);
        if (!typed) return typed.status().message();
        return check(state, *typed);
      };
    return add(name, version, std::move(untyped), std::move(untyped_check));
  }
  const MethodFn* find(std::string_view name) const;
  // The method's local check, when it has one.
  const LocalCheck* local_check(std::string_view name) const;
  bool contains(std::string_view name) const { return methods_.find(name) != methods_.end(); }

  // BLAKE2b-256 over the sorted (name, version) pairs, 64 hex digits.
  std::string digest() const;

 private:
  struct Entry {
    std::string version;
    MethodFn fn;
    LocalCheck check;
  };
  std::map<std::string, Entry, std::less<>> methods_;
};

}  // namespace replog
