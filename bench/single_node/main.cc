// replog_bench: measures the performance figures of docs/BENCHMARKS.md in one
// run, each against a raw limit measured in the same run on the same file
// system (plain LMDB doing the same puts, plain MessagePack decoding of the
// same records), and prints a table (or JSON with --json).
//
//   replog_bench [--quick] [--dir DIR] [--only NAME[,NAME...]] [--json] [--keep]
//                [--updates N] [--paths N] [--ops N] [--stream N] [--batch N]
//
// Figures (NAME for --only): single, group, ingest, replay, late, restart, memory, verify.
// Goals are reported as met / NOT met; the program never fails because of one.
// It exits non-zero only when the library returns an error or a result is wrong
// (a hash that differs, an update refused).
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <sstream>

#include "common/bench_common.h"
#include "common/run.h"
#include "common/workload.h"
#include "single_node/single_node.h"

using namespace replog::bench;

[[noreturn]] void replog::bench::die(const std::string& what) {
  std::fprintf(stderr, "replog_bench: %s\n", what.c_str());
  std::fflush(nullptr);
  std::_Exit(1);  // not exit(): a node's writer thread may still run; it ends with the process
}

namespace replog::bench {
Options g_opt;
}  // namespace replog::bench

namespace {

void usage() {
  std::cout << "usage: replog_bench [options]\n"
               "  --quick          tiny sizes (finishes in seconds; for tests)\n"
               "  --dir DIR        make the temp dir under DIR (default /tmp)\n"
               "  --only A[,B]     run only these figures: single group ingest replay late restart memory verify\n"
               "  --json           print JSON instead of the table\n"
               "  --keep           keep the temp dir\n"
               "  --updates N      dataset size for ingest/replay/restart/memory (default 1000000)\n"
               "  --paths N        distinct paths written by set (default 10000)\n"
               "  --ops N          durable single appends per side (default 10000)\n"
               "  --group-ops N    calls per thread in the group-commit figure (default 2000)\n"
               "  --stream N       late-arrival stream length (default 100000)\n"
               "  --batch N        updates per Node::ingest in the late stream (default 10)\n"
               "  --cli PATH       the replog program for the memory figure\n";
}

// Reads the options into g_opt; false after --help.
bool parse_options(const std::vector<std::string>& args) {
  std::optional<uint64_t> updates, paths, ops, group_ops, stream, batch;
  const Counts counts = {{"--updates", &updates},     {"--paths", &paths},   {"--ops", &ops},
                         {"--group-ops", &group_ops}, {"--stream", &stream}, {"--batch", &batch}};
  const std::set<std::string> figures = {"single", "group",   "ingest", "replay",
                                         "late",   "restart", "memory", "verify"};
  if (!parse_command_line(args, g_opt, figures, usage, counts)) return false;
  if (g_opt.quick) {
    g_opt.updates = 20'000;
    g_opt.paths = 1'000;
    g_opt.single_ops = 50;
    g_opt.group_ops = 10;
    g_opt.stream = 2'000;
    g_opt.late_base = 3'000;
    g_opt.restart_runs = 3;
    g_opt.time_cap_s = 3;
  }
  if (updates) g_opt.updates = *updates;
  if (paths) g_opt.paths = *paths;
  if (ops) g_opt.single_ops = *ops;
  if (group_ops) g_opt.group_ops = *group_ops;
  if (stream) g_opt.stream = *stream;
  if (batch) g_opt.batch = *batch;
  return true;
}

// The "options" object of --json.
std::string options_json() {
  std::ostringstream o;
  o << "\"quick\":" << (g_opt.quick ? "true" : "false") << ",\"updates\":" << g_opt.updates
    << ",\"paths\":" << g_opt.paths << ",\"single_ops\":" << g_opt.single_ops
    << ",\"group_ops_per_thread\":" << g_opt.group_ops << ",\"stream\":" << g_opt.stream
    << ",\"batch\":" << g_opt.batch;
  return o.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "--internal-rss") return internal_rss(args[1]);
  if (args.size() >= 2 && args[0] == "--internal-spawn") return internal_spawn({args.begin() + 1, args.end()});
  if (!parse_options(args)) return 0;
  set_workload_paths(g_opt.paths);

  const std::string load_start = start_run(g_opt, "replog-bench");
  if (g_opt.wanted("single")) fig_single();
  if (g_opt.wanted("group")) fig_group();
  if (g_opt.wanted("ingest")) fig_ingest();
  if (g_opt.wanted("replay")) fig_replay();
  if (g_opt.wanted("late")) fig_late();
  if (g_opt.wanted("restart")) fig_restart();
  if (g_opt.wanted("memory")) fig_memory();
  if (g_opt.wanted("verify")) fig_verify();
  finish_run(g_opt, load_start, options_json(), false);
  return 0;
}
