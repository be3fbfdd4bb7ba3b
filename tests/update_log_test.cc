// The LMDB log's map: it grows under readers on other threads (the daemon's
// peer and API threads read while the writer grows it), and a resize that
// the OS refuses leaves the log usable. Both were found by the simulator with
// small maps and the store's fault points (tests/sim/README.md). And where
// an origin's heads are kept: the newest in its record, older ones in `heads`.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>

#include "protocol/bytes.h"
#include "storage/update_log.h"
#include "lmdb_files.h"
#include "temp_dir.h"

namespace replog {
namespace {

std::unique_ptr<UpdateLog> small_log(const std::string& dir) {
  UpdateLog::Options o;
  o.create = true;
  o.initial_map_bytes = 64 << 10;
  auto log = UpdateLog::open(dir, o);
  EXPECT_TRUE(log.is_ok()) << log.status().message();
  return std::move(log).value();
}

// Writes `n` meta records of 4 KiB in one transaction, growing the map as the
// writer does when it is full.
Status write_batch(UpdateLog& log, int first, int n) {
  for (int attempt = 0; attempt < 12; ++attempt) {
    REPLOG_RETURN_IF_ERROR(log.grow_if_needed(attempt > 0));
    auto txn = log.begin_write();
    if (!txn) return txn.status();
    Status s;
    for (int i = first; i < first + n && s; ++i) s = txn->put_meta("k" + std::to_string(i), std::string(4096, 'x'));
    if (s) s = txn->commit();
    if (s.code() != Status::Code::kStoreFull) return s;
  }
  return Status::store_full("still full");
}

TEST(UpdateLog, MapGrowsWhileOtherThreadsRead) {
  testing::TempDir dir;
  auto log = small_log(dir.path());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r)
    readers.emplace_back([&] {
      while (!stop) {
        auto txn = log->begin_read();
        ASSERT_TRUE(txn.is_ok());
        // Touch the map for a while inside the transaction.
        for (int i = 0; i < 50; ++i) (void)txn->meta("k" + std::to_string(i));
        ++reads;
      }
    });
  const size_t before = log->map_bytes();
  for (int b = 0; b < 200; ++b) ASSERT_TRUE(write_batch(*log, b * 8, 8).is_ok()) << "batch " << b;
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_GE(log->map_bytes(), before * 64) << "the map grew many times";
  EXPECT_GT(reads.load(), 0u);
  auto txn = log->begin_read();
  ASSERT_TRUE(txn.is_ok());
  EXPECT_EQ(txn->meta("k1599")->size(), 4096u);
}

// The address space this process has mapped (VmSize), in bytes. A sanitized
// build maps terabytes of shadow memory up front (ThreadSanitizer more on
// demand): a cap must count from what is there.
size_t address_space_in_use() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmSize:", 0) == 0) return std::stoull(line.substr(7)) * 1024;  // in kB
  return 0;
}

// In a child process whose address space is capped, a resize past the cap
// fails; the log must still begin transactions and read what it holds.
TEST(UpdateLog, AFailedResizeLeavesTheLogUsable) {
  testing::TempDir dir;
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto log = small_log(dir.path());
    if (!write_batch(*log, 0, 4)) _exit(10);
    const rlim_t limit = address_space_in_use() + (size_t{1} << 34);  // 16 GiB more address space
    rlimit cap{limit, limit};
    if (::setrlimit(RLIMIT_AS, &cap) != 0) _exit(11);
    Status grown;
    for (int i = 0; i < 40 && grown; ++i) grown = log->grow_if_needed(true);
    if (grown) _exit(12);                                  // never refused: the cap did not bite
    if (grown.code() == Status::Code::kNoSpace) _exit(13);  // the 1 TiB ceiling came first
    auto txn = log->begin_read();
    if (!txn) _exit(14);
    auto v = txn->meta("k3");
    _exit(v && v->size() == 4096 ? 0 : 15);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(UpdateLog, MapStopsGrowingAtTheCeiling) {
  testing::TempDir dir;
  auto log = small_log(dir.path());
  Status grown;
  int doublings = 0;
  for (; doublings < 64 && grown; ++doublings) grown = log->grow_if_needed(true);
#if defined(__SANITIZE_THREAD__)
  // TSan keeps most of the address space for its shadow: a map of up to 1 TiB
  // may not fit beside it, whatever the log does.
  if (grown.code() == Status::Code::kIOError && log->begin_read().is_ok())
    GTEST_SKIP() << "under TSan the address space has no room for the ceiling: " << grown.message();
#endif
  EXPECT_EQ(grown.code(), Status::Code::kNoSpace) << grown.message();
  EXPECT_LE(log->map_bytes(), UpdateLog::kMaxMapBytes);
  EXPECT_TRUE(log->begin_read().is_ok());
}

StoredHead head_at(uint64_t seq) {
  StoredHead h;
  h.seq = seq;
  h.chain.fill(static_cast<uint8_t>(seq));
  h.flags = 0;
  h.signature = std::string(64, static_cast<char>('a' + seq % 26));
  h.bytes = seq * 100;
  return h;
}

std::vector<uint64_t> seqs_of(const std::vector<StoredHead>& heads) {
  std::vector<uint64_t> out;
  for (const auto& h : heads) out.push_back(h.seq);
  return out;
}

// Format 5: a commit that stores an origin's newest head writes its record
// (which the commit writes anyway) and not `heads`, until a newer head pushes
// it there. Reads see the record's head and the table's as one set, so a
// directory of format 4 (every head in `heads`) reads the same.
// A range of one origin is read with one cursor on the seq index and one on
// the log: in seq order, from any seq, up to a hole or as far as the caller
// wants; a seq entry whose update is gone from the log is corruption.
// Deletes the update `id` from the log of the directory, behind the seq
// index's back (as damage would).
void delete_from_log(const std::string& dir, const UpdateId& id) {
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 16);
  ASSERT_EQ(mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0600), 0);
  MDB_txn* txn = nullptr;
  MDB_dbi log = 0;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  ASSERT_EQ(mdb_dbi_open(txn, "log", 0, &log), 0);
  auto key = id.key();
  MDB_val k{key.size(), key.data()};
  EXPECT_EQ(mdb_del(txn, log, &k, nullptr), 0);
  EXPECT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

TEST(UpdateLog, AnOriginsUpdatesAreWalkedInSeqOrderUpToAHole) {
  testing::TempDir dir;
  const OriginId a = 7, b = 9;
  const auto id = [](OriginId origin, uint64_t seq) { return UpdateId{1000 + seq * 10 + origin % 2, origin}; };
  const auto body = [](OriginId origin, uint64_t seq) { return "body " + std::to_string(origin) + "#" + std::to_string(seq); };
  using Walked = std::vector<std::pair<uint64_t, std::string>>;
  const auto walk = [&](UpdateLog& log, OriginId origin, uint64_t from, size_t stop_after, Status* status = nullptr) {
    auto txn = log.begin_read();
    EXPECT_TRUE(txn);
    Walked out;
    Status s = txn->for_each_of_origin(origin, from, [&](uint64_t seq, const UpdateId& u, std::string_view bytes) {
      EXPECT_EQ(u, id(origin, seq));
      out.emplace_back(seq, std::string(bytes));
      return out.size() < stop_after;
    });
    if (status) *status = s;
    else EXPECT_TRUE(s) << s.message();
    return out;
  };
  {
    auto log = small_log(dir.path());
    auto txn = log->begin_write();
    ASSERT_TRUE(txn);
    // The two origins interleave in the log; a's seqs 1-5, then a hole before 7.
    for (uint64_t seq = 1; seq <= 5; ++seq) {
      ASSERT_TRUE(txn->put_update(id(a, seq), seq, body(a, seq)));
      ASSERT_TRUE(txn->put_update(id(b, seq), seq, body(b, seq)));
    }
    ASSERT_TRUE(txn->put_update(id(a, 7), 7, body(a, 7)));
    ASSERT_TRUE(txn->commit());

    EXPECT_EQ(walk(*log, a, 2, 100), (Walked{{2, body(a, 2)}, {3, body(a, 3)}, {4, body(a, 4)}, {5, body(a, 5)}}))
        << "from seq 2, up to the hole";
    EXPECT_EQ(walk(*log, b, 1, 2), (Walked{{1, body(b, 1)}, {2, body(b, 2)}})) << "as far as the caller wants";
    EXPECT_EQ(walk(*log, a, 7, 100), (Walked{{7, body(a, 7)}}));
    EXPECT_TRUE(walk(*log, a, 6, 100).empty()) << "seq 6 is not held";
    EXPECT_TRUE(walk(*log, 11, 1, 100).empty()) << "an origin not held";
  }
  // a#3's update leaves the log behind the seq index's back.
  ASSERT_NO_FATAL_FAILURE(delete_from_log(dir.path(), id(a, 3)));
  auto log = small_log(dir.path());
  Status s;
  EXPECT_EQ(walk(*log, a, 1, 100, &s), (Walked{{1, body(a, 1)}, {2, body(a, 2)}}));
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("#3 points nowhere"), std::string::npos) << s.message();
}

// Several origins walked together give each origin what a walk of it alone
// gives, in seq order, with the origins interleaved in key order.
TEST(UpdateLog, SeveralOriginsWalkedTogetherGetWhatEachAloneGets) {
  testing::TempDir dir;
  const OriginId a = 7, b = 9, c = 13, quiet = 21;  // quiet: held, never asked for
  const auto id = [](OriginId origin, uint64_t seq) { return UpdateId{1000 + seq * 10 + origin % 7, origin}; };
  const auto body = [](OriginId origin, uint64_t seq) { return "body " + std::to_string(origin) + "#" + std::to_string(seq); };
  using Walked = std::vector<std::pair<uint64_t, std::string>>;
  struct Ask {
    OriginId origin;
    uint64_t from;
    size_t stop_after;
  };
  // Returns what each ask got, and checks that the visits came in key order.
  const auto walk = [&](UpdateLog& log, const std::vector<Ask>& asks, Status* status = nullptr) {
    auto txn = log.begin_read();
    EXPECT_TRUE(txn);
    std::vector<Walked> out(asks.size());
    std::vector<std::pair<OriginId, uint64_t>> starts;
    for (const Ask& x : asks) starts.emplace_back(x.origin, x.from);
    std::optional<UpdateId> last;
    Status s = txn->for_each_of_origins(starts, [&](size_t i, uint64_t seq, const UpdateId& u, std::string_view bytes) {
      EXPECT_EQ(u, id(asks[i].origin, seq));
      if (last) {
        EXPECT_LT(*last, u) << "visits in key order";
      }
      last = u;
      out[i].emplace_back(seq, std::string(bytes));
      return out[i].size() < asks[i].stop_after;
    });
    if (status) *status = s;
    else EXPECT_TRUE(s) << s.message();
    return out;
  };
  const auto alone = [&](UpdateLog& log, const Ask& x) {
    auto txn = log.begin_read();
    EXPECT_TRUE(txn);
    Walked out;
    EXPECT_TRUE(txn->for_each_of_origin(x.origin, x.from, [&](uint64_t seq, const UpdateId&, std::string_view bytes) {
      out.emplace_back(seq, std::string(bytes));
      return out.size() < x.stop_after;
    }));
    return out;
  };
  {
    auto log = small_log(dir.path());
    auto txn = log->begin_write();
    ASSERT_TRUE(txn);
    // Four origins interleaved in the log; a has a hole at 6, c starts late.
    for (uint64_t seq = 1; seq <= 9; ++seq) {
      if (seq != 6) {
        ASSERT_TRUE(txn->put_update(id(a, seq), seq, body(a, seq)));
      }
      ASSERT_TRUE(txn->put_update(id(b, seq), seq, body(b, seq)));
      ASSERT_TRUE(txn->put_update(id(quiet, seq), seq, body(quiet, seq)));
      if (seq <= 4) {
        ASSERT_TRUE(txn->put_update(id(c, seq), seq, body(c, seq)));
      }
    }
    ASSERT_TRUE(txn->commit());

    const std::vector<Ask> asks{
        {a, 2, 100},  // up to the hole
        {b, 1, 3},    // as far as the caller wants
        {c, 3, 100},  // to its end
        {a, 7, 100},  // the same origin again, past the hole
        {b, 10, 100}, // a seq not held
        {11, 1, 100}, // an origin not held
    };
    const auto together = walk(*log, asks);
    ASSERT_EQ(together.size(), asks.size());
    for (size_t i = 0; i < asks.size(); ++i) EXPECT_EQ(together[i], alone(*log, asks[i])) << "ask " << i;
    EXPECT_EQ(together[0], (Walked{{2, body(a, 2)}, {3, body(a, 3)}, {4, body(a, 4)}, {5, body(a, 5)}}));
    EXPECT_EQ(together[1], (Walked{{1, body(b, 1)}, {2, body(b, 2)}, {3, body(b, 3)}}));
    EXPECT_EQ(together[3].size(), 3u);
    EXPECT_TRUE(together[4].empty());
    EXPECT_TRUE(together[5].empty());
    EXPECT_TRUE(walk(*log, {}).empty()) << "nothing asked";
  }
  // b#5's update leaves the log behind the seq index's back: the walk says so.
  ASSERT_NO_FATAL_FAILURE(delete_from_log(dir.path(), id(b, 5)));
  auto log = small_log(dir.path());
  Status s;
  const auto got = walk(*log, {{a, 1, 100}, {b, 1, 100}}, &s);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("#5 points nowhere"), std::string::npos) << s.message();
  EXPECT_EQ(got[1].size(), 4u);
}

TEST(UpdateLog, TheNewestHeadLivesInTheOriginRecordAndOlderOnesInHeads) {
  testing::TempDir dir;
  const OriginId origin = 7, bare = 9;
  OriginRecord r;
  r.key = std::string(32, 'k');
  r.seq = 3;
  {
    auto log = small_log(dir.path());
    auto txn = log->begin_write();
    ASSERT_TRUE(txn);
    ASSERT_TRUE(txn->put_head(bare, head_at(1))) << "an origin without a record: its heads go to the table";
    ASSERT_TRUE(txn->put_origin_record(origin, r));
    ASSERT_TRUE(txn->put_head(origin, head_at(3)));
    ASSERT_TRUE(txn->commit());
  }
  EXPECT_EQ(testing::database_entries(dir.path(), "heads"), 1) << "the newest head is in the record";
  {
    auto log = small_log(dir.path());
    auto txn = log->begin_write();
    ASSERT_TRUE(txn);
    auto h = txn->head_at_or_below(origin, 10);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->seq, 3u);
    EXPECT_EQ(h->signature, head_at(3).signature);
    EXPECT_EQ(h->chain, head_at(3).chain);
    EXPECT_EQ(h->bytes, 300u);
    EXPECT_FALSE(txn->head_at_or_below(origin, 2));
    EXPECT_EQ(txn->head_at_or_above(origin, 1)->seq, 3u);
    EXPECT_FALSE(txn->head_at_or_above(origin, 4));

    ASSERT_TRUE(txn->put_head(origin, head_at(5)));  // 3 moves to the table
    ASSERT_TRUE(txn->put_head(origin, head_at(4)));  // older than the record's: the table
    r.seq = 6;
    ASSERT_TRUE(txn->put_origin_record(origin, r));  // keeps the record's head
    EXPECT_EQ(txn->origin_record(origin)->seq, 6u);
    EXPECT_EQ(seqs_of(txn->heads(origin)), (std::vector<uint64_t>{3, 4, 5}));
    EXPECT_EQ(txn->head_at_or_below(origin, 100)->seq, 5u);
    EXPECT_EQ(txn->head_at_or_below(origin, 4)->seq, 4u);
    EXPECT_EQ(txn->head_at_or_above(origin, 5)->seq, 5u);
    EXPECT_EQ(seqs_of(txn->heads(bare)), (std::vector<uint64_t>{1}));
    ASSERT_TRUE(txn->commit());
  }
  EXPECT_EQ(testing::database_entries(dir.path(), "heads"), 3);
  {
    auto log = small_log(dir.path());
    auto txn = log->begin_write();
    ASSERT_TRUE(txn);
    ASSERT_TRUE(txn->delete_head(origin, 5));  // the record's: the record keeps none
    EXPECT_EQ(seqs_of(txn->heads(origin)), (std::vector<uint64_t>{3, 4}));
    EXPECT_EQ(txn->origin_record(origin)->seq, 6u) << "the record's fields stay";
    ASSERT_TRUE(txn->delete_head(origin, 4));  // the table's
    EXPECT_EQ(seqs_of(txn->heads(origin)), (std::vector<uint64_t>{3}));
    // As format 4 left it: the newest head in the table, none in the record.
    ASSERT_TRUE(txn->put_head(origin, head_at(6)));
    EXPECT_EQ(seqs_of(txn->heads(origin)), (std::vector<uint64_t>{3, 6}));
    ASSERT_TRUE(txn->commit());
  }
  EXPECT_EQ(testing::database_entries(dir.path(), "heads"), 2) << "a head put into an empty record moves nothing";
  {
    // One head in both places (after an upgrade, a head signed again at the
    // seq the table holds): deleting it deletes both.
    auto log = small_log(dir.path());
    auto txn = log->begin_write();
    ASSERT_TRUE(txn);
    ASSERT_TRUE(txn->put_head(origin, head_at(7)));  // 6 moves to the table
    ASSERT_TRUE(txn->delete_head(origin, 7));
    ASSERT_TRUE(txn->put_head(origin, head_at(6)));  // into the empty record: 6 is in both
    ASSERT_TRUE(txn->delete_head(origin, 6));
    EXPECT_EQ(seqs_of(txn->heads(origin)), (std::vector<uint64_t>{3}));
    ASSERT_TRUE(txn->commit());
  }
  EXPECT_EQ(testing::database_entries(dir.path(), "heads"), 2) << "3, and bare's 1";
  {
    // Thinning as the node does it: the head dropped is deleted as
    // delete_head would, wherever it is, before the new one goes in.
    auto log = small_log(dir.path());
    auto txn = log->begin_write();
    ASSERT_TRUE(txn);
    ASSERT_TRUE(txn->put_head(origin, head_at(8)));  // the record holds 8
    ASSERT_TRUE(txn->put_head(origin, head_at(9), 8));  // 8 dropped: 9 takes its place, nothing moves
    EXPECT_EQ(seqs_of(txn->heads(origin)), (std::vector<uint64_t>{3, 9}));
    EXPECT_EQ(txn->head_at_or_below(origin, 100)->signature, head_at(9).signature);
    ASSERT_TRUE(txn->put_head(origin, head_at(10), 3));  // a table head dropped; 9 moves to the table
    EXPECT_EQ(seqs_of(txn->heads(origin)), (std::vector<uint64_t>{9, 10}));
    ASSERT_TRUE(txn->put_head(origin, head_at(4), 9));  // older than the record's: to the table
    EXPECT_EQ(seqs_of(txn->heads(origin)), (std::vector<uint64_t>{4, 10}));
    ASSERT_TRUE(txn->put_head(bare, head_at(2), 1));  // no record: the table alone
    EXPECT_EQ(seqs_of(txn->heads(bare)), (std::vector<uint64_t>{2}));
    ASSERT_TRUE(txn->commit());
  }
  EXPECT_EQ(testing::database_entries(dir.path(), "heads"), 2) << "4, and bare's 2; 10 is in the record";
}

// Format 6 keeps an origin's record in `seqs` beside the origin's seq index
// entries, under a key of its own: reads of the seq index (vector, walks,
// lookups) see none of it, and a record put again replaces the one held. A
// format 5 log keeps its records in `origins`: read there until a writer
// moves them.
TEST(UpdateLog, AnOriginsRecordLivesBesideItsSeqIndexAndNoReadOfTheIndexSeesIt) {
  testing::TempDir dir;
  const OriginId a = 7, b = 9, c = 11, d = 13;  // c: a record, no update; d: updates, no record
  const auto id = [](OriginId origin, uint64_t seq) { return UpdateId{1000 + seq * 10, origin}; };
  const auto record = [](uint64_t seq) {
    OriginRecord r;
    r.key = std::string(32, 'k');
    r.seq = seq;
    r.bytes = seq * 100;
    return r;
  };
  const auto check = [&](LogTxn& txn, const char* when) {
    const auto vector = txn.vector_entries();
    ASSERT_EQ(vector.size(), 3u) << when;
    EXPECT_EQ(vector.at(a).seq, 6u) << when;
    EXPECT_EQ(vector.at(b).seq, 1u) << when;
    EXPECT_EQ(vector.at(d).seq, 2u) << when;
    const auto records = txn.origin_records();
    ASSERT_EQ(records.size(), 3u) << when;
    EXPECT_EQ(records.at(a).seq, 6u) << when;
    EXPECT_EQ(records.at(b).seq, 1u) << when;
    EXPECT_EQ(records.at(c).seq, 4u) << when;
    EXPECT_EQ(txn.head_at_or_below(a, 100)->seq, 6u) << when;
    EXPECT_FALSE(txn.origin_record(d)) << when;
    EXPECT_EQ(txn.id_of(a, 6), id(a, 6)) << when;
    EXPECT_FALSE(txn.id_of(c, 1)) << when;
    std::vector<uint64_t> walked;
    ASSERT_TRUE(txn.for_each_of_origins({{a, 1}, {c, 1}, {d, 1}}, [&](size_t i, uint64_t seq, const UpdateId&, std::string_view) {
      walked.push_back(i * 100 + seq);
      return true;
    }));
    EXPECT_EQ(walked, (std::vector<uint64_t>{1, 201, 2, 202, 3, 4, 5, 6})) << when;
  };
  {
    auto log = small_log(dir.path());
    auto txn = log->begin_write();
    ASSERT_TRUE(txn);
    for (uint64_t seq = 1; seq <= 3; ++seq) ASSERT_TRUE(txn->put_update(id(a, seq), seq, "a"));
    ASSERT_TRUE(txn->put_origin_record(a, record(3)));
    ASSERT_TRUE(txn->put_update(id(b, 1), 1, "b"));  // one entry: not a set of duplicates in LMDB
    ASSERT_TRUE(txn->put_origin_record(b, record(1)));
    ASSERT_TRUE(txn->put_origin_record(c, record(4)));
    ASSERT_TRUE(txn->commit());
  }
  {
    // Entries appended after the record's key, a new origin after all, the
    // record put again (its head makes it longer): one record each.
    auto log = small_log(dir.path());
    auto txn = log->begin_write();
    ASSERT_TRUE(txn);
    for (uint64_t seq = 4; seq <= 6; ++seq) ASSERT_TRUE(txn->put_update(id(a, seq), seq, "a"));
    for (uint64_t seq = 1; seq <= 2; ++seq) ASSERT_TRUE(txn->put_update(id(d, seq), seq, "d"));
    ASSERT_TRUE(txn->put_origin_record(a, record(5)));
    ASSERT_TRUE(txn->put_head(a, head_at(6)));
    ASSERT_TRUE(txn->put_origin_record(a, record(6)));
    ASSERT_NO_FATAL_FAILURE(check(*txn, "written"));
    ASSERT_TRUE(txn->commit());
  }
  EXPECT_EQ(testing::database_entries(dir.path(), "seqs"), 6 + 1 + 2 + 3) << "each origin's entries, one record each";
  EXPECT_EQ(testing::database_entries(dir.path(), "origins"), 0);
  EXPECT_EQ(testing::database_entries(dir.path(), "heads"), 0) << "the newest head is in the record";
  {
    auto log = small_log(dir.path());
    auto txn = log->begin_read();
    ASSERT_NO_FATAL_FAILURE(check(*txn, "read again"));
  }

  // As format 5 left it: the records in `origins`.
  {
    MDB_env* env = nullptr;
    ASSERT_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 16);
    ASSERT_EQ(mdb_env_open(env, dir.path().c_str(), MDB_NOTLS, 0600), 0);
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
    size_t moved = 0;
    EXPECT_EQ(testing::move_records_to_origins_table(txn, moved), "");
    EXPECT_EQ(moved, 3u);
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
  }
  EXPECT_EQ(testing::database_entries(dir.path(), "origins"), 3);
  auto log = small_log(dir.path());
  {
    auto txn = log->begin_read();
    ASSERT_NO_FATAL_FAILURE(check(*txn, "format 5, read where it lies"));
  }
  {
    auto txn = log->begin_write();
    ASSERT_TRUE(txn);
    Status refused = txn->put_origin_record(a, record(7));
    EXPECT_EQ(refused.code(), Status::Code::kInvalidArgument) << "a record written before the move would be lost";
    ASSERT_TRUE(txn->move_origin_records());
    ASSERT_NO_FATAL_FAILURE(check(*txn, "moved, same transaction"));
    ASSERT_TRUE(txn->commit());
  }
  {
    auto txn = log->begin_read();
    ASSERT_NO_FATAL_FAILURE(check(*txn, "moved, committed"));
  }
  log.reset();
  EXPECT_EQ(testing::database_entries(dir.path(), "origins"), 0);
  EXPECT_EQ(testing::database_entries(dir.path(), "seqs"), 6 + 1 + 2 + 3);
}

}  // namespace
}  // namespace replog
