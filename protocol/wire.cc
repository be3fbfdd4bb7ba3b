#include "protocol/wire.h"

#include <msgpack.hpp>

#include "protocol/limits.h"
#include "protocol/msgpack_codec.h"

namespace replog::wire {

namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

void pack_str(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

void pack_updates(Packer& pk, const std::vector<WireUpdate>& updates) {
  pk.pack_array(static_cast<uint32_t>(updates.size()));
  for (const auto& u : updates) {
    pk.pack_array(3);
    pk.pack_uint64(u.id.hlc);
    pk.pack_uint64(u.id.origin);
    pk.pack_bin(static_cast<uint32_t>(u.body.size()));
    pk.pack_bin_body(u.body.data(), static_cast<uint32_t>(u.body.size()));
  }
}

struct Body {
  Packer& pk;
  void operator()(const Hello& m) {
    pk.pack_array(5);
    pack_str(pk, m.cluster);
    pk.pack_uint64(m.node_id);
    pack_str(pk, m.endpoint);
    pk.pack_uint64(m.max_update);
    pk.pack_uint64(m.max_frame);
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
      pk.pack_array(2);
      pk.pack_uint64(origin);
      pk.pack_uint64(seq);
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
    pk.pack_array(3);
    pk.pack_uint64(m.origin);
    m.more ? pk.pack_true() : pk.pack_false();
    pack_updates(pk, m.updates);
  }
  void operator()(const Push& m) {
    pk.pack_array(1);
    pack_updates(pk, m.updates);
  }
};

Type type_of(const Message& m) { return static_cast<Type>(m.index() + 1); }

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
std::vector<WireUpdate> updates(const msgpack::object& o) {
  if (o.type != msgpack::type::ARRAY) throw Malformed("updates is not an array");
  std::vector<WireUpdate> out;
  out.reserve(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    const msgpack::object* f = array(o.via.array.ptr[i], 3, "update");
    if (f[2].type != msgpack::type::BIN) throw Malformed("update body is not bin");
    out.push_back({UpdateId{uint(f[0], "hlc"), uint(f[1], "origin")}, std::string(f[2].via.bin.ptr, f[2].via.bin.size)});
  }
  return out;
}

}  // namespace

std::string encode(const Message& m) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_array(3);
  pk.pack_uint64(kVersion);
  pk.pack_uint8(static_cast<uint8_t>(type_of(m)));
  std::visit(Body{pk}, m);
  return std::string(buf.data(), buf.size());
}

Result<Message> decode(std::string_view frame) {
  if (frame.size() > kMaxFrameBytes) return Status::corruption("frame of " + std::to_string(frame.size()) + " bytes is over the limit");
  REPLOG_RETURN_IF_ERROR(precheck_msgpack(frame, 6));
  try {
    msgpack::unpack_limit limit(kMaxFrameBytes, 0, 4096, limits::kMaxUpdateBytes + 64, 0, 6);
    size_t off = 0;
    auto oh = msgpack::unpack(frame.data(), frame.size(), off, nullptr, nullptr, limit);
    const msgpack::object& root = oh.get();
    if (root.type != msgpack::type::ARRAY || root.via.array.size != 3)
      return Status::corruption("frame is not [version, type, body]");
    const msgpack::object* f = root.via.array.ptr;
    uint64_t version = uint(f[0], "version");
    if (version != kVersion)
      return Status::refused("protocol version " + std::to_string(version) + " (this node speaks " +
                             std::to_string(kVersion) + ")");
    uint64_t type = uint(f[1], "type");
    const msgpack::object& body = f[2];
    switch (static_cast<Type>(type)) {
      case Type::kHello: {
        const auto* b = array(body, 5, "hello");
        return Message(Hello{str(b[0], "cluster"), uint(b[1], "node id"), str(b[2], "endpoint"),
                             uint(b[3], "max update"), uint(b[4], "max frame")});
      }
      case Type::kError: {
        const auto* b = array(body, 2, "error");
        return Message(Error{static_cast<ErrorCode>(uint(b[0], "code")), str(b[1], "message")});
      }
      case Type::kVector: {
        const auto* b = array(body, 4, "vector");
        Vector v{static_cast<uint32_t>(uint(b[0], "page")), static_cast<uint32_t>(uint(b[1], "pages")),
                 boolean(b[2], "reply"), {}};
        if (b[3].type != msgpack::type::ARRAY || b[3].via.array.size > kVectorPageEntries)
          throw Malformed("vector entries are not an array of at most " + std::to_string(kVectorPageEntries));
        for (uint32_t i = 0; i < b[3].via.array.size; ++i) {
          const auto* e = array(b[3].via.array.ptr[i], 2, "vector entry");
          v.entries.emplace_back(uint(e[0], "origin"), uint(e[1], "seq"));
        }
        if (v.pages == 0 || v.page >= v.pages || v.pages > kMaxVectorPages) throw Malformed("vector page out of range");
        return Message(std::move(v));
      }
      case Type::kRequest: {
        const auto* b = array(body, 4, "request");
        return Message(Request{uint(b[0], "origin"), uint(b[1], "from"), uint(b[2], "to"), uint(b[3], "max bytes")});
      }
      case Type::kUpdates: {
        const auto* b = array(body, 3, "updates");
        return Message(Updates{uint(b[0], "origin"), boolean(b[1], "more"), updates(b[2])});
      }
      case Type::kPush: {
        const auto* b = array(body, 1, "push");
        return Message(Push{updates(b[0])});
      }
    }
    return Status::corruption("unknown message type " + std::to_string(type));
  } catch (const Malformed& e) {
    return Status::corruption(e.what());
  } catch (const std::exception& e) {
    return Status::corruption(std::string("malformed frame: ") + e.what());
  }
}

const char* type_name(const Message& m) {
  static const char* names[] = {"hello", "error", "vector", "request", "updates", "push"};
  return names[m.index()];
}

}  // namespace replog::wire
