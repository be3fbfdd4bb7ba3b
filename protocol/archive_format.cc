#include "protocol/archive_format.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "protocol/bytes.h"

namespace replog::archive {
namespace {

constexpr std::string_view kMagic = "replog-a";
constexpr std::string_view kKeyIdTag = "replog-archive-key-id-v1";
constexpr std::string_view kNonceTag = "replog-archive-nonce-v1";
constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "rlarchiv";
constexpr int64_t kMaxMs = 9'999'999'999'999LL;          // 13 digits

std::string digits(uint64_t v, int width) {
  std::string s = std::to_string(v);
  return std::string(width > static_cast<int>(s.size()) ? width - s.size() : 0, '0') + s;
}

// Exactly `width` decimal digits.
std::optional<uint64_t> read_digits(std::string_view s, size_t width) {
  if (s.size() != width) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    if (v > (UINT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// Exactly 16 lowercase hex digits, as hex16 writes them (one spelling per name).
std::optional<OriginId> read_origin(std::string_view s) {
  if (s.size() != 16) return std::nullopt;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  auto v = parse_hex16(s);
  if (!v) return std::nullopt;
  return *v;
}

std::string header(Kind kind, uint32_t key_id, uint64_t length) {
  std::string h(kMagic);
  h.push_back(static_cast<char>(kFormat));
  h.push_back(static_cast<char>(kind));
  h.append(2, '\0');
  char b[8];
  put_u64_be(b, (uint64_t{key_id} << 32) | kChunkBytes);
  h.append(b, 8);
  h += u64_be(length);
  return h;
}

size_t chunk_count(uint64_t length) { return length == 0 ? 1 : (length + kChunkBytes - 1) / kChunkBytes; }

std::string chunk_ad(std::string_view head, std::string_view context, uint64_t index) {
  std::string ad(head);
  ad += context;
  ad += u64_be(index);
  return ad;
}

}  // namespace

// ---- names ----------------------------------------------------------------

std::string origin_prefix(OriginId origin) { return std::string(kLogPrefix) + hex16(origin) + "/"; }

std::optional<OriginId> parse_origin_prefix(std::string_view p) {
  if (p.size() != kLogPrefix.size() + 17 || !p.starts_with(kLogPrefix) || p.back() != '/') return std::nullopt;
  return read_origin(p.substr(kLogPrefix.size(), 16));
}

std::string segment_key(const SegmentName& n) {
  return origin_prefix(n.origin) + digits(n.last, 20) + "-" + digits(n.first, 20) + ".seg";
}

Result<SegmentName> parse_segment_key(std::string_view key) {
  auto bad = [&] { return Status::invalid_argument("not a segment name: " + std::string(key.substr(0, 120))); };
  // log/ + 16 + / + 20 + - + 20 + .seg
  if (key.size() != 4 + 16 + 1 + 20 + 1 + 20 + 4 || !key.starts_with(kLogPrefix) || key[20] != '/' ||
      key[41] != '-' || !key.ends_with(".seg"))
    return bad();
  auto origin = read_origin(key.substr(4, 16));
  auto last = read_digits(key.substr(21, 20), 20);
  auto first = read_digits(key.substr(42, 20), 20);
  if (!origin || !last || !first || *first == 0 || *first > *last) return bad();
  return SegmentName{*origin, *first, *last};
}

std::vector<SegmentName> cover(const std::vector<SegmentName>& names, uint64_t held) {
  std::vector<SegmentName> out;
  for (;;) {
    const SegmentName* best = nullptr;
    for (const SegmentName& n : names)
      if (n.first <= held + 1 && n.last > held && (!best || n.last > best->last)) best = &n;
    if (!best) return out;
    out.push_back(*best);
    held = best->last;
  }
}

std::string segments_after(OriginId origin, uint64_t seq) { return origin_prefix(origin) + digits(seq, 20) + "-~"; }

std::string feed_key(const FeedEntry& e) {
  return std::string(kChangesPrefix) + digits(static_cast<uint64_t>(std::clamp<int64_t>(e.uploader_ms, 0, kMaxMs)), 13) +
         "-" + hex16(e.origin) + "-" + digits(e.last, 20);
}

Result<FeedEntry> parse_feed_key(std::string_view key) {
  auto bad = [&] { return Status::invalid_argument("not a change feed entry: " + std::string(key.substr(0, 120))); };
  // changes/ + 13 + - + 16 + - + 20
  if (key.size() != 8 + 13 + 1 + 16 + 1 + 20 || !key.starts_with(kChangesPrefix) || key[21] != '-' || key[38] != '-')
    return bad();
  auto ms = read_digits(key.substr(8, 13), 13);
  auto origin = read_origin(key.substr(22, 16));
  auto last = read_digits(key.substr(39, 20), 20);
  if (!ms || !origin || !last || *last == 0) return bad();
  return FeedEntry{static_cast<int64_t>(*ms), *origin, *last};
}

std::string feed_after(int64_t ms) {
  if (ms <= 0) return std::string(kChangesPrefix);
  return std::string(kChangesPrefix) + digits(static_cast<uint64_t>(std::min(ms, kMaxMs) - 1), 13) + "-~";
}

// ---- keys and sealing -------------------------------------------------------

Result<ArchiveKey> ArchiveKey::from_bytes(std::string_view bytes, uint32_t generation) {
  if (bytes.size() != kBytes)
    return Status::corruption("an archive key is 32 bytes, not " + std::to_string(bytes.size()));
  ArchiveKey k;
  std::memcpy(k.key_.data(), bytes.data(), kBytes);
  std::string msg(kKeyIdTag);
  msg += bytes;
  unsigned char digest[32];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), nullptr, 0);
  k.id_ = (uint32_t{digest[0]} << 24) | (uint32_t{digest[1]} << 16) | (uint32_t{digest[2]} << 8) | digest[3];
  k.generation_ = generation;
  return k;
}

bool add_key(Keyring& ring, const ArchiveKey& key) {
  for (const auto& k : ring)
    if (k.id() == key.id()) return false;
  auto at = std::find_if(ring.begin(), ring.end(), [&](const ArchiveKey& k) {
    return std::pair(k.generation(), k.id()) > std::pair(key.generation(), key.id());
  });
  ring.insert(at, key);
  return true;
}

std::string key_grant_key(const KeyGrant& g) {
  return std::string(kKeysPrefix) + digits(g.generation, 10) + "-" + hex16(g.key_id).substr(8) + "/" + to_hex(g.device);
}

Result<KeyGrant> parse_key_grant_key(std::string_view key) {
  auto bad = [&] { return Status::invalid_argument("not a key grant: " + std::string(key.substr(0, 120))); };
  // keys/ + 10 + - + 8 + / + 64
  if (key.size() != 5 + 10 + 1 + 8 + 1 + 64 || !key.starts_with(kKeysPrefix) || key[15] != '-' || key[24] != '/')
    return bad();
  auto gen = read_digits(key.substr(5, 10), 10);
  auto id = read_origin(std::string(8, '0') + std::string(key.substr(16, 8)));
  auto device = from_hex(key.substr(25, 64));
  for (char c : key.substr(25))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return bad();
  if (!gen || *gen > UINT32_MAX || !id || !device) return bad();
  return KeyGrant{static_cast<uint32_t>(*gen), static_cast<uint32_t>(*id), std::move(device).value()};
}

ArchiveKey::~ArchiveKey() { sodium_memzero(key_.data(), key_.size()); }

std::string_view ArchiveKey::bytes() const { return {reinterpret_cast<const char*>(key_.data()), key_.size()}; }

std::array<unsigned char, 32> ArchiveKey::aead_key() const {
  std::array<unsigned char, 32> out{};
  crypto_kdf_derive_from_key(out.data(), out.size(), 1, kKdfContext, key_.data());
  return out;
}

std::array<unsigned char, 32> ArchiveKey::nonce_key() const {
  std::array<unsigned char, 32> out{};
  crypto_kdf_derive_from_key(out.data(), out.size(), 2, kKdfContext, key_.data());
  return out;
}

std::string seal(const ArchiveKey& key, Kind kind, std::string_view context, std::string_view plaintext) {
  const std::string head = header(kind, key.id(), plaintext.size());
  const auto aead = key.aead_key();
  const auto nonce_key = key.nonce_key();
  const size_t n = chunk_count(plaintext.size());
  std::string out = head;
  out.reserve(head.size() + plaintext.size() + n * (kNonceBytes + kTagBytes));
  for (size_t i = 0; i < n; ++i) {
    std::string_view chunk = plaintext.substr(i * kChunkBytes, kChunkBytes);
    const std::string ad = chunk_ad(head, context, i);
    unsigned char nonce[kNonceBytes];
    crypto_generichash_state st;
    crypto_generichash_init(&st, nonce_key.data(), nonce_key.size(), sizeof nonce);
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(kNonceTag.data()), kNonceTag.size());
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(ad.data()), ad.size());
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(chunk.data()), chunk.size());
    crypto_generichash_final(&st, nonce, sizeof nonce);
    const size_t at = out.size();
    out.append(reinterpret_cast<const char*>(nonce), kNonceBytes);
    out.resize(at + kNonceBytes + chunk.size() + kTagBytes);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        reinterpret_cast<unsigned char*>(out.data() + at + kNonceBytes), &clen,
        reinterpret_cast<const unsigned char*>(chunk.data()), chunk.size(),
        reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr, nonce, aead.data());
  }
  return out;
}

std::optional<uint32_t> sealed_key_id(std::string_view sealed) {
  if (sealed.size() < kHeaderBytes || !sealed.starts_with(kMagic)) return std::nullopt;
  return static_cast<uint32_t>(get_u64_be(sealed.data() + 12) >> 32);
}

Result<std::string> open(const Keyring& keys, Kind kind, std::string_view context, std::string_view sealed) {
  if (sealed.size() < kHeaderBytes || !sealed.starts_with(kMagic))
    return Status::corruption("not a replog archive object (no header)");
  const std::string_view head = sealed.substr(0, kHeaderBytes);
  if (static_cast<uint8_t>(head[8]) != kFormat)
    return Status::corruption("archive object format " + std::to_string(static_cast<uint8_t>(head[8])) +
                              " (this build reads format " + std::to_string(kFormat) + ")");
  if (static_cast<uint8_t>(head[9]) != static_cast<uint8_t>(kind) || head[10] != 0 || head[11] != 0)
    return Status::corruption("archive object of another kind");
  const uint64_t ids = get_u64_be(head.data() + 12);
  const uint32_t key_id = static_cast<uint32_t>(ids >> 32);
  if ((ids & 0xffffffffu) != kChunkBytes) return Status::corruption("archive object with an unknown chunk size");
  const uint64_t length = get_u64_be(head.data() + 20);
  if (length > kMaxPlaintextBytes)
    return Status::corruption("archive object says it holds " + std::to_string(length) + " bytes (at most " +
                              std::to_string(kMaxPlaintextBytes) + ")");
  const size_t n = chunk_count(length);
  if (sealed.size() != kHeaderBytes + length + n * (kNonceBytes + kTagBytes))
    return Status::corruption("archive object is " + std::to_string(sealed.size()) + " bytes, its header says " +
                              std::to_string(kHeaderBytes + length + n * (kNonceBytes + kTagBytes)) +
                              " (truncated or extended)");
  auto key = std::find_if(keys.begin(), keys.end(), [&](const ArchiveKey& k) { return k.id() == key_id; });
  if (key == keys.end()) return Status::not_found("archive object sealed under key " + hex16(key_id).substr(8) +
                                                  ", which this node does not hold");
  const auto aead = key->aead_key();
  std::string out(length, '\0');
  size_t at = kHeaderBytes;
  for (size_t i = 0; i < n; ++i) {
    const size_t plain = std::min<uint64_t>(kChunkBytes, length - i * kChunkBytes);
    const std::string ad = chunk_ad(head, context, i);
    const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data() + at);
    unsigned long long mlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            reinterpret_cast<unsigned char*>(out.data() + i * kChunkBytes), &mlen, nullptr,
            reinterpret_cast<const unsigned char*>(sealed.data() + at + kNonceBytes), plain + kTagBytes,
            reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nonce, aead.data()) != 0)
      return Status::corruption("archive object chunk " + std::to_string(i) +
                                " fails authentication (altered, renamed, or sealed under another key)");
    at += kNonceBytes + plain + kTagBytes;
  }
  return out;
}

std::string segment_context(const SegmentName& n) { return u64_be(n.origin) + u64_be(n.first) + u64_be(n.last); }

// ---- segments ---------------------------------------------------------------

std::string encode_segment(const Segment& s) {
  std::string out;
  out.push_back(static_cast<char>(kFormat));
  out += segment_context(s.name);
  proof::append_head(s.head, out);
  for (const Update& u : s.updates) append_envelope(u, out);
  return out;
}

Result<Segment> decode_segment(std::string_view p) {
  if (p.size() < 25 || static_cast<uint8_t>(p[0]) != kFormat) return Status::corruption("segment: unknown format");
  Segment s;
  s.name = {get_u64_be(p.data() + 1), get_u64_be(p.data() + 9), get_u64_be(p.data() + 17)};
  const SegmentName& n = s.name;
  if (n.first == 0 || n.first > n.last) return Status::corruption("segment: bad seq range");
  // Each envelope takes at least a few bytes, so this bounds the vector before it grows.
  if (n.last - n.first + 1 > p.size() / 4) return Status::corruption("segment: more updates than bytes");
  size_t at = 25, used = 0;
  auto head = proof::read_head(p.substr(at), used);
  if (!head) return head.status().with_context("segment head");
  at += used;
  if (head->origin != n.origin || head->seq != n.last) return Status::corruption("segment: its head is not at its end");
  s.head = std::move(head).value();
  uint64_t prev_hlc = 0;
  for (uint64_t seq = n.first; seq <= n.last; ++seq) {
    auto u = read_envelope(p.substr(at), used);
    if (!u) return u.status().with_context("segment update #" + std::to_string(seq));
    at += used;
    if (u->id().origin != n.origin || u->seq() != seq || u->id().hlc <= prev_hlc)
      return Status::corruption("segment update #" + std::to_string(seq) + " is not the next of its origin");
    prev_hlc = u->id().hlc;
    s.updates.push_back(std::move(u).value());
  }
  if (at != p.size()) return Status::corruption("segment: bytes after its last update");
  return s;
}

std::string seal_segment(const ArchiveKey& key, const Segment& segment) {
  return seal(key, Kind::kSegment, segment_context(segment.name), encode_segment(segment));
}

Result<Segment> open_segment(const Keyring& keys, std::string_view object_key, std::string_view sealed) {
  auto name = parse_segment_key(object_key);
  if (!name) return name.status();
  auto plain = open(keys, Kind::kSegment, segment_context(*name), sealed);
  if (!plain) return plain.status().with_context(std::string(object_key));
  auto s = decode_segment(*plain);
  if (!s) return s.status().with_context(std::string(object_key));
  if (!(s->name == *name)) return Status::corruption(std::string(object_key) + ": holds another range");
  return s;
}

// ---- snapshots --------------------------------------------------------------

namespace {

std::string blake(std::string_view a, std::string_view b = {}) {
  unsigned char d[32];
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, sizeof d);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(a.data()), a.size());
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(b.data()), b.size());
  crypto_generichash_final(&st, d, sizeof d);
  return std::string(reinterpret_cast<const char*>(d), sizeof d);
}

std::string u32_be(uint32_t v) { return u64_be(v).substr(4); }
// The big-endian u32 just read, which ends at `at`.
uint32_t read_u32(std::string_view p, size_t at) {
  uint32_t v = 0;
  for (size_t i = at - 4; i < at; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string vector_bytes(const VersionVector& v) {
  std::string out = u32_be(static_cast<uint32_t>(v.size()));
  for (const auto& [origin, seq] : v) out += u64_be(origin) + u64_be(seq);
  return out;
}

std::string snapshot_message(std::string_view cluster, std::string_view body) {
  std::string prefix = "replog-snapshot-v1";
  prefix.push_back(static_cast<char>(cluster.size()));
  prefix += cluster;
  return blake(prefix, body);
}

// Reads exactly `n` bytes at `at`, or fails.
bool take(std::string_view p, size_t& at, size_t n, std::string_view& out) {
  if (p.size() - at < n) return false;
  out = p.substr(at, n);
  at += n;
  return true;
}

}  // namespace

std::string snapshot_key(const SnapshotName& n) {
  return std::string(kSnapshotsPrefix) + to_hex(n.cut) + "-" + to_hex(n.vector_digest) + "-" + to_hex(n.methods_digest) +
         ".snap";
}

Result<SnapshotName> parse_snapshot_key(std::string_view key) {
  auto bad = [&] { return Status::invalid_argument("not a snapshot name: " + std::string(key.substr(0, 120))); };
  // snapshots/ + 32 + - + 16 + - + 16 + .snap
  if (key.size() != 10 + 32 + 1 + 16 + 1 + 16 + 5 || !key.starts_with(kSnapshotsPrefix) || key[42] != '-' ||
      key[59] != '-' || !key.ends_with(".snap"))
    return bad();
  for (std::string_view part : {key.substr(10, 32), key.substr(43, 16), key.substr(60, 16)})
    for (char c : part)
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return bad();
  return SnapshotName{from_hex(key.substr(10, 32)).value(), from_hex(key.substr(43, 16)).value(),
                      from_hex(key.substr(60, 16)).value()};
}

std::string vector_digest(const VersionVector& v) { return blake(vector_bytes(v)).substr(0, 8); }

std::string snapshot_context(const SnapshotName& n) { return n.cut + n.vector_digest + n.methods_digest; }

std::string encode_snapshot(const Snapshot& s, std::string_view cluster, std::string_view signer_secret) {
  std::string out;
  out.push_back(static_cast<char>(kFormat));
  out += s.cut;
  out += vector_bytes(s.vector);
  out += s.state_hash;
  out += u32_be(static_cast<uint32_t>(s.heads.size()));
  for (const auto& h : s.heads) proof::append_head(h, out);
  out += u64_be(s.checkpoint.size());
  out += s.checkpoint;
  const std::string digest = snapshot_message(cluster, out);
  out += signer_secret.substr(32, 32);  // libsodium's secret key ends with the public key
  std::string sig(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(digest.data()), digest.size(),
                       reinterpret_cast<const unsigned char*>(signer_secret.data()));
  return out + sig;
}

Result<Snapshot> decode_snapshot(std::string_view p, std::string_view cluster) {
  auto bad = [](const std::string& why) { return Status::corruption("snapshot: " + why); };
  Snapshot s;
  size_t at = 0;
  std::string_view f;
  if (!take(p, at, 1, f) || static_cast<uint8_t>(f[0]) != kFormat) return bad("unknown format");
  if (!take(p, at, 16, f)) return bad("truncated");
  s.cut = std::string(f);
  if (!take(p, at, 4, f)) return bad("truncated");
  const uint32_t n = read_u32(p, at);
  if (n > (p.size() - at) / 16) return bad("more origins than bytes");
  for (uint32_t i = 0; i < n; ++i) {
    take(p, at, 16, f);
    const OriginId origin = get_u64_be(f.data());
    if (!s.vector.empty() && origin <= s.vector.rbegin()->first) return bad("origins out of order");
    s.vector[origin] = get_u64_be(f.data() + 8);
  }
  if (!take(p, at, 32, f)) return bad("truncated");
  s.state_hash = std::string(f);
  if (!take(p, at, 4, f)) return bad("truncated");
  const uint32_t h = read_u32(p, at);
  if (h > n) return bad("more heads than origins");
  for (uint32_t i = 0; i < h; ++i) {
    size_t used = 0;
    auto head = proof::read_head(p.substr(at), used);
    if (!head) return head.status().with_context("snapshot head");
    at += used;
    s.heads.push_back(std::move(head).value());
  }
  if (!take(p, at, 8, f)) return bad("truncated");
  const uint64_t len = get_u64_be(f.data());
  if (len > p.size() - at) return bad("truncated state");
  take(p, at, len, f);
  s.checkpoint = std::string(f);
  const std::string digest = snapshot_message(cluster, p.substr(0, at));
  if (!take(p, at, 32, f)) return bad("truncated");
  s.signer = std::string(f);
  if (!take(p, at, 64, f) || at != p.size()) return bad("truncated or extended");
  s.signature = std::string(f);
  if (crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(s.signature.data()),
                                  reinterpret_cast<const unsigned char*>(digest.data()), digest.size(),
                                  reinterpret_cast<const unsigned char*>(s.signer.data())) != 0)
    return bad("its signature does not verify");
  return s;
}

// ---- fork evidence ----------------------------------------------------------

std::string evidence_key(const EvidenceName& n) {
  return std::string(kEvidencePrefix) + hex16(n.origin) + "/" + digits(n.fork_seq, 20) + "-" + to_hex(n.digest) + ".ev";
}

Result<EvidenceName> parse_evidence_key(std::string_view key) {
  auto bad = [&] { return Status::invalid_argument("not an evidence name: " + std::string(key.substr(0, 120))); };
  // evidence/ + 16 + / + 20 + - + 16 + .ev
  if (key.size() != 9 + 16 + 1 + 20 + 1 + 16 + 3 || !key.starts_with(kEvidencePrefix) || key[25] != '/' ||
      key[46] != '-' || !key.ends_with(".ev"))
    return bad();
  auto origin = read_origin(key.substr(9, 16));
  auto seq = read_digits(key.substr(26, 20), 20);
  const std::string_view digest = key.substr(47, 16);
  for (char c : digest)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return bad();
  if (!origin || !seq || *seq == 0) return bad();
  return EvidenceName{*origin, *seq, from_hex(digest).value()};
}

Result<EvidenceName> evidence_name(std::string_view evidence) {
  auto e = proof::decode_evidence(evidence);
  if (!e) return e.status();
  return EvidenceName{e->origin(), e->fork_seq(), blake(evidence).substr(0, 8)};
}

std::string evidence_context(const EvidenceName& n) { return u64_be(n.origin) + u64_be(n.fork_seq) + n.digest; }

std::string seal_evidence(const ArchiveKey& key, std::string_view evidence) {
  std::string plain(1, static_cast<char>(kFormat));
  plain += evidence;
  return seal(key, Kind::kEvidence, evidence_context(evidence_name(evidence).value()), plain);
}

Result<std::string> open_evidence(const Keyring& keys, std::string_view object_key, std::string_view sealed) {
  auto name = parse_evidence_key(object_key);
  if (!name) return name.status();
  auto plain = open(keys, Kind::kEvidence, evidence_context(*name), sealed);
  if (!plain) return plain.status().with_context(std::string(object_key));
  if (plain->empty() || static_cast<uint8_t>((*plain)[0]) != kFormat)
    return Status::corruption(std::string(object_key) + ": evidence of another format");
  std::string evidence = plain->substr(1);
  auto own = evidence_name(evidence);
  if (!own) return own.status().with_context(std::string(object_key));
  if (!(*own == *name)) return Status::corruption(std::string(object_key) + ": holds other evidence than its name");
  return evidence;
}

}  // namespace replog::archive
