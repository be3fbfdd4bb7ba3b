#include "protocol/device_id.h"

#include <array>
#include <cstdint>

namespace replog {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr size_t kDataChars = 52;   // ceil(256 / 5)
constexpr size_t kBlockData = 13;   // data characters per check character
constexpr size_t kBlockChars = kBlockData + 1;
constexpr size_t kGroupChars = 7;
static_assert(kDataChars == 4 * kBlockData && 4 * kBlockChars == kDeviceIdChars);
static_assert(kDeviceIdPrintedChars == kDeviceIdChars + kDeviceIdChars / kGroupChars - 1);

// GF(32) = GF(2)[x] / (x^5 + x^2 + 1); a base32 character's value (its index in
// the alphabet) is an element, bit i the coefficient of x^i. x is primitive.
constexpr unsigned kModulus = 0x25;

unsigned times_x(unsigned a) {
  a <<= 1;
  return (a & 0x20) ? a ^ kModulus : a;
}

unsigned gf_mul(unsigned a, unsigned b) {
  unsigned product = 0;
  for (; b != 0; b >>= 1, a = times_x(a))
    if (b & 1) product ^= a;
  return product;
}

// The check value of one block: sum over i of x^(i+1) * data[i]. A block is
// valid when its check character equals it, so the 14 characters have the
// distinct non-zero weights x^1..x^13 and 1.
unsigned block_check(std::string_view values) {
  unsigned sum = 0, weight = 1;
  for (char v : values) {
    weight = times_x(weight);
    sum ^= gf_mul(weight, static_cast<unsigned char>(v));
  }
  return sum;
}

int value_of(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

// Groups g and g+1 (1-based) as printed, from 14 characters of upper case.
std::string groups_text(std::string_view block, size_t first_group) {
  return "groups " + std::to_string(first_group) + "-" + std::to_string(first_group + 1) + " (" +
         std::string(block.substr(0, kGroupChars)) + "-" + std::string(block.substr(kGroupChars)) + ")";
}

}  // namespace

std::string format_device_id(std::string_view public_key) {
  // Base32, most significant bit first; the last character carries one bit.
  std::string values;
  uint32_t buffer = 0;
  int bits = 0;
  for (char byte : public_key) {
    buffer = (buffer << 8) | static_cast<unsigned char>(byte);
    for (bits += 8; bits >= 5; bits -= 5) values.push_back(static_cast<char>((buffer >> (bits - 5)) & 31));
  }
  if (bits > 0) values.push_back(static_cast<char>((buffer << (5 - bits)) & 31));
  std::string out;
  for (size_t block = 0; block * kBlockData < values.size(); ++block) {
    std::string_view data = std::string_view(values).substr(block * kBlockData, kBlockData);
    std::string chars;
    for (char v : data) chars.push_back(kAlphabet[static_cast<unsigned char>(v)]);
    chars.push_back(kAlphabet[block_check(data)]);
    for (size_t g = 0; g < chars.size(); g += kGroupChars)
      out += (out.empty() ? "" : "-") + chars.substr(g, kGroupChars);
  }
  return out;
}

Result<std::string> parse_device_id(std::string_view text) {
  std::string chars, values;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '-' || c == ' ') continue;
    int v = value_of(c);
    if (v < 0)
      return Status::invalid_argument("device id: '" + std::string(1, c) + "' (character " + std::to_string(i + 1) +
                                      ") is not base32: use A-Z and 2-7");
    chars.push_back(kAlphabet[v]);
    values.push_back(static_cast<char>(v));
  }
  if (values.size() != kDeviceIdChars)
    return Status::invalid_argument("device id: " + std::to_string(values.size()) +
                                    " characters without dashes, want " + std::to_string(kDeviceIdChars));
  std::string data;
  for (size_t block = 0; block < kDeviceIdChars / kBlockChars; ++block) {
    std::string_view b = std::string_view(values).substr(block * kBlockChars, kBlockChars);
    if (block_check(b.substr(0, kBlockData)) != static_cast<unsigned char>(b.back()))
      return Status::invalid_argument("device id: the check fails in " +
                                      groups_text(std::string_view(chars).substr(block * kBlockChars, kBlockChars),
                                                  2 * block + 1) +
                                      ": a character there is mistyped");
    data += b.substr(0, kBlockData);
  }
  // 52 characters hold 260 bits: the last one's low 4 bits must be zero.
  if ((data.back() & 15) != 0)
    return Status::invalid_argument("device id: character 52 of the key must be A or Q (it holds one bit)");
  std::string key;
  uint32_t buffer = 0;
  int bits = 0;
  for (char v : data) {
    buffer = (buffer << 5) | static_cast<unsigned char>(v);
    if ((bits += 5) >= 8) key.push_back(static_cast<char>((buffer >> (bits -= 8)) & 0xff));
  }
  return key;
}

}  // namespace replog
