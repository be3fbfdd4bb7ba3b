// engine::Node: one data directory, its update log, its state, and the writer
// thread that commits local calls and received updates (docs/ARCHITECTURE.md
// "An update's path").
//
// A writable Node holds the directory's lock (storage/data_dir.h) for its
// lifetime: open() takes it as a node does, or is handed the one a command
// took (DataDir::lock_for_command). All writes go through one writer thread:
// callers queue requests, the writer takes every pending request, runs them in
// one LMDB write transaction (group commit) and acknowledges each caller only
// after that transaction commits.
// Local calls are validated against the head state inside that transaction: a
// call that replay would skip is refused and nothing is stored. Received
// updates are judged for form only (check_received) and never refused for
// content.
//
// The node's origin is its own: when it learns that its origin forked, or that
// others hold updates of it that it never wrote (a copied data directory, or a
// peer writing in its name), it keeps those updates like any others and moves
// to a fresh origin id, so that nothing a peer sends can stop its writes.
//
// A read-only Node (open_read_only) takes no lock and never writes, not even a
// checkpoint; it rebuilds state from the newest usable checkpoint and the tail.
//
// Thread safety: call(), ingest(), read() and the accessors may be used from
// any thread. read() runs its function under the state lock.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "node/core/clock.h"
#include "node/core/hlc.h"
#include "node/core/methods.h"
#include "node/core/replayer.h"
#include "node/core/revocations.h"
#include "node/engine/side_thread.h"
#include "node/sync/sync_store.h"
#include "replog/changes.h"
#include "protocol/origin_proof.h"
#include "storage/env.h"

namespace replog {
class UpdateLog;
class LogTxn;
struct StoredHead;
struct OriginRecord;
struct Checkpoint;
}  // namespace replog

namespace replog::engine {

struct NodeOptions {
  std::string dir;
  const Clock* clock = nullptr;           // null: the system clock
  int64_t max_clock_skew_ms = 3'600'000;  // --max-clock-skew
  size_t undo_window = 1024;              // updates kept undoable in memory
  uint64_t checkpoint_interval = 50'000;  // updates between checkpoints
  size_t checkpoints_kept = 3;
  size_t initial_map_bytes = size_t{1} << 30;  // LMDB map (sparse); it grows when 3/4 full
  std::shared_ptr<const MethodRegistry> methods;  // null: the built-ins
  // How long open() waits for a directory lock someone else holds (0: it fails
  // at once; `replog node` waits for a short-lived command), and where it says,
  // once, whose lock it waits for (null: nowhere).
  int64_t lock_wait_ms = 0;
  std::function<void(const std::string&)> on_lock_wait;
  // Signed origins: received updates are stored only once a verified head
  // covers them. Off only for a benchmark's baseline and for tests of replay
  // that feed hand-made updates; then received updates are judged for form
  // alone, as before signed origins.
  bool verify_origins = true;
  // Membership (signed origins): whether a device key is a member's, trusted
  // directly or introduced. An origin counts when its key, or the device key
  // that certifies it, is a member's; a revoked origin's runs count while they
  // start at or below its last seq. Runs of other origins are held in memory
  // (bounded), not stored, until membership_changed() finds them a member.
  // Null: every origin counts (no trust list: `--insecure`, tests, import).
  // Called from the writer and from verify_ahead()'s caller: must be safe
  // from any thread.
  std::function<bool(std::string_view device_key)> is_member;
  // Open a detached restore (DATA/DETACHED) for writing anyway: the restore
  // that fills it, and `restore --attach`. Otherwise a writable open refuses it.
  bool attach = false;
  // A restore's catch-up: received updates are stored but folded only when
  // state is needed (a read, a local call, close), never on their own, so
  // that a snapshot adopted afterwards (adopt_checkpoint) saves their replay.
  bool defer_fold = false;
  // What a batch leaves due, a re-fold (a late update) and a checkpoint, is
  // done before the batch's callers are answered, and a re-fold that stops is
  // tried again with the next batch, not on a timer. Off: callers do not wait
  // for them (a checkpoint's commit is a sync to disk), and a re-fold waits
  // until the writer has been idle a while. On for the simulator, which must
  // repeat a run exactly: done beside the driving thread, they would store
  // heads and reach fault points while that thread reads the log, in an
  // order that changes from run to run.
  bool finish_before_answering = false;
  // A caller of call(), ingest() and the other waiting requests that finds
  // the writer idle and nothing queued runs its request itself, as a batch of
  // one, instead of waking the writer thread and sleeping until it answers
  // (two thread wake-ups, most of a call's time on a fast disk). Batches still
  // run one at a time and in the same steps; a checkpoint or re-fold the batch
  // leaves due is handed to the writer thread. Off: every batch runs on the
  // writer thread.
  bool callers_lead = true;
};

struct InitOptions {
  std::string dir;
  std::optional<std::string> cluster;  // null: make a new cluster id
  std::optional<Value> schema;         // recorded as the log's first update
  const Clock* clock = nullptr;
};

struct NodeInfo {
  OriginId node_id = 0;
  std::string cluster_id;
  VersionVector vector;
  uint64_t updates = 0;
  std::map<OriginId, std::string> forks;           // quarantined origins, with a one-line report
  std::map<OriginId, std::string> former_origins;  // origins this node left, with the reason
  // Per origin, the newest signed head held (signed origins): what is verified.
  std::map<OriginId, uint64_t> verified;
  // Per origin with fork evidence held: the fork seq it proves.
  std::map<OriginId, uint64_t> fork_evidence;
  // Per origin with a revocation in effect: the last seq that still counts.
  std::map<OriginId, uint64_t> revoked;
  // Per origin whose key is not a member's: updates held back and their bytes.
  struct Held {
    uint64_t updates = 0;
    uint64_t bytes = 0;
  };
  std::map<OriginId, Held> held;
};

// The key this node writes its origin with (docs/ARCHITECTURE.md "Signed
// origins"): its device key, or after a fork a fresh key the device key
// certifies.
struct OriginSigner {
  std::string secret;  // 64 bytes, libsodium form
  std::string key;     // 32 bytes
  std::string device;  // 32 bytes when `key` is not the device key; empty otherwise
  std::string cert;    // 64 bytes with `device`
};

// Where this node's own chain stands (writer thread).
struct OwnChain {
  uint64_t seq = 0;
  proof::Chain chain{};
  uint64_t bytes = 0;         // body bytes of updates 1..seq
  uint64_t signed_bytes = 0;  // `bytes` at the newest signed head
  uint64_t signed_seq = 0;    // seq of the newest signed head
};

class Node final : public SyncStore {
 public:
  static Status init(const InitOptions& options);
  // `lock`: the directory lock when the caller holds it already; null: open()
  // takes it (DataDir::lock_for_node, waiting options.lock_wait_ms).
  static Result<std::unique_ptr<Node>> open(const NodeOptions& options, std::unique_ptr<FileLock> lock = nullptr);
  // `at_millis`: fold only updates whose hlc time is at or before it.
  static Result<std::unique_ptr<Node>> open_read_only(const NodeOptions& options,
                                                       std::optional<int64_t> at_millis = std::nullopt);
  ~Node() override;

  // A local call: validated against the head, stored, applied; returns its id
  // once committed. REQUIRES: a writable node.
  Result<UpdateId> call(const std::string& method, const Value& arg);

  // --- SyncStore ---
  OriginId node_id() const override { return node_id_.load(); }
  std::string cluster_id() const override { return cluster_id_; }
  OwnOriginKey own_origin_key() const override;
  VersionVector vector() const override;
  Result<Range> read_range(OriginId origin, uint64_t from, uint64_t max_count, size_t max_bytes) const override;
  // Two or more asks in one read transaction and one walk of the log in key
  // order (LogTxn::for_each_of_origins); a walk that fails is done again one
  // ask at a time, so that a damaged entry fails only its own answer.
  std::vector<Result<Range>> read_ranges(const std::vector<RangeAsk>& asks) const override;
  // Updates from elsewhere (import, peers) with the heads that cover them:
  // each origin's run is stored once its head verifies and its bytes chain
  // to it (options.verify_origins), and judged for form.
  // REQUIRES: a writable node.
  Result<IngestReport> ingest(std::vector<Update> updates, std::vector<proof::Head> heads) override;
  // SyncStore::verify_ahead, from the loop thread while the writer may be
  // busy (docs/ARCHITECTURE.md "Relaying ahead of the writer"). An origin's
  // tip is left by the writer when it stores a run of it and moved on by each
  // run verified here; it goes when the writer refuses a run of the origin
  // for anything but a gap or a repeat, or keeps fork evidence of it. A
  // signature verified here is not verified again when the writer stores its
  // run. Thread safety: any thread.
  VerifiedAhead verify_ahead(const std::vector<Update>& updates, const std::vector<proof::Head>& heads) override;
  // Runs verify_ahead() passed, and the signatures the writer then took from
  // it instead of verifying them again.
  struct AheadCounts {
    uint64_t runs = 0;
    uint64_t signatures_reused = 0;
  };
  AheadCounts ahead_counts() const;
  // The same through the writer's queue without waiting: `done` runs on the
  // writer thread once the batch holding these updates has committed (or
  // failed), and must not call into this node.
  void ingest_async(std::vector<Update> updates, std::vector<proof::Head> heads, IngestDone done) override;
  // The same without heads: for a node that does not verify (tests, benchmarks).
  Result<IngestReport> ingest(std::vector<Update> updates) { return ingest(std::move(updates), {}); }
  // REQUIRES: a writable node.
  Status save_peers(std::map<std::string, std::string> peers) override;
  std::vector<std::string> evidence() const override;
  // Fork evidence from a peer: kept when it proves a fork this node has no
  // evidence of, or one at a lower seq. REQUIRES: a writable node.
  Result<bool> take_evidence(std::string bytes) override;
  std::map<OriginId, uint64_t> unverified() const override;
  std::map<OriginId, ChainTip> tips() const override;

  // Membership changed: runs held back for it are ingested again (and held
  // again when their origin is still not a member's). REQUIRES: a writable node.
  Result<IngestReport> membership_changed();
  // The device keys of revoked origins this node knows the key of: a
  // revocation in effect removes them from trust (the daemon does). Grows with
  // revocation_generation().
  std::vector<std::string> revoked_member_keys() const;
  // The revocations in effect: origin -> its last seq (cheap; any thread).
  std::map<OriginId, uint64_t> revoked_origins() const;
  uint64_t revocation_generation() const { return revocation_generation_.load(); }

  // A restore's shortcut (docs/ARCHIVE.md "Restore"): takes `checkpoint`
  // (encode_checkpoint bytes, such as an archive snapshot carries) as the
  // state at its cut when it is exact for the log held: the held updates at
  // or below its cut are exactly its vector, it was folded with this node's
  // methods, and no update of its vector is left out, by the forks and
  // revocations held now or by the revocations inside the vector. Otherwise
  // returns why not (refused) and nothing changes. State is folded from it
  // and the updates after it on the next read. REQUIRES: a writable node.
  Status adopt_checkpoint(std::string_view checkpoint);

  // Writes a checkpoint and stops the writer. Called by the destructor too.
  Status close();

  // The newest head this node signed for its own origin (null before its
  // first update), with the key it carries when `with_key`.
  std::optional<proof::Head> own_head(bool with_key) const;

  // Called after each commit, by whoever holds the writer's turn (the writer
  // thread, or a caller that leads: NodeOptions::callers_lead), with the updates it stored
  // (local calls and received ones), in commit order, and the heads that
  // cover them (each origin's runs end at one; a head carries its key when
  // its run starts at seq 1). Must not block.
  // REQUIRES: set before the first call()/ingest().
  using CommitListener = std::function<void(const std::vector<Update>&, const std::vector<proof::Head>&)>;
  void set_commit_listener(CommitListener listener) { commit_listener_ = std::move(listener); }
  // Called under the writer's turn, as above, with the received updates of a batch whose
  // checks passed (chains, heads, signatures), and their heads, before the
  // batch is folded and committed: what a node may relay before it commits.
  // The updates of a batch that did not commit (a full map, a failed sync)
  // are passed again with its next try. Must not block.
  // REQUIRES: set before the first ingest(), beside a commit listener.
  void set_verified_listener(CommitListener listener) { verified_listener_ = std::move(listener); }

  // The log in key (replay) order: at most `max` updates with key > `after`
  // (none: from the start).
  Result<std::vector<Update>> read_log(std::optional<UpdateId> after, size_t max) const;
  // Updates stored beyond `seen` (per origin, the seq already read), at most
  // `max`, each origin's taken as a prefix, in key order; `seen` is raised to
  // what is returned. A follower that calls it again misses nothing, late
  // updates included.
  Result<std::vector<Update>> read_since(VersionVector& seen, size_t max) const;
  // Each commit that stores updates raises the generation; waits at most
  // `wait` for it to pass `seen` and returns the generation then.
  uint64_t wait_for_commit(uint64_t seen, std::chrono::milliseconds wait) const;
  uint64_t commit_generation() const {
    std::lock_guard<std::mutex> l(commit_mu_);
    return commit_generation_;
  }

  // Receives what each applied update changed (include/replog/changes.h),
  // after each commit and after a re-fold, in the order state went through
  // them; the changes of a refused call or an aborted batch are dropped, and
  // a rebuilt state is one kReloaded. Called with the state lock held, from
  // the writer or a reading thread: must not block or use this node.
  using ChangeSink = std::function<void(const std::vector<Change>&)>;
  void set_change_sink(ChangeSink sink);

  // Runs fn on the state, first folding in what a catch-up stored but did not
  // fold yet (see fold_received()).
  void read(const std::function<void(const State&)>& fn) const;
  // The same without folding: false (fn not run) while folding is pending.
  bool read_if_current(const std::function<void(const State&)>& fn) const;
  std::string state_hash() const;
  // CPU time the writer has spent checking received updates (their chains,
  // heads and signatures, with the reads those need) since the node opened.
  double check_cpu_seconds() const { return static_cast<double>(check_cpu_ns_.load()) * 1e-9; }
  // The state as a checkpoint at the newest update folded (encode_checkpoint:
  // that cut, the vector folded, the methods digest) with the state's hash:
  // what an archive snapshot carries. Empty bytes when nothing is folded.
  struct HeadCheckpoint {
    UpdateId cut;
    VersionVector vector;
    std::string bytes;
    std::string state_hash;  // 32 bytes
  };
  HeadCheckpoint head_checkpoint() const;
  // OK, or why state lags the log: a method threw something other than a
  // MethodFailure (docs/ARCHITECTURE.md "Replay"). The fold stopped before
  // that update and is tried again before the next local call, on a read,
  // and when the writer is idle; local calls are refused meanwhile.
  Status fold_status() const;
  NodeInfo info() const;
  // What peers last told this node (endpoint -> MessagePack state).
  std::map<std::string, std::string> saved_peers() const;
  const std::string& dir() const { return options_.dir; }
  const MethodRegistry& methods() const { return *methods_; }
  // The size of the LMDB map now (it grows); for benchmarks and status.
  size_t map_bytes() const;
  // Requests waiting for the writer's turn; for tests and status.
  size_t queued() const;
  // The cut of the newest checkpoint stored (null: none yet); for metrics.
  std::optional<UpdateId> newest_checkpoint_cut() const;

 private:
  struct Request;
  struct Batch;
  explicit Node(const NodeOptions& options);

  // --- loading and replay (node.cc) ---
  Status load(LogTxn& txn, std::optional<int64_t> at_millis);
  Status load_state(LogTxn& txn, const UpdateId& below, std::optional<int64_t> at_millis);
  Status load_state_quietly(LogTxn& txn, const UpdateId& below, std::optional<int64_t> at_millis);
  Status replay_from(LogTxn& txn, std::optional<UpdateId> after, std::optional<int64_t> at_millis);
  Status refold_locked() const;
  void note_halt(const UpdateId& id, const std::string& why) const;
  Status read_writer_state(LogTxn& txn, bool at_open);
  Status write_checkpoint();
  Status write_checkpoint_once();
  Status with_room(const std::function<Status()>& once);
  Status prune_checkpoints(LogTxn& txn);
  Status check_exact(LogTxn& txn, const Checkpoint& cp) const;

  // --- the writer (writer.cc) ---
  Status submit(const std::shared_ptr<Request>& req);
  Status enqueue(const std::shared_ptr<Request>& req);
  void writer_loop();
  bool take_batch(std::vector<std::shared_ptr<Request>>& batch);
  Status commit_and_sign(Batch& b);
  bool lead(const std::shared_ptr<Request>& req);
  void run_turn(std::vector<std::shared_ptr<Request>>& batch, bool leading);
  void process(std::vector<std::shared_ptr<Request>>& batch);
  void process_locked(std::vector<std::shared_ptr<Request>>& batch);

  // --- change subscriptions (changes.cc); REQUIRES: state_mu_ held ---
  void observe(const Replayer::Event& e) const;
  void note_reloaded() const;
  void publish_changes_locked() const;
  // While one lives, the replayer's steps are not heard (a rebuild, a checkpoint).
  struct QuietChanges {
    explicit QuietChanges(const Node& n) : node(n) { ++node.quiet_changes_; }
    ~QuietChanges() { --node.quiet_changes_; }
    QuietChanges(const QuietChanges&) = delete;
    QuietChanges& operator=(const QuietChanges&) = delete;
    const Node& node;
  };
  Status run_batch(Batch& b);
  Status store_received(Batch& b, Request& req);
  Status verify_received(Batch& b, Request& req);
  Status store_one_received(Batch& b, Request& req, const Update& u);
  Status store_other_copies(Batch& b, Request& req, OriginId origin, const std::vector<const Update*>& first,
                            std::vector<const Update*>& others, std::vector<const proof::Head*>& hs,
                            size_t refused_before);
  Status store_verified(Batch& b, Request& req, OriginId origin, std::vector<const Update*>& ups,
                        std::vector<const proof::Head*>& heads);
  const proof::Head* chosen_head(Batch& b, OriginId origin, const std::vector<const proof::Head*>& heads, size_t from,
                                 size_t to, const std::string& batch_key);
  Status store_run(Batch& b, Request& req, OriginId origin, const std::vector<const Update*>& run,
                   const proof::Head& head, const std::string& batch_key);
  Status attest_held(Batch& b, OriginId origin, const std::vector<const Update*>& run, const proof::Head& head,
                     std::string key, std::optional<OriginRecord>& rec);
  Status fork_by_proof(Batch& b, Request& req, OriginId origin, const std::vector<const Update*>& run,
                       const proof::Head& head, const std::string& key);
  Status fold_received(Batch& b);
  void start_fold_beside(Batch& b);
  // Waits for a fold started beside (start_fold_beside) and rethrows what it threw.
  void finish_fold_beside(Batch& b);
  void chain_ahead(Batch& b, const std::map<OriginId, std::vector<const Update*>>& by_origin,
                   const std::map<OriginId, std::vector<const proof::Head*>>& heads);
  static bool chained_ahead(const Batch& b, OriginId origin, const std::string& key,
                            const std::vector<const Update*>& run, size_t fresh, proof::Chain& c);
  // Whether chain_ahead verified this very head under `key`.
  static bool verified_ahead(const Batch& b, OriginId origin, const proof::Head& head, const std::string& key);
  void fold_at_head(const Batch& b);
  Status store_staged(Batch& b);
  Status store_calls(Batch& b);
  Status store_one_call(Batch& b, Request& req);
  bool retires_own_origin(Request& req);
  Status store_peers(Batch& b);
  Status leave_origin(Batch& b, const std::string& why);
  Status store_evidence(Batch& b, const proof::Evidence& e, bool& kept);
  Status reissue(Batch& b, OriginId old_origin, uint64_t from_seq, uint64_t to_seq);
  Status store_evidence_requests(Batch& b);
  Status leave_blocked_origin();

  // --- membership and revocations (membership.cc) ---
  Status index_revocations();
  void note_revocation(Batch& b, const UpdateView& u);
  Status refresh_left_out(Batch& b);
  bool member_allows(Batch& b, OriginId origin, const std::vector<const Update*>& ups,
                     const std::string& batch_key);
  void hold(OriginId origin, const std::vector<const Update*>& ups, const std::vector<const proof::Head*>& heads);
  void recover_after_abort();

  // --- signed origins (signing.cc) ---
  Status load_signer(LogTxn& txn);
  Status upgrade_storage();
  Status upgrade_storage_once();
  Status sign_legacy_origin(LogTxn& txn);
  Status make_fresh_origin(LogTxn& txn);
  void chain_own(Batch& b, const Update& u);
  void owe_head(Batch& b, uint8_t flags);
  Status put_own_record(LogTxn& txn, bool final = false);
  Status finish_own_run(Batch& b, uint64_t before, uint8_t flags = 0);
  void sign_committed(Batch& b);
  Status store_unstored_heads(LogTxn& txn, size_t& puts);
  Status store_head(LogTxn& txn, OriginId origin, const StoredHead& head);

  NodeOptions options_;
  std::shared_ptr<const MethodRegistry> methods_;
  SystemClock system_clock_;
  const Clock* clock_;
  std::unique_ptr<UpdateLog> log_;
  std::unique_ptr<FileLock> lock_;
  bool writable_ = false;
  std::atomic<OriginId> node_id_{0};  // written by the writer thread only
  std::string cluster_id_;            // set by open() before any other thread runs; never written after

  mutable std::mutex state_mu_;  // guards replayer_ (the state), refold_from_, fold_status_, the change members
  // mutable: a reader may run a re-fold the writer deferred (lazy, logically const).
  mutable Replayer replayer_;
  // When set, state lags the log: updates from this key on were stored but not
  // folded in (see fold_received()); refold_locked() catches up.
  mutable std::optional<UpdateId> refold_from_;
  // Not OK while the fold is stopped at refold_from_ (note_halt); guarded by state_mu_.
  mutable Status fold_status_;
  // Change subscriptions, guarded by state_mu_: the sink, what it has not been
  // handed yet, and how many QuietChanges live.
  ChangeSink change_sink_;
  mutable std::vector<Change> pending_changes_;
  mutable int quiet_changes_ = 0;
  static constexpr int64_t kRefoldDelayMs = 1000;
  static constexpr int64_t kMaxRefoldRetryMs = 60'000;
  // Owned by whoever holds the writer's turn; take_batch reads them under
  // queue_mu_ only while the turn is free.
  int64_t refold_retry_ms_ = kRefoldDelayMs;  // doubles while a stopped fold stops again
  int64_t refold_due_ms_ = 0;
  bool refold_pending_ = false;

  // Writer-thread state.
  std::unique_ptr<HybridClock> hlc_;
  uint64_t own_seq_ = 0;
  uint64_t since_checkpoint_ = 0;
  size_t last_batch_size_ = 0;
  std::set<OriginId> quarantined_;  // origins with a fork (the forks database), kept in memory
  OriginSigner signer_;
  std::string device_secret_;  // 64 bytes: certifies fresh origin keys
  OwnChain own_chain_;
  std::vector<std::pair<OriginId, proof::Head>> unstored_heads_;  // signed after a commit, stored by the next
  std::vector<uint64_t> unstored_head_bytes_;                     // their `bytes`, alike
  // This log's chain of an origin at recent seqs, committed (updates are never
  // rewritten, so an entry stays true): repeats of recent runs, which every
  // peer of a mesh pushes, are checked against it without re-hashing the log.
  static constexpr size_t kRecentChains = 64;
  std::map<OriginId, std::deque<std::pair<uint64_t, proof::Chain>>> recent_chains_;
  std::optional<proof::Chain> recent_chain(OriginId origin, uint64_t seq) const;
  void remember_chains(const Batch& b);

  // verify_ahead(): per origin, the newest run verified (by the writer or
  // ahead of it), and the signatures verified ahead that the writer has not
  // taken yet (oldest first, at most kAheadSignatures). Not tips(): that is
  // what the log holds, read from the records.
  struct AheadTip {
    uint64_t seq = 0;
    uint64_t last_hlc = 0;
    proof::Chain chain{};
    std::string key;
    std::string member_key;  // whose membership admits the origin (OriginRecord::member_key)
  };
  static constexpr size_t kAheadSignatures = 4096;
  mutable std::mutex ahead_mu_;
  std::map<OriginId, AheadTip> ahead_tips_;  // guarded by ahead_mu_
  std::set<std::string> ahead_signatures_;   // guarded by ahead_mu_; ahead_fingerprint()s
  std::deque<std::string> ahead_order_;      // guarded by ahead_mu_; the same, oldest first
  AheadCounts ahead_counts_;                 // guarded by ahead_mu_
  // The writer's side: a run stored (the record after it), a run refused.
  void leave_ahead_tip(OriginId origin, const OriginRecord& rec, uint64_t last_hlc);
  void drop_ahead_tip(OriginId origin);
  // drop_ahead_tip(), when rep.refused[from, end) refuses a run for more than
  // a gap, a repeat or a missing head.
  void drop_ahead_tip_if_refused(OriginId origin, const IngestReport& rep, size_t from);
  // Whether `head`'s signature under `key` was verified ahead; taken once.
  bool take_ahead_signature(const proof::Head& head, std::string_view key);
  // proof::check_head, unless verify_ahead() verified that signature already.
  Status check_head_once(const proof::Head& head, std::string_view key);

  std::vector<Revocation> revocations_;  // every revoke update held, in key order (writer thread)
  mutable std::mutex revoked_mu_;        // guards revoked_
  // vector(): the last one read, by the id of the read transaction it was read
  // in. The sync engine asks for it on most frames, and it changes only with a
  // commit.
  mutable std::mutex vector_mu_;
  mutable uint64_t vector_txn_ = 0;  // guarded by vector_mu_; 0: none read yet
  mutable VersionVector vector_read_;  // guarded by vector_mu_
  std::map<OriginId, uint64_t> revoked_;  // the revocations in effect: origin -> last seq
  std::atomic<uint64_t> revocation_generation_{0};
  std::atomic<uint64_t> check_cpu_ns_{0};  // check_cpu_seconds()
  struct HeldRuns {
    std::vector<Update> updates;
    std::vector<proof::Head> heads;
    uint64_t bytes = 0;
    // What is held already, so that a run offered again is not held twice:
    // (seq, id) of updates, (seq, signature) of heads.
    std::set<std::pair<uint64_t, UpdateId>> update_keys;
    std::set<std::pair<uint64_t, std::string>> head_keys;
  };
  static constexpr uint64_t kMaxHeldBytes = uint64_t{16} << 20;
  mutable std::mutex held_mu_;                 // guards held_, held_bytes_
  std::map<OriginId, HeldRuns> held_;          // runs of origins not a member's
  uint64_t held_bytes_ = 0;

  mutable std::mutex own_head_mu_;       // guards own_head_, own_origin_ (read by the sync engine's thread)
  std::optional<proof::Head> own_head_;  // the newest head signed for node_id_
  OwnOriginKey own_origin_;              // node_id_ and signer_'s key and cert, as a Hello carries them

  mutable std::mutex commit_mu_;               // guards commit_generation_
  mutable std::condition_variable commit_cv_;  // notified when it rises
  uint64_t commit_generation_ = 0;

  mutable std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<std::shared_ptr<Request>> queue_;  // guarded by queue_mu_
  bool stopping_ = false;                        // guarded by queue_mu_
  // The writer's turn, guarded by queue_mu_: a batch, re-fold or checkpoint
  // is running, on the writer thread or on a caller that leads (lead()).
  // Whoever holds the turn owns the writer-thread state above.
  bool writer_busy_ = false;
  bool checkpoint_owed_ = false;  // guarded by queue_mu_: a leader left one due
  std::thread writer_;
  // Signs a batch's heads while its commit syncs (commit_and_sign), hashes
  // half the chains of a request and checks their heads (chain_ahead), and
  // folds a large batch at the head while its puts, and without calls its
  // commit, run (start_fold_beside).
  SideThread side_;
  bool closed_ = false;
  CommitListener commit_listener_;
  CommitListener verified_listener_;
};

}  // namespace replog::engine
