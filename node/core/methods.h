// Methods: what an update means (DESIGN.md §3).
//
// A method is a pure function of (state, argument, update id): no wall clock,
// no randomness, no I/O, so every node replaying the same log computes the
// same state. It changes state only through its MethodContext, which records
// how to undo each change and checks, when the method returns, every record it
// touched against the schema and its unique constraints.
//
// Built-in methods: set, unset, inc, add, remove, create, update, delete,
// schema, resolve, retire (docs/METHODS.md). Applications register their own
// with MethodRegistry::add; changing what a method's argument means requires a
// new name.
//
// Thread safety: build the registry before a node starts; then read-only.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "node/core/state.h"
#include "replog/value.h"

namespace replog {

// Why a method did not apply; replay turns it into a Conflict.
struct MethodFailure {
  ConflictKind kind = ConflictKind::kFailed;
  std::string message;  // for the person at the keyboard (local calls); not stored
  Path path;
  std::vector<UpdateId> involved;
};

class MethodContext {
 public:
  MethodContext(State& state, const UpdateId& id, UndoEntry* undo) : state_(state), id_(id), undo_(undo) {}

  const UpdateId& id() const { return id_; }
  const State& state() const { return state_; }
  const TypeRegistry& schema() const { return state_.schema(); }
  const Value* get(const Path& path) const { return state_.get(path); }

  // Writes `value` at `path` after resolving it against the type the schema
  // declares there (a record field's type under [type, id, field, ...]).
  std::optional<MethodFailure> set(const Path& path, Value value);
  std::optional<MethodFailure> unset(const Path& path);
  State& mutable_state() { return state_; }
  UndoEntry* undo() { return undo_; }

  // Checks the records touched by set/unset (called by replay when the method returns).
  std::optional<MethodFailure> check_records();

 private:
  State& state_;
  UpdateId id_;
  UndoEntry* undo_;
  // Marks record [type, id] as written, remembering it as it was before.
  void touch(const std::string& type, const std::string& id);

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
using LocalCheck = std::function<std::optional<std::string>(const State&, const Value& arg)>;

class MethodRegistry {
 public:
  // The built-in methods.
  static MethodRegistry with_builtins();

  // Registers a method. `version` changes when the method's code changes in a
  // way that could change state: it feeds the digest that checkpoints record.
  Status add(const std::string& name, const std::string& version, MethodFn fn, LocalCheck check = nullptr);
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

// Parses a path argument: a list of strings, or a string split at '.'.
std::optional<MethodFailure> parse_path(const Value* v, Path& out);

}  // namespace replog
