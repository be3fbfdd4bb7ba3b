#include "storage/update_log.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <queue>

#include "protocol/bytes.h"
#include "storage/data_dir.h"
#include "storage/env.h"
#include "storage/fault_point.h"

namespace replog {

Status lmdb_error(int rc, const std::string& what) {
  std::string msg = what + ": " + mdb_strerror(rc);
  if (rc == MDB_MAP_FULL) return Status::store_full(msg);
  if (rc == ENOSPC) return Status::no_space(msg + " (the disk is full)");
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_VERSION_MISMATCH || rc == MDB_INVALID)
    return Status::corruption(msg);
  return Status::io_error(msg);
}

namespace {

MDB_val val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

std::string seq_key(OriginId origin, uint64_t seq) {
  std::string k(16, '\0');
  put_u64_be(k.data(), origin);
  put_u64_be(k.data() + 8, seq);
  return k;
}

std::string_view key_view(const std::array<char, 16>& k) { return {k.data(), k.size()}; }

}  // namespace

// --- UpdateLog ---------------------------------------------------------------

Result<std::unique_ptr<UpdateLog>> UpdateLog::open(const std::string& dir, const Options& options) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (!options.create) return Status::not_found(dir + ": no such data directory (run replog init)");
    if (::mkdir(dir.c_str(), 0700) != 0) return Status::io_error(dir + ": cannot create: " + errno_text(errno));
  } else if (!S_ISDIR(st.st_mode)) {
    return Status::invalid_argument(dir + ": not a directory");
  }
  const std::string data_file = DataDir(dir).data_file();
  if (!options.create && ::stat(data_file.c_str(), &st) != 0)
    return Status::not_found(dir + ": not a replog data directory (run replog init)");

  std::unique_ptr<UpdateLog> log(new UpdateLog());
  log->dir_ = dir;
  int rc = mdb_env_create(&log->env_);
  if (rc) return lmdb_error(rc, "mdb_env_create");
  mdb_env_set_maxdbs(log->env_, 16);
  mdb_env_set_maxreaders(log->env_, 256);
  size_t map = options.initial_map_bytes;
  if (::stat(data_file.c_str(), &st) == 0 && static_cast<size_t>(st.st_size) > map)
    map = static_cast<size_t>(st.st_size) * 2;
  mdb_env_set_mapsize(log->env_, map);
  rc = mdb_env_open(log->env_, dir.c_str(), MDB_NOTLS, 0600);
  if (rc) return lmdb_error(rc, dir + ": cannot open LMDB environment");

  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(log->env_, nullptr, 0, &txn);
  if (rc) return lmdb_error(rc, "begin");
  struct {
    const char* name;
    MDB_dbi* dbi;
  } dbs[] = {{"log", &log->log_},       {"vector", &log->vector_},
             {"meta", &log->meta_},     {"checkpoints", &log->checkpoints_}, {"forks", &log->forks_},
             {"peers", &log->peers_},  {"origins", &log->origins_},   {"heads", &log->heads_},
             {"evidence", &log->evidence_}};
  for (auto& d : dbs) {
    rc = mdb_dbi_open(txn, d.name, MDB_CREATE, d.dbi);
    if (rc) {
      mdb_txn_abort(txn);
      return lmdb_error(rc, std::string("open database ") + d.name);
    }
  }
  rc = mdb_dbi_open(txn, "seqs", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &log->seqs_);
  if (rc) {
    mdb_txn_abort(txn);
    return lmdb_error(rc, "open database seqs");
  }
  // The seq index as storage format 2 and earlier laid it out, until a
  // writer upgrades the directory (LogTxn::upgrade_seq_index).
  rc = mdb_dbi_open(txn, "seq", 0, &log->legacy_seq_);
  if (rc == 0) {
    MDB_stat st;
    rc = mdb_stat(txn, log->legacy_seq_, &st);
    log->reads_legacy_seq_ = rc == 0 && st.ms_entries > 0;
  }
  if (rc != 0 && rc != MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return lmdb_error(rc, "open database seq");
  }
  // The vector table of formats 1 to 3, until a writer upgrades to format 4.
  MDB_stat vst;
  rc = mdb_stat(txn, log->vector_, &vst);
  if (rc) {
    mdb_txn_abort(txn);
    return lmdb_error(rc, "read database vector");
  }
  log->reads_vector_table_ = vst.ms_entries > 0;
  // The origins table of formats 2 to 5, until a writer upgrades to format 6.
  rc = mdb_stat(txn, log->origins_, &vst);
  if (rc) {
    mdb_txn_abort(txn);
    return lmdb_error(rc, "read database origins");
  }
  log->reads_origins_table_ = vst.ms_entries > 0;
  rc = mdb_txn_commit(txn);
  if (rc) return lmdb_error(rc, "commit");
  return log;
}

UpdateLog::~UpdateLog() {
  if (env_) mdb_env_close(env_);
}

Status UpdateLog::enter_gate() const {
  std::unique_lock<std::mutex> l(gate_.mu);
  gate_.cv.wait(l, [&] { return !gate_.resizing; });
  if (gate_.unmapped) return Status::io_error(dir_ + ": the LMDB map was lost in a failed resize; restart the node");
  ++gate_.open;
  return Status::ok();
}

void UpdateLog::leave_gate() const {
  std::lock_guard<std::mutex> l(gate_.mu);
  if (--gate_.open == 0) gate_.cv.notify_all();
}

Result<LogTxn> UpdateLog::begin(bool writable) const {
  REPLOG_RETURN_IF_ERROR(enter_gate());
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, writable ? 0 : MDB_RDONLY, &txn);
  if (rc == MDB_MAP_RESIZED) {
    // Another process grew the map: adopt its size (with no transaction of
    // this process open) and try again.
    leave_gate();
    {
      std::unique_lock<std::mutex> l(gate_.mu);
      gate_.cv.wait(l, [&] { return !gate_.resizing && gate_.open == 0; });
      mdb_env_set_mapsize(env_, 0);
    }
    REPLOG_RETURN_IF_ERROR(enter_gate());
    rc = mdb_txn_begin(env_, nullptr, writable ? 0 : MDB_RDONLY, &txn);
  }
  if (rc) {
    leave_gate();
    return lmdb_error(rc, writable ? "begin write transaction" : "begin read transaction");
  }
  return LogTxn(this, txn, writable, true);
}

Result<LogTxn> UpdateLog::begin_read() const { return begin(false); }
Result<LogTxn> UpdateLog::begin_write() { return begin(true); }

size_t UpdateLog::map_bytes() const {
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  return info.me_mapsize;
}

namespace {

// Whether `bytes` of address space can be had now (LMDB's remap would get them).
bool address_space_for(size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  ::munmap(p, bytes);
  return true;
}

}  // namespace

Status UpdateLog::grow_if_needed(bool force) {
  std::unique_lock<std::mutex> l(gate_.mu);
  gate_.cv.wait(l, [&] { return !gate_.resizing; });
  gate_.resizing = true;  // new transactions wait from here
  gate_.cv.wait(l, [&] { return gate_.open == 0; });
  Status s = resize_locked(force);
  gate_.resizing = false;
  gate_.cv.notify_all();
  return s;
}

// REQUIRES: gate_.mu held, no transaction open.
Status UpdateLog::resize_locked(bool force) {
  if (gate_.unmapped) return Status::io_error(dir_ + ": the LMDB map was lost in a failed resize; restart the node");
  MDB_envinfo info;
  MDB_stat st;
  mdb_env_info(env_, &info);
  mdb_env_stat(env_, &st);
  size_t used = (info.me_last_pgno + 1) * static_cast<size_t>(st.ms_psize);
  if (!force && used < info.me_mapsize / 4 * 3) return Status::ok();
  const size_t target = info.me_mapsize * 2;
  const std::string what = "grow the LMDB map to " + std::to_string(target >> 20) + " MiB";
  if (target > kMaxMapBytes)
    return Status::no_space(dir_ + ": the LMDB map would grow past " + std::to_string(kMaxMapBytes >> 30) +
                            " GiB (it holds " + std::to_string(used >> 20) + " MiB)");
  if (!address_space_for(target)) return lmdb_error(ENOMEM, what);
  int rc = mdb_env_set_mapsize(env_, target);
  if (rc) gate_.unmapped = true;  // LMDB dropped the old mapping and could not make the new one
  return rc ? lmdb_error(rc, what) : Status::ok();
}

// --- LogTxn ------------------------------------------------------------------

LogTxn::LogTxn(LogTxn&& o) noexcept
    : log_(o.log_),
      txn_(o.txn_),
      writable_(o.writable_),
      counted_(o.counted_),
      newest_checkpoint_(o.newest_checkpoint_),
      read_error_(std::move(o.read_error_)) {
  o.txn_ = nullptr;
  o.counted_ = false;
}

LogTxn::~LogTxn() { abort(); }

uint64_t LogTxn::id() const { return mdb_txn_id(txn_); }

void LogTxn::abort() {
  if (txn_) mdb_txn_abort(txn_);
  txn_ = nullptr;
  end();
}

void LogTxn::end() {
  if (counted_) log_->leave_gate();
  counted_ = false;
}

Status LogTxn::commit() {
  if (!read_error_.is_ok()) {
    // A decision of this transaction rests on a read that failed: store nothing.
    abort();
    return read_error_;
  }
  if (fault::fires(fault::Point::kCommitNoSpace, log_->dir_)) {
    abort();
    return Status::no_space("commit failed: no space left on the disk holding " + log_->dir_ +
                            " (fault point; nothing of this write was stored)");
  }
  int rc = mdb_txn_commit(txn_);
  txn_ = nullptr;
  end();
  if (rc == 0 && upgraded_seq_index_) log_->reads_legacy_seq_ = false;
  if (rc == 0 && dropped_vector_table_) log_->reads_vector_table_ = false;
  if (rc == 0 && moved_origin_records_) log_->reads_origins_table_ = false;
  if (rc == 0) return Status::ok();
  // LMDB reports a short write as EIO; say so when the disk is what ran out.
  struct statvfs fs;
  if ((rc == EIO || rc == ENOSPC) && ::statvfs(log_->dir_.c_str(), &fs) == 0 &&
      static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < (uint64_t{16} << 20))
    return Status::no_space("commit failed: no space left on the disk holding " + log_->dir_ +
                            " (nothing of this write was stored)");
  return lmdb_error(rc, "commit");
}

Result<LogTxn> LogTxn::begin_child() {
  MDB_txn* child = nullptr;
  int rc = mdb_txn_begin(log_->env_, txn_, 0, &child);
  if (rc) return lmdb_error(rc, "begin nested transaction");
  return LogTxn(log_, child, true, false);
}

void LogTxn::note(int rc, const char* what) {
  if (writable_ && rc == 0 && fault::fires(fault::Point::kReadFails, log_->dir_)) rc = EIO;
  if (rc != 0 && rc != MDB_NOTFOUND && read_error_.is_ok()) read_error_ = lmdb_error(rc, what);
}

std::optional<std::string_view> LogTxn::get(MDB_dbi dbi, std::string_view key) {
  MDB_val k = val(key), v;
  int rc = mdb_get(txn_, dbi, &k, &v);
  note(rc, "read");
  if (rc != 0) return std::nullopt;
  return view(v);
}

// Visits every record of `dbi` in key order (or reverse), noting a failure.
void LogTxn::scan(MDB_dbi dbi, bool reverse, const std::function<void(std::string_view, std::string_view)>& fn) {
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn_, dbi, &c);
  note(rc, "open cursor");
  if (rc) return;
  MDB_val k, v;
  for (rc = mdb_cursor_get(c, &k, &v, reverse ? MDB_LAST : MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, reverse ? MDB_PREV : MDB_NEXT))
    fn(view(k), view(v));
  note(rc, "scan");
  mdb_cursor_close(c);
}

Status LogTxn::put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
  MDB_val k = val(key), v = val(value);
  if (fault::fires(fault::Point::kPutMapFull, log_->dir_)) return lmdb_error(MDB_MAP_FULL, "put");
  int rc = mdb_put(txn_, dbi, &k, &v, flags);
  return rc ? lmdb_error(rc, "put") : Status::ok();
}

bool LogTxn::reads_vector_table() const { return log_->reads_vector_table_ && !dropped_vector_table_; }

// One step per key of `seqs` (an origin's seq index, then its record), the
// cursor on the key's first value; `fn` may move it within the key. A failure
// (of `fn`, which returns an LMDB code, or of a step) ends the walk and is noted.
void LogTxn::each_seqs_key(const char* what, const std::function<int(MDB_cursor*, MDB_val&, MDB_val&)>& fn) {
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn_, log_->seqs_, &c);
  note(rc, "open seq index cursor");
  if (rc) return;
  MDB_val k, v;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP)) {
    rc = fn(c, k, v);
    if (rc) break;
  }
  if (rc != MDB_NOTFOUND) note(rc, what);
  mdb_cursor_close(c);
}

bool LogTxn::reads_origins_table() const { return log_->reads_origins_table_ && !moved_origin_records_; }

namespace {
// Format 6 keeps an origin's record in `seqs` under origin||00, a key of its
// own beside the origin's seq index entries (which are duplicates of the
// 8-byte key origin): in key order it comes right after them.
std::string record_key(OriginId origin) { return u64_be(origin) + '\0'; }
bool is_record_key(const MDB_val& k) { return k.mv_size == 9 && static_cast<const char*>(k.mv_data)[8] == 0; }
}  // namespace

std::optional<std::string_view> LogTxn::record_bytes(OriginId origin) {
  return reads_origins_table() ? get(log_->origins_, u64_be(origin)) : get(log_->seqs_, record_key(origin));
}

// `seqs` keeps sorted duplicates: a plain put under a key held would add a
// value beside the old one. A record held is overwritten where it lies (a key
// of one value takes MDB_CURRENT at any size), so the key holds exactly one.
Status LogTxn::put_record_bytes(OriginId origin, std::string_view value) {
  if (reads_origins_table())
    return Status::invalid_argument(log_->dir_ + ": origin records are in the table storage formats 2 to 5 keep; "
                                    "a node opened for writing upgrades it");
  return overwrite_record(origin, value);
}

Status LogTxn::overwrite_record(OriginId origin, std::string_view value) {
  const std::string key = record_key(origin);
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn_, log_->seqs_, &c);
  if (rc) return lmdb_error(rc, "open seq index cursor");
  MDB_val k = val(key), v;
  rc = mdb_cursor_get(c, &k, &v, MDB_SET);
  const bool held = rc == 0;
  if (rc == 0 || rc == MDB_NOTFOUND) {
    k = val(key);
    v = val(value);
    rc = mdb_cursor_put(c, &k, &v, held ? MDB_CURRENT : 0);
  }
  mdb_cursor_close(c);
  return rc ? lmdb_error(rc, "put an origin record") : Status::ok();
}

Status LogTxn::move_origin_records() {
  if (!reads_origins_table()) return Status::ok();
  std::vector<std::pair<std::string, std::string>> records;
  scan(log_->origins_, false, [&](std::string_view k, std::string_view v) { records.emplace_back(k, v); });
  REPLOG_RETURN_IF_ERROR(status());
  for (const auto& [k, v] : records) {
    if (k.size() != 8) return Status::corruption("an origin record under a key of " + std::to_string(k.size()) + " bytes");
    REPLOG_RETURN_IF_ERROR(overwrite_record(get_u64_be(k.data()), v));
  }
  int rc = mdb_drop(txn_, log_->origins_, 0);
  if (rc) return lmdb_error(rc, "empty the origins table");
  moved_origin_records_ = true;
  return Status::ok();
}

// Format 4 keeps no vector of its own: an origin's entry is its last entry in
// the seq index (seq, and the hlc that leads the log key).
std::optional<VectorEntry> LogTxn::vector_entry_of(const MDB_val& seq_entry) {
  if (seq_entry.mv_size != kSeqEntryBytes) return std::nullopt;
  const char* p = static_cast<const char*>(seq_entry.mv_data);
  return VectorEntry{get_u64_be(p), get_u64_be(p + 8)};
}

std::optional<VectorEntry> LogTxn::vector_entry(OriginId origin) {
  if (reads_vector_table()) {
    auto v = get(log_->vector_, u64_be(origin));
    if (!v || v->size() != 16) return std::nullopt;
    return VectorEntry{get_u64_be(v->data()), get_u64_be(v->data() + 8)};
  }
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn_, log_->seqs_, &c);
  note(rc, "open seq index cursor");
  if (rc) return std::nullopt;
  const std::string origin_key = u64_be(origin);
  MDB_val k = val(origin_key), v;
  rc = mdb_cursor_get(c, &k, &v, MDB_SET);
  if (rc == 0) rc = mdb_cursor_get(c, &k, &v, MDB_LAST_DUP);
  if (rc != MDB_NOTFOUND) note(rc, "read seq index");
  auto out = rc == 0 ? vector_entry_of(v) : std::nullopt;
  mdb_cursor_close(c);
  return out;
}

std::map<OriginId, VectorEntry> LogTxn::vector_entries() {
  std::map<OriginId, VectorEntry> out;
  if (reads_vector_table()) {
    scan(log_->vector_, false, [&](std::string_view k, std::string_view v) {
      if (k.size() == 8 && v.size() == 16)
        out[get_u64_be(k.data())] = VectorEntry{get_u64_be(v.data()), get_u64_be(v.data() + 8)};
    });
    return out;
  }
  each_seqs_key("read seq index", [&](MDB_cursor* c, MDB_val& k, MDB_val& v) {
    int rc = mdb_cursor_get(c, &k, &v, MDB_LAST_DUP);
    auto e = rc == 0 ? vector_entry_of(v) : std::nullopt;
    if (k.mv_size == 8 && e) out[get_u64_be(static_cast<const char*>(k.mv_data))] = *e;
    return rc;
  });
  return out;
}

VersionVector LogTxn::vector() {
  VersionVector out;
  for (const auto& [origin, e] : vector_entries()) out[origin] = e.seq;
  return out;
}

Status LogTxn::drop_vector_table() {
  int rc = mdb_drop(txn_, log_->vector_, 0);
  if (rc) return lmdb_error(rc, "empty the vector table");
  dropped_vector_table_ = true;
  return Status::ok();
}

std::optional<std::string> LogTxn::body(const UpdateId& id) {
  auto v = get(log_->log_, key_view(id.key()));
  if (!v) return std::nullopt;
  return std::string(*v);
}

std::optional<UpdateId> LogTxn::id_of(OriginId origin, uint64_t seq) {
  if (log_->reads_legacy_seq_ && !upgraded_seq_index_) {
    auto v = get(log_->legacy_seq_, seq_key(origin, seq));
    if (!v || v->size() != 16) return std::nullopt;
    return UpdateId::from_key(*v);
  }
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn_, log_->seqs_, &c);
  note(rc, "open seq index cursor");
  if (rc) return std::nullopt;
  const std::string origin_key = u64_be(origin);
  char entry[kSeqEntryBytes] = {};
  put_u64_be(entry, seq);
  MDB_val k = val(origin_key), v{sizeof entry, entry};
  std::optional<UpdateId> out;
  // The origin's first entry at or above (seq, zero key): this seq's, if held.
  rc = mdb_cursor_get(c, &k, &v, MDB_GET_BOTH_RANGE);
  if (rc != MDB_NOTFOUND) note(rc, "read seq index");
  if (rc == 0 && v.mv_size == kSeqEntryBytes && get_u64_be(static_cast<const char*>(v.mv_data)) == seq)
    out = UpdateId::from_key(view(v).substr(8));
  mdb_cursor_close(c);
  return out;
}

Status LogTxn::for_each_of_origin(OriginId origin, uint64_t from,
                                  const std::function<bool(uint64_t, const UpdateId&, std::string_view)>& fn) {
  return for_each_of_origins({{origin, from}}, [&](size_t, uint64_t seq, const UpdateId& id, std::string_view body) {
    return fn(seq, id, body);
  });
}

Status LogTxn::for_each_of_origins(
    const std::vector<std::pair<OriginId, uint64_t>>& starts,
    const std::function<bool(size_t, uint64_t, const UpdateId&, std::string_view)>& fn) {
  const auto missing = [&](size_t i, uint64_t seq) {
    return Status::corruption("seq index of " + hex16(starts[i].first) + " #" + std::to_string(seq) + " points nowhere");
  };
  if (log_->reads_legacy_seq_ && !upgraded_seq_index_) {
    for (size_t i = 0; i < starts.size(); ++i)
      for (uint64_t seq = starts[i].second;; ++seq) {
        auto id = id_of(starts[i].first, seq);
        if (!id && !status().is_ok()) return status();
        if (!id) break;  // a hole: this origin ends here
        auto body = get(log_->log_, key_view(id->key()));
        if (!body) return status().is_ok() ? missing(i, seq) : status();
        if (!fn(i, seq, *id, *body)) break;
      }
    return status();
  }
  // Each origin's seq cursor and next seq; a heap gives the origin whose next
  // update comes first in key order.
  struct Walk {
    MDB_cursor* seqs = nullptr;
    uint64_t seq = 0;
  };
  std::vector<Walk> walks(starts.size());
  using Next = std::pair<UpdateId, size_t>;
  std::priority_queue<Next, std::vector<Next>, std::greater<>> order;
  // The entry under walk i's cursor goes on the heap when it is the origin's next seq.
  const auto queue_if_next = [&](size_t i, const MDB_val& v) {
    if (v.mv_size != kSeqEntryBytes || get_u64_be(static_cast<const char*>(v.mv_data)) != walks[i].seq) return;
    order.emplace(UpdateId::from_key(view(v).substr(8)), i);
  };
  MDB_cursor* log = nullptr;
  Status out;
  int rc = mdb_cursor_open(txn_, log_->log_, &log);
  for (size_t i = 0; rc == 0 && i < starts.size(); ++i) {
    Walk& w = walks[i];
    rc = mdb_cursor_open(txn_, log_->seqs_, &w.seqs);
    if (rc) break;
    w.seq = starts[i].second;
    const std::string origin_key = u64_be(starts[i].first);
    char entry[kSeqEntryBytes] = {};
    put_u64_be(entry, w.seq);
    MDB_val k = val(origin_key), v{sizeof entry, entry};
    // The origin's first entry at or above (from, zero key).
    rc = mdb_cursor_get(w.seqs, &k, &v, MDB_GET_BOTH_RANGE);
    if (rc == 0) queue_if_next(i, v);
    if (rc == MDB_NOTFOUND) rc = 0;
  }
  bool log_placed = false;  // the log cursor is on the update read last
  while (rc == 0 && !order.empty()) {
    const auto [id, i] = order.top();
    order.pop();
    Walk& w = walks[i];
    const auto key_bytes = id.key();
    const std::string_view key = key_view(key_bytes);
    // The next entry of the log (one origin's updates in a row, or several
    // origins' side by side), or one of the few after it (updates of origins
    // not asked for); else a lookup.
    MDB_val lk, lv;
    int lrc = MDB_NOTFOUND;
    for (int step = 0; log_placed && step < 4; ++step) {
      lrc = mdb_cursor_get(log, &lk, &lv, MDB_NEXT);
      if (lrc != 0 || view(lk) >= key) break;
    }
    if (lrc != 0 || view(lk) != key) {
      lk = val(key);
      lrc = mdb_cursor_get(log, &lk, &lv, MDB_SET_KEY);
    }
    if (lrc == MDB_NOTFOUND) {
      out = missing(i, w.seq);
      break;
    }
    if (lrc != 0) {
      rc = lrc;
      break;
    }
    log_placed = true;
    if (!fn(i, w.seq, id, view(lv))) continue;
    ++w.seq;
    MDB_val k, v;
    rc = mdb_cursor_get(w.seqs, &k, &v, MDB_NEXT_DUP);
    if (rc == 0) queue_if_next(i, v);
    if (rc == MDB_NOTFOUND) rc = 0;
  }
  if (rc != 0 && out.is_ok()) out = lmdb_error(rc, "read origins' updates");
  for (Walk& w : walks)
    if (w.seqs) mdb_cursor_close(w.seqs);
  if (log) mdb_cursor_close(log);
  return out;
}

Status LogTxn::upgrade_seq_index() {
  if (!log_->reads_legacy_seq_) {
    // Nothing held in the old layout; an empty old database goes too.
    MDB_dbi old = 0;
    int rc = mdb_dbi_open(txn_, "seq", 0, &old);
    if (rc == MDB_NOTFOUND) return Status::ok();
    if (rc == 0) rc = mdb_drop(txn_, old, 1);
    return rc ? lmdb_error(rc, "drop the old seq index") : Status::ok();
  }
  MDB_cursor* from = nullptr;
  MDB_cursor* to = nullptr;
  int rc = mdb_cursor_open(txn_, log_->legacy_seq_, &from);
  if (rc == 0) rc = mdb_cursor_open(txn_, log_->seqs_, &to);
  MDB_val k, v;
  // Old keys are origin||seq in order: each origin's entries come in seq order and append.
  for (rc = rc ? rc : mdb_cursor_get(from, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(from, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 16 || v.mv_size != 16) {
      rc = MDB_CORRUPTED;
      break;
    }
    char entry[kSeqEntryBytes];
    std::memcpy(entry, static_cast<const char*>(k.mv_data) + 8, 8);
    std::memcpy(entry + 8, v.mv_data, 16);
    MDB_val origin{8, k.mv_data}, e{sizeof entry, entry};
    rc = mdb_cursor_put(to, &origin, &e, MDB_APPENDDUP);
    if (rc) break;
  }
  if (from) mdb_cursor_close(from);
  if (to) mdb_cursor_close(to);
  if (rc != MDB_NOTFOUND) return lmdb_error(rc, "copy the seq index to its format 3 layout");
  rc = mdb_drop(txn_, log_->legacy_seq_, 1);
  if (rc) return lmdb_error(rc, "drop the old seq index");
  upgraded_seq_index_ = true;
  return Status::ok();
}

Result<std::vector<std::pair<UpdateId, std::string>>> LogTxn::bodies_since(VersionVector& seen, size_t max) {
  std::vector<std::pair<UpdateId, std::string>> out;
  for (const auto& [origin, held] : vector_entries()) {
    uint64_t& read = seen[origin];
    for (; read < held.seq && out.size() < max; ++read) {
      auto id = id_of(origin, read + 1);
      auto body = id ? this->body(*id) : std::nullopt;
      if (!body)
        return Status::corruption("seq index of " + hex16(origin) + " #" + std::to_string(read + 1) + " points nowhere");
      out.emplace_back(*id, std::move(*body));
    }
  }
  REPLOG_RETURN_IF_ERROR(status());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

std::optional<UpdateId> LogTxn::last_id() {
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn_, log_->log_, &c);
  note(rc, "open log cursor");
  if (rc) return std::nullopt;
  MDB_val k, v;
  std::optional<UpdateId> out;
  rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
  note(rc, "read the last key");
  if (rc == 0 && k.mv_size == 16) out = UpdateId::from_key(view(k));
  mdb_cursor_close(c);
  return out;
}

uint64_t LogTxn::update_count() {
  MDB_stat st;
  int rc = mdb_stat(txn_, log_->log_, &st);
  note(rc, "count updates");
  return rc ? 0 : st.ms_entries;
}

Status LogTxn::for_each_from(const UpdateId& start,
                             const std::function<bool(const UpdateId&, std::string_view)>& fn) {
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn_, log_->log_, &c);
  if (rc) return lmdb_error(rc, "open log cursor");
  auto k0 = start.key();
  MDB_val k = val(key_view(k0)), v;
  Status status;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    if (k.mv_size != 16) {
      status = Status::corruption("log key of " + std::to_string(k.mv_size) + " bytes");
      break;
    }
    if (!fn(UpdateId::from_key(view(k)), view(v))) break;
  }
  if (rc != 0 && rc != MDB_NOTFOUND && status.is_ok()) status = lmdb_error(rc, "read log");
  mdb_cursor_close(c);
  return status;
}

std::optional<std::string> LogTxn::meta(std::string_view name) {
  auto v = get(log_->meta_, name);
  if (!v) return std::nullopt;
  return std::string(*v);
}

std::optional<UpdateId> LogTxn::newest_checkpoint_cut() {
  MDB_cursor* c = nullptr;
  MDB_val k, v;
  std::optional<UpdateId> cut;
  if (mdb_cursor_open(txn_, log_->checkpoints_, &c) != 0) return cut;
  if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size == 16) cut = UpdateId::from_key(view(k));
  mdb_cursor_close(c);
  return cut;
}

std::vector<std::pair<UpdateId, std::string>> LogTxn::checkpoints() {
  std::vector<std::pair<UpdateId, std::string>> out;
  scan(log_->checkpoints_, true, [&](std::string_view k, std::string_view v) {
    if (k.size() == 16) out.emplace_back(UpdateId::from_key(k), std::string(v));
  });
  return out;
}

std::map<OriginId, std::string> LogTxn::forks() {
  std::map<OriginId, std::string> out;
  scan(log_->forks_, false, [&](std::string_view k, std::string_view v) {
    if (k.size() == 8) out[get_u64_be(k.data())] = std::string(v);
  });
  return out;
}

std::map<std::string, std::string> LogTxn::peers() {
  std::map<std::string, std::string> out;
  scan(log_->peers_, false, [&](std::string_view k, std::string_view v) { out[std::string(k)] = std::string(v); });
  return out;
}

Status LogTxn::put_update(const UpdateId& id, uint64_t seq, std::string_view body) {
  std::vector<NewUpdate> one{{id, seq, body}};
  return put_updates(one);
}

Status LogTxn::put_updates(std::vector<NewUpdate>& updates) {
  if (updates.empty()) return Status::ok();
  if (fault::fires(fault::Point::kPutMapFull, log_->dir_)) return lmdb_error(MDB_MAP_FULL, "put");
  if (log_->reads_legacy_seq_ && !upgraded_seq_index_)
    return Status::invalid_argument(log_->dir_ + ": the seq index is in the layout of storage format 2; "
                                    "a node opened for writing upgrades it");
  if (reads_vector_table())
    return Status::invalid_argument(log_->dir_ + ": the vector is in the table storage formats 1 to 3 keep; "
                                    "a node opened for writing upgrades it");
  MDB_cursor* log = nullptr;
  MDB_cursor* seq = nullptr;
  int rc = mdb_cursor_open(txn_, log_->log_, &log);
  if (rc == 0) rc = mdb_cursor_open(txn_, log_->seqs_, &seq);
  // The seq index in (origin, seq) order: one origin's entries follow each
  // other, so the cursor stays on its key and appends (in key order a
  // catch-up of many origins would move it to another origin at every
  // entry). A batch of received runs comes in this order already.
  const auto by_origin = [](const NewUpdate& x, const NewUpdate& y) {
    return x.id.origin != y.id.origin ? x.id.origin < y.id.origin : x.seq < y.seq;
  };
  if (!std::is_sorted(updates.begin(), updates.end(), by_origin))
    std::sort(updates.begin(), updates.end(), by_origin);
  for (size_t i = 0; rc == 0 && i < updates.size(); ++i) {
    const NewUpdate& u = updates[i];
    auto key = u.id.key();
    rc = put_seq_entry(seq, u.id.origin, u.seq, key_view(key));
  }
  // The log in key order. Keys above the log's last are appended: no search,
  // and full pages instead of the half-full ones a split leaves (MDB_APPEND).
  std::sort(updates.begin(), updates.end(), [](const NewUpdate& x, const NewUpdate& y) { return x.id < y.id; });
  std::optional<UpdateId> last;
  MDB_val k, v;
  if (rc == 0) {
    rc = mdb_cursor_get(log, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == 16) last = UpdateId::from_key(view(k));
    if (rc == MDB_NOTFOUND) rc = 0;
  }
  for (size_t i = 0; rc == 0 && i < updates.size(); ++i) {
    const NewUpdate& u = updates[i];
    auto key = u.id.key();
    const bool append = !last || u.id > *last;
    k = val(key_view(key));
    v = val(u.body);
    rc = mdb_cursor_put(log, &k, &v, append ? MDB_APPEND : MDB_NOOVERWRITE);
    if (rc) break;
    if (append) last = u.id;
  }
  if (log) mdb_cursor_close(log);
  if (seq) mdb_cursor_close(seq);
  if (rc) return lmdb_error(rc, "put");
  return drop_checkpoints_from(updates.front().id);
}

// One seq index entry: appended after the origin's last (MDB_APPENDDUP), or,
// below it, put in place of the entry the seq has.
int LogTxn::put_seq_entry(MDB_cursor* c, OriginId origin, uint64_t seq, std::string_view key) {
  const std::string origin_key = u64_be(origin);
  char entry[kSeqEntryBytes];
  put_u64_be(entry, seq);
  std::memcpy(entry + 8, key.data(), 16);
  MDB_val k = val(origin_key), v{sizeof entry, entry};
  int rc = mdb_cursor_put(c, &k, &v, MDB_APPENDDUP);
  if (rc != MDB_KEYEXIST) return rc;
  char at[kSeqEntryBytes] = {};
  put_u64_be(at, seq);
  MDB_val found{sizeof at, at};
  rc = mdb_cursor_get(c, &k, &found, MDB_GET_BOTH_RANGE);
  if (rc == 0 && found.mv_size == kSeqEntryBytes && get_u64_be(static_cast<const char*>(found.mv_data)) == seq)
    rc = mdb_cursor_del(c, 0);
  if (rc != 0 && rc != MDB_NOTFOUND) return rc;
  k = val(origin_key);
  v = MDB_val{sizeof entry, entry};
  return mdb_cursor_put(c, &k, &v, 0);
}

// A checkpoint whose cut is at or above `id` no longer equals the fold of the
// updates below its cut once `id` is stored: deletes it and every newer one.
Status LogTxn::drop_checkpoints_from(const UpdateId& id) {
  if (!newest_checkpoint_) {
    MDB_cursor* c = nullptr;
    MDB_val k, v;
    newest_checkpoint_.emplace();
    if (mdb_cursor_open(txn_, log_->checkpoints_, &c) == 0) {
      if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size == 16) *newest_checkpoint_ = UpdateId::from_key(view(k));
      mdb_cursor_close(c);
    }
  }
  if (!*newest_checkpoint_ || id > **newest_checkpoint_) return Status::ok();
  newest_checkpoint_.reset();  // some are deleted below: look again next time
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn_, log_->checkpoints_, &c);
  if (rc) return lmdb_error(rc, "open checkpoint cursor");
  auto key = id.key();
  MDB_val k = val(key_view(key)), v;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    rc = mdb_cursor_del(c, 0);
    if (rc) break;
  }
  mdb_cursor_close(c);
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(rc, "delete stale checkpoint");
  return Status::ok();
}

Status LogTxn::put_meta(std::string_view name, std::string_view value) { return put(log_->meta_, name, value); }

Status LogTxn::delete_meta(std::string_view name) {
  MDB_val k = val(name);
  int rc = mdb_del(txn_, log_->meta_, &k, nullptr);
  return rc && rc != MDB_NOTFOUND ? lmdb_error(rc, "delete meta") : Status::ok();
}

Status LogTxn::put_checkpoint(const UpdateId& cut, std::string_view bytes) {
  newest_checkpoint_.reset();
  return put(log_->checkpoints_, key_view(cut.key()), bytes);
}

Status LogTxn::delete_checkpoint(const UpdateId& cut) {
  newest_checkpoint_.reset();
  auto key = cut.key();
  MDB_val k = val(key_view(key));
  int rc = mdb_del(txn_, log_->checkpoints_, &k, nullptr);
  return rc && rc != MDB_NOTFOUND ? lmdb_error(rc, "delete checkpoint") : Status::ok();
}

Status LogTxn::put_fork(OriginId origin, std::string_view report) { return put(log_->forks_, u64_be(origin), report); }

Status LogTxn::put_peer(std::string_view endpoint, std::string_view state) { return put(log_->peers_, endpoint, state); }

Status LogTxn::delete_fork(OriginId origin) {
  std::string key = u64_be(origin);
  MDB_val k = val(key);
  int rc = mdb_del(txn_, log_->forks_, &k, nullptr);
  return rc && rc != MDB_NOTFOUND ? lmdb_error(rc, "delete fork") : Status::ok();
}

// --- signed origins ---------------------------------------------------------------

namespace {

constexpr size_t kOriginRecordBytes = 32 + 32 + 64 + 1 + 8 + 32 + 8;
constexpr size_t kStoredHeadBytes = 32 + 1 + 64 + 8;
constexpr uint8_t kRecordLegacy = 1, kRecordFinal = 2;

std::string padded(std::string_view s, size_t n) {
  std::string out(s.substr(0, n));
  out.resize(n, '\0');
  return out;
}

bool all_zero(std::string_view s) { return s.find_first_not_of('\0') == std::string_view::npos; }

std::string encode_stored_head(const StoredHead& h) {
  std::string out;
  out.reserve(kStoredHeadBytes);
  out += proof::chain_bytes(h.chain);
  out += static_cast<char>(h.flags);
  out += padded(h.signature, proof::kSignatureBytes);
  out += u64_be(h.bytes);
  return out;
}

std::optional<StoredHead> decode_stored_head(uint64_t seq, std::string_view v) {
  if (v.size() != kStoredHeadBytes) return std::nullopt;
  StoredHead h;
  h.seq = seq;
  h.chain = *proof::chain_from(v.substr(0, 32));
  h.flags = static_cast<uint8_t>(v[32]);
  h.signature = std::string(v.substr(33, 64));
  h.bytes = get_u64_be(v.data() + 97);
  return h;
}

std::optional<StoredHead> decode_stored_head(std::string_view key, std::string_view v) {
  if (key.size() != 16) return std::nullopt;
  return decode_stored_head(get_u64_be(key.data() + 8), v);
}

// Format 5: an origin record may end with its origin's newest head,
// `seq(8) ‖ stored head`.
constexpr size_t kRecordHeadBytes = 8 + kStoredHeadBytes;

std::optional<StoredHead> record_head(std::string_view record) {
  if (record.size() != kOriginRecordBytes + kRecordHeadBytes) return std::nullopt;
  return decode_stored_head(get_u64_be(record.data() + kOriginRecordBytes), record.substr(kOriginRecordBytes + 8));
}

}  // namespace

std::string encode_origin_record(const OriginRecord& r) {
  std::string out;
  out.reserve(kOriginRecordBytes);
  out += padded(r.key, 32);
  out += padded(r.device, 32);
  out += padded(r.cert, 64);
  out += static_cast<char>((r.legacy ? kRecordLegacy : 0) | (r.final ? kRecordFinal : 0));
  out += u64_be(r.seq);
  out += proof::chain_bytes(r.chain);
  out += u64_be(r.bytes);
  return out;
}

namespace {
// A record of format 5 may end with a head (record_head).
bool is_origin_record(std::string_view v) {
  return v.size() == kOriginRecordBytes || v.size() == kOriginRecordBytes + kRecordHeadBytes;
}
}  // namespace

std::optional<OriginRecord> decode_origin_record(std::string_view v) {
  if (!is_origin_record(v)) return std::nullopt;
  OriginRecord r;
  r.key = std::string(v.substr(0, 32));
  if (!all_zero(v.substr(32, 32))) {
    r.device = std::string(v.substr(32, 32));
    r.cert = std::string(v.substr(64, 64));
  }
  const auto flags = static_cast<uint8_t>(v[128]);
  r.legacy = flags & kRecordLegacy;
  r.final = flags & kRecordFinal;
  r.seq = get_u64_be(v.data() + 129);
  r.chain = *proof::chain_from(v.substr(137, 32));
  r.bytes = get_u64_be(v.data() + 169);
  return r;
}

std::optional<OriginRecord> LogTxn::origin_record(OriginId origin) {
  auto v = record_bytes(origin);
  if (!v) return std::nullopt;
  return decode_origin_record(*v);
}

std::map<OriginId, OriginRecord> LogTxn::origin_records() {
  std::map<OriginId, OriginRecord> out;
  if (reads_origins_table()) {
    scan(log_->origins_, false, [&](std::string_view k, std::string_view v) {
      auto r = decode_origin_record(v);
      if (k.size() == 8 && r) out[get_u64_be(k.data())] = std::move(*r);
    });
    return out;
  }
  each_seqs_key("read origin records", [&](MDB_cursor*, MDB_val& k, MDB_val& v) {
    if (!is_record_key(k)) return 0;
    if (auto r = decode_origin_record(view(v))) out[get_u64_be(static_cast<const char*>(k.mv_data))] = std::move(*r);
    return 0;
  });
  return out;
}

std::optional<StoredHead> LogTxn::head_at_or_below(OriginId origin, uint64_t seq) {
  return head_near(origin, seq, true);
}

std::optional<StoredHead> LogTxn::head_at_or_above(OriginId origin, uint64_t seq) {
  return head_near(origin, seq, false);
}

// The held head of `origin` nearest `seq`, at or below it or at or above it:
// the nearer of the record's and the one `heads` holds.
std::optional<StoredHead> LogTxn::head_near(OriginId origin, uint64_t seq, bool at_or_below) {
  auto out = table_head_near(origin, seq, at_or_below);
  auto record = record_bytes(origin);
  auto newest = record ? record_head(*record) : std::nullopt;
  if (!newest || (at_or_below ? newest->seq > seq : newest->seq < seq)) return out;
  if (!out || (at_or_below ? newest->seq >= out->seq : newest->seq <= out->seq)) return newest;
  return out;
}

std::optional<StoredHead> LogTxn::table_head_near(OriginId origin, uint64_t seq, bool at_or_below) {
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn_, log_->heads_, &c);
  note(rc, "open heads cursor");
  if (rc) return std::nullopt;
  const std::string key = seq_key(origin, seq);
  MDB_val k = val(key), v;
  std::optional<StoredHead> out;
  // The first key >= (origin, seq); below: an exact match, or one step back.
  rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  if (at_or_below && rc == 0 && view(k) != key) rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
  else if (at_or_below && rc == MDB_NOTFOUND) rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
  if (rc == 0 && k.mv_size == 16 && get_u64_be(static_cast<const char*>(k.mv_data)) == origin)
    out = decode_stored_head(view(k), view(v));
  if (rc != MDB_NOTFOUND) note(rc, "read heads");
  mdb_cursor_close(c);
  return out;
}

std::vector<StoredHead> LogTxn::heads(OriginId origin) {
  std::vector<StoredHead> out;
  for (auto h = head_at_or_above(origin, 1); h; h = head_at_or_above(origin, h->seq + 1)) {
    out.push_back(*h);
    if (h->seq == UINT64_MAX) break;
  }
  return out;
}

std::map<OriginId, std::string> LogTxn::evidence() {
  std::map<OriginId, std::string> out;
  scan(log_->evidence_, false, [&](std::string_view k, std::string_view v) {
    if (k.size() == 8) out[get_u64_be(k.data())] = std::string(v);
  });
  return out;
}

std::map<OriginId, uint64_t> LogTxn::fork_seqs() {
  std::map<OriginId, uint64_t> out;
  for (const auto& [origin, bytes] : evidence())
    if (auto e = proof::decode_evidence(bytes)) out[origin] = e->fork_seq();
  return out;
}

Status LogTxn::put_origin_record(OriginId origin, const OriginRecord& record) {
  std::string value = encode_origin_record(record);
  if (auto old = record_bytes(origin); old && record_head(*old)) value.append(old->substr(kOriginRecordBytes));
  return put_record_bytes(origin, value);
}

// Writes `record`'s leading fields again, followed by `head` (none: no head).
Status LogTxn::put_record_head(OriginId origin, std::string_view record, const StoredHead* head) {
  std::string value(record.substr(0, kOriginRecordBytes));
  if (head) {
    value += u64_be(head->seq);
    value += encode_stored_head(*head);
  }
  return put_record_bytes(origin, value);
}

Status LogTxn::put_head(OriginId origin, const StoredHead& head, std::optional<uint64_t> drop) {
  auto found = record_bytes(origin);
  const bool has_record = found && is_origin_record(*found);
  const std::string record = has_record ? std::string(*found) : std::string();  // a put below may move its page
  auto newest = has_record ? record_head(record) : std::nullopt;
  if (drop) {
    // From the table too: a directory upgraded from format 4 may hold it in both.
    REPLOG_RETURN_IF_ERROR(delete_table_head(origin, *drop));
    if (newest && newest->seq == *drop) newest.reset();
  }
  if (!has_record) return put(log_->heads_, seq_key(origin, head.seq), encode_stored_head(head));
  if (newest && newest->seq > head.seq) return put(log_->heads_, seq_key(origin, head.seq), encode_stored_head(head));
  if (newest && newest->seq < head.seq)
    REPLOG_RETURN_IF_ERROR(put(log_->heads_, seq_key(origin, newest->seq), encode_stored_head(*newest)));
  return put_record_head(origin, record, &head);
}

// From the record and from `heads` alike: a directory upgraded from format 4
// may hold a head in both (one signed again after a crash, say).
Status LogTxn::delete_head(OriginId origin, uint64_t seq) {
  if (auto found = record_bytes(origin)) {
    const auto newest = record_head(*found);
    if (newest && newest->seq == seq) REPLOG_RETURN_IF_ERROR(put_record_head(origin, std::string(*found), nullptr));
  }
  return delete_table_head(origin, seq);
}

Status LogTxn::delete_table_head(OriginId origin, uint64_t seq) {
  const std::string key = seq_key(origin, seq);
  MDB_val k = val(key);
  int rc = mdb_del(txn_, log_->heads_, &k, nullptr);
  return rc && rc != MDB_NOTFOUND ? lmdb_error(rc, "delete head") : Status::ok();
}

Status LogTxn::put_evidence(OriginId origin, std::string_view bytes) {
  return put(log_->evidence_, u64_be(origin), bytes);
}

}  // namespace replog
