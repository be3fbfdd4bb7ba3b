// A node's own origin as a key (node/engine/signing.cc): the origin id its
// device key derives, the chain kept in the write transaction, heads signed
// after each durable commit and thinned in storage, a head signed again after
// a crash, fresh certified keys when the node leaves its origin, and the
// in-place upgrade of a storage format 1 directory (tests/fixtures/format1).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "node/api/verify.h"
#include "node/core/hlc.h"
#include "node/engine/node.h"
#include "protocol/bytes.h"
#include "protocol/origin_proof.h"
#include "protocol/version_vector.h"
#include "storage/data_dir.h"
#include "storage/identity.h"
#include "storage/update_log.h"
#include "signed_node.h"
#include "lmdb_files.h"
#include "temp_dir.h"

namespace replog {
namespace {

using engine::Node;
using testing::TempDir;
using testing::database_entries;

std::string device_key(const std::string& dir) {
  auto id = load_identity(DataDir(dir).identity_file(), Env::posix());
  EXPECT_TRUE(id) << id.status().message();
  return id ? id->public_key() : std::string();
}

std::unique_ptr<Node> open_node(const std::string& dir) { return testing::open_signed_node(dir); }

std::unique_ptr<UpdateLog> open_log(const std::string& dir) {
  auto log = UpdateLog::open(dir, {});
  EXPECT_TRUE(log) << log.status().message();
  return log ? std::move(log).value() : nullptr;
}

Value set_arg(const std::string& key, const std::string& value) { return testing::set_string_arg(key, value); }

// The chain of `origin` recomputed from c_0 over the stored bodies 1..seq.
proof::Chain recompute(LogTxn& txn, const std::string& cluster, OriginId origin, const std::string& key, uint64_t seq) {
  proof::Chain c = proof::chain_start(cluster, key);
  for (uint64_t s = 1; s <= seq; ++s) {
    auto id = txn.id_of(origin, s);
    auto body = id ? txn.body(*id) : std::nullopt;
    EXPECT_TRUE(body) << "seq " << s;
    if (body) proof::chain_step(c, key, id->hlc, *body);
  }
  return c;
}

TEST(Signing, TheOriginIsTheDeviceKeysAndEveryCallIsChainedAndSigned) {
  TempDir tmp;
  const std::string dir = tmp.sub("d");
  ASSERT_TRUE(Node::init({dir, std::string("c1"), std::nullopt, nullptr}));
  const std::string key = device_key(dir);
  auto node = open_node(dir);
  ASSERT_TRUE(node);
  EXPECT_EQ(node->node_id(), proof::origin_of_key(key));
  EXPECT_FALSE(node->own_head(true)) << "no head before the first update";
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(node->call("set", set_arg("k" + std::to_string(i), "v")));
  auto head = node->own_head(true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->seq, 5u);
  EXPECT_EQ(head->key, key);
  EXPECT_TRUE(head->cert.empty()) << "the device key needs no certificate";
  EXPECT_TRUE(proof::check_head(*head, "c1", {})) << "the head verifies under the device key";
  const OriginId origin = node->node_id();
  ASSERT_TRUE(node->close());
  node.reset();

  auto log = open_log(dir);
  auto txn = log->begin_read();
  ASSERT_TRUE(txn);
  auto rec = txn->origin_record(origin);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->seq, 5u);
  EXPECT_EQ(rec->key, key);
  EXPECT_EQ(rec->chain, recompute(*txn, "c1", origin, key, 5)) << "the stored tip is the chain over the stored bodies";
  EXPECT_EQ(rec->chain, head->chain);
  auto stored = txn->head_at_or_below(origin, 5);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->seq, 5u) << "the newest head is stored by close()";
  EXPECT_EQ(stored->signature, head->signature);
}

TEST(Signing, StoredHeadsAreThinnedButTheNewestIsKept) {
  TempDir tmp;
  const std::string dir = tmp.sub("d");
  ASSERT_TRUE(Node::init({dir, std::string("c1"), std::nullopt, nullptr}));
  auto node = open_node(dir);
  ASSERT_TRUE(node);
  // One call per commit, so one signed head per update: 600 updates of ~1 KiB.
  const std::string filler(1000, 'x');
  for (int i = 0; i < 600; ++i) ASSERT_TRUE(node->call("set", set_arg("k" + std::to_string(i), filler)));
  const OriginId origin = node->node_id();
  ASSERT_TRUE(node->close());
  node.reset();

  auto log = open_log(dir);
  auto txn = log->begin_read();
  auto heads = txn->heads(origin);
  ASSERT_GE(heads.size(), 2u);
  EXPECT_LT(heads.size(), 20u) << "600 KiB of updates keep about one head per 64 KiB";
  EXPECT_EQ(heads.back().seq, 600u) << "the newest head is kept";
  uint64_t before = 0;
  for (size_t i = 0; i + 1 < heads.size(); ++i) {
    EXPECT_GE(heads[i].bytes - before, uint64_t{64} << 10) << "head " << heads[i].seq;
    EXPECT_LE(heads[i + 1].bytes - heads[i].bytes, (uint64_t{64} << 10) + 2048) << "gap after " << heads[i].seq;
    before = heads[i].bytes;
  }
  // Every kept head is a valid signature over the chain at its seq.
  auto rec = txn->origin_record(origin);
  ASSERT_TRUE(rec);
  for (const auto& h : heads) {
    proof::Head head{origin, h.seq, h.chain, h.flags, h.signature, {}, {}, {}};
    EXPECT_TRUE(proof::check_head(head, "c1", rec->key)) << h.seq;
    EXPECT_EQ(h.chain, recompute(*txn, "c1", origin, rec->key, h.seq)) << h.seq;
  }
}

TEST(Signing, LargeConcurrentBatchesAreSignedAtLeastEveryMebibyte) {
  TempDir tmp;
  const std::string dir = tmp.sub("d");
  ASSERT_TRUE(Node::init({dir, std::string("c1"), std::nullopt, nullptr}));
  auto node = open_node(dir);
  ASSERT_TRUE(node);
  const std::string big(200 * 1024, 'y');
  std::vector<std::thread> callers;
  for (int t = 0; t < 8; ++t)
    callers.emplace_back([&, t] {
      for (int i = 0; i < 6; ++i) EXPECT_TRUE(node->call("set", set_arg("t" + std::to_string(t), big)));
    });
  for (auto& c : callers) c.join();
  const OriginId origin = node->node_id();
  ASSERT_TRUE(node->close());
  node.reset();
  auto log = open_log(dir);
  auto txn = log->begin_read();
  auto heads = txn->heads(origin);
  ASSERT_FALSE(heads.empty());
  EXPECT_EQ(heads.back().seq, 48u);
  uint64_t before = 0;
  for (const auto& h : heads) {
    EXPECT_LE(h.bytes - before, (uint64_t{1} << 20) + big.size() + 1024) << "head " << h.seq;
    before = h.bytes;
  }
}

TEST(Signing, AHeadLostInACrashIsSignedAgainByteForByte) {
  TempDir tmp;
  const std::string dir = tmp.sub("d");
  ASSERT_TRUE(Node::init({dir, std::string("c1"), std::nullopt, nullptr}));
  auto node = open_node(dir);
  ASSERT_TRUE(node);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(node->call("set", set_arg("k" + std::to_string(i), "v")));
  auto before = node->own_head(false);
  ASSERT_TRUE(before);
  const OriginId origin = node->node_id();
  ASSERT_TRUE(node->close());
  node.reset();
  {
    // As if the process died after the commit of #3 and before its head was stored.
    auto log = open_log(dir);
    auto txn = log->begin_write();
    ASSERT_TRUE(txn->delete_head(origin, 3));
    ASSERT_TRUE(txn->commit());
  }
  node = open_node(dir);
  ASSERT_TRUE(node);
  auto after = node->own_head(false);
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, *before);
  ASSERT_TRUE(node->close());
  node.reset();
  auto log = open_log(dir);
  auto stored = log->begin_read()->head_at_or_below(origin, 3);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->seq, 3u);
  EXPECT_EQ(stored->signature, before->signature);
}

TEST(Signing, LeavingTheOriginMovesToAFreshKeyTheDeviceCertifies) {
  TempDir tmp;
  const std::string dir = tmp.sub("d");
  ASSERT_TRUE(Node::init({dir, std::string("c1"), std::nullopt, nullptr}));
  const std::string device = device_key(dir);
  {
    auto node = open_node(dir);
    ASSERT_TRUE(node);
    ASSERT_TRUE(node->call("set", set_arg("a", "1")));
  }
  // A copy of the directory writes #2 of the same origin with the same key.
  const std::string copy = tmp.sub("copy");
  std::filesystem::copy(dir, copy);
  std::filesystem::remove(copy + "/LOCK");
  auto twin = open_node(copy);
  ASSERT_TRUE(twin);
  ASSERT_TRUE(twin->call("set", set_arg("twin", "2")));
  auto written = twin->read_range(twin->node_id(), 2, 1, 1 << 20);
  ASSERT_TRUE(written && written->head) << "the twin's #2 ends at its head";
  auto node = open_node(dir);
  ASSERT_TRUE(node);
  const OriginId first = node->node_id();
  ASSERT_EQ(twin->node_id(), first);
  // Genuine (signed by the origin's own key), but never written here.
  auto report = node->ingest(written->updates, {*written->head});
  ASSERT_TRUE(report) << report.status().message();
  EXPECT_EQ(report->accepted, 1u);
  ASSERT_TRUE(report->origin_changed);
  const OriginId second = node->node_id();
  EXPECT_NE(second, first);
  ASSERT_TRUE(node->call("set", set_arg("b", "2")));
  auto head = node->own_head(true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->origin, second);
  EXPECT_EQ(head->seq, 1u);
  EXPECT_NE(head->key, device);
  EXPECT_EQ(head->device, device);
  EXPECT_TRUE(proof::check_head(*head, "c1", {})) << "signed by the fresh key, certified by the device key";
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/origin-" + hex16(second) + ".key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE(node->close());
  node.reset();
  // The fresh key is the one the node reopens with.
  node = open_node(dir);
  ASSERT_TRUE(node);
  EXPECT_EQ(node->node_id(), second);
  ASSERT_TRUE(node->call("set", set_arg("c", "3")));
  EXPECT_EQ(node->own_head(false)->seq, 2u);
  EXPECT_TRUE(proof::check_head(*node->own_head(true), "c1", {}));
}

// `replog verify` of `dir` finds nothing wrong; `report` is what it says.
void expect_verified(const std::string& dir, VerifyReport& report) {
  auto r = verify_data_dir(dir, std::make_shared<const MethodRegistry>(MethodRegistry::with_builtins()));
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_TRUE(r->ok()) << (r->problems.empty() ? "" : r->problems.front());
  report = std::move(*r);
}

// Copies a fixture directory and makes its key files 0600 (git keeps no modes).
void copy_fixture(const std::string& name, const std::string& to) {
  namespace fs = std::filesystem;
  fs::copy(fs::path(REPLOG_FIXTURES) / "format1" / name, to, fs::copy_options::recursive);
  for (const auto& f : fs::directory_iterator(to)) ::chmod(f.path().c_str(), 0600);
}

TEST(Signing, AFormatOneDirectoryIsUpgradedInPlaceWithNothingLost) {
  TempDir tmp;
  const std::string dir = tmp.sub("b");
  copy_fixture("b", dir);
  const std::string key = device_key(dir);
  std::string hash_before;
  OriginId legacy = 0;
  {
    engine::NodeOptions o;
    o.dir = dir;
    auto ro = Node::open_read_only(o);
    ASSERT_TRUE(ro) << ro.status().message() << " (a reader reads format 1 as it is)";
    hash_before = (*ro)->state_hash();
    legacy = (*ro)->node_id();
  }
  EXPECT_EQ(hash_before, "be8209f6de6e6830d3eeb6b4379c8a8f7952f715b4e053e22f2c5ca116259c18");
  auto node = open_node(dir);
  ASSERT_TRUE(node);
  EXPECT_EQ(node->state_hash(), hash_before);
  EXPECT_EQ(node->node_id(), proof::origin_of_key(key));
  auto info = node->info();
  ASSERT_TRUE(info.former_origins.count(legacy));
  EXPECT_NE(info.former_origins[legacy].find("signed origins"), std::string::npos);
  EXPECT_EQ(info.updates, 8u);
  ASSERT_TRUE(node->call("set", set_arg("after", "upgrade")));
  EXPECT_EQ(node->own_head(false)->seq, 1u);
  ASSERT_TRUE(node->close());
  node.reset();

  auto log = open_log(dir);
  auto txn = log->begin_read();
  EXPECT_EQ(txn->meta(meta::kFormat), std::optional<std::string>("6"));
  auto rec = txn->origin_record(legacy);
  ASSERT_TRUE(rec);
  EXPECT_TRUE(rec->legacy);
  EXPECT_TRUE(rec->final);
  EXPECT_EQ(rec->seq, 4u);
  auto attested = txn->head_at_or_below(legacy, 4);
  ASSERT_TRUE(attested);
  proof::Head head{legacy, 4, attested->chain, attested->flags, attested->signature, key, {}, {}};
  EXPECT_EQ(head.flags, proof::kLegacy | proof::kFinal);
  EXPECT_TRUE(proof::check_head(head, "f1f1f1f1-0001", {})) << "the attestation verifies under the device key";
  EXPECT_EQ(attested->chain, recompute(*txn, "f1f1f1f1-0001", legacy, key, 4));
  txn.value().abort();
  log.reset();
  VerifyReport report;
  ASSERT_NO_FATAL_FAILURE(expect_verified(dir, report));
}

// Format 3 and earlier: the vector table; format 2: the seq index in `seq`.
void write_vector_table(MDB_txn* txn, int format) {
  MDB_dbi seqs = 0, seq = 0, vector = 0;
  ASSERT_EQ(mdb_dbi_open(txn, "seqs", MDB_DUPSORT | MDB_DUPFIXED, &seqs), 0);
  ASSERT_EQ(mdb_dbi_open(txn, "vector", MDB_CREATE, &vector), 0);
  if (format == 2) {
    ASSERT_EQ(mdb_dbi_open(txn, "seq", MDB_CREATE, &seq), 0);
  }
  MDB_cursor* c = nullptr;
  ASSERT_EQ(mdb_cursor_open(txn, seqs, &c), 0);
  MDB_val k, v;
  size_t moved = 0;
  std::map<std::string, std::string> last;  // origin -> seq || hlc of its last entry
  for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    ASSERT_EQ(k.mv_size, 8u);
    ASSERT_EQ(v.mv_size, 24u);
    const std::string origin(static_cast<const char*>(k.mv_data), 8);
    last[origin] = std::string(static_cast<const char*>(v.mv_data), 16);
    if (format != 2) continue;
    std::string old_key = origin;
    old_key.append(static_cast<const char*>(v.mv_data), 8);
    MDB_val ok{old_key.size(), old_key.data()}, ov{16, static_cast<char*>(v.mv_data) + 8};
    ASSERT_EQ(mdb_put(txn, seq, &ok, &ov, 0), 0);
    ++moved;
  }
  mdb_cursor_close(c);
  EXPECT_FALSE(last.empty());
  for (auto& [origin, entry] : last) {
    MDB_val vk{origin.size(), const_cast<char*>(origin.data())}, vv{entry.size(), entry.data()};
    ASSERT_EQ(mdb_put(txn, vector, &vk, &vv, 0), 0);
  }
  if (format == 2) {
    EXPECT_GT(moved, 0u);
    ASSERT_EQ(mdb_drop(txn, seqs, 1), 0);
  }
}

// Rewrites a current directory as an older build left it. Format 5 and
// earlier keep origin records in `origins`. Format 4 and earlier keep every
// head in `heads`. Format 3 and earlier keep a vector
// table (`vector`: origin(8) -> seq(8) || hlc of that update(8)); format 2
// also keeps its seq index in `seq`, keyed origin(8)||seq(8), each value the
// 16-byte log key. Marks the directory with `format`.
void rewrite_as_format(const std::string& dir, int format) {
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 16);
  ASSERT_EQ(mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0600), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  size_t records = 0, moved = 0;
  ASSERT_EQ(testing::move_records_to_origins_table(txn, records), "");
  EXPECT_GT(records, 0u);
  if (format <= 4) {
    ASSERT_EQ(testing::move_record_heads_to_table(txn, moved), "");
    EXPECT_GT(moved, 0u);
  }
  if (format <= 3) {
    ASSERT_NO_FATAL_FAILURE(write_vector_table(txn, format));
  }
  ASSERT_EQ(testing::put_format(txn, format), "");
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

// Whether the LMDB environment in `dir` holds the named database `name`.
bool has_database(const std::string& dir, const char* name) {
  MDB_env* env = nullptr;
  mdb_env_create(&env);
  mdb_env_set_maxdbs(env, 16);
  bool found = false;
  MDB_txn* txn = nullptr;
  if (mdb_env_open(env, dir.c_str(), MDB_NOTLS | MDB_RDONLY, 0600) == 0 &&
      mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == 0) {
    MDB_dbi dbi = 0;
    found = mdb_dbi_open(txn, name, 0, &dbi) == 0;
    mdb_txn_abort(txn);
  }
  mdb_env_close(env);
  return found;
}

// Makes tmp/a a directory of two origins: `calls` calls of its own and as
// many of tmp/b's, taken with their head (so that the seq index and the
// vector hold more than one origin); sets its state hash and vector, and
// closes it.
void two_origins(TempDir& tmp, int calls, std::string& hash, VersionVector& vector) {
  const std::string a_dir = tmp.sub("a"), b_dir = tmp.sub("b");
  ASSERT_TRUE(Node::init({a_dir, std::string("c1"), std::nullopt, nullptr}));
  ASSERT_TRUE(Node::init({b_dir, std::string("c1"), std::nullopt, nullptr}));
  auto a = open_node(a_dir);
  auto b = open_node(b_dir);
  for (int i = 0; i < calls; ++i) {
    ASSERT_TRUE(a->call("set", set_arg("a" + std::to_string(i % 7), std::to_string(i))));
    ASSERT_TRUE(b->call("set", set_arg("b" + std::to_string(i % 5), std::to_string(i))));
  }
  auto range = b->read_range(b->node_id(), 1, 1000, size_t{1} << 20);
  ASSERT_TRUE(range && range->head);
  auto report = a->ingest(range->updates, {*range->head});
  ASSERT_TRUE(report);
  ASSERT_EQ(report->accepted, static_cast<uint64_t>(calls));
  hash = a->state_hash();
  vector = a->vector();
  ASSERT_EQ(vector.size(), 2u);
  ASSERT_TRUE(a->close());
}

TEST(Signing, AFormatTwoDirectoryIsReadAsItIsAndUpgradedInPlaceWithNothingLost) {
  TempDir tmp;
  const std::string a_dir = tmp.sub("a");
  std::string hash;
  VersionVector vector;
  ASSERT_NO_FATAL_FAILURE(two_origins(tmp, 30, hash, vector));
  rewrite_as_format(a_dir, 2);

  engine::NodeOptions o;
  o.dir = a_dir;
  {
    auto ro = Node::open_read_only(o);
    ASSERT_TRUE(ro) << ro.status().message() << " (a reader reads format 2 as it is)";
    EXPECT_EQ((*ro)->state_hash(), hash);
    VersionVector seen;
    auto read = (*ro)->read_since(seen, 1000);
    ASSERT_TRUE(read);
    EXPECT_EQ(read->size(), 60u);
  }
  VerifyReport before;
  ASSERT_NO_FATAL_FAILURE(expect_verified(a_dir, before));

  auto node = open_node(a_dir);
  ASSERT_TRUE(node);
  EXPECT_EQ(node->state_hash(), hash);
  EXPECT_EQ(node->vector(), vector);
  ASSERT_TRUE(node->call("set", set_arg("after", "upgrade")));
  ASSERT_TRUE(node->close());
  node.reset();

  auto log = open_log(a_dir);
  auto txn = log->begin_read();
  EXPECT_EQ(txn->meta(meta::kFormat), std::optional<std::string>("6"));
  for (const auto& [origin, held] : vector)
    for (uint64_t seq = 1; seq <= held; ++seq) {
      auto id = txn->id_of(origin, seq);
      ASSERT_TRUE(id) << hex16(origin) << " #" << seq;
      auto body = txn->body(*id);
      ASSERT_TRUE(body);
      auto u = parse_update(*id, *body);
      ASSERT_TRUE(u);
      EXPECT_EQ(u->seq, seq);
    }
  txn.value().abort();
  log.reset();
  EXPECT_FALSE(has_database(a_dir, "seq")) << "the old seq index is gone";
  EXPECT_EQ(database_entries(a_dir, "vector"), 0) << "the seq index implies the vector";
  VerifyReport after;
  ASSERT_NO_FATAL_FAILURE(expect_verified(a_dir, after));
  EXPECT_EQ(after.updates, 61u);
}

// Format 3 kept a vector table beside the seq index. A reader reads it as it
// is; a writer empties it in the upgrade to format 4 and reads each origin's
// entry from the seq index: the same vector, the same state, nothing lost.
TEST(Signing, AFormatThreeDirectoryDropsItsVectorTableAndKeepsItsVector) {
  TempDir tmp;
  const std::string a_dir = tmp.sub("a");
  std::string hash;
  VersionVector vector;
  ASSERT_NO_FATAL_FAILURE(two_origins(tmp, 20, hash, vector));
  std::map<OriginId, VectorEntry> entries = open_log(a_dir)->begin_read()->vector_entries();
  EXPECT_EQ(database_entries(a_dir, "vector"), 0) << "format 4 and later write no vector table";
  rewrite_as_format(a_dir, 3);
  ASSERT_EQ(database_entries(a_dir, "vector"), 2);

  engine::NodeOptions o;
  o.dir = a_dir;
  {
    auto ro = Node::open_read_only(o);
    ASSERT_TRUE(ro) << ro.status().message() << " (a reader reads format 3 as it is)";
    EXPECT_EQ((*ro)->state_hash(), hash);
    EXPECT_EQ((*ro)->vector(), vector);
  }
  EXPECT_EQ(database_entries(a_dir, "vector"), 2) << "a reader changes nothing";

  auto node = open_node(a_dir);
  ASSERT_TRUE(node);
  EXPECT_EQ(node->state_hash(), hash);
  EXPECT_EQ(node->vector(), vector);
  ASSERT_TRUE(node->call("set", set_arg("after", "upgrade")));
  vector[node->node_id()] += 1;
  EXPECT_EQ(node->vector(), vector);
  ASSERT_TRUE(node->close());
  node.reset();

  EXPECT_EQ(database_entries(a_dir, "vector"), 0);
  auto log = open_log(a_dir);
  auto txn = log->begin_read();
  EXPECT_EQ(txn->meta(meta::kFormat), std::optional<std::string>("6"));
  auto now = txn->vector_entries();
  for (const auto& [origin, e] : entries) {
    ASSERT_TRUE(now.count(origin));
    if (now[origin].seq != e.seq) continue;  // the origin that wrote after the upgrade
    EXPECT_EQ(now[origin].last_hlc, e.last_hlc) << hex16(origin);
  }
  txn.value().abort();
  log.reset();
  VerifyReport after;
  ASSERT_NO_FATAL_FAILURE(expect_verified(a_dir, after));
  EXPECT_EQ(after.updates, 41u);
}

// Format 5 keeps each origin's newest head in its record, which the commit
// writes anyway: calls that each store the head of the one before leave
// `heads` empty until 64 KiB of bodies make a head worth keeping.
TEST(Signing, TheNewestHeadIsKeptInTheOriginRecordAndOnlyThinnedHeadsInTheTable) {
  TempDir tmp;
  const std::string dir = tmp.sub("d");
  ASSERT_TRUE(Node::init({dir, std::string("c1"), std::nullopt, nullptr}));
  auto node = open_node(dir);
  ASSERT_TRUE(node);
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(node->call("set", set_arg("k" + std::to_string(i % 3), "v")));
  const OriginId origin = node->node_id();
  ASSERT_TRUE(node->close());
  node.reset();
  EXPECT_EQ(database_entries(dir, "heads"), 0) << "40 small calls keep one head, in the record";
  {
    auto log = open_log(dir);
    auto txn = log->begin_read();
    auto heads = txn->heads(origin);
    ASSERT_EQ(heads.size(), 1u);
    EXPECT_EQ(heads[0].seq, 40u);
  }
  node = open_node(dir);
  ASSERT_TRUE(node);
  const std::string filler(1000, 'x');
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(node->call("set", set_arg("f" + std::to_string(i), filler)));
  ASSERT_TRUE(node->close());
  node.reset();
  size_t kept = 0;
  {
    auto log = open_log(dir);
    auto heads = log->begin_read()->heads(origin);
    ASSERT_GE(heads.size(), 3u) << "200 KiB keep a head per 64 KiB";
    EXPECT_EQ(heads.back().seq, 240u);
    kept = heads.size();
  }
  EXPECT_EQ(database_entries(dir, "heads"), static_cast<int64_t>(kept) - 1) << "all but the newest in the table";
  VerifyReport report;
  ASSERT_NO_FATAL_FAILURE(expect_verified(dir, report));
  EXPECT_EQ(report.heads_checked, kept);
}

// A directory of two_origins(tmp, 20, ...) upgraded by a writer that made one
// call: `replog verify` finds both origins' newest heads and all 41 updates.
void expect_upgraded_with_one_call(const std::string& dir) {
  VerifyReport after;
  ASSERT_NO_FATAL_FAILURE(expect_verified(dir, after));
  EXPECT_EQ(after.heads_checked, 2u);
  EXPECT_EQ(after.updates, 41u);
}

// Format 4 kept every head in `heads`. A reader reads them there; a writer
// upgrades to format 5 without moving them: the next head of an origin goes
// into its record, and the one in the table stays or is thinned as before.
TEST(Signing, AFormatFourDirectoryKeepsItsHeadsWhereTheyAreAndUpgrades) {
  TempDir tmp;
  const std::string a_dir = tmp.sub("a");
  std::string hash;
  VersionVector vector;
  ASSERT_NO_FATAL_FAILURE(two_origins(tmp, 20, hash, vector));
  ASSERT_EQ(database_entries(a_dir, "heads"), 0);
  rewrite_as_format(a_dir, 4);
  ASSERT_EQ(database_entries(a_dir, "heads"), 2) << "each origin's newest head, in the table";
  VerifyReport before;
  ASSERT_NO_FATAL_FAILURE(expect_verified(a_dir, before));
  EXPECT_EQ(before.heads_checked, 2u) << "a reader finds the heads in the table";

  auto node = open_node(a_dir);
  ASSERT_TRUE(node);
  EXPECT_EQ(node->state_hash(), hash);
  const OriginId own = node->node_id();
  auto range = node->read_range(own, 1, 100, size_t{1} << 20);
  ASSERT_TRUE(range && range->head) << "its own updates are served with their head";
  EXPECT_EQ(range->head->seq, 20u);
  ASSERT_TRUE(node->call("set", set_arg("after", "upgrade")));
  ASSERT_TRUE(node->close());
  node.reset();

  EXPECT_EQ(database_entries(a_dir, "heads"), 1) << "the own origin's head #20 was thinned; the other stays";
  {
    auto log = open_log(a_dir);
    auto txn = log->begin_read();
    EXPECT_EQ(txn->meta(meta::kFormat), std::optional<std::string>("6"));
    for (const auto& [origin, held] : vector) {
      auto newest = txn->head_at_or_below(origin, UINT64_MAX);
      ASSERT_TRUE(newest) << hex16(origin);
      EXPECT_EQ(newest->seq, origin == own ? held + 1 : held) << hex16(origin);
    }
  }
  ASSERT_NO_FATAL_FAILURE(expect_upgraded_with_one_call(a_dir));
}

// Format 5 kept origin records in `origins`. A reader reads them there; a
// writer moves them into `seqs` (format 6), and every record, head and check
// reads as before.
TEST(Signing, AFormatFiveDirectoryMovesItsOriginRecordsBesideTheSeqIndex) {
  TempDir tmp;
  const std::string a_dir = tmp.sub("a");
  std::string hash;
  VersionVector vector;
  ASSERT_NO_FATAL_FAILURE(two_origins(tmp, 20, hash, vector));
  std::map<OriginId, OriginRecord> records;
  {
    auto log = open_log(a_dir);
    records = log->begin_read()->origin_records();
  }
  ASSERT_EQ(records.size(), 2u);
  rewrite_as_format(a_dir, 5);
  ASSERT_EQ(database_entries(a_dir, "origins"), 2);
  ASSERT_EQ(database_entries(a_dir, "heads"), 0) << "format 5 keeps the newest heads in the records too";
  VerifyReport before;
  ASSERT_NO_FATAL_FAILURE(expect_verified(a_dir, before));
  EXPECT_EQ(before.heads_checked, 2u) << "a reader finds the records and their heads in `origins`";

  auto node = open_node(a_dir);
  ASSERT_TRUE(node);
  EXPECT_EQ(node->state_hash(), hash);
  const OriginId own = node->node_id();
  ASSERT_TRUE(node->call("set", set_arg("after", "upgrade")));
  ASSERT_TRUE(node->close());
  node.reset();
  {
    auto log = open_log(a_dir);
    auto txn = log->begin_read();
    EXPECT_EQ(txn->meta(meta::kFormat), std::optional<std::string>("6"));
    const auto after = txn->origin_records();
    ASSERT_EQ(after.size(), 2u);
    for (const auto& [origin, r] : records) {
      const uint64_t seq = origin == own ? r.seq + 1 : r.seq;
      EXPECT_EQ(after.at(origin).seq, seq) << hex16(origin);
      EXPECT_EQ(after.at(origin).key, r.key) << hex16(origin);
      EXPECT_EQ(txn->head_at_or_below(origin, UINT64_MAX)->seq, seq) << hex16(origin);
      if (origin != own) {
        EXPECT_EQ(after.at(origin).chain, r.chain) << "the other origin's record moved unchanged";
      }
    }
  }
  EXPECT_EQ(database_entries(a_dir, "origins"), 0) << "the upgrade moved them";
  ASSERT_NO_FATAL_FAILURE(expect_upgraded_with_one_call(a_dir));
}

// Opened with an initial map a page larger than its file, and no page free
// in it (compacted), a directory of an older format has no room for the
// upgrade's commit: the map is grown and the upgrade run again, as a batch of
// calls would be. (The simulator, whose nodes start with maps of 64 to 512
// KiB, found a node that could not open: "commit: MDB_MAP_FULL".)
TEST(Signing, AnOlderFormatUpgradesWhenItsMapIsFull) {
  TempDir tmp;
  const std::string a_dir = tmp.sub("a");
  std::string hash;
  VersionVector vector;
  ASSERT_NO_FATAL_FAILURE(two_origins(tmp, 20, hash, vector));
  rewrite_as_format(a_dir, 4);
  ASSERT_EQ(testing::compact(a_dir), "");
  engine::NodeOptions o;
  o.dir = a_dir;
  // One page beyond the file: the map the log opens with (it doubles only a
  // file larger than the initial map).
  o.initial_map_bytes = std::filesystem::file_size(a_dir + "/data.mdb") + 4096;
  auto node = Node::open(o);
  ASSERT_TRUE(node) << node.status().message();
  EXPECT_EQ((*node)->state_hash(), hash);
  ASSERT_TRUE((*node)->call("set", set_arg("after", "upgrade")));
  Status closed = (*node)->close();
  ASSERT_TRUE(closed) << closed.message();
  node->reset();
  auto log = open_log(a_dir);
  auto txn = log->begin_read();
  EXPECT_EQ(txn->meta(meta::kFormat), std::optional<std::string>("6"));
}

// Both directories of the format 1 cluster upgrade; each attests its own old
// origin, and what one held that the other lacked (b's last update) reaches it
// under b's attestation, through the ranges each now serves: nothing is lost.
TEST(Signing, AFormatOneClusterUpgradesAndSyncsWithNothingLost) {
  TempDir tmp;
  copy_fixture("a", tmp.sub("a"));
  copy_fixture("b", tmp.sub("b"));
  auto a = open_node(tmp.sub("a"));
  auto b = open_node(tmp.sub("b"));
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->state_hash(), b->state_hash()) << "a lacks b's last update";
  for (int round = 0; round < 2; ++round) {
    for (auto [from, to] : {std::pair{b.get(), a.get()}, std::pair{a.get(), b.get()}}) {
      for (const auto& [origin, seq] : from->vector()) {
        const uint64_t held = seq_of(to->vector(), origin);
        if (held >= seq) continue;
        auto range = from->read_range(origin, held + 1, 100, 1 << 20);
        ASSERT_TRUE(range) << range.status().message();
        ASSERT_TRUE(range->head) << "origin " << hex16(origin) << ": served under its writer's attestation";
        auto rep = to->ingest(range->updates, {*range->head});
        ASSERT_TRUE(rep);
        EXPECT_TRUE(rep->refused.empty()) << rep->refused.front().detail;
      }
    }
  }
  EXPECT_EQ(a->vector(), b->vector());
  EXPECT_EQ(a->info().updates, 8u);
  EXPECT_EQ(a->state_hash(), "be8209f6de6e6830d3eeb6b4379c8a8f7952f715b4e053e22f2c5ca116259c18");
  EXPECT_EQ(b->state_hash(), a->state_hash());
  // b's legacy origin is verified at a now: its attestation covered what a held too.
  auto b_info = b->info();
  OriginId b_legacy = 0;
  for (const auto& [origin, why] : b_info.former_origins) b_legacy = origin;
  EXPECT_EQ(a->info().verified.at(b_legacy), 4u);
}

TEST(Signing, ANewerStorageFormatIsRefusedWithOneLine) {
  TempDir tmp;
  const std::string dir = tmp.sub("d");
  ASSERT_TRUE(Node::init({dir, std::string("c1"), std::nullopt, nullptr}));
  {
    auto log = open_log(dir);
    auto txn = log->begin_write();
    ASSERT_TRUE(txn->put_meta(meta::kFormat, "7"));
    ASSERT_TRUE(txn->commit());
  }
  engine::NodeOptions o;
  o.dir = dir;
  auto n = Node::open(o);
  ASSERT_FALSE(n);
  EXPECT_NE(n.status().message().find("storage format 7"), std::string::npos) << n.status().message();
  EXPECT_EQ(n.status().message().find('\n'), std::string::npos);
  auto ro = Node::open_read_only(o);
  EXPECT_FALSE(ro);
}

}  // namespace
}  // namespace replog
