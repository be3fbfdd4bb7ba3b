#include "replog/value.h"

#include <chrono>
#include <cmath>
#include <cstdio>


namespace replog {

Time Time::from_millis(int64_t ms) {
  int64_t sec = ms / 1000;
  int64_t rem = ms % 1000;
  if (rem < 0) {
    rem += 1000;
    sec -= 1;
  }
  return Time{sec, static_cast<uint32_t>(rem * 1'000'000)};
}

int64_t Time::to_millis() const { return seconds * 1000 + nanos / 1'000'000; }

std::string format_iso8601(const Time& t) {
  using namespace std::chrono;
  int64_t days = t.seconds / 86400;
  int64_t secs = t.seconds % 86400;
  if (secs < 0) {
    secs += 86400;
    days -= 1;
  }
  year_month_day ymd{sys_days{std::chrono::days{days}}};
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(ymd.year()),
                        static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                        static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60),
                        static_cast<int>(secs % 60));
  std::string out(buf, static_cast<size_t>(n));
  if (t.nanos != 0) {
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%09u", t.nanos);
    std::string f(frac);
    // Keep 3, 6 or 9 digits: milliseconds, microseconds or nanoseconds.
    while (f.size() > 4 && f.compare(f.size() - 3, 3, "000") == 0) f.resize(f.size() - 3);
    out += f;
  }
  out += 'Z';
  return out;
}

namespace {

bool read_digits(std::string_view s, size_t& pos, size_t count, int& out) {
  if (pos + count > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < count; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  pos += count;
  out = v;
  return true;
}

bool expect_char(std::string_view s, size_t& pos, char c) {
  if (pos < s.size() && s[pos] == c) {
    ++pos;
    return true;
  }
  return false;
}

}  // namespace

Result<Time> parse_iso8601(std::string_view s) {
  using namespace std::chrono;
  auto bad = [&] {
    return Status::invalid_argument("not an ISO-8601 time: \"" + std::string(s.substr(0, 64)) + "\"");
  };
  size_t pos = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!read_digits(s, pos, 4, y) || !expect_char(s, pos, '-') || !read_digits(s, pos, 2, mo) ||
      !expect_char(s, pos, '-') || !read_digits(s, pos, 2, d))
    return bad();
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return bad();
  int64_t offset_seconds = 0;
  uint32_t nanos = 0;
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') return bad();
    ++pos;
    if (!read_digits(s, pos, 2, h) || !expect_char(s, pos, ':') || !read_digits(s, pos, 2, mi) ||
        !expect_char(s, pos, ':') || !read_digits(s, pos, 2, sec))
      return bad();
    if (h > 23 || mi > 59 || sec > 59) return bad();
    if (expect_char(s, pos, '.') || expect_char(s, pos, ',')) {
      size_t digits = 0;
      uint64_t frac = 0;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (digits < 9) {
          frac = frac * 10 + static_cast<uint64_t>(s[pos] - '0');
        } else if (s[pos] != '0') {
          return Status::invalid_argument("time \"" + std::string(s) + "\" is finer than nanoseconds");
        }
        ++digits;
        ++pos;
      }
      if (digits == 0) return bad();
      for (size_t i = digits; i < 9; ++i) frac *= 10;
      nanos = static_cast<uint32_t>(frac);
    }
    if (expect_char(s, pos, 'Z') || expect_char(s, pos, 'z')) {
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
      int sign = s[pos] == '-' ? -1 : 1;
      ++pos;
      int oh = 0, om = 0;
      if (!read_digits(s, pos, 2, oh)) return bad();
      expect_char(s, pos, ':');
      if (!read_digits(s, pos, 2, om) || oh > 23 || om > 59) return bad();
      offset_seconds = int64_t{sign} * (int64_t{oh} * 3600 + int64_t{om} * 60);
    } else {
      return Status::invalid_argument("time \"" + std::string(s) + "\" has no zone: end it with Z or +HH:MM");
    }
  }
  if (pos != s.size()) return bad();
  int64_t days = sys_days{ymd}.time_since_epoch().count();
  return Time{days * 86400 + int64_t{h} * 3600 + int64_t{mi} * 60 + sec - offset_seconds, nanos};
}

const char* Value::kind_name(Kind k) {
  switch (k) {
    case Kind::kNull: return "null";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "string";
    case Kind::kBytes: return "bytes";
    case Kind::kTime: return "time";
    case Kind::kEnum: return "enum";
    case Kind::kList: return "list";
    case Kind::kMap: return "map";
    case Kind::kRecord: return "record";
  }
  return "?";
}

const EnumMember* Value::enum_member() const {
  if (kind() != Kind::kEnum) return nullptr;
  return as_enum().resolved.get();
}

const Value* Value::find(const std::string& key) const {
  const Map* m = nullptr;
  if (kind() == Kind::kMap) m = &as_map();
  else if (kind() == Kind::kRecord) m = &as_record().fields;
  if (m == nullptr) return nullptr;
  auto it = m->find(key);
  return it == m->end() ? nullptr : &it->second;
}

Value* Value::find(const std::string& key) {
  return const_cast<Value*>(static_cast<const Value*>(this)->find(key));
}

bool Value::operator==(const Value& o) const {
  if (kind() != o.kind()) return false;
  switch (kind()) {
    case Kind::kNull: return true;
    case Kind::kBool: return as_bool() == o.as_bool();
    case Kind::kInt: return as_int() == o.as_int();
    case Kind::kFloat: {
      double a = as_float(), b = o.as_float();
      if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
      return a == b && std::signbit(a) == std::signbit(b);
    }
    case Kind::kString: return as_string() == o.as_string();
    case Kind::kBytes: return as_bytes() == o.as_bytes();
    case Kind::kTime: return as_time() == o.as_time();
    case Kind::kEnum: return as_enum().type == o.as_enum().type && as_enum().member == o.as_enum().member;
    case Kind::kList: return as_list() == o.as_list();
    case Kind::kMap: return as_map() == o.as_map();
    case Kind::kRecord:
      return as_record().type == o.as_record().type && as_record().fields == o.as_record().fields;
  }
  return false;
}

std::string path_child(const std::string& path, std::string_view key) {
  if (path.empty()) return std::string(key);
  std::string out = path;
  out += '.';
  out += key;
  return out;
}

std::string path_index(const std::string& path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

std::string at_path(const std::string& path, const std::string& message) {
  return path.empty() ? message : path + ": " + message;
}

}  // namespace replog
