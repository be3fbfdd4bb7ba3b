// Entries in one named database of an LMDB environment, read straight from
// the file: how tests see which databases the log wrote. LMDB must not have
// the environment open twice in one process, so close the log first.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <string>

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

}  // namespace replog::testing
