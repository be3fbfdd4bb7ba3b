#include "sim/seeded_randomness.h"

#include <sodium.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>

namespace replog::sim {

namespace {

std::mutex rng_mu;
std::mt19937_64 rng(1);

uint32_t next_u32() {
  std::lock_guard<std::mutex> l(rng_mu);
  return static_cast<uint32_t>(rng());
}

void fill(void* const buf, const size_t size) {
  std::lock_guard<std::mutex> l(rng_mu);
  auto* out = static_cast<unsigned char*>(buf);
  for (size_t i = 0; i < size; i += 8) {
    uint64_t word = rng();
    std::memcpy(out + i, &word, std::min<size_t>(8, size - i));
  }
}

const char* name() { return "replog-sim-seeded"; }
uint32_t uniform(const uint32_t upper) { return upper < 2 ? 0 : next_u32() % upper; }

randombytes_implementation seeded = {name, next_u32, nullptr, uniform, fill, nullptr};

}  // namespace

// sodium_init() draws from the generator once (its guard pages' canary); it
// runs here, so that every run after it draws the same values from its seed.
void install_seeded_randomness() {
  randombytes_set_implementation(&seeded);
  if (sodium_init() < 0) std::abort();
}

void reseed_randomness(uint64_t seed) {
  std::lock_guard<std::mutex> l(rng_mu);
  rng.seed(seed);
}

}  // namespace replog::sim
