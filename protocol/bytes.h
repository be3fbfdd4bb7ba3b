// Byte helpers shared by every format: big-endian integers and lowercase hex.
// One place for them, so that keys, ids and digests are spelled alike
// everywhere (docs/STORAGE.md, PROTOCOL.md).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "replog/status.h"

namespace replog {

// Inline: keys are written and read by the million in a catch-up.
inline void put_u64_be(char* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}
// REQUIRES: in points at 8 readable bytes.
inline uint64_t get_u64_be(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}
std::string u64_be(uint64_t v);

// Lowercase hex of every byte, two digits each.
std::string to_hex(std::string_view bytes);
// Hex digits of either case (white space between them ignored) to bytes.
Result<std::string> from_hex(std::string_view text);
// 16 lowercase hex digits: how origin and node ids are written.
std::string hex16(uint64_t v);
// 1..16 hex digits (either case) to a number.
Result<uint64_t> parse_hex16(std::string_view text);

}  // namespace replog
