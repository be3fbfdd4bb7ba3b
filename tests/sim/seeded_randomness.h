// Seeded randomness for the node's ids: libsodium's generator replaced by one
// that a run seeds, so origin ids, cluster ids and fresh origins repeat from
// one run of a seed to the next. This stands in for the randomness of the Env
// until the node takes it from there (issue 8).
//
// REQUIRES: install_seeded_randomness() before libsodium is first initialised
// (first thing in main). Thread safety: the node's writer threads draw from it,
// one at a time in a simulation (calls are synchronous).
#pragma once

#include <cstdint>

namespace replog::sim {

void install_seeded_randomness();
// Restarts the generator from `seed`.
void reseed_randomness(uint64_t seed);

}  // namespace replog::sim
