// libFuzzer target: the typed-JSON parser (protocol/json_codec.h) that the CLI
// uses to build Values from what people type and from files, and the schema
// parser built on it (TypeRegistry, replog/schema.h), whose documents also
// arrive in updates. Invariants, each an abort when broken:
//  - a text that parses gives a value within the protocol limits that typed
//    JSON and MessagePack both give back exactly, and printing is a fixpoint;
//  - a schema that parses prints a canonical document that parses to a
//    registry printing the same document;
//  - resolving against a fixed registry is repeatable: a resolved value
//    resolves again, and survives a MessagePack round trip.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "check.h"
#include "protocol/json_codec.h"
#include "protocol/limits.h"
#include "protocol/msgpack_codec.h"
#include "replog/schema.h"

namespace replog::fuzz {
namespace {

const TypeRegistry& fixed_registry() {
  static const TypeRegistry reg = [] {
    auto r = TypeRegistry::from_json_text(R"({
      "enums": {"Color": ["Red", "Green"], "Size": ["S", "M", "L"]},
      "records": {
        "Task": {"fields": {"title": "string", "due": "time", "tags": "list<string>", "color": "Color",
                            "weight": "float", "sub": "list<Task>", "meta": "map<any>", "n": "int"},
                 "required": ["title"], "unique": ["title"]},
        "Blob": {"fields": {"data": "bytes", "ok": "bool", "none": "null", "sizes": "map<Size>"}}
      }})");
    if (!r) violated("the fixed schema does not parse", __FILE__, __LINE__);
    return std::move(r).value();
  }();
  return reg;
}

void check_value(const Value& v) {
  FUZZ_CHECK(depth_of(v) <= 2 * limits::kMaxDepth);
  std::string text = to_typed_json(v);
  auto back = parse_typed_json(text);
  FUZZ_CHECK(back.is_ok());
  FUZZ_CHECK(*back == v);
  FUZZ_CHECK(to_typed_json(*back) == text);
  (void)to_info_json(v, 2);

  // Whatever the CLI builds is sent as MessagePack; it must come back alike.
  if (depth_of(v) <= limits::kMaxDepth / 2) {
    auto packed = decode_msgpack(encode_msgpack(v));
    FUZZ_CHECK(packed.is_ok());
    FUZZ_CHECK(*packed == v);
  }
}

// How many list<>/map<> wrappers a type's text has.
size_t type_depth(const std::string& t) {
  size_t n = 0;
  for (size_t at = 0; (at = t.find('<', at)) != std::string::npos; ++at) ++n;
  return n;
}

// Every type in a canonical document nests no deeper than a value may.
void check_type_depths(const Value& canonical) {
  const Value* records = canonical.find("records");
  if (!records) return;
  for (const auto& [name, spec] : records->as_map())
    if (const Value* fields = spec.find("fields"))
      for (const auto& [f, type] : fields->as_map()) FUZZ_CHECK(type_depth(type.as_string()) <= limits::kMaxDepth);
}

void check_schema(std::string_view text, const Value& doc) {
  auto reg = TypeRegistry::from_json_text(std::string(text));
  auto from_doc = TypeRegistry::from_document(doc);
  FUZZ_CHECK(reg.is_ok() == from_doc.is_ok());
  if (!reg) return;
  Value canonical = reg->to_document();
  check_type_depths(canonical);
  auto again = TypeRegistry::from_document(canonical);
  FUZZ_CHECK(again.is_ok());
  FUZZ_CHECK(again->to_document() == canonical);
  auto via_json = TypeRegistry::from_json_text(to_typed_json(canonical));
  FUZZ_CHECK(via_json.is_ok() && via_json->to_document() == canonical);
}

void check_resolve(const Value& v) {
  Value resolved = v;
  if (!fixed_registry().resolve(resolved).is_ok()) return;
  Value twice = resolved;
  FUZZ_CHECK(fixed_registry().resolve(twice).is_ok());
  FUZZ_CHECK(twice == resolved);
  if (depth_of(resolved) <= limits::kMaxDepth / 2) {
    auto packed = decode_msgpack(encode_msgpack(resolved));
    FUZZ_CHECK(packed.is_ok());
    FUZZ_CHECK(fixed_registry().resolve(*packed).is_ok());
    FUZZ_CHECK(*packed == resolved);
  }
}

}  // namespace
}  // namespace replog::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace replog;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto v = parse_typed_json(text);
  if (!v) {
    FUZZ_CHECK(!TypeRegistry::from_json_text(std::string(text)).is_ok());
    return 0;
  }
  fuzz::check_value(*v);
  fuzz::check_schema(text, *v);
  fuzz::check_resolve(*v);
  return 0;
}
