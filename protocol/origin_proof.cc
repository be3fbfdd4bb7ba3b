#include "protocol/origin_proof.h"

#include <sodium.h>

#include <msgpack.hpp>

#include "protocol/bytes.h"
#include "protocol/envelope.h"
#include "protocol/limits.h"
#include "protocol/msgpack_codec.h"
#include "protocol/update.h"

namespace replog::proof {

namespace {

constexpr std::string_view kOriginTag = "replog-origin-v1";
constexpr std::string_view kChainTag = "replog-chain-v1";
constexpr std::string_view kHeadTag = "replog-head-v1";
constexpr std::string_view kCertTag = "replog-origin-cert-v1";
constexpr std::string_view kHelloTag = "replog-hello-v1";

const unsigned char* u8(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

struct Hasher {
  crypto_generichash_state st;
  Hasher() { crypto_generichash_init(&st, nullptr, 0, kChainBytes); }
  Hasher& add(std::string_view s) {
    crypto_generichash_update(&st, u8(s), s.size());
    return *this;
  }
  Chain done() {
    Chain out{};
    crypto_generichash_final(&st, out.data(), out.size());
    return out;
  }
};

std::string length_prefixed(std::string_view s) {
  std::string out(1, static_cast<char>(s.size() > 255 ? 255 : s.size()));
  out.append(s.substr(0, 255));
  return out;
}

struct Sink {
  std::string& out;
  void write(const char* p, size_t n) { out.append(p, n); }
};
using Packer = msgpack::packer<Sink>;

void pack_bin(Packer& pk, std::string_view s) {
  pk.pack_bin(static_cast<uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
}

struct Malformed : std::runtime_error {
  using std::runtime_error::runtime_error;
};
uint64_t uint(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) throw Malformed(std::string(what) + " is not an unsigned integer");
  return o.via.u64;
}
std::string bin_of(const msgpack::object& o, size_t n, const char* what) {
  if (o.type != msgpack::type::BIN || o.via.bin.size != n)
    throw Malformed(std::string(what) + " is not " + std::to_string(n) + " bytes of bin");
  return std::string(o.via.bin.ptr, o.via.bin.size);
}

Head head_of(const msgpack::object& o) {
  if (o.type != msgpack::type::ARRAY || (o.via.array.size != 5 && o.via.array.size != 6 && o.via.array.size != 8))
    throw Malformed("head is not an array of 5, 6 or 8");
  const msgpack::object* f = o.via.array.ptr;
  Head h;
  h.origin = uint(f[0], "head origin");
  h.seq = uint(f[1], "head seq");
  if (h.seq == 0) throw Malformed("head seq is 0");
  h.chain = *chain_from(bin_of(f[2], kChainBytes, "head chain"));
  const uint64_t flags = uint(f[3], "head flags");
  if (flags & ~uint64_t{kKnownFlags}) throw Malformed("head flags " + std::to_string(flags) + " are not known");
  h.flags = static_cast<uint8_t>(flags);
  h.signature = bin_of(f[4], kSignatureBytes, "head signature");
  if (o.via.array.size >= 6) h.key = bin_of(f[5], kKeyBytes, "head key");
  if (o.via.array.size == 8) {
    h.device = bin_of(f[6], kKeyBytes, "head device");
    h.cert = bin_of(f[7], kSignatureBytes, "head certificate");
  }
  return h;
}

std::vector<Update> branch_of(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size == 0)
    throw Malformed(std::string(what) + " is not a non-empty array");
  std::vector<Update> out;
  out.reserve(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    auto u = update_from_envelope(o.via.array.ptr[i]);
    if (!u) throw Malformed(std::string(what) + " update " + std::to_string(i) + ": " + u.status().message());
    out.push_back(std::move(u).value());
  }
  return out;
}

// Whether `branch` is seqs first.. of `origin` and chains from `base` under `key` to `end`.
Status check_branch(const std::vector<Update>& branch, OriginId origin, uint64_t first, const Chain& base,
                    std::string_view key, const Chain& end, const char* name) {
  Chain c = base;
  for (size_t i = 0; i < branch.size(); ++i) {
    const Update& u = branch[i];
    if (u.id().origin != origin)
      return Status::invalid_argument(std::string("evidence branch ") + name + ": update " + std::to_string(i) +
                                      " is of origin " + hex16(u.id().origin));
    if (u.seq() != first + i)
      return Status::invalid_argument(std::string("evidence branch ") + name + ": update " + std::to_string(i) +
                                      " is seq " + std::to_string(u.seq()) + ", not " + std::to_string(first + i));
    chain_step(c, key, u.id().hlc, u.body());
  }
  if (c != end) return Status::invalid_argument(std::string("evidence branch ") + name + " does not chain to its head");
  return Status::ok();
}

}  // namespace

OriginId origin_of_key(std::string_view key) {
  if (key.size() != kKeyBytes) return 0;
  Chain d = Hasher().add(kOriginTag).add(key).done();
  return get_u64_be(reinterpret_cast<const char*>(d.data()));
}

Chain chain_start(std::string_view cluster, std::string_view key) {
  return Hasher().add(kChainTag).add(length_prefixed(cluster)).add(key).done();
}

void chain_step(Chain& c, std::string_view key, uint64_t hlc, std::string_view body) {
  c = Hasher().add(chain_bytes(c)).add(key).add(u64_be(hlc)).add(body).done();
}

std::string_view chain_bytes(const Chain& c) { return {reinterpret_cast<const char*>(c.data()), c.size()}; }

std::optional<Chain> chain_from(std::string_view bytes) {
  if (bytes.size() != kChainBytes) return std::nullopt;
  Chain c{};
  std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(c.data()));
  return c;
}

std::string head_message(OriginId origin, uint64_t seq, const Chain& chain, uint8_t flags) {
  std::string m(kHeadTag);
  m += u64_be(origin);
  m += u64_be(seq);
  m += chain_bytes(chain);
  m += static_cast<char>(flags);
  return m;
}

Head sign_head(OriginId origin, uint64_t seq, const Chain& chain, uint8_t flags, std::string_view secret_key) {
  Head h{origin, seq, chain, flags, std::string(kSignatureBytes, '\0'), {}, {}, {}};
  const std::string m = head_message(origin, seq, chain, flags);
  crypto_sign_detached(reinterpret_cast<unsigned char*>(h.signature.data()), nullptr, u8(m), m.size(),
                       u8(secret_key));
  return h;
}

bool head_signed_by(const Head& head, std::string_view key) {
  if (key.size() != kKeyBytes || head.signature.size() != kSignatureBytes) return false;
  const std::string m = head_message(head.origin, head.seq, head.chain, head.flags);
  return crypto_sign_verify_detached(u8(head.signature), u8(m), m.size(), u8(key)) == 0;
}

std::string cert_message(std::string_view cluster, std::string_view key) {
  std::string m(kCertTag);
  m += length_prefixed(cluster);
  m += key;
  return m;
}

std::string sign_cert(std::string_view cluster, std::string_view key, std::string_view device_secret) {
  std::string sig(kSignatureBytes, '\0');
  const std::string m = cert_message(cluster, key);
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr, u8(m), m.size(), u8(device_secret));
  return sig;
}

bool cert_valid(std::string_view cluster, std::string_view key, std::string_view device, std::string_view cert) {
  if (key.size() != kKeyBytes || device.size() != kKeyBytes || cert.size() != kSignatureBytes) return false;
  const std::string m = cert_message(cluster, key);
  return crypto_sign_verify_detached(u8(cert), u8(m), m.size(), u8(device)) == 0;
}

std::string hello_message(std::string_view cluster, std::string_view curve_key, OriginId node_id) {
  std::string m(kHelloTag);
  m += length_prefixed(cluster);
  m += curve_key;
  m += u64_be(node_id);
  return m;
}

std::string sign_hello(std::string_view cluster, std::string_view curve_key, OriginId node_id,
                       std::string_view device_secret) {
  std::string sig(kSignatureBytes, '\0');
  const std::string m = hello_message(cluster, curve_key, node_id);
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr, u8(m), m.size(), u8(device_secret));
  return sig;
}

Status check_hello(const HelloProof& p, std::string_view cluster, std::string_view curve_key, OriginId node_id) {
  if (p.device.size() != kKeyBytes || p.signature.size() != kSignatureBytes || curve_key.size() != kKeyBytes)
    return Status::invalid_argument("hello proof: a key or signature of the wrong size");
  if (p.key.empty()) {
    if (origin_of_key(p.device) != node_id)
      return Status::invalid_argument("node id " + hex16(node_id) + " is not the origin of the device key that signed");
  } else {
    if (origin_of_key(p.key) != node_id)
      return Status::invalid_argument("node id " + hex16(node_id) + " is not the origin of the key the hello carries");
    if (!cert_valid(cluster, p.key, p.device, p.cert))
      return Status::invalid_argument("the certificate of origin " + hex16(node_id) + "'s key does not verify");
  }
  const std::string m = hello_message(cluster, curve_key, node_id);
  if (crypto_sign_verify_detached(u8(p.signature), u8(m), m.size(), u8(p.device)) != 0)
    return Status::invalid_argument("the hello's signature does not verify");
  return Status::ok();
}

Status check_head(const Head& head, std::string_view cluster, std::string_view known_key) {
  const std::string_view key = head.key.empty() ? known_key : std::string_view(head.key);
  if (key.empty()) return Status::not_found("no key for origin " + hex16(head.origin));
  if (key.size() != kKeyBytes) return Status::invalid_argument("head key is not 32 bytes");
  if (is_reserved_origin(head.origin)) return Status::invalid_argument("head of reserved origin " + hex16(head.origin));
  if (!(head.flags & kLegacy) && origin_of_key(key) != head.origin)
    return Status::invalid_argument("key does not hold origin " + hex16(head.origin));
  if (!head.cert.empty() && !cert_valid(cluster, key, head.device, head.cert))
    return Status::invalid_argument("certificate of origin " + hex16(head.origin) + "'s key does not verify");
  if (!head_signed_by(head, key))
    return Status::invalid_argument("head " + hex16(head.origin) + " #" + std::to_string(head.seq) +
                                    ": signature does not verify");
  return Status::ok();
}

void append_head(const Head& head, std::string& out) {
  Sink sink{out};
  Packer pk(sink);
  const bool certified = !head.key.empty() && !head.cert.empty();
  pk.pack_array(certified ? 8 : head.key.empty() ? 5 : 6);
  pk.pack_uint64(head.origin);
  pk.pack_uint64(head.seq);
  pack_bin(pk, chain_bytes(head.chain));
  pk.pack_uint8(head.flags);
  pack_bin(pk, head.signature);
  if (head.key.empty()) return;
  pack_bin(pk, head.key);
  if (!certified) return;
  pack_bin(pk, head.device);
  pack_bin(pk, head.cert);
}

std::string encode_head(const Head& head) {
  std::string out;
  append_head(head, out);
  return out;
}

Result<Head> head_from_object(const msgpack::object& o) {
  try {
    return head_of(o);
  } catch (const Malformed& e) {
    return Status::corruption(e.what());
  }
}

Result<Head> read_head(std::string_view bytes, size_t& used) {
  used = 0;
  msgpack::unpack_limit limit(8, 0, 0, kSignatureBytes, 0, 2);
  try {
    size_t off = 0;
    auto oh = msgpack::unpack(bytes.data(), bytes.size(), off, nullptr, nullptr, limit);
    used = off;
    return head_of(oh.get());
  } catch (const Malformed& e) {
    return Status::corruption(e.what());
  } catch (const std::exception& e) {
    return Status::corruption(std::string("malformed head: ") + e.what());
  }
}

Result<Head> decode_head(std::string_view bytes) {
  size_t used = 0;
  auto h = read_head(bytes, used);
  if (h && used != bytes.size()) return Status::corruption("bytes after the head");
  return h;
}

Evidence chain_evidence(Head a, Head b, uint64_t seq, const Chain& base, std::vector<Update> branch_a,
                        std::vector<Update> branch_b) {
  Evidence e;
  e.kind = Evidence::Kind::kChain;
  e.a = std::move(a);
  e.b = std::move(b);
  e.seq = seq;
  e.base = base;
  e.branch_a = std::move(branch_a);
  e.branch_b = std::move(branch_b);
  return e;
}

Evidence key_evidence(Head a, Head b) {
  Evidence e;
  e.kind = Evidence::Kind::kKeys;
  e.a = std::move(a);
  e.b = std::move(b);
  return e;
}

Status check_evidence(const Evidence& e, std::string_view cluster) {
  if (e.a.key.empty() || e.b.key.empty()) return Status::invalid_argument("evidence heads must carry their keys");
  if (e.a.origin != e.b.origin) return Status::invalid_argument("evidence heads name two origins");
  REPLOG_RETURN_IF_ERROR(check_head(e.a, cluster, {}));
  REPLOG_RETURN_IF_ERROR(check_head(e.b, cluster, {}));
  if (e.kind == Evidence::Kind::kKeys) {
    if (e.a.key == e.b.key) return Status::invalid_argument("key evidence names one key twice");
    // A derived id is its key's alone (a random legacy id meets it with odds of
    // 2^-64): another key's legacy claim on it is false, not a fork.
    if ((origin_of_key(e.a.key) == e.a.origin) != (origin_of_key(e.b.key) == e.b.origin))
      return Status::invalid_argument("key evidence: origin " + hex16(e.a.origin) +
                                      " is derived from one of the keys; the other's legacy claim is false");
    return Status::ok();
  }
  if (e.kind != Evidence::Kind::kChain) return Status::invalid_argument("unknown evidence kind");
  if (e.a.key != e.b.key) return Status::invalid_argument("chain evidence heads are signed by two keys");
  if (e.seq == 0 || e.seq > e.a.seq || e.seq > e.b.seq) return Status::invalid_argument("fork seq outside the heads");
  if (e.branch_a.size() != e.a.seq - e.seq + 1 || e.branch_b.size() != e.b.seq - e.seq + 1)
    return Status::invalid_argument("evidence branches do not reach their heads");
  if (e.branch_a.front().id() == e.branch_b.front().id() && e.branch_a.front().body() == e.branch_b.front().body())
    return Status::invalid_argument("evidence branches agree at the fork seq");
  if (e.seq == 1 && e.base != chain_start(cluster, e.a.key))
    return Status::invalid_argument("evidence base at seq 1 is not the origin's first chain value");
  REPLOG_RETURN_IF_ERROR(check_branch(e.branch_a, e.a.origin, e.seq, e.base, e.a.key, e.a.chain, "a"));
  return check_branch(e.branch_b, e.b.origin, e.seq, e.base, e.b.key, e.b.chain, "b");
}

std::string encode_evidence(const Evidence& e) {
  std::string out;
  Sink sink{out};
  Packer pk(sink);
  if (e.kind == Evidence::Kind::kKeys) {
    pk.pack_array(3);
    pk.pack_uint8(2);
    append_head(e.a, out);
    append_head(e.b, out);
    return out;
  }
  pk.pack_array(7);
  pk.pack_uint8(1);
  append_head(e.a, out);
  append_head(e.b, out);
  pk.pack_uint64(e.seq);
  pack_bin(pk, chain_bytes(e.base));
  for (const auto* branch : {&e.branch_a, &e.branch_b}) {
    pk.pack_array(static_cast<uint32_t>(branch->size()));
    for (const auto& u : *branch) append_envelope(u, out);
  }
  return out;
}

Result<Evidence> evidence_from_object(const msgpack::object& o) {
  try {
    if (o.type != msgpack::type::ARRAY || o.via.array.size < 3) throw Malformed("evidence is not an array");
    const msgpack::object* f = o.via.array.ptr;
    const uint64_t kind = uint(f[0], "evidence kind");
    // The fields are read in order, each in its own statement (the order in
    // which a call's arguments are evaluated is unspecified), so that the
    // first field that fails is the one named, whichever compiler built this.
    if (kind == 2) {
      if (o.via.array.size != 3) throw Malformed("key evidence is not an array of 3");
      Head a = head_of(f[1]);
      Head b = head_of(f[2]);
      return key_evidence(std::move(a), std::move(b));
    }
    if (kind != 1 || o.via.array.size != 7) throw Malformed("evidence is not [1, a, b, seq, base, updates, updates]");
    Head a = head_of(f[1]);
    Head b = head_of(f[2]);
    const uint64_t seq = uint(f[3], "fork seq");
    const Chain base = *chain_from(bin_of(f[4], kChainBytes, "evidence base"));
    std::vector<Update> branch_a = branch_of(f[5], "branch a");
    std::vector<Update> branch_b = branch_of(f[6], "branch b");
    return chain_evidence(std::move(a), std::move(b), seq, base, std::move(branch_a), std::move(branch_b));
  } catch (const Malformed& e) {
    return Status::corruption(e.what());
  }
}

Result<Evidence> decode_evidence(std::string_view bytes) {
  if (bytes.size() > kMaxEvidenceBytes) return Status::corruption("evidence is over the size limit");
  REPLOG_RETURN_IF_ERROR(precheck_msgpack(bytes, 5));
  try {
    msgpack::unpack_limit limit(limits::kMaxContainerElements, 0, 0, limits::kMaxUpdateBytes, 0, 5);
    size_t off = 0;
    auto oh = msgpack::unpack(bytes.data(), bytes.size(), off, nullptr, nullptr, limit);
    if (off != bytes.size()) return Status::corruption("bytes after the evidence");
    return evidence_from_object(oh.get());
  } catch (const std::exception& e) {
    return Status::corruption(std::string("malformed evidence: ") + e.what());
  }
}

}  // namespace replog::proof
