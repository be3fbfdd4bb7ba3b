// The workload of both benchmark programs (docs/BENCHMARKS.md, "What is
// measured"): the built-in `set {path, value}` with paths bench.p0, bench.p1, ...
// (--paths of them, reused in turn) and a 100-byte string value, from origins
// taking turns, with hybrid-clock timestamps rising by one from ten minutes in
// the past.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/signed_log.h"
#include "protocol/update.h"
#include "replog/value.h"

namespace replog::bench {

constexpr OriginId kOriginBase = 0x0b0b000000000001ULL;  // updates only folded in memory: base + 0, 1, ...
constexpr OriginId kRawOrigin = 0x0d0d000000000001ULL;   // the raw LMDB references' origins: base + 0, 1, ...
// The seed of the dataset's signed origins (SignedOrigins): a node built from
// the dataset anywhere in a run holds the same keys, updates and heads.
constexpr uint64_t kDatasetSeed = 20261203;

// How many distinct paths `set` writes (--paths); set before the first update.
void set_workload_paths(uint64_t paths);

// The first update's hlc: ten minutes in the past, so that the clock-skew check
// of ingest passes whatever the batch size (1e6 updates take ~15 ms of hlc).
uint64_t base_hlc();

// The argument of the i-th `set`: {path: "bench.p<i mod paths>", value: 100 bytes}.
Value set_value(uint64_t i);
std::string set_arg(uint64_t i);  // set_value(i), encoded

// Update i of a dataset of `origins` origins taking turns (origin
// base + i % origins, seq i / origins + 1), hlc base_hlc() + i: for the raw
// references, which store bytes without a proof.
Update dataset_update(uint64_t i, uint64_t origins, OriginId base);

// The same update under the origin ids `ids` (origin ids[i % ids.size()]),
// not chained: for folds in memory (Replayer) of a signed dataset.
Update dataset_update(uint64_t i, const std::vector<OriginId>& ids);

// Update i of the dataset of `origins.size()` signed origins taking turns,
// made as the next update of its origin (chained there).
// REQUIRES: updates 0..i-1 were made by this call, in order.
Update next_dataset_update(SignedOrigins& origins, uint64_t i);

}  // namespace replog::bench
