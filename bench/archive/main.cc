// replog_archive_bench: the archive's figures of docs/BENCHMARKS.md ("The S3
// archive"), against a real s3rver on loopback, each beside a raw reference
// measured in the same run:
//   push     archive N updates of 3 signed origins; raw: the same object sizes
//            PUT by the plain S3 client (libcurl, SigV4) one after another
//   restore  a fresh node takes them all from the archive, verifying; raw: a
//            fresh node ingests the same updates locally and restarts
//   steady   one call a second: PUTs per call, and objects after merging
//   idle     1,000 origins polled for a minute (in memory): requests a minute,
//            and polls until a new segment is fetched
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include <sodium.h>

#include "common/bench_common.h"
#include "common/report.h"
#include "common/run.h"
#include "common/signed_log.h"
#include "common/workload.h"
#include "node/archive/archiver.h"
#include "node/archive/snapshots.h"
#include "node/core/hlc.h"
#include "support/s3rver.h"

using namespace replog;
using namespace replog::bench;

[[noreturn]] void replog::bench::die(const std::string& what) {
  std::fprintf(stderr, "replog_archive_bench: %s\n", what.c_str());
  std::fflush(nullptr);
  std::_Exit(1);  // not exit(): a node's writer thread may still run; it ends with the process
}

namespace {

struct ArchiveBenchOptions : RunOptions {
  uint64_t updates = 1'000'000;
  uint64_t tail = 10'000;
  uint64_t steady_calls = 64;
  uint64_t idle_origins = 1'000;
  std::string s3rver = REPLOG_S3RVER;
} g_opt;

const archive::Keyring& keys() {
  static const archive::Keyring k{archive::ArchiveKey::from_bytes(std::string(32, '\x5a')).value()};
  return k;
}

// N updates of 3 signed origins, with their heads, in ingest-sized chunks.
struct Chunk {
  std::vector<Update> updates;
  std::vector<proof::Head> heads;
};

// Updates [from, n) of that log; `origins` carries the chains on between calls.
std::vector<Chunk> make_log(SignedOrigins& origins, uint64_t from, uint64_t n) {
  std::vector<Chunk> out;
  const uint64_t base = hlc::make(1'790'000'000'000, 0);
  for (uint64_t i = from; i < n; i += 30'000) {
    Chunk c;
    for (uint64_t j = i; j < std::min(n, i + 30'000); ++j)
      c.updates.push_back(origins.append(j % 3, base + j + 1, "set", set_arg(j)));
    c.heads = origins.heads_for(c.updates);
    out.push_back(std::move(c));
  }
  return out;
}

void ingest_all(Node& node, const std::vector<Chunk>& log) {
  for (const auto& c : log) {
    auto r = must(node.ingest(c.updates, c.heads), "ingest");
    if (r.accepted != c.updates.size()) die("ingest refused updates");
  }
}

S3Config config_for(const testing::TestS3Server& server, const std::string& prefix) {
  S3Config c;
  c.endpoint = server.endpoint();
  c.bucket = "replog-bench";
  c.prefix = prefix;
  c.access_key = c.secret_key = "S3RVER";
  return c;
}

// A fresh node takes the whole archive, starting from the newest snapshot
// (`from_snapshot`) or folding everything, up to its state hash; the seconds.
std::pair<double, AdoptedSnapshot> timed_restore(ObjectStore& bucket, const std::string& want, bool from_snapshot) {
  NodeOptions no;
  no.dir = new_node_dir("restored");
  no.defer_fold = true;
  auto fresh = must(Node::open(no), "Node::open");
  SystemClock clock;
  Archiver down(*fresh, bucket, keys(), clock, {});
  const auto t = Steady::now();
  check(down.pull(true), "pull");
  AdoptedSnapshot snap;
  if (from_snapshot) snap = must(adopt_snapshot(bucket, keys(), *fresh, nullptr, std::nullopt), "adopt_snapshot");
  if (fresh->state_hash() != want) die("restore gave another state hash");
  return {seconds_since(t), snap};
}

void fig_push_and_restore(const testing::TestS3Server& server) {
  progress("making " + grouped(g_opt.updates) + " signed updates");
  SignedOrigins origins(kBenchCluster, 7, 3);
  const auto log = make_log(origins, 0, g_opt.updates);
  auto source = open_node(new_node_dir("source"));
  ingest_all(*source, log);
  S3ObjectStore bucket(config_for(server, "archive/"));
  SystemClock clock;
  ArchiveOptions ao;
  ao.grace_ms = 0;  // every origin is this node's to upload
  Archiver up(*source, bucket, keys(), clock, ao);
  progress("archiving");
  const auto t0 = Steady::now();
  check(up.push(), "push");
  const double push_s = seconds_since(t0);
  const auto st = up.status();
  const uint64_t puts = st.counters.segments_put * 2;  // each segment and its feed entry
  // Raw: the same sizes, PUT one after another by the plain client.
  auto objects = must(bucket.list("log/", "", 0), "list");
  S3Client raw(config_for(server, "raw/"));
  const auto r0 = Steady::now();
  for (size_t i = 0; i < objects.size(); ++i) {
    check(raw.put("o" + std::to_string(i), std::string(objects[i].size, 'x')).status(), "raw put");
    check(raw.put("f" + std::to_string(i), "").status(), "raw put");
  }
  const double raw_s = seconds_since(r0);
  const double rate = static_cast<double>(st.counters.updates_put) / push_s;
  RowBuilder("A1", "archive " + grouped(g_opt.updates) + " updates of 3 origins to s3rver")
      .measured(rate, "updates/s", rate_text(rate) + " (" + grouped(puts) + " PUTs, " + mib_text(st.counters.bytes_put) + ")")
      .raw(raw_s, "s", time_text(raw_s) + " for the same PUTs by plain libcurl")
      .ratio(push_s / raw_s, "%.2fx the raw time")
      .goal(">= 50,000 updates/s", rate >= 50'000)
      .add();

  progress("a snapshot, then a tail of " + grouped(g_opt.tail) + " updates");
  std::string device(crypto_sign_SECRETKEYBYTES, '\0'), device_public(crypto_sign_PUBLICKEYBYTES, '\0');
  crypto_sign_keypair(reinterpret_cast<unsigned char*>(device_public.data()),
                      reinterpret_cast<unsigned char*>(device.data()));
  check(write_snapshot(bucket, keys(), *source, device).status(), "write_snapshot");
  const auto tail = make_log(origins, g_opt.updates, g_opt.updates + g_opt.tail);
  ingest_all(*source, tail);
  check(up.push(), "push the tail");

  progress("restoring from the snapshot");
  const auto [restore_s, snapshot] = timed_restore(bucket, source->state_hash(), true);
  if (snapshot.key.empty())
    die("restore did not start from the snapshot: " + (snapshot.passed.empty() ? "none found" : snapshot.passed[0]));
  progress("restoring by replaying everything");
  const double replay_s = timed_restore(bucket, source->state_hash(), false).first;
  source.reset();
  const std::string local_dir = new_node_dir("imported");
  const auto t2 = Steady::now();
  {
    auto local = open_node(local_dir);
    ingest_all(*local, log);
    ingest_all(*local, tail);
    check(local->close(), "close");
  }
  auto reopened = open_node(local_dir);
  const double import_s = seconds_since(t2);
  const std::string n = grouped(g_opt.updates) + " + " + grouped(g_opt.tail);
  RowBuilder("A2", "restore from a snapshot of " + grouped(g_opt.updates) + " updates and a " + grouped(g_opt.tail) +
                       "-update tail (verifying every segment)")
      .measured(restore_s, "s", time_text(restore_s) + " (" + grouped(snapshot.updates_after) + " updates folded)")
      .raw(import_s, "s", time_text(import_s) + " local import of the same " + n + " updates and a restart")
      .ratio(restore_s / import_s, "%.2fx")
      .goal("<= 2x the local import", restore_s <= 2 * import_s)
      .add();
  RowBuilder("A2r", "the same restore folding every update (--replay-all)")
      .measured(replay_s, "s", time_text(replay_s))
      .raw(import_s, "s", time_text(import_s) + " the same import")
      .ratio(replay_s / import_s, "%.2fx")
      .note("for comparison: what the snapshot saves")
      .add();
}

void fig_steady(const testing::TestS3Server& server) {
  auto node = open_node(new_node_dir("steady"));
  S3ObjectStore bucket(config_for(server, "steady/"));
  SystemClock clock;
  Archiver up(*node, bucket, keys(), clock, {});
  for (uint64_t i = 0; i < g_opt.steady_calls; ++i) {
    must(node->call("set", set_value(i)), "call");
    check(up.push(), "push");
  }
  const auto st = up.status();
  const size_t objects = must(bucket.list("log/", "", 0), "list").size();
  const double per_call = static_cast<double>(st.counters.segments_put) / static_cast<double>(g_opt.steady_calls);
  const double bound = 3 * (std::log(static_cast<double>(g_opt.steady_calls)) / std::log(4.0) + 1);
  RowBuilder("A3", "one call, one push, " + grouped(g_opt.steady_calls) + " times")
      .measured(per_call, "segment PUTs/call",
                fmt("%.2f segment PUTs per call", per_call) + " (+1 feed entry each), " + std::to_string(objects) +
                    " objects after merging")
      .goal("<= 1 PUT per call plus the feed entry; objects O(log n)", per_call <= 1.0 && objects <= bound)
      .add();
}

void fig_idle() {
  MemoryObjectStore bucket;
  SignedOrigins origins(kBenchCluster, 11, g_opt.idle_origins + 1);
  // One real segment of one update for each origin (the last one comes later).
  auto segment_of = [&](size_t k) {
    archive::Segment seg;
    seg.updates.push_back(origins.append(k, hlc::make(1'790'000'000'000, 0) + k + 1, "set", set_arg(k)));
    seg.name = {origins.origin(k), 1, 1};
    seg.head = origins.head(k, 1, true);
    return seg;
  };
  for (size_t k = 0; k < g_opt.idle_origins; ++k) {
    const auto seg = segment_of(k);
    (void)bucket.put_new(archive::segment_key(seg.name), archive::seal_segment(keys().back(), seg));
    (void)bucket.put_new(archive::feed_key({1'790'000'000'000, seg.name.origin, 1}), "");
  }
  auto node = open_node(new_node_dir("idle"));  // verifies what it takes
  ManualClock clock(1'790'000'000'000 + 8LL * 24 * 3600 * 1000);  // a week after the feed entries
  Archiver poller(*node, bucket, keys(), clock, {});
  check(poller.pull(true), "first pull");  // a start: everything is listed and taken once
  const uint64_t before = bucket.requests();
  for (int i = 0; i < 30; ++i) {  // a minute of polls every 2 s
    clock.advance(2'000);
    (void)poller.pull();
  }
  const double per_minute = static_cast<double>(bucket.requests() - before);
  // A new segment: the polls until the archiver fetches it.
  const auto late = segment_of(g_opt.idle_origins);
  const std::string key = archive::segment_key(late.name);
  (void)bucket.put_new(key, archive::seal_segment(keys().back(), late));
  (void)bucket.put_new(archive::feed_key({clock.now_millis(), late.name.origin, 1}), "");
  bool fetched = false;
  bucket.set_fault([&](std::string_view op, const std::string& k) {
    if (op == "get" && k == key) fetched = true;
    return Status::ok();
  });
  int polls = 0;
  while (!fetched && polls < 100) {
    clock.advance(2'000);
    (void)poller.pull();
    ++polls;
  }
  RowBuilder("A4", "an idle archive of " + grouped(g_opt.idle_origins) + " origins, polled every 2 s")
      .measured(per_minute, "requests/min",
                grouped(per_minute) + " requests a minute; a new segment fetched after " + std::to_string(polls) +
                    " poll(s)")
      .goal("<= 60 requests a minute, seen within 2 polls", per_minute <= 60 && polls <= 2)
      .add();
}

void usage() {
  std::cout << "usage: replog_archive_bench [options]\n"
               "  --quick          small sizes (for tests)\n"
               "  --dir DIR        make the temp dir under DIR (default /tmp)\n"
               "  --only A[,B]     run only these figures: push steady idle\n"
               "  --json           print JSON instead of the table\n"
               "  --keep           keep the temp dir\n"
               "  --updates N      updates archived, then restored from a snapshot of them (default 1000000)\n"
               "  --tail N         updates after the snapshot (default 10000)\n"
               "  --s3rver PATH    the s3rver program (default: the one tools/deps.sh installs)\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::optional<uint64_t> updates, tail;
  auto take = [](const std::string& a, const NextValue& next) {
    if (a != "--s3rver") return false;
    g_opt.s3rver = next();
    return true;
  };
  if (!parse_command_line(args, g_opt, {"push", "steady", "idle"}, usage, {{"--updates", &updates}, {"--tail", &tail}}, take))
    return 0;
  if (g_opt.quick) g_opt.updates = 20'000, g_opt.tail = 1'000, g_opt.steady_calls = 16;
  if (updates) g_opt.updates = *updates;
  if (tail) g_opt.tail = *tail;
  ::signal(SIGPIPE, SIG_IGN);
  const std::string load_start = start_run(g_opt, "replog-archive");
  {
    testing::TestS3Server server(g_opt.s3rver, fresh_dir("s3rver"), "replog-bench");
    if (std::string why = server.start(); !why.empty()) die("s3rver: " + why);
    if (g_opt.wanted("push")) fig_push_and_restore(server);
    if (g_opt.wanted("steady")) fig_steady(server);
  }
  if (g_opt.wanted("idle")) fig_idle();
  std::ostringstream o;
  o << "\"quick\":" << (g_opt.quick ? "true" : "false") << ",\"updates\":" << g_opt.updates;
  finish_run(g_opt, load_start, o.str(), true);
  return 0;
}
