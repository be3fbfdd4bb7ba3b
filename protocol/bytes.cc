#include "protocol/bytes.h"

namespace replog {

namespace {
constexpr char kDigits[] = "0123456789abcdef";

int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string u64_be(uint64_t v) {
  std::string s(8, '\0');
  put_u64_be(s.data(), v);
  return s;
}

std::string to_hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

Result<std::string> from_hex(std::string_view text) {
  std::string digits;
  for (char c : text)
    if (c != ' ' && c != '\n' && c != '\t' && c != '\r') digits += c;
  if (digits.size() % 2) return Status::invalid_argument("hex input has an odd number of digits");
  std::string out;
  for (size_t i = 0; i < digits.size(); i += 2) {
    int hi = nibble(digits[i]), lo = nibble(digits[i + 1]);
    if (hi < 0 || lo < 0) return Status::invalid_argument("hex input has a non-hex character at " + std::to_string(i));
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

std::string hex16(uint64_t v) { return to_hex(u64_be(v)); }

Result<uint64_t> parse_hex16(std::string_view text) {
  if (text.empty() || text.size() > 16)
    return Status::invalid_argument("expected up to 16 hex digits, got \"" + std::string(text) + "\"");
  uint64_t v = 0;
  for (char c : text) {
    int d = nibble(c);
    if (d < 0) return Status::invalid_argument("not a hex number: \"" + std::string(text) + "\"");
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

}  // namespace replog
