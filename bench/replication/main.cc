// replog_replication_bench: measures the replication figures of
// docs/BENCHMARKS.md ("Replication (gossip over ZeroMQ)") in one run, on
// loopback TCP (127.0.0.1 only), each set against raw limits measured in the
// same run (plain LMDB doing the same puts, plain ZeroMQ moving frames of the
// same size), and prints a table (or JSON with --json).
//
//   replog_replication_bench [--quick] [--dir DIR] [--only NAME[,NAME...]] [--json] [--keep]
//                            [--updates N] [--paths N] [--nodes N] [--rate N] [--seconds S]
//                            [--origins A,B,...] [--fresh-cap S] [--cli PATH]
//
// Figures (NAME for --only): fresh, insync, diff, memory, latency, verify, wire.
//   fresh    1M updates replicated from one node to an empty one (1, 10, 100 origins;
//            with more than one origin it is stopped after --fresh-cap s and
//            reported as not finished, with its rate so far)
//   insync   one anti-entropy exchange between two nodes that share 1M updates
//            (1 origin: the pair of `fresh`; more: the source and a twin that
//            Node::ingest built beside it)
//   diff     1M shared, then 10 new on each side made while they cannot talk
//   memory   RssAnon of a `replog node` process holding 1M updates, idle and in sync
//   latency  8 nodes, 200 calls/s each: commit on the origin -> commit+apply everywhere
//   verify   fresh replication from one origin, the receiver verifying and not, in turn
//            (the pair of `fresh` when it ran)
//   wire     the bytes of a Push with and without its heads
// insync, diff and memory use the node pairs that `fresh` leaves behind, so
// they run it too. Goals are reported as met / NOT met; the program never
// fails because of one. It exits non-zero only when the library returns an
// error or a result is wrong (hashes that differ, an exchange that never ends).
//
// Every node, thread and child process it starts is stopped before it exits.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>

#include "common/bench_common.h"
#include "common/run.h"
#include "common/workload.h"
#include "replication/replication.h"

using namespace replog::bench;

// Stops the `replog node` processes this run started, then exits.
[[noreturn]] void replog::bench::die(const std::string& what) {
  std::fprintf(stderr, "replog_replication_bench: %s\n", what.c_str());
  stop_children();
  std::_Exit(1);  // threads of in-process nodes end with the process
}

namespace replog::bench {
Options g_opt;
}  // namespace replog::bench

namespace {

void usage() {
  std::cout << "usage: replog_replication_bench [options]\n"
               "  --quick          small sizes (about 20 s; for tests)\n"
               "  --dir DIR        make the temp dir under DIR (default /tmp)\n"
               "  --only A[,B]     run only these figures: fresh insync diff memory latency verify wire\n"
               "  --json           print JSON instead of the table\n"
               "  --keep           keep the temp dir\n"
               "  --updates N      updates replicated / shared (default 1000000)\n"
               "  --paths N        distinct paths written by set (default 10000)\n"
               "  --nodes N        nodes in the latency figure (default 8)\n"
               "  --rate N         calls/s per node in the latency figure (default 200)\n"
               "  --seconds S      duration of the latency figure (default 30)\n"
               "  --degree K       latency figure: each node dials K random others (default 0: a full mesh)\n"
               "  --tree-off       latency figure: nodes relay without trees (the protocol before feature bit 3)\n"
               "  --relay-after-commit  latency figure: relay received updates after their commit, not before\n"
               "  --relay-ahead-off  latency figure: relay received updates once the writer has checked\n"
               "                   them, not once the loop has (SyncOptions::relay_ahead)\n"
               "  --verify-off     latency figure: nodes judge received updates for form alone, no heads\n"
               "                   or signatures checked (a baseline of what checking costs)\n"
               "  --compress-off   every figure: links send bodies as they are (the protocol before feature bit 4)\n"
               "  --origins A[,B]  origin counts of the fresh/insync figures (default 1,10,100)\n"
               "  --fresh-cap S    stop a fresh replication of more than one origin after S s (default 25)\n"
               "  --cli PATH       the replog program for the memory figure\n";
}

std::vector<uint64_t> parse_origins(const std::string& text) {
  std::vector<uint64_t> out;
  std::stringstream list(text);
  std::string item;
  while (std::getline(list, item, ',')) out.push_back(parse_count(item, "--origins"));
  if (out.empty()) die("--origins needs a list");
  return out;
}

// Reads the options into g_opt; false after --help.
bool parse_options(const std::vector<std::string>& args) {
  std::optional<uint64_t> updates, paths, nodes, rate, seconds, degree;
  const Counts counts = {{"--updates", &updates}, {"--paths", &paths},     {"--nodes", &nodes},
                         {"--rate", &rate},       {"--seconds", &seconds}, {"--degree", &degree}};
  // --fresh-cap is set as it is read, so --quick, applied after, overrides it.
  auto take = [](const std::string& a, const NextValue& next) {
    if (a == "--origins") g_opt.origins = parse_origins(next());
    else if (a == "--tree-off") g_opt.tree_off = true;
    else if (a == "--relay-after-commit") g_opt.relay_after_commit = true;
    else if (a == "--relay-ahead-off") g_opt.relay_ahead_off = true;
    else if (a == "--verify-off") g_opt.verify_off = true;
    else if (a == "--compress-off") g_opt.compress_off = true;
    else if (a == "--fresh-cap") g_opt.fresh_cap_s = static_cast<double>(parse_count(next(), "--fresh-cap"));
    else return false;
    return true;
  };
  const std::set<std::string> figures = {"fresh", "insync", "diff", "memory", "latency", "verify", "wire"};
  if (!parse_command_line(args, g_opt, figures, usage, counts, take)) return false;
  if (g_opt.quick) {
    g_opt.updates = 20'000;
    g_opt.paths = 1'000;
    g_opt.seconds = 3;
    g_opt.idle_s = 1;
    g_opt.fresh_timeout_s = 20;
    g_opt.fresh_cap_s = 10;
  }
  if (updates) g_opt.updates = *updates;
  if (paths) g_opt.paths = *paths;
  if (nodes) {
    if (*nodes < 2) die("--nodes needs at least 2");
    g_opt.nodes = static_cast<int>(*nodes);
  }
  if (degree) {
    if (*degree < 1 || *degree >= static_cast<uint64_t>(g_opt.nodes)) die("--degree needs 1 .. nodes-1");
    g_opt.degree = static_cast<int>(*degree);
  }
  if (rate) g_opt.rate = static_cast<double>(*rate);
  if (seconds) g_opt.seconds = static_cast<double>(*seconds);
  return true;
}

// The "options" object of --json.
std::string options_json() {
  std::ostringstream o;
  o << "\"quick\":" << (g_opt.quick ? "true" : "false") << ",\"updates\":" << g_opt.updates
    << ",\"paths\":" << g_opt.paths << ",\"nodes\":" << g_opt.nodes << ",\"rate\":" << g_opt.rate
    << ",\"seconds\":" << g_opt.seconds
    << ",\"degree\":" << g_opt.degree << ",\"tree\":" << (g_opt.tree_off ? "false" : "true")
    << ",\"compress\":" << (g_opt.compress_off ? "false" : "true")
    << ",\"verify\":" << (g_opt.verify_off ? "false" : "true");
  return o.str();
}

// insync, diff and memory use the pairs fresh leaves behind, so they run it
// too (diff and memory the 1-origin one).
void run_figures() {
  const bool fresh = g_opt.wanted("fresh"), insync = g_opt.wanted("insync"), diff = g_opt.wanted("diff"),
             memory = g_opt.wanted("memory");
  std::vector<uint64_t> cases;
  if (fresh || insync) cases = g_opt.origins;
  if ((diff || memory) && std::find(cases.begin(), cases.end(), 1) == cases.end()) cases.insert(cases.begin(), 1);
  for (uint64_t origins : cases) fig_fresh(origins, (insync && origins > 1) || origins == 1);
  // Before figures 2, 3 and 5 change the pair (figure 3 adds calls).
  if (g_opt.wanted("verify")) fig_verify();
  if (insync || diff) {
    std::vector<uint64_t> pairs = insync ? cases : std::vector<uint64_t>{1};
    fig_insync_and_diff(pairs, insync, diff);
  }
  if (memory) fig_memory();
  if (g_opt.wanted("latency")) fig_latency();
  if (g_opt.wanted("wire")) fig_wire();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!parse_options(args)) return 0;
  set_workload_paths(g_opt.paths);
  ::signal(SIGPIPE, SIG_IGN);

  const std::string load_start = start_run(g_opt, "replog-repl");
  run_figures();
  finish_run(g_opt, load_start, options_json(), true);
  return 0;
}
