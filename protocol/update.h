// Updates and their ids (DESIGN.md §2, docs/STORAGE.md).
//
// An update is one call of a one-argument method. Its id is (hlc, origin); its
// LMDB key is the 16 bytes big-endian hlc || origin, so key order is replay
// order. Its stored value, the *body*, is the MessagePack array
//   [seq: uint, method: str, arg: bin]
// where arg holds the MessagePack encoding of the argument Value. The argument
// is wrapped in bin so that the framing can be checked without decoding the
// content: content is decided in replay, never at ingest (DESIGN.md §3).
// A body is kept exactly as its origin encoded it.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "replog/status.h"

namespace replog {

using OriginId = uint64_t;

struct UpdateId {
  uint64_t hlc = 0;
  OriginId origin = 0;

  static constexpr size_t kKeyBytes = 16;
  std::array<char, kKeyBytes> key() const;
  static UpdateId from_key(std::string_view key);  // REQUIRES: key.size() == 16

  // 32 lowercase hex digits: the key in hex (hlc then origin).
  std::string to_string() const;
  static Result<UpdateId> parse(std::string_view text);

  auto operator<=>(const UpdateId&) const = default;
};

// An update's parsed body (its bytes stay with whoever holds them).
struct Update {
  UpdateId id;
  uint64_t seq = 0;
  std::string method;
  std::string arg;  // MessagePack of the argument (may fail to decode: replay decides)
};

// Encodes a body; deterministic.
std::string encode_body(uint64_t seq, std::string_view method, std::string_view arg);
// Checks the framing of a body and splits it; never looks inside arg.
Result<Update> parse_body(const UpdateId& id, std::string_view body);

// Big-endian helpers shared by the storage formats.
void put_u64_be(char* out, uint64_t v);
uint64_t get_u64_be(const char* in);
std::string u64_be(uint64_t v);
std::string hex16(uint64_t v);  // 16 lowercase hex digits
Result<uint64_t> parse_hex16(std::string_view text);

}  // namespace replog
