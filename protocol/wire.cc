#include "protocol/wire.h"

#include <zstd.h>

#include <algorithm>
#include <memory>
#include <msgpack.hpp>
#include <optional>

#include "protocol/limits.h"
#include "protocol/envelope.h"
#include "protocol/msgpack_codec.h"

namespace replog::wire {

namespace {

struct Sink {
  std::string& out;
  void write(const char* p, size_t n) { out.append(p, n); }
};
using Packer = msgpack::packer<Sink>;

void pack_str(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

void pack_bin(Packer& pk, std::string_view s) {
  pk.pack_bin(static_cast<uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
}

void pack_updates(Packer& pk, std::string& out, const std::vector<Update>& updates) {
  pk.pack_array(static_cast<uint32_t>(updates.size()));
  for (const auto& u : updates) append_envelope(u, out);
}

struct Body {
  Packer& pk;
  std::string& out;
  void operator()(const Hello& m) {
    const bool keyed = m.proof && !m.proof->key.empty();
    pk.pack_array(!m.proof ? 6 : keyed ? 10 : 8);
    pack_str(pk, m.cluster);
    pk.pack_uint64(m.node_id);
    pack_str(pk, m.endpoint);
    pk.pack_uint64(m.max_update);
    pk.pack_uint64(m.max_frame);
    pk.pack_uint64(m.features);
    if (!m.proof) return;
    pack_bin(pk, m.proof->device);
    pack_bin(pk, m.proof->signature);
    if (!keyed) return;
    pack_bin(pk, m.proof->key);
    pack_bin(pk, m.proof->cert);
  }
  void operator()(const Error& m) {
    pk.pack_array(2);
    pk.pack_uint32(static_cast<uint32_t>(m.code));
    pack_str(pk, m.message);
  }
  void operator()(const Vector& m) {
    pk.pack_array(4);
    pk.pack_uint32(m.page);
    pk.pack_uint32(m.pages);
    m.reply ? pk.pack_true() : pk.pack_false();
    pk.pack_array(static_cast<uint32_t>(m.entries.size()));
    for (const auto& [origin, seq] : m.entries) {
      auto tip = m.tips.find(origin);
      pk.pack_array(tip == m.tips.end() ? 2 : 3);
      pk.pack_uint64(origin);
      pk.pack_uint64(seq);
      if (tip != m.tips.end()) pack_bin(pk, tip->second);
    }
  }
  void operator()(const Request& m) {
    pk.pack_array(4);
    pk.pack_uint64(m.origin);
    pk.pack_uint64(m.from_seq);
    pk.pack_uint64(m.to_seq);
    pk.pack_uint64(m.max_bytes);
  }
  void operator()(const Updates& m) {
    pk.pack_array(m.head ? 4 : 3);
    pk.pack_uint64(m.origin);
    m.more ? pk.pack_true() : pk.pack_false();
    pack_updates(pk, out, m.updates);
    if (m.head) proof::append_head(*m.head, out);
  }
  void operator()(const Push& m) {
    pk.pack_array(m.heads.empty() ? 1 : 2);
    pack_updates(pk, out, m.updates);
    if (m.heads.empty()) return;
    pk.pack_array(static_cast<uint32_t>(m.heads.size()));
    for (const auto& h : m.heads) proof::append_head(h, out);
  }
  void operator()(const Join& m) {
    pk.pack_array(3);
    pack_bin(pk, m.device_key);
    pack_bin(pk, m.proof);
    pack_str(pk, m.name);
  }
  void operator()(const JoinReply& m) {
    pk.pack_array(4);
    m.accepted ? pk.pack_true() : pk.pack_false();
    pack_bin(pk, m.proof);
    pack_str(pk, m.cluster);
    pack_bin(pk, m.cluster_secret);
  }
  void operator()(const Evidence& m) {
    pk.pack_array(1);
    out += proof::encode_evidence(m.evidence);
  }
  void operator()(const Tree& m) {
    pk.pack_array(4);
    auto origins = [&](const std::vector<uint64_t>& v) {
      pk.pack_array(static_cast<uint32_t>(v.size()));
      for (uint64_t o : v) pk.pack_uint64(o);
    };
    origins(m.prune);
    origins(m.graft);
    pk.pack_array(static_cast<uint32_t>(m.have.size()));
    for (const auto& [origin, seq] : m.have) {
      pk.pack_array(2);
      pk.pack_uint64(origin);
      pk.pack_uint64(seq);
    }
    if (m.hears) origins(*m.hears);
    else pk.pack_nil();
  }
  void operator()(const Members& m) {
    pk.pack_array(1);
    pk.pack_array(static_cast<uint32_t>(m.entries.size()));
    for (const auto& e : m.entries) {
      pk.pack_array(6);
      pk.pack_bin(static_cast<uint32_t>(e.key.size()));
      pk.pack_bin_body(e.key.data(), static_cast<uint32_t>(e.key.size()));
      pk.pack_uint8(e.removed ? 1 : 0);
      pk.pack_uint64(e.ms);
      pk.pack_bin(static_cast<uint32_t>(e.author.size()));
      pk.pack_bin_body(e.author.data(), static_cast<uint32_t>(e.author.size()));
      pack_str(pk, e.name);
      pack_str(pk, e.endpoint);
    }
  }
};

struct TypeOf {
  Type operator()(const Hello&) const { return Type::kHello; }
  Type operator()(const Error&) const { return Type::kError; }
  Type operator()(const Vector&) const { return Type::kVector; }
  Type operator()(const Request&) const { return Type::kRequest; }
  Type operator()(const Updates&) const { return Type::kUpdates; }
  Type operator()(const Push&) const { return Type::kPush; }
  Type operator()(const Join&) const { return Type::kJoin; }
  Type operator()(const JoinReply&) const { return Type::kJoinReply; }
  Type operator()(const Members&) const { return Type::kMembers; }
  Type operator()(const Evidence&) const { return Type::kEvidence; }
  Type operator()(const Tree&) const { return Type::kTree; }
};
Type type_of_message(const Message& m) { return std::visit(TypeOf{}, m); }

// Field readers over msgpack-c objects; each throws Malformed on a mismatch.
struct Malformed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const msgpack::object* array(const msgpack::object& o, uint32_t n, const char* what) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size != n)
    throw Malformed(std::string(what) + " is not an array of " + std::to_string(n));
  return o.via.array.ptr;
}
uint64_t uint(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) throw Malformed(std::string(what) + " is not an unsigned integer");
  return o.via.u64;
}
bool boolean(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::BOOLEAN) throw Malformed(std::string(what) + " is not a bool");
  return o.via.boolean;
}
std::string str(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::STR) throw Malformed(std::string(what) + " is not a string");
  return std::string(o.via.str.ptr, o.via.str.size);
}
std::string bin(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::BIN) throw Malformed(std::string(what) + " is not bin");
  return std::string(o.via.bin.ptr, o.via.bin.size);
}
std::string bin_of(const msgpack::object& o, size_t n, const char* what) {
  std::string b = bin(o, what);
  if (b.size() != n) throw Malformed(std::string(what) + " is not " + std::to_string(n) + " bytes");
  return b;
}

Join join(const msgpack::object& body) {
  const auto* b = array(body, 3, "join");
  Join j{bin_of(b[0], 32, "device key"), bin_of(b[1], 32, "proof"), str(b[2], "name")};
  if (j.name.size() > kMaxJoinNameBytes) throw Malformed("name is over 64 bytes");
  return j;
}

// Accepted: every field filled as documented; refused: every field empty.
JoinReply join_reply(const msgpack::object& body) {
  const auto* b = array(body, 4, "join reply");
  JoinReply r{boolean(b[0], "accepted"), bin(b[1], "proof"), str(b[2], "cluster"), bin(b[3], "cluster secret")};
  if (!r.accepted && (!r.proof.empty() || !r.cluster.empty() || !r.cluster_secret.empty()))
    throw Malformed("a refusal carries no proof, cluster or secret");
  if (r.accepted && (r.proof.size() != 32 || r.cluster.empty() || r.cluster.size() > 64 || r.cluster_secret.size() != 32))
    throw Malformed("an acceptance needs a 32-byte proof, a cluster id and a 32-byte secret");
  return r;
}

std::string short_str(const msgpack::object& o, size_t max, const char* what) {
  std::string s = str(o, what);
  if (s.size() > max) throw Malformed(std::string(what) + " is over " + std::to_string(max) + " bytes");
  return s;
}
Members members(const msgpack::object& o) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size > kMaxMemberEntries)
    throw Malformed("members are not an array of at most " + std::to_string(kMaxMemberEntries));
  Members m;
  m.entries.reserve(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    const auto* e = array(o.via.array.ptr[i], 6, "member entry");
    MemberEntry entry;
    entry.key = bin_of(e[0], 32, "member key");
    const uint64_t state = uint(e[1], "member state");
    if (state > 1) throw Malformed("member state " + std::to_string(state) + " is not 0 (member) or 1 (removed)");
    entry.removed = state == 1;
    entry.ms = uint(e[2], "member ms");
    if (entry.ms > static_cast<uint64_t>(INT64_MAX)) throw Malformed("member ms is over 2^63-1");
    entry.author = bin_of(e[3], 32, "member author");
    entry.name = short_str(e[4], kMaxMemberNameBytes, "member name");
    entry.endpoint = short_str(e[5], kMaxMemberEndpointBytes, "member endpoint");
    m.entries.push_back(std::move(entry));
  }
  return m;
}
proof::Head head(const msgpack::object& o) {
  auto h = proof::head_from_object(o);
  if (!h) throw Malformed(h.status().message());
  return std::move(h).value();
}
std::vector<proof::Head> heads(const msgpack::object& o) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size > kMaxPushHeads)
    throw Malformed("heads are not an array of at most " + std::to_string(kMaxPushHeads));
  std::vector<proof::Head> out;
  out.reserve(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) out.push_back(head(o.via.array.ptr[i]));
  return out;
}
std::vector<Update> updates(const msgpack::object& o) {
  if (o.type != msgpack::type::ARRAY) throw Malformed("updates is not an array");
  std::vector<Update> out;
  out.reserve(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    auto u = update_from_envelope(o.via.array.ptr[i]);
    if (!u) throw Malformed("update " + std::to_string(i) + ": " + u.status().message());
    out.push_back(std::move(u).value());
  }
  return out;
}

// Two elements that go together (a key and its signature): both nil (absent),
// or a bin of `key_bytes` and a bin of 64. False when nil.
bool key_pair(const msgpack::object* f, size_t key_bytes, const char* key_what, const char* sig_what,
              std::string& key, std::string& sig) {
  if (f[0].type == msgpack::type::NIL && f[1].type == msgpack::type::NIL) return false;
  key = bin_of(f[0], key_bytes, key_what);
  sig = bin_of(f[1], proof::kSignatureBytes, sig_what);
  return true;
}

// 5 elements, 6 with the features, 8 with the device key and its signature,
// 10 with the origin key and its certificate; elements after the 10th are
// ignored (later versions may append there). 7 and 9 are malformed: a key
// without its signature. Elements 7-8 and 9-10 are each a pair of bins or a
// pair of nils, and 9-10 are bins only when 7-8 are.
Hello hello(const msgpack::object& body) {
  if (body.type != msgpack::type::ARRAY || body.via.array.size < 5)
    throw Malformed("hello is not an array of at least 5");
  const uint32_t n = body.via.array.size;
  if (n == 7 || n == 9) throw Malformed("hello of " + std::to_string(n) + " elements: a key without its signature");
  const auto* b = body.via.array.ptr;
  Hello h{str(b[0], "cluster"), uint(b[1], "node id"), str(b[2], "endpoint"), uint(b[3], "max update"),
          uint(b[4], "max frame"), n > 5 ? uint(b[5], "features") : 0, std::nullopt};
  if (n < 8) return h;
  proof::HelloProof p;
  const bool signed_hello = key_pair(b + 6, proof::kKeyBytes, "hello device key", "hello signature", p.device, p.signature);
  const bool keyed = n >= 10 && key_pair(b + 8, proof::kKeyBytes, "hello origin key", "hello certificate", p.key, p.cert);
  if (keyed && !signed_hello) throw Malformed("hello carries an origin key but no signature");
  if (signed_hello) h.proof = std::move(p);
  return h;
}

std::vector<uint64_t> origin_list(const msgpack::object& o, const char* what) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size > kMaxTreeEntries)
    throw Malformed(std::string(what) + " is not an array of at most " + std::to_string(kMaxTreeEntries));
  std::vector<uint64_t> out;
  out.reserve(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) out.push_back(uint(o.via.array.ptr[i], what));
  return out;
}

// [prune, graft, have, hears or nil].
Tree tree(const msgpack::object& body) {
  const auto* b = array(body, 4, "tree");
  Tree t{origin_list(b[0], "prune"), origin_list(b[1], "graft"), {}, std::nullopt};
  if (b[2].type != msgpack::type::ARRAY || b[2].via.array.size > kMaxTreeEntries)
    throw Malformed("have is not an array of at most " + std::to_string(kMaxTreeEntries));
  for (uint32_t i = 0; i < b[2].via.array.size; ++i) {
    const auto* e = array(b[2].via.array.ptr[i], 2, "have entry");
    t.have.emplace_back(uint(e[0], "have origin"), uint(e[1], "have seq"));
  }
  if (b[3].type != msgpack::type::NIL) t.hears = origin_list(b[3], "hears");
  return t;
}

// 3 elements, or 4 with the head the range ends at (nil: none).
Updates updates_frame(const msgpack::object& body) {
  if (body.type != msgpack::type::ARRAY || (body.via.array.size != 3 && body.via.array.size != 4))
    throw Malformed("updates is not an array of 3 or 4");
  const auto* b = body.via.array.ptr;
  Updates u{uint(b[0], "origin"), boolean(b[1], "more"), updates(b[2]), std::nullopt};
  if (body.via.array.size == 4 && b[3].type != msgpack::type::NIL) u.head = head(b[3]);
  return u;
}

// 1 element, or 2 with the heads its runs end at.
Push push_frame(const msgpack::object& body) {
  if (body.type != msgpack::type::ARRAY || (body.via.array.size != 1 && body.via.array.size != 2))
    throw Malformed("push is not an array of 1 or 2");
  const auto* b = body.via.array.ptr;
  Push p{updates(b[0]), {}};
  if (body.via.array.size == 2) p.heads = heads(b[1]);
  return p;
}

}  // namespace

std::string encode(const Message& m) {
  std::string out;
  Sink sink{out};
  Packer pk(sink);
  pk.pack_array(3);
  pk.pack_uint64(kVersion);
  pk.pack_uint8(static_cast<uint8_t>(type_of_message(m)));
  std::visit(Body{pk, out}, m);
  return out;
}

namespace {

// A MessagePack array header, or a non-negative integer in any of its forms
// (unsigned or signed, as decode() takes them), at `pos`.
std::optional<uint64_t> read_header(std::string_view b, size_t& pos, bool array) {
  if (pos >= b.size()) return std::nullopt;
  uint8_t tag = static_cast<uint8_t>(b[pos++]);
  if (!array && tag < 0x80) return tag;
  if (array && (tag & 0xf0) == 0x90) return tag & 0x0f;
  const bool is_signed = !array && tag >= 0xd0 && tag <= 0xd3;
  size_t n = array       ? (tag == 0xdc ? 2 : tag == 0xdd ? 4 : 0)
             : is_signed ? size_t{1} << (tag - 0xd0)
                         : (tag == 0xcc ? 1 : tag == 0xcd ? 2 : tag == 0xce ? 4 : tag == 0xcf ? 8 : 0);
  if (n == 0 || b.size() - pos < n) return std::nullopt;
  if (is_signed && (static_cast<uint8_t>(b[pos]) & 0x80)) return std::nullopt;  // negative
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(b[pos++]);
  return v;
}

// A frame [version 1, type, body] read up to its body: the type (not yet
// checked to be known) and where the body starts; nullopt for anything else.
struct FrameHead {
  uint64_t type = 0;
  size_t body_at = 0;
};
std::optional<FrameHead> frame_head(std::string_view frame) {
  size_t pos = 0;
  auto n = read_header(frame, pos, true);
  auto version = read_header(frame, pos, false);
  auto type = read_header(frame, pos, false);
  if (!n || *n != 3 || !version || *version != kVersion || !type || pos >= frame.size()) return std::nullopt;
  return FrameHead{*type, pos};
}

}  // namespace

Result<Type> type_of(std::string_view frame) {
  size_t pos = 0;
  auto n = read_header(frame, pos, true);
  auto version = read_header(frame, pos, false);
  auto type = read_header(frame, pos, false);
  if (!n || *n != 3 || !version || !type) return Status::corruption("not a frame [version, type, body]");
  if (*version != kVersion) return Status::refused("protocol version " + std::to_string(*version));
  if (!known_type(*type)) return Status::corruption("unknown message type " + std::to_string(*type));
  return static_cast<Type>(*type);
}

namespace {

// One message's body, of a type known_type() took.
Message decode_body(Type type, const msgpack::object& body) {
  switch (type) {
    case Type::kHello: return Message(hello(body));
    case Type::kError: {
      const auto* b = array(body, 2, "error");
      return Message(Error{static_cast<ErrorCode>(uint(b[0], "code")), str(b[1], "message")});
    }
    case Type::kVector: {
      const auto* b = array(body, 4, "vector");
      const uint64_t page = uint(b[0], "page"), pages = uint(b[1], "pages");
      if (pages == 0 || page >= pages || pages > kMaxVectorPages) throw Malformed("vector page out of range");
      Vector v{static_cast<uint32_t>(page), static_cast<uint32_t>(pages), boolean(b[2], "reply"), {}};
      if (b[3].type != msgpack::type::ARRAY || b[3].via.array.size > kVectorPageEntries)
        throw Malformed("vector entries are not an array of at most " + std::to_string(kVectorPageEntries));
      for (uint32_t i = 0; i < b[3].via.array.size; ++i) {
        const msgpack::object& o = b[3].via.array.ptr[i];
        const bool tipped = o.type == msgpack::type::ARRAY && o.via.array.size == 3;
        const auto* e = array(o, tipped ? 3 : 2, "vector entry");
        v.entries.emplace_back(uint(e[0], "origin"), uint(e[1], "seq"));
        if (tipped) v.tips[v.entries.back().first] = bin_of(e[2], kTipBytes, "vector tip");
      }
      return Message(std::move(v));
    }
    case Type::kRequest: {
      const auto* b = array(body, 4, "request");
      return Message(Request{uint(b[0], "origin"), uint(b[1], "from"), uint(b[2], "to"), uint(b[3], "max bytes")});
    }
    case Type::kUpdates: return Message(updates_frame(body));
    case Type::kPush: return Message(push_frame(body));
    case Type::kJoin: return Message(join(body));
    case Type::kJoinReply: return Message(join_reply(body));
    case Type::kEvidence: {
      const auto* b = array(body, 1, "evidence");
      auto e = proof::evidence_from_object(b[0]);
      if (!e) throw Malformed(e.status().message());
      return Message(Evidence{std::move(e).value()});
    }
    case Type::kMembers: {
      const auto* b = array(body, 1, "members");
      return Message(members(b[0]));
    }
    case Type::kTree: return Message(tree(body));
  }
  throw Malformed("unknown message type " + std::to_string(static_cast<int>(type)));
}

msgpack::unpack_limit frame_limit() { return msgpack::unpack_limit(kMaxFrameBytes, 0, 4096, limits::kMaxUpdateBytes, 0, 6); }

// Types whose body may go compressed: what sync links carry beyond the handshake.
bool compressible(Type t) {
  return t == Type::kVector || t == Type::kRequest || t == Type::kUpdates || t == Type::kPush ||
         t == Type::kMembers || t == Type::kEvidence || t == Type::kTree;
}

struct FreeDctx {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// A compressed frame: [version, type, bin], read by hand (the bin may be
// larger than any bin a body holds). The bin is exactly one zstd frame that
// names its size, at most kMaxFrameBytes; what it holds is exactly one body.
Result<Message> decode_compressed(std::string_view frame, size_t pos, Type type) {
  if (!compressible(type)) return Status::corruption("a compressed body in a frame of a type that never has one");
  const uint8_t tag = static_cast<uint8_t>(frame[pos++]);
  const size_t len_bytes = tag == 0xc4 ? 1 : tag == 0xc5 ? 2 : 4;
  if (frame.size() - pos < len_bytes) return Status::corruption("compressed body: cut short");
  size_t len = 0;
  for (size_t i = 0; i < len_bytes; ++i) len = (len << 8) | static_cast<uint8_t>(frame[pos++]);
  if (len != frame.size() - pos) return Status::corruption("compressed body: its length is not the rest of the frame");
  const char* z = frame.data() + pos;
  const unsigned long long size = ZSTD_getFrameContentSize(z, len);
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
    return Status::corruption("compressed body: not a zstd frame that names its size");
  if (size > kMaxFrameBytes) return Status::corruption("compressed body of " + std::to_string(size) + " bytes is over the frame limit");
  if (ZSTD_findFrameCompressedSize(z, len) != len) return Status::corruption("compressed body: not exactly one zstd frame");
  // Not zeroed first: every byte is written or the frame is refused.
  const auto n = static_cast<size_t>(size);
  std::unique_ptr<char[]> buffer(new char[std::max<size_t>(n, 1)]);
  thread_local std::unique_ptr<ZSTD_DCtx, FreeDctx> dctx(ZSTD_createDCtx());
  if (!dctx) return Status::corruption("compressed body: no memory to decompress it");
  const size_t got = ZSTD_decompressDCtx(dctx.get(), buffer.get(), n, z, len);
  if (ZSTD_isError(got) || got != n) return Status::corruption("compressed body does not decompress");
  const std::string_view body(buffer.get(), n);
  REPLOG_RETURN_IF_ERROR(precheck_msgpack(body, 5));
  try {
    size_t off = 0;
    auto oh = msgpack::unpack(body.data(), body.size(), off, nullptr, nullptr, frame_limit());
    if (off != body.size()) return Status::corruption("compressed body: bytes after the body");
    if (oh.get().type != msgpack::type::ARRAY) return Status::corruption("compressed body: not an array");
    return decode_body(type, oh.get());
  } catch (const Malformed& e) {
    return Status::corruption(e.what());
  } catch (const std::exception& e) {
    return Status::corruption(std::string("malformed frame: ") + e.what());
  }
}

}  // namespace

Result<Message> decode(std::string_view frame, bool compressed_ok) {
  if (frame.size() > kMaxFrameBytes) return Status::corruption("frame of " + std::to_string(frame.size()) + " bytes is over the limit");
  // A compressed body is a bin where every body is an array.
  if (auto head = frame_head(frame)) {
    const uint8_t tag = static_cast<uint8_t>(frame[head->body_at]);
    if (tag >= 0xc4 && tag <= 0xc6) {
      if (!known_type(head->type)) return Status::corruption("unknown message type " + std::to_string(head->type));
      if (!compressed_ok) return Status::corruption("a compressed body on a link that did not agree to compression");
      return decode_compressed(frame, head->body_at, static_cast<Type>(head->type));
    }
  }
  REPLOG_RETURN_IF_ERROR(precheck_msgpack(frame, 6));
  try {
    size_t off = 0;
    auto oh = msgpack::unpack(frame.data(), frame.size(), off, nullptr, nullptr, frame_limit());
    const msgpack::object& root = oh.get();
    if (root.type != msgpack::type::ARRAY || root.via.array.size != 3)
      return Status::corruption("frame is not [version, type, body]");
    const msgpack::object* f = root.via.array.ptr;
    uint64_t version = uint(f[0], "version");
    if (version != kVersion)
      return Status::refused("protocol version " + std::to_string(version) + " (this node speaks " +
                             std::to_string(kVersion) + ")");
    uint64_t type = uint(f[1], "type");
    // Checked before the narrowing cast: type 257 is not Hello.
    if (!known_type(type)) return Status::corruption("unknown message type " + std::to_string(type));
    return decode_body(static_cast<Type>(type), f[2]);
  } catch (const Malformed& e) {
    return Status::corruption(e.what());
  } catch (const std::exception& e) {
    return Status::corruption(std::string("malformed frame: ") + e.what());
  }
}

namespace {

struct FreeCctx {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

}  // namespace

std::optional<std::string> compress(std::string_view frame) {
  if (frame.size() < kCompressFromBytes) return std::nullopt;
  auto head = frame_head(frame);
  if (!head || !known_type(head->type) || !compressible(static_cast<Type>(head->type))) return std::nullopt;
  const std::string_view body = frame.substr(head->body_at);
  thread_local std::unique_ptr<ZSTD_CCtx, FreeCctx> cctx(ZSTD_createCCtx());
  if (!cctx) return std::nullopt;
  std::string z(ZSTD_compressBound(body.size()), '\0');
  const size_t n = ZSTD_compressCCtx(cctx.get(), z.data(), z.size(), body.data(), body.size(), 1);
  if (ZSTD_isError(n)) return std::nullopt;
  z.resize(n);
  // [version, type, bin]: the header as it came, the bin in its smallest form.
  std::string out(frame.substr(0, head->body_at));
  Sink sink{out};
  Packer pk(sink);
  pack_bin(pk, z);
  if (out.size() >= frame.size()) return std::nullopt;
  return out;
}

bool known_type(uint64_t type) {
  return type >= static_cast<uint64_t>(Type::kHello) && type <= static_cast<uint64_t>(Type::kTree);
}

const char* type_name(const Message& m) {
  static const char* names[] = {"hello", "error", "vector", "request", "updates", "push", "join", "join reply", "members", "evidence", "tree"};
  return names[m.index()];
}

}  // namespace replog::wire
