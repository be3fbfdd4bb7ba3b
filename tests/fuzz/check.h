// Shared by the fuzz targets: an invariant that does not hold aborts, so that
// libFuzzer records the input as a crash (a plain "doesn't crash" is not enough).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "replog/value.h"

namespace replog::fuzz {

[[noreturn]] inline void violated(const char* what, const char* file, int line) {
  std::fprintf(stderr, "fuzz invariant violated at %s:%d: %s\n", file, line, what);
  std::abort();
}

// How deep a value nests: lists, maps, records and enums each add one.
inline size_t depth_of(const Value& v) {
  size_t d = 0;
  switch (v.kind()) {
    case Value::Kind::kList:
      for (const auto& item : v.as_list()) d = std::max(d, depth_of(item));
      return d + 1;
    case Value::Kind::kMap:
      for (const auto& [k, item] : v.as_map()) d = std::max(d, depth_of(item));
      return d + 1;
    case Value::Kind::kRecord:
      for (const auto& [k, item] : v.as_record().fields) d = std::max(d, depth_of(item));
      return d + 2;  // the extension, then its field map
    case Value::Kind::kEnum: return 2;
    default: return 0;
  }
}

}  // namespace replog::fuzz

#define FUZZ_CHECK(cond)                                               \
  do {                                                                 \
    if (!(cond)) ::replog::fuzz::violated(#cond, __FILE__, __LINE__); \
  } while (0)
