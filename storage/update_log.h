// UpdateLog: one LMDB environment per data directory (docs/STORAGE.md), with
// named databases
//   log          key(16) = hlc||origin      -> body           (replay order)
//   seqs         origin(8)                  -> seq(8)||key(16), sorted duplicates (the seq index)
//                origin(8)||00              -> what is verified of the origin (OriginRecord), one value
//   vector       origin(8)                  -> seq(8)||last hlc(8)
//   meta         name                       -> bytes          (node id, cluster, HLC mark, format)
//   checkpoints  cut key(16)                -> MessagePack checkpoint
//   forks        origin(8)                  -> fork report, one line of text (quarantine)
//   peers        peer endpoint              -> MessagePack peer state (last seen, vector, lag)
//   origins      origin(8)                  -> OriginRecord, formats 2 to 5 (format 6: in `seqs`)
//   heads        origin(8)||seq(8)          -> a signed head held (StoredHead), thinned
//   evidence     origin(8)                  -> fork evidence (protocol/origin_proof.h encoding)
//
// The environment is plain LMDB: mdb_stat and mdb_dump read it.
//
// Thread safety: an UpdateLog may be shared by threads. Write transactions are
// serialised by LMDB; replog opens them from one writer thread only (the node's
// group commit). Read transactions may be opened from any thread (the
// environment uses MDB_NOTLS). A LogTxn is used by one thread at a time.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "replog/status.h"
#include "protocol/origin_proof.h"
#include "protocol/update.h"
#include "protocol/version_vector.h"

namespace replog {

// 2: signed origins (origins, heads, evidence; origin ids derived from keys).
// 3: the seq index as sorted duplicates per origin (`seqs`), which appends;
//    format 2 kept it in `seq`, keyed origin||seq.
// 4: no vector table: an origin's vector entry is its last seq index entry,
//    which every commit writes anyway: one database less in a commit.
// 5: an origin's newest head is kept in its origin record, which a commit
//    writes anyway; `heads` holds only the older heads thinning keeps.
// 6: an origin's record is in `seqs`, under origin||00, beside the origin's
//    seq index entries: a commit of one origin's updates writes the one
//    leaf of `seqs` that holds both, and no page of `origins`.
// Older directories are upgraded in place when a node opens them for writing.
inline constexpr uint32_t kStorageFormatVersion = 6;

// Whether `format` (meta `format_version`) names a storage format older than
// kStorageFormatVersion: one a reader reads as it is and a writer upgrades.
inline bool is_older_storage_format(std::string_view format) {
  for (uint32_t v = 1; v < kStorageFormatVersion; ++v)
    if (format == std::to_string(v)) return true;
  return false;
}

// Names in the `meta` database (docs/STORAGE.md).
namespace meta {
inline constexpr const char* kFormat = "format_version";  // decimal text
inline constexpr const char* kNodeId = "node_id";         // 8 bytes big-endian: the origin this node writes as
inline constexpr const char* kCluster = "cluster_id";     // text
inline constexpr const char* kHlc = "hlc";                // 8 bytes big-endian: the clock's high-water mark
// MessagePack map {16-hex origin: one-line reason}: origins this node wrote
// as before it moved to a fresh one.
inline constexpr const char* kFormerOrigins = "former_origins";
// Written by earlier builds when this node's own origin arrived from a peer;
// a node that finds it moves to a fresh origin and deletes it.
inline constexpr const char* kWritesBlocked = "writes_blocked";
// The `revoke` updates the log holds, 40 bytes each (node/engine/revocation_index.h);
// absent in a directory written before revocations.
inline constexpr const char* kRevocations = "revocations";
}  // namespace meta

// The `vector` database's record of one origin.
struct VectorEntry {
  uint64_t seq = 0;       // updates 1..seq of this origin are held
  uint64_t last_hlc = 0;  // hlc of update `seq`
};


// The `origins` database's record of one origin: its key and the verified
// tip of its chain, which is always where the vector stands for that origin.
// Fixed layout (docs/STORAGE.md): key(32) device(32) cert(64) flags(1)
// seq(8) chain(32) bytes(8); device and cert are zeros when the key is a
// device key.
struct OriginRecord {
  std::string key;     // 32 bytes: the origin's signing key
  std::string device;  // 32 bytes when a device key certifies `key`; empty otherwise
  std::string cert;    // 64 bytes with `device`
  bool legacy = false;  // a legacy origin, attested by `key`
  bool final = false;   // its final head is held: nothing after `seq`
  uint64_t seq = 0;     // updates 1..seq chain to `chain`
  proof::Chain chain{};
  uint64_t bytes = 0;  // body bytes of updates 1..seq
  // The device key a member must hold for this origin to count.
  const std::string& member_key() const { return device.empty() ? key : device; }
};
std::string encode_origin_record(const OriginRecord& r);
std::optional<OriginRecord> decode_origin_record(std::string_view bytes);

// A head as the `heads` database keeps it: chain(32) flags(1) signature(64)
// bytes(8), where bytes counts the origin's body bytes up to seq.
struct StoredHead {
  uint64_t seq = 0;
  proof::Chain chain{};
  uint8_t flags = 0;
  std::string signature;
  uint64_t bytes = 0;
};

class UpdateLog;

// One LMDB transaction over the log's databases. Destroying an uncommitted
// transaction aborts it. While it lives, the map cannot be resized under it
// (it is counted in its log's MapGate). Reads answer "absent" when LMDB fails, and remember
// the first failure: status() tells it, and commit() refuses to store a
// transaction whose reads failed (its decisions may rest on a missing record).
class LogTxn {
 public:
  LogTxn(LogTxn&&) noexcept;
  LogTxn& operator=(LogTxn&&) = delete;
  ~LogTxn();

  bool writable() const { return writable_; }
  // LMDB's id of this transaction: for a read, that of the last write
  // committed before it began, so two reads with one id see the same data.
  uint64_t id() const;
  // The first read failure of this transaction (OK: none).
  const Status& status() const { return read_error_; }
  Status commit();
  void abort();

  // A child transaction (LMDB nested txn) whose changes vanish on abort.
  // REQUIRES: writable().
  Result<LogTxn> begin_child();

  // --- reads ---
  std::optional<VectorEntry> vector_entry(OriginId origin);
  std::map<OriginId, VectorEntry> vector_entries();
  VersionVector vector();
  std::optional<std::string> body(const UpdateId& id);
  std::optional<UpdateId> id_of(OriginId origin, uint64_t seq);
  // Calls fn for `origin`'s updates from seq `from` on, in seq order, while
  // their seqs run on without a hole and fn returns true. One cursor walks the
  // seq index and one the log, so a range costs no lookup from the root per
  // update where the log holds it in order. Bodies are views into the map,
  // valid only during the call. A seq entry whose update is missing is
  // corruption.
  Status for_each_of_origin(OriginId origin, uint64_t from,
                            const std::function<bool(uint64_t seq, const UpdateId&, std::string_view body)>& fn);
  // for_each_of_origin for several origins at once (for_each_of_origin is
  // this with one), starts[i] = (origin, from): fn(i, ...) gets origin i's
  // updates in seq order, the origins' interleaved in key order, and false
  // from fn stops origin i alone. One cursor walks the log forward, so where
  // the origins' updates lie side by side in it (a catch-up of many origins)
  // each body is the next entry, not a lookup from the root. A directory
  // whose seq index is in the layout of format 2 is read one origin after
  // another, one lookup per update.
  Status for_each_of_origins(
      const std::vector<std::pair<OriginId, uint64_t>>& starts,
      const std::function<bool(size_t i, uint64_t seq, const UpdateId&, std::string_view body)>& fn);
  std::optional<UpdateId> last_id();
  uint64_t update_count();
  // Calls fn for every update with key >= start in key order until it returns false.
  // Bodies are views into the map, valid only during the call.
  Status for_each_from(const UpdateId& start,
                       const std::function<bool(const UpdateId&, std::string_view body)>& fn);
  // Updates held beyond `seen` (per origin, the seq already read), at most
  // `max`, each origin's taken as a prefix, sorted by key; raises `seen` past
  // them. Followers use it: unlike a key cursor, it misses no late update.
  Result<std::vector<std::pair<UpdateId, std::string>>> bodies_since(VersionVector& seen, size_t max);
  std::optional<std::string> meta(std::string_view name);
  // Checkpoints, newest cut first.
  std::vector<std::pair<UpdateId, std::string>> checkpoints();
  // The newest checkpoint's cut, without reading its bytes (none: null).
  std::optional<UpdateId> newest_checkpoint_cut();
  std::map<OriginId, std::string> forks();
  std::map<std::string, std::string> peers();
  std::optional<OriginRecord> origin_record(OriginId origin);
  std::map<OriginId, OriginRecord> origin_records();
  // The held head of `origin` at the highest seq <= seq, or the lowest seq >= seq.
  // The heads held are those of `heads` and the newest, which formats 5 and
  // later keep in the origin's record (a directory of format 4 or older: in `heads`).
  std::optional<StoredHead> head_at_or_below(OriginId origin, uint64_t seq);
  std::optional<StoredHead> head_at_or_above(OriginId origin, uint64_t seq);
  std::vector<StoredHead> heads(OriginId origin);
  std::map<OriginId, std::string> evidence();
  // Per origin with evidence held, the fork seq it proves (what replay leaves out from).
  std::map<OriginId, uint64_t> fork_seqs();

  // --- writes (REQUIRES: writable()) ---
  // Stores an update whose checks have passed: log, seq index and vector, and
  // deletes every checkpoint whose cut is at or above its key (same transaction).
  Status put_update(const UpdateId& id, uint64_t seq, std::string_view body);
  // The same for many updates, in key order (the vector sorted): those whose
  // keys lie above the log's last are appended (MDB_APPEND), and each
  // origin's vector entry is written once. Bodies are read in place.
  // REQUIRES: each origin's updates in seq order once sorted by key (hlc
  // rises with seq), as the checks of received updates make sure.
  struct NewUpdate {
    UpdateId id;
    uint64_t seq = 0;
    std::string_view body;
  };
  Status put_updates(std::vector<NewUpdate>& updates);
  Status put_meta(std::string_view name, std::string_view value);
  Status delete_meta(std::string_view name);
  Status put_checkpoint(const UpdateId& cut, std::string_view bytes);
  Status delete_checkpoint(const UpdateId& cut);
  Status put_fork(OriginId origin, std::string_view report);
  Status delete_fork(OriginId origin);
  Status put_peer(std::string_view endpoint, std::string_view state);
  // Keeps the newest head the record holds.
  Status put_origin_record(OriginId origin, const OriginRecord& record);
  // A head newer than the origin's record holds goes into the record, and the
  // one it held moves to `heads`; an older one goes to `heads`, as does any
  // head of an origin without a record. `drop`: the head at that seq is
  // deleted first (thinning), as delete_head does; when it is the record's,
  // the new head takes its place in one write of the record.
  Status put_head(OriginId origin, const StoredHead& head, std::optional<uint64_t> drop = std::nullopt);
  Status delete_head(OriginId origin, uint64_t seq);
  Status put_evidence(OriginId origin, std::string_view bytes);
  // Storage format 2 to 3: moves the seq index to its `seqs` layout and
  // drops the old database. Reads see the new layout at once; other
  // transactions once this one commits. Does nothing on a log of format 3 or later.
  Status upgrade_seq_index();
  // Formats 1 to 3 to 4: empties the vector table, which the seq index
  // implies; reads in this transaction use the seq index at once.
  Status drop_vector_table();
  // Formats 2 to 5 to 6: moves every origin record from `origins` into
  // `seqs` and empties `origins`; reads in this transaction use `seqs` at once.
  Status move_origin_records();

 private:
  friend class UpdateLog;
  LogTxn(const UpdateLog* log, MDB_txn* txn, bool writable, bool counted)
      : log_(log), txn_(txn), writable_(writable), counted_(counted) {}
  void end();
  std::optional<std::string_view> get(MDB_dbi dbi, std::string_view key);
  std::optional<StoredHead> head_near(OriginId origin, uint64_t seq, bool at_or_below);
  std::optional<StoredHead> table_head_near(OriginId origin, uint64_t seq, bool at_or_below);
  Status put_record_head(OriginId origin, std::string_view record, const StoredHead* head);
  Status delete_table_head(OriginId origin, uint64_t seq);
  // The bytes of an origin's record, wherever this directory's format keeps it.
  std::optional<std::string_view> record_bytes(OriginId origin);
  void each_seqs_key(const char* what, const std::function<int(MDB_cursor*, MDB_val&, MDB_val&)>& fn);
  Status put_record_bytes(OriginId origin, std::string_view value);
  Status overwrite_record(OriginId origin, std::string_view value);  // put_record_bytes, unchecked
  void scan(MDB_dbi dbi, bool reverse, const std::function<void(std::string_view, std::string_view)>& fn);
  void note(int rc, const char* what);
  Status put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
  Status drop_checkpoints_from(const UpdateId& id);
  int put_seq_entry(MDB_cursor* c, OriginId origin, uint64_t seq, std::string_view key);
  static constexpr size_t kSeqEntryBytes = 24;  // seq(8) || log key(16)
  static std::optional<VectorEntry> vector_entry_of(const MDB_val& seq_entry);

  const UpdateLog* log_;
  MDB_txn* txn_;
  bool writable_;
  bool counted_;  // in the log's MapGate (false in a child: its parent is)
  // The newest checkpoint cut as of this transaction, read on first need, so
  // that appending above it costs no cursor. Empty optional inside: none.
  std::optional<std::optional<UpdateId>> newest_checkpoint_;
  bool upgraded_seq_index_ = false;  // upgrade_seq_index() moved the old layout in this transaction
  bool dropped_vector_table_ = false;  // drop_vector_table() emptied it in this transaction
  bool moved_origin_records_ = false;  // move_origin_records() moved them in this transaction
  bool reads_vector_table() const;
  bool reads_origins_table() const;
  Status read_error_;
};

class UpdateLog {
 public:
  struct Options {
    bool create = false;            // make the directory's environment if missing
    size_t initial_map_bytes = size_t{1} << 30;  // sparse; grows when full
  };

  static Result<std::unique_ptr<UpdateLog>> open(const std::string& dir, const Options& options);
  ~UpdateLog();

  Result<LogTxn> begin_read() const;
  Result<LogTxn> begin_write();

  // Grows (doubles) the map when it is more than 3/4 full, or when `force`.
  // Waits until no transaction of this process is open, and holds new ones
  // off meanwhile (LMDB remaps the file). The map never grows past
  // kMaxMapBytes: then kNoSpace. The address space is probed first, so a
  // resize the OS would refuse fails before LMDB drops the old mapping.
  // REQUIRES: the calling thread holds no transaction of this log.
  Status grow_if_needed(bool force = false);
  static constexpr size_t kMaxMapBytes = size_t{1} << 40;  // 1 TiB of address space

  MDB_env* env() const { return env_; }
  // The size of the map now.
  size_t map_bytes() const;
  const std::string& dir() const { return dir_; }

 private:
  friend class LogTxn;
  UpdateLog() = default;
  Result<LogTxn> begin(bool writable) const;

  std::string dir_;
  MDB_env* env_ = nullptr;
  // Open transactions and resizes exclude each other; a waiting resize holds
  // new transactions off, so that a stream of readers cannot starve it.
  struct MapGate {
    std::mutex mu;
    std::condition_variable cv;
    int open = 0;
    bool resizing = false;
    bool unmapped = false;  // a resize failed after LMDB dropped the old map
  };
  Status enter_gate() const;
  void leave_gate() const;
  Status resize_locked(bool force);

  mutable MapGate gate_;
  // The old seq index (`seq`) holds entries: reads use it until a writer
  // upgrades the directory to format 3.
  mutable std::atomic<bool> reads_legacy_seq_{false};
  // The vector table (`vector`, formats 1 to 3) holds entries: reads use it
  // until a writer upgrades the directory to format 4, which reads each
  // origin's entry from the seq index instead.
  mutable std::atomic<bool> reads_vector_table_{false};
  // The origins table (formats 2 to 5) holds records: reads use it until a
  // writer upgrades the directory to format 6, which keeps them in `seqs`.
  mutable std::atomic<bool> reads_origins_table_{false};
  MDB_dbi legacy_seq_ = 0;
  MDB_dbi log_ = 0, seqs_ = 0, vector_ = 0, meta_ = 0, checkpoints_ = 0, forks_ = 0, peers_ = 0, origins_ = 0,
          heads_ = 0, evidence_ = 0;
};

Status lmdb_error(int rc, const std::string& what);

}  // namespace replog
