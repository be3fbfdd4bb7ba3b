// Node: one data directory, its update log, its state, and the writer thread
// that commits local calls and received updates (DESIGN.md §2, §3, §5).
//
// A writable Node holds the directory's exclusive lock for its lifetime. All
// writes go through one writer thread: callers queue requests, the writer takes
// every pending request, runs them in one LMDB write transaction (group
// commit) and acknowledges each caller only after that transaction commits.
// Local calls are validated against the head state inside that transaction: a
// call that replay would skip is refused and nothing is stored. Received
// updates are checked for form only (framing, size, seq continuity, hlc order,
// clock skew) and never refused for content.
//
// A read-only Node (open_read_only) takes no lock and never writes, not even a
// checkpoint; it rebuilds state from the newest usable checkpoint and the tail.
//
// Thread safety: call(), ingest(), read() and the accessors may be used from
// any thread. read() runs its function under the state lock.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "node/core/clock.h"
#include "node/core/hlc.h"
#include "node/core/methods.h"
#include "node/core/replayer.h"
#include "storage/update_log.h"

namespace replog {

struct NodeOptions {
  std::string dir;
  const Clock* clock = nullptr;           // null: the system clock
  int64_t max_clock_skew_ms = 3'600'000;  // --max-clock-skew
  size_t undo_window = 1024;              // updates kept undoable in memory
  uint64_t checkpoint_interval = 50'000;  // updates between checkpoints
  size_t checkpoints_kept = 3;
  size_t initial_map_bytes = size_t{1} << 30;  // LMDB map (sparse); it grows when 3/4 full
  std::shared_ptr<const MethodRegistry> methods;  // null: the built-ins
};

struct InitOptions {
  std::string dir;
  std::optional<std::string> cluster;  // null: make a new cluster id
  std::optional<Value> schema;         // recorded as the log's first update
  const Clock* clock = nullptr;
};

// An update as it travels (import, export, peers): its id and its exact body.
struct EncodedUpdate {
  UpdateId id;
  std::string body;
};

struct IngestReport {
  size_t accepted = 0;
  size_t duplicates = 0;
  std::vector<std::string> refused;  // one line each: what and why
  size_t forks = 0;
};

struct NodeInfo {
  OriginId node_id = 0;
  std::string cluster_id;
  VersionVector vector;
  uint64_t updates = 0;
  std::map<OriginId, std::string> forks;  // quarantined origins, with a one-line report
  bool writes_blocked = false;
  std::string writes_blocked_reason;
};

class Node {
 public:
  static Status init(const InitOptions& options);
  static Result<std::unique_ptr<Node>> open(const NodeOptions& options);
  // `at_millis`: fold only updates whose hlc time is at or before it.
  static Result<std::unique_ptr<Node>> open_read_only(const NodeOptions& options,
                                                       std::optional<int64_t> at_millis = std::nullopt);
  ~Node();

  // A local call: validated against the head, stored, applied; returns its id
  // once committed. REQUIRES: a writable node.
  Result<UpdateId> call(const std::string& method, const Value& arg);
  // Updates from elsewhere (import, peers), checked for form only.
  Result<IngestReport> ingest(std::vector<EncodedUpdate> updates);

  // Stores what this node knows of its peers (endpoint -> MessagePack state),
  // through the writer. REQUIRES: a writable node.
  Status save_peers(std::map<std::string, std::string> peers);

  // Writes a checkpoint and stops the writer. Called by the destructor too.
  Status close();

  // Called by the writer thread after each commit with the updates it stored
  // (local calls and received ones), in commit order. Must not block.
  // REQUIRES: set before the first call()/ingest().
  using CommitListener = std::function<void(const std::vector<EncodedUpdate>&)>;
  void set_commit_listener(CommitListener listener) { commit_listener_ = std::move(listener); }

  // Updates of `origin` from seq `from` on, at most `max_count` and stopping
  // once `max_bytes` of bodies are gathered (always at least one when held).
  Result<std::vector<EncodedUpdate>> read_range(OriginId origin, uint64_t from, uint64_t max_count,
                                                size_t max_bytes) const;
  VersionVector vector() const;
  const std::string& cluster_id() const { return cluster_id_; }

  // Runs fn on the state, first folding in what a catch-up stored but did not
  // fold yet (see process()).
  void read(const std::function<void(const State&)>& fn) const;
  // The same without folding: false (fn not run) while folding is pending.
  bool read_if_current(const std::function<void(const State&)>& fn) const;
  std::string state_hash() const;
  NodeInfo info() const;
  UpdateLog& log() { return *log_; }
  OriginId node_id() const { return node_id_; }
  const MethodRegistry& methods() const { return *methods_; }

 private:
  struct Request;
  explicit Node(const NodeOptions& options);
  Status load(LogTxn& txn, std::optional<int64_t> at_millis);
  Status replay_from(LogTxn& txn, std::optional<UpdateId> after, std::optional<int64_t> at_millis);
  Status load_state(LogTxn& txn, const UpdateId& below, std::optional<int64_t> at_millis);
  Status refold_locked() const;
  // Queues a request for the writer and waits until its batch is done.
  Status submit(const std::shared_ptr<Request>& req);
  void writer_loop();
  void process(std::vector<std::shared_ptr<Request>>& batch);
  Status write_checkpoint();
  Status prune_checkpoints(LogTxn& txn);

  NodeOptions options_;
  std::shared_ptr<const MethodRegistry> methods_;
  SystemClock system_clock_;
  const Clock* clock_;
  std::unique_ptr<UpdateLog> log_;
  int lock_fd_ = -1;
  bool writable_ = false;
  OriginId node_id_ = 0;
  std::string cluster_id_;

  mutable std::mutex state_mu_;  // guards replayer_ (the state), refold_from_
  // mutable: a reader may run a re-fold the writer deferred (lazy, logically const).
  mutable Replayer replayer_;
  // When set, state lags the log: updates from this key on were stored but not
  // folded in (see process()); refold_locked() catches up.
  mutable std::optional<UpdateId> refold_from_;
  static constexpr int64_t kRefoldDelayMs = 1000;
  int64_t refold_due_ms_ = 0;    // writer thread
  bool refold_pending_ = false;  // writer thread

  // Writer-thread state.
  std::unique_ptr<HybridClock> hlc_;
  uint64_t own_seq_ = 0;
  uint64_t since_checkpoint_ = 0;
  size_t last_batch_size_ = 0;
  bool writes_blocked_ = false;
  std::set<OriginId> quarantined_;  // origins with a fork (the forks database), kept in memory

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<std::shared_ptr<Request>> queue_;  // guarded by queue_mu_
  bool stopping_ = false;                        // guarded by queue_mu_
  std::thread writer_;
  bool closed_ = false;
  CommitListener commit_listener_;
};

// Writes a checkpoint of `state` (the fold up to `cut`, with the per-origin
// seqs in `vector`) in the on-disk format; exposed for tests and tools.
std::string encode_checkpoint(const UpdateId& cut, const std::map<OriginId, uint64_t>& vector,
                              const std::string& methods_digest, const State& state);
struct Checkpoint {
  UpdateId cut;
  std::map<OriginId, uint64_t> vector;
  std::string methods_digest;
  std::string state_bytes;
};
Result<Checkpoint> decode_checkpoint(std::string_view bytes);

}  // namespace replog
