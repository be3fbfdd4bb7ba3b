// Invites (PROTOCOL.md §7 "Joining with an invite"): the line `replog invite`
// prints and `replog join` reads, and the two proofs the invite exchange
// carries.
//
// A line is "replog-invite-1:" followed by the payload and a 4-byte check in
// base32 (RFC 4648 alphabet, lower case, no padding). The payload holds the
// cluster id, the inviter's Ed25519 key, a one-time 128-bit secret and the
// endpoints where the inviter listens. It is a line to paste, not a code to
// type: the secret is as strong as the key it stands in for only because it
// is long, and nothing here stretches a short one.
//
// parse_line() reads hostile input: every length is checked before it is
// used, the check catches a truncated or mistyped line, and only the canonical
// text of a payload parses (lower case, zero padding bits), so that every line
// names one payload and format_line(parse_line(x)) == x up to surrounding
// whitespace.
//
// The proofs are keyed BLAKE2b-256 (libsodium's crypto_generichash) with the
// secret as key, over a label and both devices' Ed25519 keys:
//   join_proof   = BLAKE2b(key = secret, "replog-join-v1"   ‖ joiner ‖ inviter)
//   accept_proof = BLAKE2b(key = secret, "replog-accept-v1" ‖ inviter ‖ joiner)
// Each side proves that it knows the secret for this pair of keys; the labels
// keep one side's proof from serving as the other's.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "replog/status.h"

namespace replog::invite {

inline constexpr std::string_view kLinePrefix = "replog-invite-1:";
inline constexpr size_t kSecretBytes = 16;     // the one-time secret: 128 bits
inline constexpr size_t kProofBytes = 32;      // a proof: BLAKE2b-256
inline constexpr size_t kCheckBytes = 4;       // the line's check
inline constexpr size_t kMaxEndpoints = 8;     // endpoints in one line
inline constexpr size_t kMaxEndpointBytes = 255;
inline constexpr size_t kMaxClusterBytes = 64;  // as InitOptions.cluster
// The longest line: prefix plus the base32 of the largest payload and its check.
inline constexpr size_t kMaxLineChars =
    kLinePrefix.size() + ((32 + kSecretBytes + 1 + kMaxClusterBytes + 1 +
                           kMaxEndpoints * (1 + kMaxEndpointBytes) + kCheckBytes) * 8 + 4) / 5;

struct InviteLine {
  std::string cluster;      // 1..64 of [0-9a-fA-F-_]
  std::string inviter_key;  // Ed25519 public key, 32 bytes
  std::string secret;       // kSecretBytes
  std::vector<std::string> endpoints;  // 1..8, each "tcp://" + 1..249 printable ASCII characters
};

// OK when `line` may be written: every field within the rules above.
Status check_line(const InviteLine& line);
// The text of a line. REQUIRES: check_line(line) is OK.
std::string format_line(const InviteLine& line);
// The line `text` holds, surrounding whitespace ignored. kInvalidArgument with
// one line: not an invite line, another version, not base32, truncated or
// mistyped (the check fails), or a field outside the rules.
Result<InviteLine> parse_line(std::string_view text);

// The proofs above. REQUIRES: secret.size() == kSecretBytes, keys of 32 bytes.
std::string join_proof(std::string_view secret, std::string_view joiner_key, std::string_view inviter_key);
std::string accept_proof(std::string_view secret, std::string_view inviter_key, std::string_view joiner_key);
// Whether two proofs are equal, in time that does not depend on where they
// differ. False unless both are kProofBytes long.
bool same_proof(std::string_view a, std::string_view b);

}  // namespace replog::invite
