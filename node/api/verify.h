// verify: checks a data directory from scratch (`replog verify`).
//
// Reads only; takes no lock. Checks that every log key is 16 bytes and every
// body frames; that each origin's seqs are 1..k with no gap, its hlc rising
// with seq, the seq index pointing at the right keys and the vector matching;
// replays the whole log from empty and compares the state hash with each
// checkpoint it passes and with the state a node would load (newest usable
// checkpoint + tail). Signed origins: recomputes every recorded origin's chain
// from c_0, checks each kept head against it and its signature (and the key's
// certificate), that the record's tip is the chain at its seq, and every piece
// of fork evidence held.
#pragma once

#include <string>
#include <vector>

#include "node/core/methods.h"
#include "replog/status.h"

namespace replog {

struct VerifyReport {
  uint64_t updates = 0;
  uint64_t origins = 0;
  uint64_t checkpoints_checked = 0;
  uint64_t undecodable_args = 0;  // content, decided in replay: reported, not an error
  uint64_t origins_verified = 0;  // origins with a record whose chain and heads check
  uint64_t heads_checked = 0;
  uint64_t unverified_updates = 0;  // held without a head covering them (legacy, not yet attested)
  uint64_t evidence_checked = 0;
  std::string scratch_hash;       // fold of the whole log from empty
  std::string loaded_hash;        // what a node loads (checkpoint + tail)
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
};

Result<VerifyReport> verify_data_dir(const std::string& dir, std::shared_ptr<const MethodRegistry> methods);

}  // namespace replog
