#include <protocol/json_codec.h>
#include <protocol/msgpack_codec.h>

#include <iostream>

int main() {
  auto v = replog::parse_typed_json(R"({"due": {"$time": "2026-01-02T03:04:05Z"}})");
  if (!v) return 1;
  auto back = replog::decode_msgpack(replog::encode_msgpack(*v));
  if (!back || !(*back == *v)) return 2;
  std::cout << replog::to_info_json(*back) << "\n";
  return 0;
}
