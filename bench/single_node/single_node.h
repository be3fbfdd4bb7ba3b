// replog_bench: the figures of one node (docs/BENCHMARKS.md, figures 1 to 8),
// one file per group of figures:
//
//   appends.cc  1, 1b, 2  durable single appends and signing's share; group commit (--only single, group)
//   ingest.cc   3         bulk ingest                                  (--only ingest)
//   replay.cc   4a-b      replay from scratch                          (--only replay)
//   late.cc     5a-c      late updates                                 (--only late)
//   restart.cc  6         restart                                      (--only restart)
//   memory.cc   7         memory after loading the state               (--only memory)
//   verify.cc   8a, 8b    verifying a log written by single calls      (--only verify)
//   dataset.cc            the dataset figures 3, 4, 6 and 7 share
//   main.cc               options; runs the groups
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/run.h"
#include "common/signed_log.h"
#include "node/engine/node.h"

namespace replog::bench {

struct Options : RunOptions {
  uint64_t updates = 1'000'000;  // ingest / replay / restart / memory dataset
  uint64_t paths = 10'000;
  uint64_t single_ops = 10'000;  // durable single appends (each side)
  uint64_t group_ops = 2'000;    // per thread, 8 threads
  uint64_t stream = 100'000;     // late-arrival stream
  uint64_t batch = 10;           // late-arrival stream: updates per Node::ingest
  uint64_t late_base = 20'000;   // updates applied before the k-late measurements
  int restart_runs = 5;
  double time_cap_s = 30;        // per durable loop
};

extern Options g_opt;

// CPU-bound figures are repeated and the fastest run is kept: other processes
// on a shared machine only ever add time.
constexpr int kCpuReps = 3;

double median_of(std::vector<double> v);

// --- the dataset (dataset.cc) ---------------------------------------------------------
//
// --updates updates of the workload from 4 signed origins taking turns
// (SignedOrigins of kDatasetSeed); each batch is ingested with its heads.

constexpr uint64_t kDatasetOrigins = 4;

struct Dataset {
  SignedOrigins origins;
  std::vector<Update> updates;
};

Dataset make_dataset();
// The dataset's origin ids (for folds in memory).
std::vector<OriginId> dataset_ids();

// A closed node holding the dataset (checkpoints as Node::close leaves them):
// figure 3's node, or built here when figure 3 did not run.
const std::string& dataset_dir();
extern std::optional<std::string> g_dataset_dir;

// The state hash of the dataset folded from scratch in memory: figure 4a's, or
// folded here when figure 4 did not run.
const std::string& scratch_hash();
extern std::optional<std::string> g_scratch_hash;

// The directory of figure 1's node (a log written by single calls, a head
// signed after each), closed: figure 8 reads it, or builds one.
extern std::optional<std::string> g_single_dir;

// --- the groups of figures --------------------------------------------------------------

void fig_single();       // 1
void fig_group();        // 2
void fig_ingest();       // 3
void fig_replay();       // 4a, 4b
void fig_late();         // 5a, 5b, 5c
void fig_restart();      // 6
void fig_memory();       // 7
void fig_verify();       // 8a, 8b

// The child modes of figure 7 (replog_bench --internal-rss DIR, --internal-spawn ARGV...).
int internal_rss(const std::string& dir);
int internal_spawn(const std::vector<std::string>& argv);

}  // namespace replog::bench
