#include "protocol/json_codec.h"

#include <sodium.h>

#include <cmath>
#include <limits>
#include <ostream>
#include <nlohmann/json.hpp>

#include "protocol/limits.h"

namespace replog {

using nlohmann::json;

std::string base64_encode(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0)
    return Status::invalid_argument("not valid base64");
  out.resize(len);
  return out;
}

namespace {

// Builds a Value straight from nlohmann's SAX events, so nesting depth is
// checked before anything is built and no intermediate json tree is made.
class TypedJsonBuilder : public nlohmann::json_sax<json> {
 public:
  Status error;
  Value result;

  bool null() override { return put(Value()); }
  bool boolean(bool b) override { return put(Value(b)); }
  bool number_integer(number_integer_t i) override { return put(Value(static_cast<int64_t>(i))); }
  bool number_unsigned(number_unsigned_t u) override {
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return fail(at_path(here(), "integer " + std::to_string(u) + " is out of the int64 range"));
    return put(Value(static_cast<int64_t>(u)));
  }
  bool number_float(number_float_t d, const string_t&) override { return put(Value(static_cast<double>(d))); }
  bool string(string_t& s) override { return put(Value(std::move(s))); }
  bool binary(binary_t&) override { return fail("binary JSON values are not supported"); }

  bool start_object(std::size_t) override {
    if (!enter()) return false;
    bool raw = !stack_.empty() && stack_.back().object && !stack_.back().raw && stack_.back().key == "$map";
    stack_.push_back(Frame{Value(Map{}), true, raw, "", child_name()});
    return true;
  }
  bool key(string_t& k) override {
    stack_.back().key = std::move(k);
    return true;
  }
  bool end_object() override {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    --depth_;
    Map& m = f.container.as_map();
    if (f.raw) return put(std::move(f.container));
    auto tagged = untag(m, f.path);
    if (!tagged) return fail(tagged.status().message());
    return put(std::move(tagged).value());
  }
  bool start_array(std::size_t) override {
    if (!enter()) return false;
    stack_.push_back(Frame{Value(List{}), false, false, "", child_name()});
    return true;
  }
  bool end_array() override {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    --depth_;
    return put(std::move(f.container));
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) override {
    if (error.is_ok()) {
      std::string what = ex.what();
      // nlohmann's messages start with "[json.exception.parse_error.101] "; keep the readable part.
      auto colon = what.find("parse error");
      if (colon != std::string::npos) what = what.substr(colon);
      error = Status::invalid_argument("malformed JSON at byte " + std::to_string(position) + ": " + what);
    }
    return false;
  }

 private:
  struct Frame {
    Value container;
    bool object;
    bool raw;          // the object under a "$map" tag: keys are plain
    std::string key;   // pending key (objects)
    std::string path;  // where this container sits
  };

  bool fail(std::string msg) {
    if (error.is_ok()) error = Status::invalid_argument(std::move(msg));
    return false;
  }
  bool enter() {
    if (++depth_ > limits::kMaxDepth)
      return fail(at_path(here(), "nesting deeper than " + std::to_string(limits::kMaxDepth)));
    return true;
  }
  std::string child_name() const {
    if (stack_.empty()) return "";
    const Frame& f = stack_.back();
    if (f.object) return f.raw || f.key.empty() || f.key[0] != '$' ? path_child(f.path, f.key) : f.path;
    return path_index(f.path, f.container.as_list().size());
  }
  std::string here() const { return child_name(); }

  bool put(Value v) {
    if (stack_.empty()) {
      result = std::move(v);
      return true;
    }
    Frame& f = stack_.back();
    if (f.object) {
      f.container.as_map()[f.key] = std::move(v);
    } else {
      if (f.container.as_list().size() >= limits::kMaxContainerElements)
        return fail(at_path(f.path, "list longer than the protocol limit"));
      f.container.as_list().push_back(std::move(v));
    }
    return true;
  }

  static Result<Value> untag(Map& m, const std::string& path) {
    bool tagged = false;
    for (const auto& [k, _] : m)
      if (!k.empty() && k[0] == '$') tagged = true;
    if (!tagged) return Value(std::move(m));

    if (auto it = m.find("$type"); it != m.end()) {
      if (!it->second.is_string())
        return Status::invalid_argument(at_path(path, "$type must be a string"));
      std::string type = it->second.as_string();
      m.erase(it);
      for (const auto& [k, _] : m)
        if (!k.empty() && k[0] == '$')
          return Status::invalid_argument(at_path(path, "record field \"" + k + "\" may not start with '$'"));
      return Value::record(std::move(type), std::move(m));
    }
    if (m.size() != 1)
      return Status::invalid_argument(at_path(path, "a tag object holds exactly one \"$...\" key"));
    const std::string& tag = m.begin()->first;
    Value& v = m.begin()->second;
    if (tag == "$map") {
      if (!v.is_map()) return Status::invalid_argument(at_path(path, "$map must hold an object"));
      return std::move(v);
    }
    if (!v.is_string())
      return Status::invalid_argument(at_path(path, tag + " must hold a string, got " + v.kind_name()));
    const std::string& s = v.as_string();
    if (tag == "$time") {
      auto t = parse_iso8601(s);
      if (!t) return Status::invalid_argument(at_path(path, t.status().message()));
      return Value(*t);
    }
    if (tag == "$enum") {
      auto dot = s.rfind('.');
      if (dot == std::string::npos || dot == 0 || dot + 1 == s.size())
        return Status::invalid_argument(at_path(path, "$enum must be \"Type.Member\", got \"" + s + "\""));
      return Value::enumeration(s.substr(0, dot), s.substr(dot + 1));
    }
    if (tag == "$bytes") {
      auto b = base64_decode(s);
      if (!b) return Status::invalid_argument(at_path(path, "$bytes: " + b.status().message()));
      return Value(Bytes{std::move(b).value()});
    }
    if (tag == "$float") {
      if (s == "NaN") return Value(std::numeric_limits<double>::quiet_NaN());
      if (s == "Infinity") return Value(std::numeric_limits<double>::infinity());
      if (s == "-Infinity") return Value(-std::numeric_limits<double>::infinity());
      return Status::invalid_argument(at_path(path, "$float must be NaN, Infinity or -Infinity"));
    }
    return Status::invalid_argument(at_path(path, "unknown tag \"" + tag + "\""));
  }

  std::vector<Frame> stack_;
  size_t depth_ = 0;
};

json tag(const char* name, json v) {
  json o = json::object();
  o[name] = std::move(v);
  return o;
}

json typed(const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::kNull: return nullptr;
    case K::kBool: return v.as_bool();
    case K::kInt: return v.as_int();
    case K::kFloat: {
      double d = v.as_float();
      if (std::isnan(d)) return tag("$float", "NaN");
      if (std::isinf(d)) return tag("$float", d > 0 ? "Infinity" : "-Infinity");
      return d;
    }
    case K::kString: return v.as_string();
    case K::kBytes: return tag("$bytes", base64_encode(v.as_bytes().data));
    case K::kTime: return tag("$time", format_iso8601(v.as_time()));
    case K::kEnum: return tag("$enum", v.as_enum().type + "." + v.as_enum().member);
    case K::kList: {
      json a = json::array();
      for (const auto& item : v.as_list()) a.push_back(typed(item));
      return a;
    }
    case K::kMap: {
      json o = json::object();
      bool needs_wrap = false;
      for (const auto& [k, item] : v.as_map()) {
        if (!k.empty() && k[0] == '$') needs_wrap = true;
        o[k] = typed(item);
      }
      return needs_wrap ? tag("$map", std::move(o)) : o;
    }
    case K::kRecord: {
      json o = json::object();
      o["$type"] = v.as_record().type;
      for (const auto& [k, item] : v.as_record().fields) o[k] = typed(item);
      return o;
    }
  }
  return nullptr;
}

json info(const Value& v) {
  using K = Value::Kind;
  switch (v.kind()) {
    case K::kFloat: return std::isfinite(v.as_float()) ? json(v.as_float()) : json(nullptr);
    case K::kBytes: return base64_encode(v.as_bytes().data);
    case K::kTime: return format_iso8601(v.as_time());
    case K::kEnum: return v.as_enum().member;
    case K::kList: {
      json a = json::array();
      for (const auto& item : v.as_list()) a.push_back(info(item));
      return a;
    }
    case K::kMap:
    case K::kRecord: {
      json o = json::object();
      const Map& m = v.kind() == K::kMap ? v.as_map() : v.as_record().fields;
      for (const auto& [k, item] : m) o[k] = info(item);
      return o;
    }
    default: return typed(v);
  }
}

std::string dump(const json& j, int indent) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

}  // namespace

Result<Value> parse_typed_json(std::string_view text) {
  if (text.size() > limits::kMaxJsonBytes) return Status::invalid_argument("JSON text larger than the limit");
  TypedJsonBuilder builder;
  bool ok = false;
  try {
    ok = json::sax_parse(text, &builder);
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("malformed JSON: ") + e.what());
  }
  if (!ok || !builder.error.is_ok())
    return builder.error.is_ok() ? Status::invalid_argument("malformed JSON") : builder.error;
  return std::move(builder.result);
}

std::string to_typed_json(const Value& value, int indent) { return dump(typed(value), indent); }
std::string to_info_json(const Value& value, int indent) { return dump(info(value), indent); }

}  // namespace replog

namespace replog {
void PrintTo(const Value& value, std::ostream* os) { *os << to_typed_json(value); }
}  // namespace replog
