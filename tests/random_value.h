// Random Values for property tests: every kind, nested, with awkward strings
// (multi-byte UTF-8, '$' keys), extreme ints and floats.
#pragma once

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "replog/value.h"

namespace replog::testing {

class RandomValues {
 public:
  explicit RandomValues(std::mt19937_64& rng) : rng_(rng) {}

  Value any(int depth = 3) {
    int kinds = depth > 0 ? 11 : 8;
    switch (pick(kinds)) {
      case 0: return Value();
      case 1: return Value(pick(2) == 1);
      case 2: return Value(integer());
      case 3: return Value(floating());
      case 4: return Value(text());
      case 5: return Value(Bytes{raw_bytes()});
      case 6: return Value(time());
      case 7: return Value::enumeration(pick(2) ? "Color" : "Size", member());
      case 8: {
        List l;
        for (int i = pick(5); i > 0; --i) l.push_back(any(depth - 1));
        return Value(std::move(l));
      }
      case 9: {
        Map m;
        for (int i = pick(5); i > 0; --i) m[key()] = any(depth - 1);
        return Value(std::move(m));
      }
      default: {
        Map m;
        for (int i = pick(4); i > 0; --i) m["f" + std::to_string(pick(6))] = any(depth - 1);
        return Value::record("Task", std::move(m));
      }
    }
  }

  int pick(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }

  int64_t integer() {
    switch (pick(6)) {
      case 0: return std::numeric_limits<int64_t>::min();
      case 1: return std::numeric_limits<int64_t>::max();
      case 2: return static_cast<int64_t>(rng_());
      case 3: return -static_cast<int64_t>(pick(40));
      case 4: return static_cast<int64_t>(rng_() % 70000);
      default: return static_cast<int64_t>(pick(200));
    }
  }

  double floating() {
    switch (pick(8)) {
      case 0: return std::numeric_limits<double>::quiet_NaN();
      case 1: return std::numeric_limits<double>::infinity();
      case 2: return -std::numeric_limits<double>::infinity();
      case 3: return -0.0;
      case 4: return static_cast<double>(pick(1000));  // integral floats stay floats
      case 5: return std::numeric_limits<double>::denorm_min();
      default: {
        double d;
        uint64_t bits = rng_();
        std::memcpy(&d, &bits, sizeof d);
        return std::isnan(d) ? 1.5 : d;
      }
    }
  }

  std::string text() {
    static const char* pieces[] = {"a", "Z", "0", " ", "$", ".", "\"", "\\", "\n", "é", "日本", "🙂", "\u0001", "x"};
    std::string s;
    for (int i = pick(8); i > 0; --i) s += pieces[pick(14)];
    return s;
  }

  std::string key() {
    std::string k = text();
    return pick(5) == 0 ? "$" + k : k;
  }

  std::string raw_bytes() {
    std::string s;
    for (int i = pick(12); i > 0; --i) s += static_cast<char>(rng_() & 0xff);
    return s;
  }

  Time time() {
    switch (pick(4)) {
      case 0: return Time{static_cast<int64_t>(rng_() % 4'000'000'000ULL), 0};  // 32-bit form
      case 1: return Time{static_cast<int64_t>(rng_() % (1ULL << 34)), static_cast<uint32_t>(rng_() % 1'000'000'000)};
      case 2: return Time{-static_cast<int64_t>(rng_() % 10'000'000'000ULL), static_cast<uint32_t>(pick(1000)) * 1'000'000};
      default: return Time::from_millis(1'700'000'000'000LL + static_cast<int64_t>(rng_() % 100'000'000'000ULL));
    }
  }

  std::string member() {
    static const char* members[] = {"Red", "Green", "Blue", "S", "M", "L"};
    return members[pick(6)];
  }

 private:
  std::mt19937_64& rng_;
};

}  // namespace replog::testing
