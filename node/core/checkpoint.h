// Checkpoint format (docs/STORAGE.md "checkpoints"): a cache of the fold of
// every update up to a cut key, with the per-origin seqs folded in and the
// digest of the methods it was computed with. A checkpoint is used only by a
// process whose methods digest matches; it never replaces the log.
//
// The bytes are a MessagePack map with keys in byte order:
//   {"cut": bin(16), "methods": str, "state": bin(State::encode()), "vector": {hex16 origin: seq}}
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "node/core/state.h"
#include "protocol/update.h"
#include "protocol/version_vector.h"

namespace replog {

struct Checkpoint {
  UpdateId cut;
  VersionVector vector;
  std::string methods_digest;
  std::string state_bytes;  // State::encode()
};

std::string encode_checkpoint(const UpdateId& cut, const VersionVector& vector, const std::string& methods_digest,
                              const State& state);
Result<Checkpoint> decode_checkpoint(std::string_view bytes);

}  // namespace replog
