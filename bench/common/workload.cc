#include "common/workload.h"

#include "common/bench_common.h"
#include "node/core/hlc.h"
#include "protocol/msgpack_codec.h"

namespace replog::bench {

namespace {

uint64_t g_paths = 10'000;
const uint64_t g_base_hlc = hlc::make(wall_ms() - 600'000, 0);

std::string path_text(uint64_t i) { return "bench.p" + std::to_string(i % g_paths); }

std::string value_text(uint64_t i) {
  std::string s = "value-" + std::to_string(i) + "-";
  s.resize(100, 'x');
  return s;
}

}  // namespace

void set_workload_paths(uint64_t paths) { g_paths = paths; }

uint64_t base_hlc() { return g_base_hlc; }

Value set_value(uint64_t i) { return Value(Map{{"path", Value(path_text(i))}, {"value", Value(value_text(i))}}); }

std::string set_arg(uint64_t i) { return encode_msgpack(set_value(i)); }

Update dataset_update(uint64_t i, uint64_t origins, OriginId base) {
  OriginId origin = base + i % origins;
  uint64_t seq = i / origins + 1;
  return Update::make(UpdateId{g_base_hlc + i, origin}, seq, "set", set_arg(i));
}

Update dataset_update(uint64_t i, const std::vector<OriginId>& ids) {
  return Update::make(UpdateId{g_base_hlc + i, ids[i % ids.size()]}, i / ids.size() + 1, "set", set_arg(i));
}

Update next_dataset_update(SignedOrigins& origins, uint64_t i) {
  const size_t k = i % origins.size();
  if (origins.seq(k) != i / origins.size()) die("dataset update " + std::to_string(i) + " made out of turn");
  return origins.append(k, g_base_hlc + i, "set", set_arg(i));
}

}  // namespace replog::bench
