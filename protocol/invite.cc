#include "protocol/invite.h"

#include <sodium.h>

#include <array>
#include <cstdint>

namespace replog::invite {

namespace {

constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
constexpr size_t kKeyBytes = 32;
constexpr std::string_view kJoinLabel = "replog-join-v1";
constexpr std::string_view kAcceptLabel = "replog-accept-v1";

std::string base32(std::string_view bytes) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

// Only the canonical text: lower case, a length some byte count gives, and
// zero padding bits, so that no two texts read as one payload.
Result<std::string> from_base32(std::string_view text) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    int v = c >= 'a' && c <= 'z' ? c - 'a' : c >= '2' && c <= '7' ? c - '2' + 26 : -1;
    if (v < 0)
      return Status::invalid_argument("character " + std::to_string(kLinePrefix.size() + i + 1) +
                                      " is not part of an invite (a-z, 2-7): the line is damaged");
    buffer = (buffer << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<char>((buffer >> (bits - 8)) & 0xff));
      bits -= 8;
    }
  }
  if (bits >= 5 || (buffer & ((1u << bits) - 1)) != 0)
    return Status::invalid_argument("the line is truncated or damaged (copy all of it)");
  return out;
}

std::string check_of(std::string_view payload) {
  std::array<unsigned char, 16> digest{};
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, digest.size());
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(kLinePrefix.data()), kLinePrefix.size());
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(payload.data()), payload.size());
  crypto_generichash_final(&state, digest.data(), digest.size());
  return std::string(reinterpret_cast<const char*>(digest.data()), kCheckBytes);
}

bool cluster_char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '-' || c == '_';
}

Status check_endpoint(const std::string& e) {
  if (e.size() > kMaxEndpointBytes || e.size() <= 6 || e.compare(0, 6, "tcp://") != 0)
    return Status::invalid_argument("endpoint: want tcp://HOST:PORT of at most 255 bytes");
  for (char c : e)
    if (c < 0x21 || c > 0x7e) return Status::invalid_argument("endpoint: not printable ASCII");
  return Status::ok();
}

// Reads the payload's fields in order; each read checks what remains first.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool take(size_t n, std::string& out) {
    if (bytes_.size() - pos_ < n) return false;
    out.assign(bytes_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  bool take_short(std::string& out) {  // a length byte, then that many bytes
    if (pos_ >= bytes_.size()) return false;
    const size_t n = static_cast<unsigned char>(bytes_[pos_++]);
    return take(n, out);
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

std::string keyed_hash(std::string_view secret, std::string_view label, std::string_view a, std::string_view b) {
  std::string message;
  message.append(label).append(a).append(b);
  std::array<unsigned char, kProofBytes> out{};
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                     reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
  return std::string(reinterpret_cast<const char*>(out.data()), out.size());
}

}  // namespace

Status check_line(const InviteLine& line) {
  if (line.cluster.empty() || line.cluster.size() > kMaxClusterBytes)
    return Status::invalid_argument("cluster id: want 1..64 characters");
  for (char c : line.cluster)
    if (!cluster_char(c)) return Status::invalid_argument("cluster id: want characters of [0-9a-fA-F-_]");
  if (line.inviter_key.size() != kKeyBytes) return Status::invalid_argument("inviter key: want 32 bytes");
  if (line.secret.size() != kSecretBytes) return Status::invalid_argument("secret: want 16 bytes");
  if (line.endpoints.empty() || line.endpoints.size() > kMaxEndpoints)
    return Status::invalid_argument("endpoints: want 1 to 8");
  for (const auto& e : line.endpoints) REPLOG_RETURN_IF_ERROR(check_endpoint(e));
  return Status::ok();
}

std::string format_line(const InviteLine& line) {
  std::string payload = line.inviter_key + line.secret;
  payload.push_back(static_cast<char>(line.cluster.size()));
  payload += line.cluster;
  payload.push_back(static_cast<char>(line.endpoints.size()));
  for (const auto& e : line.endpoints) {
    payload.push_back(static_cast<char>(e.size()));
    payload += e;
  }
  payload += check_of(payload);
  return std::string(kLinePrefix) + base32(payload);
}

Result<InviteLine> parse_line(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  text = first == std::string_view::npos ? std::string_view() : text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
  if (text.substr(0, 14) == kLinePrefix.substr(0, 14) && text.substr(0, kLinePrefix.size()) != kLinePrefix)
    return Status::invalid_argument("an invite of another version (this build reads " + std::string(kLinePrefix) + ")");
  if (text.substr(0, kLinePrefix.size()) != kLinePrefix)
    return Status::invalid_argument("not an invite line (it starts with " + std::string(kLinePrefix) + ")");
  if (text.size() > kMaxLineChars) return Status::invalid_argument("the line is longer than any invite");
  auto bytes = from_base32(text.substr(kLinePrefix.size()));
  if (!bytes) return bytes.status();
  if (bytes->size() < kCheckBytes) return Status::invalid_argument("the line is truncated (copy all of it)");
  const std::string_view payload = std::string_view(*bytes).substr(0, bytes->size() - kCheckBytes);
  if (check_of(payload) != bytes->substr(payload.size()))
    return Status::invalid_argument("the line's check fails: it is truncated or was changed (copy all of it)");
  InviteLine line;
  Reader r(payload);
  std::string count;
  if (!r.take(kKeyBytes, line.inviter_key) || !r.take(kSecretBytes, line.secret) || !r.take_short(line.cluster) ||
      !r.take(1, count))
    return Status::invalid_argument("the invite is incomplete");
  for (size_t i = 0; i < static_cast<unsigned char>(count[0]); ++i) {
    line.endpoints.emplace_back();
    if (!r.take_short(line.endpoints.back())) return Status::invalid_argument("the invite's endpoints are incomplete");
  }
  if (!r.done()) return Status::invalid_argument("the invite has bytes after its endpoints");
  Status valid = check_line(line);
  if (!valid) return Status::invalid_argument("the invite is malformed: " + valid.message());
  return line;
}

std::string join_proof(std::string_view secret, std::string_view joiner_key, std::string_view inviter_key) {
  return keyed_hash(secret, kJoinLabel, joiner_key, inviter_key);
}

std::string accept_proof(std::string_view secret, std::string_view inviter_key, std::string_view joiner_key) {
  return keyed_hash(secret, kAcceptLabel, inviter_key, joiner_key);
}

bool same_proof(std::string_view a, std::string_view b) {
  if (a.size() != kProofBytes || b.size() != kProofBytes) return false;
  return crypto_verify_32(reinterpret_cast<const unsigned char*>(a.data()),
                          reinterpret_cast<const unsigned char*>(b.data())) == 0;
}

}  // namespace replog::invite
