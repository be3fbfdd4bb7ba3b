// The keys and devices fuzz_beacon.cc checks against, shared with the corpus
// writer (make_corpus.cc) so that its seeds are beacons the target accepts.
#pragma once

#include <string>

#include "node/discovery/beacon.h"

namespace replog::fuzz {

inline BeaconKeys beacon_keys() {
  static const BeaconKeys keys = BeaconKeys::from(*ClusterSecret::from_bytes(std::string(32, 'k'), "fuzz"));
  return keys;
}
// Two trusted devices' keys (any 32 bytes will do for tags).
inline std::string beacon_device(int i) { return std::string(32, static_cast<char>('A' + i)); }

}  // namespace replog::fuzz
