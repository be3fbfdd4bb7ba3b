// Figure 6: restart of the dataset's node (checkpoints as Node::close leaves
// them), Node::open_read_only and Node::open until ready, each checked against
// the fold from scratch, against opening the LMDB environment and copying out
// the newest checkpoint and the log tail after its cut.
#include <lmdb.h>

#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

#include "common/bench_common.h"
#include "common/report.h"
#include "single_node/single_node.h"
#include "storage/update_log.h"

namespace replog::bench {

namespace {

// Copies out every log value after `cut` (all of them if `cut` is empty);
// returns how many.
size_t read_tail(MDB_txn* txn, MDB_dbi log, const std::string& cut) {
  MDB_cursor* c;
  MDB_val k, v;
  std::string sink;
  mdb_check(mdb_cursor_open(txn, log, &c), "cursor");
  size_t tail = 0;
  int rc;
  if (cut.empty()) {
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
  } else {
    k = MDB_val{cut.size(), const_cast<char*>(cut.data())};
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && std::string_view(static_cast<char*>(k.mv_data), k.mv_size) == cut)
      rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    sink.assign(static_cast<char*>(v.mv_data), v.mv_size);
    ++tail;
  }
  mdb_cursor_close(c);
  return tail;
}

// Raw: open the LMDB environment, read the newest checkpoint's bytes and the
// log tail after its cut (copying them), as the floor of any restart.
double raw_restart(const std::string& dir, size_t& tail) {
  auto t0 = Steady::now();
  MDB_env* env;
  mdb_check(mdb_env_create(&env), "create");
  mdb_env_set_maxdbs(env, 16);
  mdb_check(mdb_env_set_mapsize(env, size_t{16} << 30), "mapsize");
  mdb_check(mdb_env_open(env, dir.c_str(), MDB_NOTLS | MDB_RDONLY, 0600), "open " + dir);
  MDB_txn* txn;
  mdb_check(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), "begin");
  MDB_dbi cps, log;
  mdb_check(mdb_dbi_open(txn, "checkpoints", 0, &cps), "open checkpoints");
  mdb_check(mdb_dbi_open(txn, "log", 0, &log), "open log");
  MDB_cursor* c;
  MDB_val k, v;
  std::string cp, cut;
  mdb_check(mdb_cursor_open(txn, cps, &c), "cursor");
  if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0) {
    cut.assign(static_cast<char*>(k.mv_data), k.mv_size);
    cp.assign(static_cast<char*>(v.mv_data), v.mv_size);
  }
  mdb_cursor_close(c);
  tail = read_tail(txn, log, cut);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return seconds_since(t0);
}

// How many checkpoints the node holds, and the largest one's size.
std::pair<size_t, size_t> checkpoint_sizes(const std::string& dir) {
  size_t checkpoints = 0, cp_bytes = 0;
  auto log = must(UpdateLog::open(dir, {}), "UpdateLog::open");
  auto txn = must(log->begin_read(), "begin_read");
  for (const auto& [cut, bytes] : txn.checkpoints()) {
    ++checkpoints;
    cp_bytes = std::max(cp_bytes, bytes.size());
  }
  return {checkpoints, cp_bytes};
}

// Seconds of each of --restart-runs opens of `dir`, read-only or writable,
// each checked against `expect`.
std::vector<double> time_opens(const std::string& dir, bool writable, const std::string& expect) {
  std::vector<double> times;
  for (int i = 0; i < g_opt.restart_runs; ++i) {
    auto t0 = Steady::now();
    auto node = writable ? open_node(dir) : open_read_only(dir);
    times.push_back(seconds_since(t0));
    if (node->state_hash() != expect)
      die(std::string("restart (") + (writable ? "writable" : "read-only") + ") hash differs from the fold from scratch");
    if (writable) check(node->close(), "Node::close");  // untimed; writes a checkpoint as a normal shutdown does
  }
  return times;
}

}  // namespace

void fig_restart() {
  const std::string& dir = dataset_dir();
  const std::string& expect = scratch_hash();
  progress("figure 6: restart of a node holding " + grouped(static_cast<double>(g_opt.updates)) + " updates");
  const auto [checkpoints, cp_bytes] = checkpoint_sizes(dir);
  std::vector<double> raw;
  size_t tail = 0;
  for (int i = 0; i < g_opt.restart_runs; ++i) raw.push_back(raw_restart(dir, tail));
  const std::vector<double> ro = time_opens(dir, false, expect);
  const std::vector<double> rw = time_opens(dir, true, expect);
  const double raw_m = median_of(raw);
  for (auto [name, times] : {std::pair{"Node::open_read_only", &ro}, std::pair{"Node::open", &rw}}) {
    const double m = median_of(*times);
    RowBuilder("6", std::string("restart to hash-checked state, ") + name)
        .measured(m, "s",
                  time_text(m) + " median of " + std::to_string(times->size()) + " (max " +
                      time_text(*std::max_element(times->begin(), times->end())) + ")")
        .raw(raw_m, "s",
             time_text(raw_m) + " LMDB open + read checkpoint (" + mib_text(static_cast<double>(cp_bytes)) + ") + " +
                 std::to_string(tail) + "-update tail")
        .ratio(m / raw_m, "%.1fx raw time")
        .goal("< 200 ms", m < 0.2)
        .note(std::to_string(checkpoints) + " checkpoints held; hash equal to the fold from scratch")
        .add();
  }
}

}  // namespace replog::bench
