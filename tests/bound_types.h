// Application types bound to records and an enum (replog/binding.h), with
// the schema that declares them: one member of every value kind.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "replog/binding.h"

namespace bound_types {

enum class Color { kRed, kGreen };

struct Inner {
  std::string name;
  int64_t n = 0;
  bool operator==(const Inner&) const = default;
};

// One member of every value kind.
struct Everything {
  bool flag = false;
  int64_t count = 0;
  int16_t small = 0;
  double ratio = 0;
  std::string text;
  replog::Bytes blob;
  replog::Time at;
  std::chrono::sys_time<std::chrono::milliseconds> when{};
  Color color{};
  std::vector<int64_t> list;
  std::map<std::string, std::string> map;
  Inner inner;
  std::optional<std::string> maybe;
  replog::Value any;
  bool operator==(const Everything&) const = default;
};

// A value in every member, none of them the default.
inline Everything full() {
  using namespace std::chrono_literals;
  using replog::Value;
  Everything e;
  e.flag = true;
  e.count = -5'000'000'000;
  e.small = -7;
  e.ratio = 0.25;
  e.text = "ünïcode";
  e.blob = replog::Bytes{std::string("\0\1\2", 3)};
  e.at = replog::Time{1'790'000'000, 123'456'789};
  e.when = std::chrono::sys_days{std::chrono::year{2026} / 12 / 24} + 18h + 30min + 250ms;
  e.color = Color::kGreen;
  e.list = {1, 2, 3};
  e.map = {{"a", "x"}, {"b", "y"}};
  e.inner = Inner{"in", 9};
  e.maybe = "here";
  e.any = Value(replog::List{Value(1), Value("two")});
  return e;
}

// The schema declaring Color, Inner and Everything.
inline constexpr const char* kSchema = R"({
  "enums": {"Color": ["Red", "Green"]},
  "records": {
    "Inner": {"fields": {"name": "string", "n": "int"}},
    "Everything": {"fields": {"flag": "bool", "count": "int", "small": "int", "ratio": "float", "text": "string",
                              "blob": "bytes", "at": "time", "when": "time", "color": "Color", "list": "list<int>",
                              "map": "map<string>", "inner": "Inner", "maybe": "string", "any": "any"}}
  }
})";

}  // namespace bound_types

template <>
struct replog::Bind<bound_types::Color> {
  static const EnumBinding<bound_types::Color>& binding() {
    using bound_types::Color;
    static const EnumBinding<Color> b("Color", {{Color::kRed, "Red"}, {Color::kGreen, "Green"}});
    return b;
  }
};

template <>
struct replog::Bind<bound_types::Inner> {
  static const RecordBinding<bound_types::Inner>& binding() {
    using bound_types::Inner;
    static const auto b = RecordBinding<Inner>("Inner").field("name", &Inner::name).field("n", &Inner::n);
    return b;
  }
};

template <>
struct replog::Bind<bound_types::Everything> {
  static const RecordBinding<bound_types::Everything>& binding() {
    using bound_types::Everything;
    static const auto b = RecordBinding<Everything>("Everything")
                              .field("flag", &Everything::flag)
                              .field("count", &Everything::count)
                              .field("small", &Everything::small)
                              .field("ratio", &Everything::ratio)
                              .field("text", &Everything::text)
                              .field("blob", &Everything::blob)
                              .field("at", &Everything::at)
                              .field("when", &Everything::when)
                              .field("color", &Everything::color)
                              .field("list", &Everything::list)
                              .field("map", &Everything::map)
                              .field("inner", &Everything::inner)
                              .field("maybe", &Everything::maybe)
                              .field("any", &Everything::any);
    return b;
  }
};

