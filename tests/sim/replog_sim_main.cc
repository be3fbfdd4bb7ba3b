// replog_sim: runs seeded simulations of a replog cluster (tests/sim) and
// says which seeds failed, with the one command that replays each.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <string>

#include "sim/seeded_randomness.h"
#include "sim/simulation.h"

using namespace replog::sim;

namespace {

const char* kUsage = R"(replog_sim: deterministic simulation of a replog cluster (real nodes, one thread)

  --seed N      first seed (default: $REPLOG_SEED, else 1)
  --seeds N     run N seeds: seed, seed+1, ... (default 1)
  --nodes K     nodes, 3..9 (default 5)
  --steps S     steps of the faulty phase, 5 simulated ms each (default 300)
  --faults L    messages,partitions,crashes,clocks,skew,hostile,forge,disk,copies,trust,revoke | all | none (default all)
  --twice       run each seed twice: two trace hashes fail the seed
  --json        one JSON summary line per seed on stdout
  --verbose     every trace line on stderr
  --help

Exit status: 0 when every seed passed, 1 when one failed, 2 on a usage error.
)";

struct Args {
  SimOptions sim;
  uint64_t seeds = 1;
  bool json = false;
  bool twice = false;
};

std::optional<Args> parse(int argc, char** argv) {
  Args a;
  if (const char* s = std::getenv("REPLOG_SEED")) a.sim.seed = std::strtoull(s, nullptr, 10);
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const bool has_value = i + 1 < argc;
    auto number = [&] { return std::strtoull(argv[++i], nullptr, 10); };
    if (flag == "--help") std::cout << kUsage, std::exit(0);  // NOLINT(concurrency-mt-unsafe): no thread runs yet
    else if (flag == "--json") a.json = true;
    else if (flag == "--twice") a.twice = true;
    else if (flag == "--verbose") a.sim.verbose = true;
    else if (flag == "--seed" && has_value) a.sim.seed = number();
    else if (flag == "--seeds" && has_value) a.seeds = number();
    else if (flag == "--nodes" && has_value) a.sim.nodes = static_cast<int>(number());
    else if (flag == "--steps" && has_value) a.sim.steps = static_cast<int>(number());
    else if (flag == "--faults" && has_value) {
      std::string error;
      auto f = parse_faults(argv[++i], error);
      if (!f) return std::cerr << "replog_sim: " << error << "\n", std::nullopt;
      a.sim.faults = *f;
    } else {
      return std::cerr << "replog_sim: unknown or incomplete option " << flag << " (see --help)\n", std::nullopt;
    }
  }
  if (a.sim.nodes < 3 || a.sim.nodes > 9) return std::cerr << "replog_sim: --nodes must be 3..9\n", std::nullopt;
  return a;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

void print_json(const SimOptions& o, const RunResult& r) {
  std::cout << "{\"seed\":" << o.seed << ",\"nodes\":" << o.nodes << ",\"steps\":" << o.steps << ",\"passed\":"
            << (r.passed ? "true" : "false") << ",\"copied\":" << (r.copied ? "true" : "false")
            << ",\"trace_hash\":\"" << r.trace_hash << "\",\"calls\":" << r.calls_acknowledged
            << ",\"refused_calls\":" << r.calls_refused << ",\"frames\":" << r.frames
            << ",\"verified_ahead\":" << r.runs_verified_ahead
            << ",\"converge_ms\":" << r.converge_ms << ",\"faults\":{";
  bool first = true;
  for (const auto& [kind, n] : r.faults) std::cout << (first ? "" : ",") << "\"" << kind << "\":" << n, first = false;
  std::cout << "},\"problems\":[";
  for (size_t i = 0; i < r.problems.size(); ++i) std::cout << (i ? "," : "") << "\"" << json_escape(r.problems[i]) << "\"";
  std::cout << "],\"replay\":\"" << replay_command(o) << "\"}\n";
}

void print_text(const SimOptions& o, const RunResult& r) {
  std::cout << "seed " << o.seed << ": " << (r.passed ? "passed" : "FAILED") << (r.copied ? " (copied directories)" : "")
            << ", " << r.calls_acknowledged << " calls, " << r.frames << " frames, converged in " << r.converge_ms
            << " ms\ntrace hash: " << r.trace_hash << "\n";
  if (r.passed) return;
  for (const auto& p : r.problems) std::cout << "  problem: " << p << "\n";
  std::cout << "  last trace lines:\n";
  for (const auto& l : r.recent_trace) std::cout << "    " << l << "\n";
  std::cout << "replay: " << replay_command(o) << "\n";
}

// The faults injected over every seed, by kind ("crash 12, trust removed 3, ...").
std::string fault_mix(const std::map<std::string, uint64_t>& mix) {
  std::string out;
  for (const auto& [kind, n] : mix) out += (out.empty() ? "" : ", ") + kind + " " + std::to_string(n);
  return out.empty() ? "none" : out;
}

}  // namespace

int main(int argc, char** argv) {
  install_seeded_randomness();
  auto args = parse(argc, argv);
  if (!args) return 2;
  std::cerr << "replog_sim: seed " << args->sim.seed << ", " << args->seeds << " seeds\n";
  uint64_t failed = 0;
  std::map<std::string, uint64_t> mix;
  for (uint64_t k = 0; k < args->seeds; ++k) {
    SimOptions o = args->sim;
    o.seed = args->sim.seed + k;
    RunResult r = run_simulation(o);
    if (args->twice) {
      // The same seed again must repeat the run exactly (the seed is the only
      // input); the writer threads beside this one must not change it.
      const RunResult again = run_simulation(o);
      if (again.trace_hash != r.trace_hash) {
        r.passed = false;
        r.problems.push_back("a second run of the seed gave another trace hash: " + again.trace_hash);
      }
    }
    failed += !r.passed;
    for (const auto& [kind, n] : r.faults) mix[kind] += n;
    args->json ? print_json(o, r) : print_text(o, r);
    if (args->seeds > 1 && (k + 1) % 10 == 0)
      std::cerr << "replog_sim: " << (k + 1) << "/" << args->seeds << " seeds, " << failed << " failed\n";
  }
  std::cerr << "replog_sim: " << args->seeds << " seeds run, " << (args->seeds - failed) << " passed, " << failed
            << " failed; fault mix: " << fault_mix(mix) << "\n";
  return failed ? 1 : 0;
}
