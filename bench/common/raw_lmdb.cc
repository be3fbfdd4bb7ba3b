#include "common/raw_lmdb.h"

#include <filesystem>

#include "protocol/bytes.h"

namespace replog::bench {

RawEnv::RawEnv(const std::string& dir) {
  std::filesystem::create_directories(dir);
  mdb_check(mdb_env_create(&env), "mdb_env_create");
  mdb_env_set_maxdbs(env, 4);
  mdb_check(mdb_env_set_mapsize(env, size_t{16} << 30), "mdb_env_set_mapsize");
  mdb_check(mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0600), "mdb_env_open " + dir);
  write([&](MDB_txn* txn) {
    mdb_check(mdb_dbi_open(txn, "log", MDB_CREATE, &log), "open log");
    mdb_check(mdb_dbi_open(txn, "index", MDB_CREATE, &index), "open index");
  });
}

RawEnv::~RawEnv() { mdb_env_close(env); }

void RawEnv::put_update(MDB_txn* txn, const Update& u) {
  auto key = u.id().key();
  const std::string& body = u.body();
  MDB_val k{key.size(), key.data()}, v{body.size(), const_cast<char*>(body.data())};
  mdb_check(mdb_put(txn, log, &k, &v, MDB_NOOVERWRITE), "put log");
  char ik[16];
  put_u64_be(ik, u.id().origin);
  put_u64_be(ik + 8, u.seq());
  MDB_val k2{sizeof ik, ik}, v2{key.size(), key.data()};
  mdb_check(mdb_put(txn, index, &k2, &v2, 0), "put index");
}

}  // namespace replog::bench
