#include "protocol/update.h"

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

namespace {

// Reads [seq, method, arg] with msgpack-c's visitor parser: no object tree, no
// allocation beyond the three fields, and nothing nested is accepted.
class BodyReader : public msgpack::null_visitor {
 public:
  uint64_t seq = 0;
  std::string_view method, arg;
  const char* error = nullptr;

  bool start_array(uint32_t n) {
    if (depth_++ > 0 || n != 3) return fail("body is not [seq, method, arg]");
    return true;
  }
  bool end_array() { return true; }
  bool start_array_item() { return true; }
  bool end_array_item() {
    ++field_;
    return true;
  }
  bool visit_positive_integer(uint64_t v) {
    if (field_ != 0 || v == 0) return fail("seq is not a positive integer");
    seq = v;
    return true;
  }
  bool visit_str(const char* p, uint32_t n) {
    if (field_ != 1 || n == 0 || n > 255) return fail("method is not a string of 1..255 bytes");
    method = std::string_view(p, n);
    return true;
  }
  bool visit_bin(const char* p, uint32_t n) {
    if (field_ != 2) return fail("arg is not bin");
    arg = std::string_view(p, n);
    return true;
  }
  bool visit_nil() { return fail(what()); }
  bool visit_boolean(bool) { return fail(what()); }
  bool visit_negative_integer(int64_t) { return fail(what()); }
  bool visit_float32(float) { return fail(what()); }
  bool visit_float64(double) { return fail(what()); }
  bool visit_ext(const char*, uint32_t) { return fail(what()); }
  bool start_map(uint32_t) { return fail(what()); }
  void parse_error(size_t, size_t) { fail("malformed body"); }
  void insufficient_bytes(size_t, size_t) { fail("truncated body"); }

 private:
  const char* what() const {
    static const char* fields[] = {"seq is not a positive integer", "method is not a non-empty string", "arg is not bin"};
    return depth_ == 0 || field_ > 2 ? "body is not [seq, method, arg]" : fields[field_];
  }
  bool fail(const char* why) {
    if (!error) error = why;
    return false;
  }
  int depth_ = 0;
  int field_ = 0;
};

}  // namespace

Result<Update> parse_body(const UpdateId& id, std::string_view body) {
  if (body.size() > limits::kMaxUpdateBytes + 64)
    return Status::corruption("update " + id.to_string() + " is larger than the protocol limit");
  BodyReader r;
  size_t off = 0;
  bool ok = false;
  try {
    ok = msgpack::parse(body.data(), body.size(), off, r);
  } catch (const std::exception& e) {
    return Status::corruption("update " + id.to_string() + ": malformed body (" + e.what() + ")");
  }
  if (!ok || r.error || r.method.empty() || r.seq == 0 || r.arg.data() == nullptr)
    return Status::corruption("update " + id.to_string() + ": " + (r.error ? r.error : "body is not [seq, method, arg]"));
  if (off != body.size()) return Status::corruption("update " + id.to_string() + ": trailing bytes after body");
  Update u;
  u.id = id;
  u.seq = r.seq;
  u.method.assign(r.method);
  u.arg.assign(r.arg);
  return u;
}

}  // namespace replog
