// MessagePack encoding of Value: the storage and wire form (PROTOCOL.md "Values").
//
//   null, bool, int, float   nil, bool, smallest int encoding, always float64
//   string, bytes            str, bin
//   time                     timestamp extension (type -1), smallest exact form
//   enum                     extension type 1, payload = array [type, member]
//   record                   extension type 2, payload = array [type, {field: value}]
//   list, map                array, map with str keys sorted by their bytes
//
// Encoding is deterministic: equal values give equal bytes.
//
// Decoding untrusted bytes is bounded by the protocol limits (protocol/limits.h):
// depth, string/bin/ext lengths, container sizes, and no declared element count
// larger than the bytes that remain, so a tiny input cannot make it allocate
// much. It never needs a type registry; see TypeRegistry::resolve.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "replog/status.h"
#include "replog/value.h"

namespace replog {

inline constexpr int8_t kTimestampExt = -1;
inline constexpr int8_t kEnumExt = 1;
inline constexpr int8_t kRecordExt = 2;

std::string encode_msgpack(const Value& value);
void encode_msgpack_into(const Value& value, std::string& out);  // appends

// Decodes exactly one value filling all of `bytes`, under the protocol limits.
Result<Value> decode_msgpack(std::string_view bytes);
// For this node's own stored data (checkpoints), which may hold more than one
// update could: deeper nesting (kMaxLocalDepth) and no per-container or
// per-string cap. Declared counts are still checked against the input length.
Result<Value> decode_msgpack_local(std::string_view bytes);
// Decodes one value starting at `offset` and advances it past the value.
Result<Value> decode_msgpack_prefix(std::string_view bytes, size_t& offset);
// Decodes one value starting at `offset`, under the protocol limits, as if it
// sat `depth` levels down in a value that starts at byte 0 of `bytes`, and
// advances offset past it. It may refuse what decode_msgpack of the enclosing
// value accepts (it counts only the bytes from offset on against declared
// container sizes), never the reverse, and what it accepts decodes alike.
Result<Value> decode_msgpack_nested(std::string_view bytes, size_t& offset, size_t depth);

// Readers of one header at `offset` that allocate nothing, for a caller that
// knows the shape it expects: each returns nothing (offset unchanged) when the
// next object is not of its kind or is truncated, else advances past it.
// A map header: its number of key-value pairs.
std::optional<uint32_t> read_msgpack_map_header(std::string_view bytes, size_t& offset);
// A str the decoders accept (within the protocol limit, valid UTF-8): its
// bytes, not copied.
std::optional<std::string_view> read_msgpack_str(std::string_view bytes, size_t& offset);

// Checks, without allocating, that `bytes` is exactly one well-formed
// MessagePack object no deeper than `max_depth` whose declared container
// counts add up to no more than its length. Run before handing untrusted bytes
// to msgpack-c's object unpacker, which allocates a declared count up front.
Status precheck_msgpack(std::string_view bytes, size_t max_depth);

}  // namespace replog
