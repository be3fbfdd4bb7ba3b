// libFuzzer target: the MessagePack and typed-JSON decoders on untrusted bytes.
// Whatever decodes must re-encode and decode to an equal value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "protocol/json_codec.h"
#include "protocol/msgpack_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto v = replog::decode_msgpack(bytes)) {
    auto again = replog::decode_msgpack(replog::encode_msgpack(*v));
    if (!again || !(*again == *v)) std::abort();
    (void)replog::to_typed_json(*v);
    (void)replog::to_info_json(*v);
  }
  if (auto v = replog::parse_typed_json(bytes)) {
    auto again = replog::decode_msgpack(replog::encode_msgpack(*v));
    if (!again || !(*again == *v)) std::abort();
  }
  return 0;
}
