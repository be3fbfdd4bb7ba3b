#include "sim/options.h"

#include <sstream>

namespace replog::sim {

namespace {
constexpr FaultKind kAllFaults[] = {FaultKind::kMessages, FaultKind::kPartitions, FaultKind::kCrashes,
                                    FaultKind::kClocks,   FaultKind::kSkew,       FaultKind::kHostile,
                                    FaultKind::kForge,    FaultKind::kDisk,       FaultKind::kCopies,
                                    FaultKind::kTrust,    FaultKind::kRevoke,     FaultKind::kArchive};
}

const char* fault_name(FaultKind kind) {
  switch (kind) {
    case FaultKind::kMessages: return "messages";
    case FaultKind::kPartitions: return "partitions";
    case FaultKind::kCrashes: return "crashes";
    case FaultKind::kClocks: return "clocks";
    case FaultKind::kSkew: return "skew";
    case FaultKind::kHostile: return "hostile";
    case FaultKind::kForge: return "forge";
    case FaultKind::kDisk: return "disk";
    case FaultKind::kCopies: return "copies";
    case FaultKind::kTrust: return "trust";
    case FaultKind::kRevoke: return "revoke";
    case FaultKind::kArchive: return "archive";
  }
  return "?";
}

std::optional<std::set<FaultKind>> parse_faults(const std::string& list, std::string& error) {
  std::set<FaultKind> out;
  if (list == "none") return out;
  if (list == "all") return std::set<FaultKind>(std::begin(kAllFaults), std::end(kAllFaults));
  std::stringstream in(list);
  for (std::string word; std::getline(in, word, ',');) {
    bool known = false;
    for (FaultKind k : kAllFaults)
      if (word == fault_name(k)) out.insert(k), known = true;
    if (!known) {
      error = "unknown fault kind \"" + word + "\" (messages, partitions, crashes, clocks, skew, hostile, forge, disk, copies, trust, revoke, all, none)";
      return std::nullopt;
    }
  }
  return out;
}

std::string faults_to_string(const std::set<FaultKind>& faults) {
  if (faults.empty()) return "none";
  std::string out;
  for (FaultKind k : faults) out += (out.empty() ? "" : ",") + std::string(fault_name(k));
  return out;
}

std::string replay_command(const SimOptions& o) {
  return "build/tests/sim/replog_sim --seed " + std::to_string(o.seed) + " --nodes " + std::to_string(o.nodes) +
         " --steps " + std::to_string(o.steps) + " --faults " + faults_to_string(o.faults);
}

}  // namespace replog::sim
