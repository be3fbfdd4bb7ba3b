#include "storage/update.h"

#include <msgpack.hpp>

#include "protocol/limits.h"

namespace replog {

void put_u64_be(char* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

uint64_t get_u64_be(const char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

std::string u64_be(uint64_t v) {
  std::string s(8, '\0');
  put_u64_be(s.data(), v);
  return s;
}

std::string hex16(uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i) {
    s[static_cast<size_t>(i)] = digits[v & 15];
    v >>= 4;
  }
  return s;
}

Result<uint64_t> parse_hex16(std::string_view text) {
  if (text.empty() || text.size() > 16) return Status::invalid_argument("expected up to 16 hex digits, got \"" + std::string(text) + "\"");
  uint64_t v = 0;
  for (char c : text) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return Status::invalid_argument("not a hex number: \"" + std::string(text) + "\"");
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

std::array<char, UpdateId::kKeyBytes> UpdateId::key() const {
  std::array<char, kKeyBytes> k;
  put_u64_be(k.data(), hlc);
  put_u64_be(k.data() + 8, origin);
  return k;
}

UpdateId UpdateId::from_key(std::string_view key) {
  return UpdateId{get_u64_be(key.data()), get_u64_be(key.data() + 8)};
}

std::string UpdateId::to_string() const { return hex16(hlc) + hex16(origin); }

Result<UpdateId> UpdateId::parse(std::string_view text) {
  if (text.size() != 32)
    return Status::invalid_argument("an update id is 32 hex digits (hlc then origin), got \"" + std::string(text) + "\"");
  auto hlc = parse_hex16(text.substr(0, 16));
  auto origin = parse_hex16(text.substr(16));
  if (!hlc || !origin) return Status::invalid_argument("update id \"" + std::string(text) + "\" is not hex");
  return UpdateId{*hlc, *origin};
}

namespace {
struct Sink {
  std::string& out;
  void write(const char* p, size_t n) { out.append(p, n); }
};
}  // namespace

std::string encode_body(uint64_t seq, std::string_view method, std::string_view arg) {
  std::string out;
  Sink sink{out};
  msgpack::packer<Sink> pk(sink);
  pk.pack_array(3);
  pk.pack_uint64(seq);
  pk.pack_str(static_cast<uint32_t>(method.size()));
  pk.pack_str_body(method.data(), static_cast<uint32_t>(method.size()));
  pk.pack_bin(static_cast<uint32_t>(arg.size()));
  pk.pack_bin_body(arg.data(), static_cast<uint32_t>(arg.size()));
  return out;
}

Result<Update> parse_body(const UpdateId& id, std::string_view body) {
  if (body.size() > limits::kMaxUpdateBytes + 64)
    return Status::corruption("update " + id.to_string() + " is larger than the protocol limit");
  // The body is flat (array of three scalars), so msgpack-c's object unpack is
  // bounded here by the limits below: no nesting, one str, one bin.
  try {
    msgpack::unpack_limit limit(3, 0, 1024, limits::kMaxUpdateBytes + 64, 0, 2);
    size_t off = 0;
    msgpack::object_handle oh = msgpack::unpack(body.data(), body.size(), off, nullptr, nullptr, limit);
    if (off != body.size()) return Status::corruption("update " + id.to_string() + ": trailing bytes after body");
    const msgpack::object& o = oh.get();
    if (o.type != msgpack::type::ARRAY || o.via.array.size != 3)
      return Status::corruption("update " + id.to_string() + ": body is not [seq, method, arg]");
    const msgpack::object* f = o.via.array.ptr;
    if (f[0].type != msgpack::type::POSITIVE_INTEGER || f[0].via.u64 == 0)
      return Status::corruption("update " + id.to_string() + ": seq is not a positive integer");
    if (f[1].type != msgpack::type::STR || f[1].via.str.size == 0)
      return Status::corruption("update " + id.to_string() + ": method is not a non-empty string");
    if (f[2].type != msgpack::type::BIN) return Status::corruption("update " + id.to_string() + ": arg is not bin");
    Update u;
    u.id = id;
    u.seq = f[0].via.u64;
    u.method.assign(f[1].via.str.ptr, f[1].via.str.size);
    u.arg.assign(f[2].via.bin.ptr, f[2].via.bin.size);
    u.body.assign(body);
    return u;
  } catch (const std::exception& e) {
    return Status::corruption("update " + id.to_string() + ": malformed body (" + e.what() + ")");
  }
}

}  // namespace replog
