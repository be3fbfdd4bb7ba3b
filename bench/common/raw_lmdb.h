// The raw LMDB reference of the durable figures: an environment with the
// library's flags (MDB_NOTLS, durable commits) and two databases, "log"
// (16-byte key -> body) and "index" (origin||seq -> key), written with the
// same two puts per update as the node does, and nothing of replog around them.
#pragma once

#include <lmdb.h>

#include <string>

#include "common/bench_common.h"
#include "protocol/update.h"

namespace replog::bench {

struct RawEnv {
  MDB_env* env = nullptr;
  MDB_dbi log = 0, index = 0;

  explicit RawEnv(const std::string& dir);  // makes the directory
  ~RawEnv();
  RawEnv(const RawEnv&) = delete;
  RawEnv& operator=(const RawEnv&) = delete;

  // One durable commit of what puts(txn) writes.
  template <typename Puts>
  void write(Puts&& puts) {
    MDB_txn* txn;
    mdb_check(mdb_txn_begin(env, nullptr, 0, &txn), "begin");
    puts(txn);
    mdb_check(mdb_txn_commit(txn), "commit");
  }

  // The log put and the index put of one update.
  void put_update(MDB_txn* txn, const Update& u);
};

}  // namespace replog::bench
