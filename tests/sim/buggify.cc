#include "sim/buggify.h"

namespace replog::sim {

namespace {

// SplitMix64's finaliser: a well-mixed 64-bit hash of a 64-bit input.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

Buggify::Buggify(uint64_t seed, bool on, std::mt19937_64& rng) : seed_(seed), on_(on) {
  if (on_) {
    // Each point is on in about half the runs, firing once in 32..1024 visits
    // (a batch puts tens of records, and a full map makes it run again).
    for (auto& n : one_in_) n = rng() % 2 ? static_cast<uint32_t>(32u << (rng() % 6)) : 0;
  }
  fault::install(this);
}

Buggify::~Buggify() { fault::install(nullptr); }

void Buggify::add_node(const std::string& dir, int index) {
  std::lock_guard<std::mutex> l(mu_);
  nodes_[dir].index = index;
}

void Buggify::set_disk_full(int index, bool full) {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [_, n] : nodes_)
    if (n.index == index) n.disk_full = full;
}

void Buggify::heal() {
  std::lock_guard<std::mutex> l(mu_);
  healed_ = true;
  for (auto& [_, n] : nodes_) n.disk_full = false;
}

void Buggify::suspend(int index, bool suspended) {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [_, n] : nodes_)
    if (n.index == index) n.suspended = suspended;
}

uint64_t Buggify::fired_at(int index) const {
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [_, n] : nodes_)
    if (n.index == index) return n.fired;
  return 0;
}

std::map<std::string, uint64_t> Buggify::fired() const {
  std::lock_guard<std::mutex> l(mu_);
  std::map<std::string, uint64_t> out;
  for (int p = 0; p < fault::kPointCount; ++p)
    if (fired_[static_cast<size_t>(p)]) out[fault::point_name(static_cast<fault::Point>(p))] = fired_[static_cast<size_t>(p)];
  return out;
}

std::string Buggify::describe() const {
  std::string out;
  for (int p = 0; p < fault::kPointCount; ++p) {
    const uint32_t n = one_in_[static_cast<size_t>(p)];
    if (n) out += (out.empty() ? "" : ", ") + std::string(fault::point_name(static_cast<fault::Point>(p))) + " 1/" + std::to_string(n);
  }
  return out.empty() ? "no fault points" : out;
}

bool Buggify::fire(fault::Point point, std::string_view store_dir) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = nodes_.find(store_dir);
  if (healed_ || it == nodes_.end() || it->second.suspended) return false;
  NodeFaults& n = it->second;
  const auto p = static_cast<size_t>(point);
  const uint64_t visit = n.reached[p]++;
  bool fires = point == fault::Point::kCommitNoSpace && n.disk_full;
  if (!fires && one_in_[p]) {
    const uint64_t h = mix(seed_ ^ mix(static_cast<uint64_t>(n.index) << 8 | p) ^ mix(visit));
    fires = h % one_in_[p] == 0;
  }
  if (fires) ++n.fired, ++fired_[p];
  return fires;
}

}  // namespace replog::sim
