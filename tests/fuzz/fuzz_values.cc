// libFuzzer target: MessagePack value decoding (protocol/msgpack_codec.h) on
// untrusted bytes. Invariants, each an abort when broken:
//  - a value that decodes re-encodes to bytes that decode to an equal value,
//    and encoding is canonical: encode(decode(encode(v))) == encode(v);
//  - what decodes stays within the protocol limits (depth, UTF-8, nanos);
//  - the prefix decoder, the local decoder and the allocation precheck agree
//    with the whole-input decoder on what they share;
//  - typed JSON, which round-trips exactly, gives the value back.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "check.h"
#include "protocol/json_codec.h"
#include "protocol/limits.h"
#include "protocol/msgpack_codec.h"
#include "protocol/utf8.h"

namespace replog::fuzz {
namespace {

// Within the limits a decoded value promises (msgpack_codec.h, value.h).
bool well_formed(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kString: return is_valid_utf8(v.as_string()) && v.as_string().size() <= limits::kMaxStringBytes;
    case Value::Kind::kTime: return v.as_time().nanos <= 999'999'999;
    case Value::Kind::kEnum: return is_valid_utf8(v.as_enum().type) && is_valid_utf8(v.as_enum().member);
    case Value::Kind::kList:
      if (v.as_list().size() > limits::kMaxContainerElements) return false;
      for (const auto& item : v.as_list())
        if (!well_formed(item)) return false;
      return true;
    case Value::Kind::kMap:
    case Value::Kind::kRecord: {
      const Map& m = v.kind() == Value::Kind::kMap ? v.as_map() : v.as_record().fields;
      if (v.kind() == Value::Kind::kRecord && !is_valid_utf8(v.as_record().type)) return false;
      for (const auto& [k, item] : m)
        if (!is_valid_utf8(k) || !well_formed(item)) return false;
      return true;
    }
    default: return true;
  }
}

// Typed JSON can spell this value (docs/VALUES.md): record fields and enum
// members are free of the characters its tags use, and times are within the
// years ISO-8601 text can name.
bool json_spells(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kTime: return v.as_time().seconds >= -62135596800LL && v.as_time().seconds <= 253402300799LL;
    case Value::Kind::kEnum: {
      const EnumValue& e = v.as_enum();
      return !e.type.empty() && !e.member.empty() && e.member.find('.') == std::string::npos;
    }
    case Value::Kind::kList:
      for (const auto& item : v.as_list())
        if (!json_spells(item)) return false;
      return true;
    case Value::Kind::kMap:
    case Value::Kind::kRecord: {
      const Map& m = v.kind() == Value::Kind::kMap ? v.as_map() : v.as_record().fields;
      for (const auto& [k, item] : m) {
        if (v.kind() == Value::Kind::kRecord && !k.empty() && k[0] == '$') return false;
        if (!json_spells(item)) return false;
      }
      return true;
    }
    default: return true;
  }
}

void check_value(std::string_view bytes, const Value& v) {
  FUZZ_CHECK(well_formed(v));
  FUZZ_CHECK(depth_of(v) <= limits::kMaxDepth);

  std::string once = encode_msgpack(v);
  auto again = decode_msgpack(once);
  FUZZ_CHECK(again.is_ok());
  FUZZ_CHECK(*again == v);
  FUZZ_CHECK(encode_msgpack(*again) == once);  // canonical: a fixpoint after one pass
  FUZZ_CHECK(once.size() <= bytes.size() + 8 * (bytes.size() + 1));  // no blow-up (float32 grows to float64)

  // What the protocol decoder takes, the local (checkpoint) decoder takes alike.
  auto local = decode_msgpack_local(bytes);
  FUZZ_CHECK(local.is_ok() && *local == v);
  // The precheck run before msgpack-c's object unpacker never refuses a valid value.
  FUZZ_CHECK(precheck_msgpack(bytes, limits::kMaxDepth).is_ok());

  if (json_spells(v)) {
    auto text = to_typed_json(v);
    auto back = parse_typed_json(text);
    // Typed JSON adds a level for tags ($map, $float, ...): only shallow values are promised back.
    if (depth_of(v) * 2 + 2 <= limits::kMaxDepth) {
      FUZZ_CHECK(back.is_ok());
      FUZZ_CHECK(*back == v);
    }
  }
  (void)to_info_json(v);
}

}  // namespace
}  // namespace replog::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace replog;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto v = decode_msgpack(bytes);
  if (v) fuzz::check_value(bytes, *v);

  // The prefix decoder reads the same first value and says where it ends.
  size_t off = 0;
  auto first = decode_msgpack_prefix(bytes, off);
  if (first) {
    FUZZ_CHECK(off > 0 && off <= size);
    auto alone = decode_msgpack(bytes.substr(0, off));
    FUZZ_CHECK(alone.is_ok() && *alone == *first);
    if (off == size) FUZZ_CHECK(v.is_ok() && *v == *first);
  } else {
    FUZZ_CHECK(!v.is_ok());
  }
  return 0;
}
