#include "protocol/version_vector.h"

#include "protocol/bytes.h"

namespace replog {

uint64_t count_missing_from(const VersionVector& mine, const VersionVector& theirs) {
  uint64_t n = 0;
  for (const auto& [origin, seq] : mine) {
    uint64_t held = seq_of(theirs, origin);
    if (seq > held) n += seq - held;
  }
  return n;
}

Value vector_to_value(const VersionVector& v) {
  Map out;
  for (const auto& [origin, seq] : v) out[hex16(origin)] = Value(static_cast<int64_t>(seq));
  return Value(std::move(out));
}

Result<VersionVector> vector_from_value(const Value& v) {
  if (!v.is_map()) return Status::corruption("vector is not a map");
  VersionVector out;
  for (const auto& [origin, seq] : v.as_map()) {
    auto o = parse_hex16(origin);
    if (!o || !seq.is_int() || seq.as_int() < 0) return Status::corruption("vector entry " + origin + " is malformed");
    out[*o] = static_cast<uint64_t>(seq.as_int());
  }
  return out;
}

}  // namespace replog
