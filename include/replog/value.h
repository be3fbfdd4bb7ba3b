// Value: replog's typed value (docs/VALUES.md).
//
// A Value is one of null, bool, int (int64), float (double), string (UTF-8),
// bytes, time (a UTC instant with nanosecond precision), enum, list, map
// (string keys, kept sorted by their UTF-8 bytes) and record (an instance of a
// named record type).
//
// Enums and records exist in two stages. Decoding (MessagePack, typed JSON)
// needs no type registry: an enum keeps its type and member names and a record
// its type name, so a well-formed update from a newer peer always decodes.
// TypeRegistry::resolve() is the separate second step: it binds an enum to the
// registry's own EnumMember object (compared by identity, Value::enum_member())
// and checks record fields against their declared types.
//
// Thread safety: a Value is a plain value; const access from many threads is safe.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "replog/status.h"

namespace replog {

class Value;
class EnumMember;  // owned by a TypeRegistry (protocol/schema.h)
class RecordType;

// A UTC instant: seconds since the Unix epoch and nanoseconds within it.
struct Time {
  int64_t seconds = 0;
  uint32_t nanos = 0;  // 0 ..= 999'999'999

  static Time from_millis(int64_t ms);
  int64_t to_millis() const;  // rounds toward negative infinity
  bool operator==(const Time&) const = default;
  auto operator<=>(const Time&) const = default;
};

// ISO-8601 in UTC ("2026-11-25T14:33:07.123Z"); the fraction has 0, 3, 6 or 9
// digits, as many as the value needs.
std::string format_iso8601(const Time& t);
// Accepts "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)", and a date alone.
Result<Time> parse_iso8601(std::string_view text);

struct Bytes {
  std::string data;  // raw octets
  bool operator==(const Bytes&) const = default;
};

struct EnumValue {
  std::string type;
  std::string member;
  // The registry's member once resolved; null for a value fresh from a decoder.
  std::shared_ptr<const EnumMember> resolved;
};

using List = std::vector<Value>;
using Map = std::map<std::string, Value>;  // std::string orders by bytes

struct RecordValue {
  std::string type;
  Map fields;
  std::shared_ptr<const RecordType> resolved;  // set by TypeRegistry::resolve
};

class Value {
 public:
  enum class Kind { kNull, kBool, kInt, kFloat, kString, kBytes, kTime, kEnum, kList, kMap, kRecord };

  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(int64_t{i}) {}
  Value(int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(Bytes b) : v_(std::move(b)) {}
  Value(Time t) : v_(t) {}
  Value(EnumValue e) : v_(std::move(e)) {}
  Value(List l) : v_(std::move(l)) {}
  Value(Map m) : v_(std::move(m)) {}
  Value(RecordValue r) : v_(std::move(r)) {}

  static Value enumeration(std::string type, std::string member) {
    return Value(EnumValue{std::move(type), std::move(member), nullptr});
  }
  static Value record(std::string type, Map fields) {
    return Value(RecordValue{std::move(type), std::move(fields), nullptr});
  }

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  static const char* kind_name(Kind k);
  const char* kind_name() const { return kind_name(kind()); }

  bool is_null() const { return kind() == Kind::kNull; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_map() const { return kind() == Kind::kMap; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_record() const { return kind() == Kind::kRecord; }

  // REQUIRES: the matching kind().
  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const Bytes& as_bytes() const { return std::get<Bytes>(v_); }
  const Time& as_time() const { return std::get<Time>(v_); }
  const EnumValue& as_enum() const { return std::get<EnumValue>(v_); }
  EnumValue& as_enum() { return std::get<EnumValue>(v_); }
  const List& as_list() const { return std::get<List>(v_); }
  List& as_list() { return std::get<List>(v_); }
  const Map& as_map() const { return std::get<Map>(v_); }
  Map& as_map() { return std::get<Map>(v_); }
  const RecordValue& as_record() const { return std::get<RecordValue>(v_); }
  RecordValue& as_record() { return std::get<RecordValue>(v_); }

  // The registry member an enum was resolved to, or null (unresolved or not an enum).
  const EnumMember* enum_member() const;

  // The child named `key` of a map or record, or null.
  const Value* find(const std::string& key) const;
  Value* find(const std::string& key);

  // Deep equality. Floats compare by value except that NaN equals NaN and
  // 0.0 differs from -0.0, so that a codec round trip is checked exactly.
  // Enums compare by type and member names.
  bool operator==(const Value& other) const;

 private:
  std::variant<std::monostate, bool, int64_t, double, std::string, Bytes, Time, EnumValue, List, Map,
               RecordValue>
      v_;
};

// Prints typed JSON (used by GoogleTest to show values in failures).
void PrintTo(const Value& value, std::ostream* os);

// Paths name a place inside a value: "tasks.t1.due", "tasks.t1.tags[2]".
std::string path_child(const std::string& path, std::string_view key);
std::string path_index(const std::string& path, size_t index);
// For error messages: `path: message`, or the message alone at the root.
std::string at_path(const std::string& path, const std::string& message);

}  // namespace replog
