// Device ids: a node's 32-byte Ed25519 public key as text a person can read
// aloud, type and copy (PROTOCOL.md "Device ids" has the exact format).
//
//   AAAAAAA-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH
//
// The key is 52 characters of base32 (RFC 4648 alphabet A-Z 2-7, no padding),
// cut into four blocks of 13; each block is followed by one check character, a
// weighted sum over GF(32), so every block is 14 characters and prints as two
// groups of 7. Every single-character substitution and every transposition of
// two adjacent characters is refused.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "replog/status.h"

namespace replog {

constexpr size_t kDeviceKeyBytes = 32;
// Characters of a device id without its dashes, and with them.
constexpr size_t kDeviceIdChars = 56;
constexpr size_t kDeviceIdPrintedChars = 63;

// The printed form: upper case, eight groups of 7 joined by '-'.
// REQUIRES: public_key.size() == kDeviceKeyBytes.
std::string format_device_id(std::string_view public_key);

// The 32-byte public key a device id names. Accepts either case, and dashes
// and spaces anywhere (or none). kInvalidArgument with one line saying what is
// wrong: a character outside the alphabet (and where), the wrong length, or a
// check that fails (naming the two groups it covers).
Result<std::string> parse_device_id(std::string_view text);

}  // namespace replog
