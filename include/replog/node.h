// replog::Node: a data directory an application owns — its log, its state,
// and the writer that commits calls (docs/ARCHITECTURE.md "An update's path").
//
//   replog::Node::init({.dir = "d"});
//   auto node = replog::Node::open({.dir = "d"});
//   node->call("set", replog::Map{{"path", "a"}, {"value", 1}});
//   auto a = node->read("a");
//
// With bindings (replog/binding.h) the same is typed: call("renameTask",
// RenameTask{...}) stores the struct as a record, get<Task>("t1") reads a
// Task, and update("t1", as_read, changed) writes back only the fields that
// changed, so fields a newer schema added and other devices' concurrent
// edits of other fields are kept.
//
// A call is validated against the head state, stored and applied before
// call() returns its id: a call that replay would skip is refused and nothing
// is stored. Methods are those of NodeOptions::methods (the built-ins when
// none is given); they run one at a time under the writer's turn: on the
// node's writer thread, or on a calling thread that found the writer idle and
// commits its own call (docs/ARCHITECTURE.md "Threads").
//
// A writable Node holds the directory's lock until close() or destruction; a
// read-only Node takes no lock and never writes. With NodeOptions::network a
// writable Node also replicates with its peers (on threads of its own) and
// serves the local API, as `replog node` does; the archive is not part of
// this facade yet.
//
// Thread safety: call(), read(), get(), update(), conflicts(), state_hash(),
// fold_status(), subscribe(), vector(), node_id() and cluster_id() may be
// used from any number of threads at once. open, close(), moving and destroying a Node must not overlap any other use
// of it. After close(), call() and read() return an error and the other
// accessors return empty values.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "replog/binding.h"
#include "replog/changes.h"
#include "replog/methods.h"
#include "replog/status.h"
#include "replog/types.h"
#include "replog/value.h"

namespace replog {

// One update as the log holds it (LogSequence, replog/log_sequence.h).
struct LogEntry {
  UpdateId id;
  uint64_t seq = 0;  // its origin's number for it
  std::string method;
  Value arg;              // null when it does not decode; then arg_error says why
  std::string arg_error;
  bool late = false;      // LogSequence::follow(): it sorts before an update handed out earlier
};

struct InitOptions {
  std::string dir;
  std::optional<std::string> cluster;  // null: a new cluster id (else 1..64 of [0-9a-fA-F-_])
  std::optional<Value> schema;         // a schema document, recorded as the log's first update
};

// Replication with other devices, as `replog node` does it (README.md "The
// replog program"): the node listens for peers, dials the given ones, finds
// others on the LAN and serves the local API for other programs. Empty
// `listen`: no networking.
struct NetworkOptions {
  std::string listen;               // tcp://IP:PORT for peers
  std::string advertise;            // what peers should connect back to (default: the bound endpoint)
  std::vector<std::string> peers;   // DEVICE_ID@tcp://HOST:PORT (insecure: tcp://HOST:PORT)
  bool insecure = false;            // plain TCP without device keys: for tests and trusted networks only
  std::optional<bool> discovery;    // LAN discovery; unset: on unless insecure
  int64_t anti_entropy_ms = 1000;   // how often vectors are compared with a few peers
  int log_level = 1;                // to stderr: 0 errors, 1 warnings, 2 info, 3 debug
  // The S3 archive (docs/ARCHIVE.md), as `replog node --archive`: off when
  // empty. Credentials come from the AWS_* variables or ~/.aws.
  std::string archive;              // s3://BUCKET/PREFIX
  std::string s3_endpoint;          // over AWS_ENDPOINT_URL when set
  int64_t archive_poll_ms = 2000;
  int64_t archive_grace_ms = 600'000;
};

struct NodeOptions {
  std::string dir;
  int64_t max_clock_skew_ms = 3'600'000;          // refuse received updates further ahead than this
  size_t undo_window = 1024;                      // updates kept undoable in memory (late arrivals)
  uint64_t checkpoint_interval = 50'000;          // updates between checkpoints
  size_t checkpoints_kept = 3;
  size_t initial_map_bytes = size_t{1} << 30;     // the store's mapped size (sparse); it grows
  std::shared_ptr<const MethodRegistry> methods;  // null: MethodRegistry::with_builtins()
  NetworkOptions network;                         // open() only; a read-only node never networks
};

class Node {
 public:
  // Makes a new data directory. Fails when `dir` already holds one.
  static Status init(const InitOptions& options);
  static Result<Node> open(const NodeOptions& options);
  // State rebuilt from the newest usable checkpoint and the log; call() fails.
  static Result<Node> open_read_only(const NodeOptions& options);

  Node(Node&&) noexcept;
  Node& operator=(Node&&) noexcept;
  ~Node();  // close(), ignoring its status

  // A local call; returns the update's id once it is committed and applied.
  // REQUIRES: a writable node.
  Result<UpdateId> call(const std::string& method, const Value& arg);
  // The same with an application's record as the argument.
  template <BoundRecord Arg>
  Result<UpdateId> call(const std::string& method, const Arg& arg) {
    return call(method, to_value(arg));
  }

  // Record [T's type, id] as a T. NotFound when absent.
  template <BoundRecord T>
  Result<T> get(const std::string& id) const;
  // Every record of T's type, by id.
  template <BoundRecord T>
  Result<std::map<std::string, T>> get_all() const;
  // Makes record [T's type, id] of `obj` (the built-in create).
  template <BoundRecord T>
  Result<UpdateId> create(const std::string& id, const T& obj);
  // Writes back the fields that differ between `as_read` (the object as it was
  // read) and `changed`, with one built-in update; nothing when none differ.
  template <BoundRecord T>
  Result<std::optional<UpdateId>> update(const std::string& id, const T& as_read, const T& changed);

  // A copy of the value at a dotted path ("Task.t1.due"; empty: the root).
  // NotFound when nothing is there.
  Result<Value> read(std::string_view path = {}) const;
  // The same for a path whose keys may hold '.'.
  Result<Value> read(const Path& path) const;
  // The schema in force (a copy), e.g. to check bindings against it.
  Result<TypeRegistry> schema() const;
  // The open conflicts, in update order.
  std::vector<Conflict> conflicts() const;
  // BLAKE2b-256 of the state's canonical encoding: 64 hex digits, equal on
  // every node that folded the same updates.
  std::string state_hash() const;
  // OK, or why state lags the log: a method threw something other than a
  // MethodFailure (replog/methods.h). The fold stopped before that update
  // and is retried before the next call, on a read and when the node is
  // idle; call() is refused meanwhile and read() sees the state before it.
  Status fold_status() const;
  VersionVector vector() const;
  OriginId node_id() const;
  std::string cluster_id() const;

  // The log in replay order: at most `max` updates after `after` (none: from
  // the first). LogSequence is the friendlier way in.
  Result<std::vector<LogEntry>> read_log(std::optional<UpdateId> after, size_t max) const;
  // At most `max` updates stored beyond `seen` (per origin), in replay order,
  // waiting up to `wait` while there are none; raises `seen` past them.
  Result<std::vector<LogEntry>> read_log_since(VersionVector& seen, size_t max, std::chrono::milliseconds wait) const;

  // A feed of what each update applied from now on changed (replog/changes.h),
  // holding at most `capacity` changes. Closed when the node closes.
  std::shared_ptr<ChangeFeed> subscribe(size_t capacity = 4096);

  // Writes a checkpoint, stops the writer and releases the directory.
  Status close();

 private:
  struct Impl;
  explicit Node(std::unique_ptr<Impl> impl);
  static Result<Node> open_networked(const NodeOptions& options);
  Impl* live() const;  // null once closed or moved from
  std::unique_ptr<Impl> impl_;
};

template <BoundRecord T>
Result<T> Node::get(const std::string& id) const {
  const std::string& type = Bind<T>::binding().type_name();
  auto v = read(Path{type, id});
  if (!v) return v.status();
  return from_value<T>(*v, type + "." + id);
}

template <BoundRecord T>
Result<std::map<std::string, T>> Node::get_all() const {
  const std::string& type = Bind<T>::binding().type_name();
  auto v = read(Path{type});
  if (!v && v.status().code() == Status::Code::kNotFound) return std::map<std::string, T>{};
  if (!v) return v.status();
  return from_value<std::map<std::string, T>>(*v, type);
}

template <BoundRecord T>
Result<UpdateId> Node::create(const std::string& id, const T& obj) {
  const RecordBinding<T>& b = Bind<T>::binding();
  return call("create", Map{{"type", b.type_name()}, {"id", id}, {"fields", b.fields_of(obj)}});
}

template <BoundRecord T>
Result<std::optional<UpdateId>> Node::update(const std::string& id, const T& as_read, const T& changed) {
  const RecordBinding<T>& b = Bind<T>::binding();
  Map fields = b.changed_fields(as_read, changed);
  if (fields.empty()) return std::optional<UpdateId>();
  auto done = call("update", Map{{"type", b.type_name()}, {"id", id}, {"fields", std::move(fields)}});
  if (!done) return done.status();
  return std::optional<UpdateId>(*done);
}

}  // namespace replog
