// State: the fold of the log (docs/ARCHITECTURE.md "Replay") — application data, open
// conflicts, the schema in force, retired origins — plus what replay needs to
// decide the next update (the unique index, the last writer of each record).
//
// Every change goes through State's mutators, which append the inverse of the
// change to an UndoEntry when one is given: that is how an update arriving a
// few positions late costs O(k) (undo k, apply, redo k).
//
// Records live at path [type, id]. For types with unique fields, an index maps
// each field value to the records holding it; it is derived from the data and
// maintained by write(), so undo keeps it right too.
//
// Thread safety: none; the owner (Replayer, under the node's state mutex) serialises.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "replog/schema.h"
#include "replog/types.h"
#include "replog/value.h"
#include "protocol/update.h"

namespace replog {

class State;

// parse_dotted_path (replog/types.h) into `out`, reusing its vector and
// strings: no allocation when `out` already holds as many segments, each as long.
void parse_dotted_path_into(std::string_view text, Path& out);

// The inverse of every change one update made, newest last.
struct UndoEntry {
  // `path` is where undo writes `old` back; `written` is where the update
  // wrote, when deeper (maps created on the way are undone at the topmost).
  struct PathOp { Path path; std::optional<Value> old; Path written; };
  struct ConflictOp { UpdateId key; std::optional<Conflict> old; };
  struct WriterOp { std::string record; std::optional<UpdateId> old; };
  struct SchemaOp { std::shared_ptr<const TypeRegistry> old; };
  struct RetiredOp { OriginId origin; std::optional<uint64_t> old; };
  struct UnknownOp {};
  using Op = std::variant<PathOp, ConflictOp, WriterOp, SchemaOp, RetiredOp, UnknownOp>;

  UpdateId id;
  uint64_t seq = 0;
  uint64_t prev_origin_seq = 0;  // what applied_vector[id.origin] was before
  std::string method;            // for the replayer's observer
  bool heard = false;            // the observer heard it applied (so it hears it rolled back)
  std::vector<Op> ops;
};

class State {
 public:
  State();

  const Value& root() const { return root_; }
  const Value* get(const Path& path) const;
  const std::map<UpdateId, Conflict>& conflicts() const { return conflicts_; }
  const TypeRegistry& schema() const { return *schema_; }
  std::shared_ptr<const TypeRegistry> schema_ptr() const { return schema_; }
  const std::map<OriginId, uint64_t>& retired() const { return retired_; }
  uint64_t unknown_method_updates() const { return unknown_; }
  // The last update that wrote record [type, id].
  std::optional<UpdateId> record_writer(const std::string& type, const std::string& id) const;
  // The first record (by id) of `type` other than `except` holding `value`
  // in unique field `field`, if any.
  std::optional<std::string> unique_holder(const std::string& type, const std::string& field, const Value& value,
                                           const std::string& except) const;

  // --- mutators; each records its inverse in `undo` when not null ---
  // Writes (or with nullopt erases) the value at `path`, creating maps on the
  // way. Fails when a step of the path is not a map or record.
  Status write(const Path& path, std::optional<Value> value, UndoEntry* undo);
  void add_conflict(Conflict c, UndoEntry* undo);
  void remove_conflict(const UpdateId& key, UndoEntry* undo);
  void set_writer(const std::string& type, const std::string& id, std::optional<UpdateId> writer, UndoEntry* undo);
  void set_schema(std::shared_ptr<const TypeRegistry> schema, UndoEntry* undo);
  void set_retired(OriginId origin, uint64_t last_seq, UndoEntry* undo);
  void count_unknown(UndoEntry* undo);

  // Reverts one update's changes.
  void undo(const UndoEntry& entry);

  // BLAKE2b-256 of the canonical encoding (PROTOCOL.md "State hash").
  std::array<uint8_t, 32> hash() const;
  std::string hash_hex() const;
  // The canonical encoding: [data, conflicts, schema document, retired].
  std::string canonical_encoding() const;

  // Everything needed to continue replay, for checkpoints.
  std::string encode() const;
  static Result<State> decode(std::string_view bytes);

 private:
  static std::string record_key(const std::string& type, const std::string& id) { return type + '\0' + id; }
  void unindex_record(const std::string& type, const std::string& id, const Value& record);
  void index_record(const std::string& type, const std::string& id, const Value& record);
  // Takes out of (add=false) or puts into the unique index every record a
  // write at `path` can change: [type, id] itself, or all of [type].
  void reindex_under(const Path& path, bool add);
  void rebuild_index();
  // [data, conflicts, schema document, retired], without an array header.
  void append_hashed_parts(std::string& out) const;

  Value root_;
  std::map<UpdateId, Conflict> conflicts_;
  std::shared_ptr<const TypeRegistry> schema_;
  std::map<OriginId, uint64_t> retired_;
  uint64_t unknown_ = 0;
  std::map<std::string, UpdateId> writers_;  // record_key -> last writer
  // type -> field -> canonical bytes of value -> ids of the records holding it.
  // Every holder is kept (a schema may make a field unique over data that
  // already repeats it), so the index is a function of the data alone.
  std::map<std::string, std::map<std::string, std::map<std::string, std::set<std::string>>>> unique_;
};

}  // namespace replog
