#include "protocol/msgpack_codec.h"

#include <cstring>
#include <msgpack.hpp>

#include "protocol/limits.h"
#include "protocol/utf8.h"

namespace replog {

namespace {

// msgpack::packer writes to any type with write(const char*, size_t).
struct StringSink {
  std::string& out;
  void write(const char* data, size_t n) { out.append(data, n); }
};

using Packer = msgpack::packer<StringSink>;

void put_be(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_be(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void pack_ext(Packer& pk, int8_t type, const std::string& payload) {
  pk.pack_ext(payload.size(), type);
  pk.pack_ext_body(payload.data(), payload.size());
}

void pack_string(Packer& pk, const std::string& s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

void pack_map(Packer& pk, const Map& m);

// Enum and record payloads are [type name, rest]: `rest` packs the second element.
template <typename Rest>
void pack_named_ext(Packer& pk, int8_t ext, const std::string& type, Rest rest) {
  std::string payload;
  StringSink sink{payload};
  Packer inner(sink);
  inner.pack_array(2);
  pack_string(inner, type);
  rest(inner);
  pack_ext(pk, ext, payload);
}

// Always float64 (0xcb): msgpack-c's pack_double writes an integral double as
// an int, which would turn 1.0 into 1 and lose the type.
void pack_float64(Packer& pk, double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  if (d != d) bits = 0x7ff8000000000000ULL;  // one canonical NaN
  char buf[9];
  buf[0] = static_cast<char>(0xcb);
  for (int i = 0; i < 8; ++i) buf[1 + i] = static_cast<char>((bits >> (56 - 8 * i)) & 0xff);
  pk.pack_bin_body(buf, sizeof buf);  // raw bytes: pack_*_body appends without a header
}

void pack_value(Packer& pk, const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::kNull: pk.pack_nil(); break;
    case K::kBool: v.as_bool() ? pk.pack_true() : pk.pack_false(); break;
    case K::kInt: pk.pack_int64(v.as_int()); break;  // msgpack-c picks the smallest form
    case K::kFloat: pack_float64(pk, v.as_float()); break;
    case K::kString: pack_string(pk, v.as_string()); break;
    case K::kBytes:
      pk.pack_bin(static_cast<uint32_t>(v.as_bytes().data.size()));
      pk.pack_bin_body(v.as_bytes().data.data(), static_cast<uint32_t>(v.as_bytes().data.size()));
      break;
    case K::kTime: {
      // The timestamp extension's smallest exact form (MessagePack spec).
      const Time& t = v.as_time();
      std::string payload;
      if (t.nanos == 0 && t.seconds >= 0 && t.seconds <= 0xffffffffLL) {
        put_be(payload, static_cast<uint64_t>(t.seconds), 4);
      } else if (t.seconds >= 0 && t.seconds < (int64_t{1} << 34)) {
        put_be(payload, (uint64_t{t.nanos} << 34) | static_cast<uint64_t>(t.seconds), 8);
      } else {
        put_be(payload, t.nanos, 4);
        put_be(payload, static_cast<uint64_t>(t.seconds), 8);
      }
      pack_ext(pk, kTimestampExt, payload);
      break;
    }
    case K::kEnum:
      pack_named_ext(pk, kEnumExt, v.as_enum().type, [&](Packer& in) { pack_string(in, v.as_enum().member); });
      break;
    case K::kRecord:
      pack_named_ext(pk, kRecordExt, v.as_record().type, [&](Packer& in) { pack_map(in, v.as_record().fields); });
      break;
    case K::kList:
      pk.pack_array(static_cast<uint32_t>(v.as_list().size()));
      for (const auto& item : v.as_list()) pack_value(pk, item);
      break;
    case K::kMap: pack_map(pk, v.as_map()); break;
  }
}

void pack_map(Packer& pk, const Map& m) {
  pk.pack_map(static_cast<uint32_t>(m.size()));
  for (const auto& [k, item] : m) {  // std::map iterates in byte order: canonical
    pack_string(pk, k);
    pack_value(pk, item);
  }
}

struct Limits {
  size_t max_depth;
  uint64_t max_elements;
  size_t max_string;
};
constexpr Limits kProtocolLimits{limits::kMaxDepth, limits::kMaxContainerElements, limits::kMaxStringBytes};
constexpr Limits kLocalLimits{limits::kMaxLocalDepth, UINT64_MAX, SIZE_MAX};

Result<Value> decode_at(std::string_view bytes, size_t& offset, size_t depth, const std::string& path,
                        const Limits& lim);

// Builds a Value from msgpack-c's parse events. Nothing is allocated from a
// declared count: containers grow as their elements arrive, and every declared
// count is checked against the input's length first.
class ValueBuilder : public msgpack::null_visitor {
 public:
  ValueBuilder(size_t input_bytes, size_t depth, std::string path, const Limits& lim)
      : budget_(input_bytes), depth_(depth), root_path_(std::move(path)), lim_(lim) {}

  Status error;
  Value result;

  bool visit_nil() { return put(Value()); }
  bool visit_boolean(bool b) { return put(Value(b)); }
  bool visit_positive_integer(uint64_t u) {
    if (u > static_cast<uint64_t>(INT64_MAX)) return fail("integer out of the int64 range");
    return put(Value(static_cast<int64_t>(u)));
  }
  bool visit_negative_integer(int64_t i) { return put(Value(i)); }
  bool visit_float32(float f) { return put(Value(static_cast<double>(f))); }
  bool visit_float64(double d) { return put(Value(d)); }
  bool visit_str(const char* p, uint32_t n) {
    if (n > lim_.max_string) return fail("string longer than the protocol limit");
    std::string s(p, n);
    if (!is_valid_utf8(s)) return fail("string is not valid UTF-8");
    if (expect_key_) {
      Frame& f = stack_.back();
      f.key = std::move(s);
      if (f.container.as_map().count(f.key)) return fail("duplicate map key \"" + f.key + "\"");
      return true;
    }
    return put(Value(std::move(s)));
  }
  bool visit_bin(const char* p, uint32_t n) {
    if (n > lim_.max_string) return fail("bytes longer than the protocol limit");
    return put(Value(Bytes{std::string(p, n)}));
  }
  bool visit_ext(const char* p, uint32_t n) {
    if (n == 0 || n - 1 > lim_.max_string) return fail("extension longer than the protocol limit");
    auto type = static_cast<int8_t>(p[0]);
    std::string_view payload(p + 1, n - 1);
    if (type == kTimestampExt) return decode_time(payload);
    if (type == kEnumExt || type == kRecordExt) return decode_typed(type, payload);
    return fail("unknown extension type " + std::to_string(type));
  }
  bool start_array(uint32_t n) {
    if (!reserve(n)) return false;
    if (n > lim_.max_elements) return fail("list longer than the protocol limit");
    stack_.push_back(Frame{Value(List{}), false, ""});
    return true;
  }
  bool end_array() { return pop(); }
  bool start_map(uint32_t n) {
    if (!reserve(static_cast<uint64_t>(n) * 2)) return false;
    if (n > lim_.max_elements) return fail("map larger than the protocol limit");
    stack_.push_back(Frame{Value(Map{}), true, ""});
    return true;
  }
  bool start_map_key() {
    expect_key_ = true;
    return true;
  }
  bool end_map_key() {
    expect_key_ = false;
    return true;
  }
  bool end_map() { return pop(); }
  void parse_error(size_t, size_t at) { set_error("malformed MessagePack at byte " + std::to_string(at)); }
  void insufficient_bytes(size_t, size_t) { set_error("truncated MessagePack"); }

 private:
  struct Frame {
    Value container;
    bool is_map;
    std::string key;  // maps: the key whose value comes next
  };

  void set_error(const std::string& msg) {
    if (error.is_ok()) error = Status::corruption(at_path(here(), msg));
  }
  bool fail(const std::string& msg) {
    set_error(msg);
    return false;
  }
  // The path of the value being read; built only for errors and extensions.
  std::string here() const {
    std::string p = root_path_;
    for (const Frame& f : stack_) p = f.is_map ? path_child(p, f.key) : path_index(p, f.container.as_list().size());
    return p;
  }
  // Each element takes at least one byte, so declared counts can never add up
  // to more than the input holds; checking before the parser walks a count
  // keeps a tiny input from claiming a huge container.
  bool reserve(uint64_t elements) {
    if (expect_key_) return fail("map key is not a string");
    if (depth_ + stack_.size() + 1 > lim_.max_depth) return fail("nesting deeper than the protocol limit");
    if (elements > budget_)
      return fail("container declares " + std::to_string(elements) + " elements, more than the input holds");
    budget_ -= elements;
    return true;
  }
  bool pop() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    return put(std::move(f.container));
  }
  bool put(Value v) {
    if (expect_key_) return fail("map key is not a string");
    if (stack_.empty()) {
      result = std::move(v);
      return true;
    }
    Frame& f = stack_.back();
    if (f.is_map) f.container.as_map().emplace(f.key, std::move(v));
    else f.container.as_list().push_back(std::move(v));
    return true;
  }

  bool decode_time(std::string_view p) {
    Time t;
    if (p.size() == 4) {
      t.seconds = static_cast<int64_t>(get_be(p.data(), 4));
    } else if (p.size() == 8) {
      uint64_t v = get_be(p.data(), 8);
      t.nanos = static_cast<uint32_t>(v >> 34);
      t.seconds = static_cast<int64_t>(v & ((uint64_t{1} << 34) - 1));
    } else if (p.size() == 12) {
      t.nanos = static_cast<uint32_t>(get_be(p.data(), 4));
      t.seconds = static_cast<int64_t>(get_be(p.data() + 4, 8));
    } else {
      return fail("timestamp extension of " + std::to_string(p.size()) + " bytes (expected 4, 8 or 12)");
    }
    if (t.nanos > 999'999'999) return fail("timestamp nanoseconds out of range");
    return put(Value(t));
  }

  bool decode_typed(int8_t type, std::string_view payload) {
    const char* what = type == kEnumExt ? "enum" : "record";
    size_t off = 0;
    auto inner = decode_at(payload, off, depth_ + stack_.size() + 1, here(), lim_);
    if (!inner) return fail_with(inner.status());
    if (off != payload.size()) return fail(std::string(what) + " extension has trailing bytes");
    Value& v = *inner;
    if (!v.is_list() || v.as_list().size() != 2 || !v.as_list()[0].is_string())
      return fail(std::string(what) + " extension is not [type, ...]");
    List& parts = v.as_list();
    if (type == kEnumExt) {
      if (!parts[1].is_string()) return fail("enum extension member is not a string");
      return put(Value::enumeration(parts[0].as_string(), parts[1].as_string()));
    }
    if (!parts[1].is_map()) return fail("record extension fields are not a map");
    return put(Value::record(parts[0].as_string(), std::move(parts[1].as_map())));
  }
  bool fail_with(const Status& s) {
    if (error.is_ok()) error = s;
    return false;
  }

  uint64_t budget_;
  size_t depth_;
  std::string root_path_;
  Limits lim_;
  std::vector<Frame> stack_;
  bool expect_key_ = false;
};

Result<Value> decode_at(std::string_view bytes, size_t& offset, size_t depth, const std::string& path,
                        const Limits& lim) {
  if (offset >= bytes.size()) return Status::corruption(at_path(path, "truncated MessagePack"));
  ValueBuilder builder(bytes.size() - offset, depth, path, lim);
  bool ok = false;
  try {
    ok = msgpack::parse(bytes.data(), bytes.size(), offset, builder);
  } catch (const std::exception& e) {
    return Status::corruption(at_path(path, std::string("malformed MessagePack: ") + e.what()));
  }
  if (!builder.error.is_ok()) return builder.error;
  if (!ok) return Status::corruption(at_path(path, "malformed MessagePack"));
  return std::move(builder.result);
}

}  // namespace

void encode_msgpack_into(const Value& value, std::string& out) {
  StringSink sink{out};
  Packer pk(sink);
  pack_value(pk, value);
}

std::string encode_msgpack(const Value& value) {
  std::string out;
  encode_msgpack_into(value, out);
  return out;
}

Result<Value> decode_msgpack_prefix(std::string_view bytes, size_t& offset) {
  return decode_at(bytes, offset, 0, "", kProtocolLimits);
}

Result<Value> decode_msgpack_nested(std::string_view bytes, size_t& offset, size_t depth) {
  // A string, the commonest value, is read without the parser.
  if (auto text = read_msgpack_str(bytes, offset)) return Value(std::string(*text));
  return decode_at(bytes, offset, depth, "", kProtocolLimits);
}

std::optional<uint32_t> read_msgpack_map_header(std::string_view bytes, size_t& offset) {
  if (offset >= bytes.size()) return std::nullopt;
  auto tag = static_cast<uint8_t>(bytes[offset]);
  int width = 0;
  if ((tag & 0xf0) == 0x80) {
    ++offset;
    return tag & 0x0f;
  }
  if (tag == 0xde) width = 2;
  else if (tag == 0xdf) width = 4;
  else return std::nullopt;
  if (bytes.size() - offset < 1 + static_cast<size_t>(width)) return std::nullopt;
  auto n = static_cast<uint32_t>(get_be(bytes.data() + offset + 1, width));
  offset += 1 + static_cast<size_t>(width);
  return n;
}

std::optional<std::string_view> read_msgpack_str(std::string_view bytes, size_t& offset) {
  if (offset >= bytes.size()) return std::nullopt;
  auto tag = static_cast<uint8_t>(bytes[offset]);
  size_t header = 1;
  uint64_t n = 0;
  if ((tag & 0xe0) == 0xa0) {
    n = tag & 0x1f;
  } else if (tag >= 0xd9 && tag <= 0xdb) {
    int width = 1 << (tag - 0xd9);  // str8, str16, str32
    if (bytes.size() - offset < 1 + static_cast<size_t>(width)) return std::nullopt;
    n = get_be(bytes.data() + offset + 1, width);
    header += static_cast<size_t>(width);
  } else {
    return std::nullopt;
  }
  if (bytes.size() - offset - header < n || n > limits::kMaxStringBytes) return std::nullopt;
  std::string_view s = bytes.substr(offset + header, n);
  if (!is_valid_utf8(s)) return std::nullopt;  // as ValueBuilder::visit_str
  offset += header + n;
  return s;
}

namespace {
Result<Value> decode_whole(std::string_view bytes, const Limits& lim) {
  size_t off = 0;
  auto v = decode_at(bytes, off, 0, "", lim);
  if (v && off != bytes.size())
    return Status::corruption("trailing bytes after MessagePack value (" + std::to_string(bytes.size() - off) + ")");
  return v;
}
}  // namespace

Result<Value> decode_msgpack(std::string_view bytes) { return decode_whole(bytes, kProtocolLimits); }

namespace {
class BoundsChecker : public msgpack::null_visitor {
 public:
  BoundsChecker(uint64_t budget, size_t max_depth) : budget_(budget), max_depth_(max_depth) {}
  bool start_array(uint32_t n) { return enter(n); }
  bool end_array() { return leave(); }
  bool start_map(uint32_t n) { return enter(uint64_t{n} * 2); }
  bool end_map() { return leave(); }
  void parse_error(size_t, size_t) { failed = true; }
  void insufficient_bytes(size_t, size_t) { failed = true; }
  bool failed = false;
  std::string why;

 private:
  bool enter(uint64_t elements) {
    if (++depth_ > max_depth_) return fail("nesting deeper than allowed");
    if (elements > budget_) return fail("declares more elements than the input holds");
    budget_ -= elements;
    return true;
  }
  bool leave() {
    --depth_;
    return true;
  }
  bool fail(const char* w) {
    why = w;
    failed = true;
    return false;
  }
  uint64_t budget_;
  size_t max_depth_;
  size_t depth_ = 0;
};
}  // namespace

Status precheck_msgpack(std::string_view bytes, size_t max_depth) {
  if (bytes.empty()) return Status::corruption("empty MessagePack input");
  BoundsChecker checker(bytes.size(), max_depth);
  size_t off = 0;
  bool ok = false;
  try {
    ok = msgpack::parse(bytes.data(), bytes.size(), off, checker);
  } catch (const std::exception& e) {
    return Status::corruption(std::string("malformed MessagePack: ") + e.what());
  }
  if (!checker.why.empty()) return Status::corruption(checker.why);
  if (!ok || checker.failed) return Status::corruption("malformed MessagePack");
  if (off != bytes.size()) return Status::corruption("trailing bytes after MessagePack value");
  return Status::ok();
}
Result<Value> decode_msgpack_local(std::string_view bytes) { return decode_whole(bytes, kLocalLimits); }

}  // namespace replog
