// The log's LMDB file read and rewritten from outside UpdateLog: which
// databases it wrote, and a directory turned back into the layout an older
// build left. LMDB must not have one environment open twice in a process,
// so each of these wants the log closed.
#pragma once

#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

#include "storage/update_log.h"

namespace replog::testing {

// Entries in the named database `name` of the LMDB environment in `dir`; -1
// when it has no such database.
inline int64_t database_entries(const std::string& dir, const char* name) {
  MDB_env* env = nullptr;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 16);
  int64_t out = -1;
  MDB_txn* txn = nullptr;
  if (mdb_env_open(env, dir.c_str(), MDB_NOTLS | MDB_RDONLY, 0600) == 0 &&
      mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == 0) {
    MDB_dbi dbi = 0;
    MDB_stat st;
    if (mdb_dbi_open(txn, name, 0, &dbi) == 0 && mdb_stat(txn, dbi, &st) == 0) out = static_cast<int64_t>(st.ms_entries);
    mdb_txn_abort(txn);
  }
  mdb_env_close(env);
  return out;
}

// Format 5 and earlier keep origin records in `origins`; format 6 keeps each
// in `seqs`, under origin(8) ‖ 00. Moves them back to `origins` and returns
// what failed, or "" with `moved` set.
inline std::string move_records_to_origins_table(MDB_txn* txn, size_t& moved) {
  MDB_dbi seqs = 0, origins = 0;
  if (mdb_dbi_open(txn, "seqs", MDB_DUPSORT | MDB_DUPFIXED, &seqs) || mdb_dbi_open(txn, "origins", 0, &origins))
    return "no seqs or origins";
  std::map<std::string, std::string> records;  // record key -> record
  MDB_cursor* c = nullptr;
  if (mdb_cursor_open(txn, seqs, &c)) return "cursor";
  MDB_val k, v;
  for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP))
    if (k.mv_size == 9)
      records[std::string(static_cast<const char*>(k.mv_data), k.mv_size)] =
          std::string(static_cast<const char*>(v.mv_data), v.mv_size);
  mdb_cursor_close(c);
  moved = 0;
  for (auto& [key, record] : records) {
    std::string k9 = key;
    MDB_val rk{k9.size(), k9.data()}, ok{8, k9.data()}, rv{record.size(), record.data()};
    if (mdb_del(txn, seqs, &rk, nullptr) || mdb_put(txn, origins, &ok, &rv, 0)) return "move a record";
    ++moved;
  }
  return "";
}

// Format 4 and earlier keep every head in `heads`: moves each origin
// record's newest head there (format 5 keeps it after the 177 record bytes,
// as `seq(8) ‖ 105-byte head`). Returns what failed, or "" with `moved` set.
inline std::string move_record_heads_to_table(MDB_txn* txn, size_t& moved) {
  constexpr size_t kRecord = 177, kTail = 8 + 105;
  MDB_dbi origins = 0, heads = 0;
  if (mdb_dbi_open(txn, "origins", 0, &origins) || mdb_dbi_open(txn, "heads", 0, &heads)) return "no origins or heads";
  std::map<std::string, std::string> records;
  MDB_cursor* c = nullptr;
  if (mdb_cursor_open(txn, origins, &c)) return "cursor";
  MDB_val k, v;
  for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
    records[std::string(static_cast<const char*>(k.mv_data), k.mv_size)] =
        std::string(static_cast<const char*>(v.mv_data), v.mv_size);
  mdb_cursor_close(c);
  moved = 0;
  for (auto& [origin, record] : records) {
    if (record.size() == kRecord) continue;
    if (record.size() != kRecord + kTail) return "an origin record of " + std::to_string(record.size()) + " bytes";
    std::string key = origin + record.substr(kRecord, 8), head = record.substr(kRecord + 8);
    record.resize(kRecord);
    MDB_val hk{key.size(), key.data()}, hv{head.size(), head.data()};
    MDB_val rk{origin.size(), const_cast<char*>(origin.data())}, rv{record.size(), record.data()};
    if (mdb_put(txn, heads, &hk, &hv, 0) || mdb_put(txn, origins, &rk, &rv, 0)) return "put";
    ++moved;
  }
  return "";
}

inline std::string put_format(MDB_txn* txn, int format) {
  MDB_dbi meta_db = 0;
  if (mdb_dbi_open(txn, "meta", 0, &meta_db)) return "no meta";
  std::string name = meta::kFormat, text = std::to_string(format);
  MDB_val mk{name.size(), name.data()}, mv{text.size(), text.data()};
  return mdb_put(txn, meta_db, &mk, &mv, 0) ? "put format" : "";
}

// Rewrites the closed log in `dir` as format 4 left it: origin records in
// `origins`, every head in `heads`, `format_version` 4. Returns what failed,
// or "".
inline std::string rewrite_as_format_4(const std::string& dir, size_t& moved) {
  MDB_env* env = nullptr;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 16);
  MDB_txn* txn = nullptr;
  std::string error = mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0600) ? "open " + dir
                      : mdb_txn_begin(env, nullptr, 0, &txn)          ? "begin"
                                                                      : "";
  size_t records = 0;
  if (error.empty()) error = move_records_to_origins_table(txn, records);
  if (error.empty()) error = move_record_heads_to_table(txn, moved);
  if (error.empty()) error = put_format(txn, 4);
  if (txn && error.empty() && mdb_txn_commit(txn)) error = "commit";
  else if (txn && !error.empty()) mdb_txn_abort(txn);
  mdb_env_close(env);
  return error;
}

// Rewrites the closed log in `dir` without a free page (LMDB's compacting
// copy), so that its file holds exactly the pages in use: opened with a map
// no larger than the file, its next commit finds the map full. Returns what
// failed, or "".
inline std::string compact(const std::string& dir) {
  const std::string copy = dir + "/compacted";
  if (::mkdir(copy.c_str(), 0700) != 0) return "mkdir " + copy;
  MDB_env* env = nullptr;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 16);
  std::string error = mdb_env_open(env, dir.c_str(), MDB_NOTLS | MDB_RDONLY, 0600) ? "open " + dir
                      : mdb_env_copy2(env, copy.c_str(), MDB_CP_COMPACT)        ? "copy"
                                                                                 : "";
  mdb_env_close(env);
  if (error.empty() && std::rename((copy + "/data.mdb").c_str(), (dir + "/data.mdb").c_str()) != 0) error = "rename";
  std::remove((copy + "/data.mdb").c_str());
  ::rmdir(copy.c_str());
  return error;
}

}  // namespace replog::testing
