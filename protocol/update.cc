#include "protocol/update.h"

#include <msgpack.hpp>

#include "protocol/bytes.h"
#include "protocol/envelope.h"
#include "protocol/limits.h"

namespace replog {

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

Update Update::make(const UpdateId& id, uint64_t seq, std::string_view method, std::string_view arg) {
  Update u;
  u.id_ = id;
  u.seq_ = seq;
  Sink sink{u.body_};
  msgpack::packer<Sink> pk(sink);
  pk.pack_array(3);
  pk.pack_uint64(seq);
  pk.pack_str(static_cast<uint32_t>(method.size()));
  u.method_at_ = static_cast<uint32_t>(u.body_.size());
  u.method_len_ = static_cast<uint32_t>(method.size());
  pk.pack_str_body(method.data(), static_cast<uint32_t>(method.size()));
  pk.pack_bin(static_cast<uint32_t>(arg.size()));
  u.arg_at_ = static_cast<uint32_t>(u.body_.size());
  u.arg_len_ = static_cast<uint32_t>(arg.size());
  pk.pack_bin_body(arg.data(), static_cast<uint32_t>(arg.size()));
  return u;
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
  // A value in another field's place is named by the place, not by its type.
  bool visit_positive_integer(uint64_t v) {
    if (field_ != 0) return fail(what());
    if (v == 0) return fail("seq is not a positive integer");
    seq = v;
    return true;
  }
  bool visit_str(const char* p, uint32_t n) {
    if (field_ != 1) return fail(what());
    if (n == 0 || n > 255) return fail("method is not a string of 1..255 bytes");
    method = std::string_view(p, n);
    return true;
  }
  bool visit_bin(const char* p, uint32_t n) {
    if (field_ != 2) return fail(what());
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

Result<UpdateView> parse_update(const UpdateId& id, std::string_view body) {
  if (body.size() > limits::kMaxUpdateBytes)
    return Status::corruption("update " + id.to_string() + ": body of " + std::to_string(body.size()) +
                              " bytes is over the " + std::to_string(limits::kMaxUpdateBytes) + "-byte limit");
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
  return UpdateView{id, r.seq, r.method, r.arg, body};
}

Result<Update> Update::parse(const UpdateId& id, std::string body) {
  auto v = parse_update(id, body);
  if (!v) return v.status();
  Update u;
  u.id_ = id;
  u.seq_ = v->seq;
  u.method_at_ = static_cast<uint32_t>(v->method.data() - body.data());
  u.method_len_ = static_cast<uint32_t>(v->method.size());
  u.arg_at_ = static_cast<uint32_t>(v->arg.data() - body.data());
  u.arg_len_ = static_cast<uint32_t>(v->arg.size());
  u.body_ = std::move(body);
  return u;
}

// --- the envelope [hlc, origin, bin(body)] ------------------------------------------

void append_envelope(const Update& u, std::string& out) {
  Sink sink{out};
  msgpack::packer<Sink> pk(sink);
  pk.pack_array(3);
  pk.pack_uint64(u.id().hlc);
  pk.pack_uint64(u.id().origin);
  pk.pack_bin(static_cast<uint32_t>(u.body().size()));
  pk.pack_bin_body(u.body().data(), static_cast<uint32_t>(u.body().size()));
}

Result<Update> update_from_envelope(const msgpack::object& o) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 3) return Status::corruption("update is not [hlc, origin, body]");
  const msgpack::object* f = o.via.array.ptr;
  if (f[0].type != msgpack::type::POSITIVE_INTEGER || f[1].type != msgpack::type::POSITIVE_INTEGER)
    return Status::corruption("update hlc or origin is not an unsigned integer");
  if (f[2].type != msgpack::type::BIN) return Status::corruption("update body is not bin");
  return Update::parse(UpdateId{f[0].via.u64, f[1].via.u64}, std::string(f[2].via.bin.ptr, f[2].via.bin.size));
}

Result<Update> read_envelope(std::string_view bytes, size_t& used) {
  used = 0;
  // An envelope is [uint, uint, bin] of one update: depth 2, one bin of at most the update limit.
  msgpack::unpack_limit limit(3, 0, 0, limits::kMaxUpdateBytes, 0, 2);
  size_t off = 0;
  try {
    auto oh = msgpack::unpack(bytes.data(), bytes.size(), off, nullptr, nullptr, limit);
    used = off;
    return update_from_envelope(oh.get());  // a bad body is refused; the next envelope can still be read
  } catch (const std::exception& e) {
    return Status::corruption(std::string("malformed update envelope: ") + e.what());
  }
}

}  // namespace replog
