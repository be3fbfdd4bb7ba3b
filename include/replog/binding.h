// Bindings between replog values and an application's own C++ types
// (docs/VALUES.md), so that a method's argument and the records read from
// state are the application's structs, its std::chrono time points and its
// enum class values.
//
// A binding is written out, field by field, in a specialisation of Bind<T>:
//
//   enum class Priority { kLow, kHigh };
//   struct Task { std::string title; Priority priority{}; std::optional<std::chrono::sys_seconds> due; };
//
//   template <> struct replog::Bind<Priority> {
//     static const EnumBinding<Priority>& binding() {
//       static const EnumBinding<Priority> b("Priority", {{Priority::kLow, "Low"}, {Priority::kHigh, "High"}});
//       return b;
//     }
//   };
//   template <> struct replog::Bind<Task> {
//     static const RecordBinding<Task>& binding() {
//       static const auto b = RecordBinding<Task>("Task")
//                                 .field("title", &Task::title)
//                                 .field("priority", &Task::priority)
//                                 .field("due", &Task::due);
//       return b;
//     }
//   };
//
// The record type and enum names are those of the schema (TypeRegistry); a
// binding may name fewer fields than the schema declares. Codec<T> converts
// one C++ type; it knows bool, the integer types (range-checked), float and
// double, std::string, Bytes, Time, std::chrono::system_clock time points,
// Value itself (any value), std::optional, std::vector, std::map with string
// keys, and every bound enum and record.
//
// Reading a record: fields it holds that the binding does not name (say, from
// a newer schema) are ignored; a bound field it lacks keeps the member's
// default value (std::nullopt for an optional). A null field and an empty
// optional are the same: not stored. Every error names the place,
// "Task.t1.due: expected time, got string".
//
// A binding is checked against a schema with check() (Node::schema() gives
// the one in force): a misspelt field or member name would otherwise read as
// absent and be refused on every write.
//
// Thread safety: bindings are built once (a function-local static) and then
// only read; any number of threads may use them.
#pragma once

#include <chrono>
#include <concepts>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <ratio>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "replog/schema.h"
#include "replog/status.h"
#include "replog/value.h"

namespace replog {

// Specialise for each application type bound to a record or an enum type:
// `static const RecordBinding<T>& binding();` or `static const EnumBinding<T>& binding();`.
template <typename T>
struct Bind;

template <typename E>
class EnumBinding;
template <typename T>
class RecordBinding;

template <typename T>
concept BoundRecord = requires {
  { Bind<T>::binding() } -> std::same_as<const RecordBinding<T>&>;
};
template <typename T>
concept BoundEnum = std::is_enum_v<T> && requires {
  { Bind<T>::binding() } -> std::same_as<const EnumBinding<T>&>;
};

// Converts one C++ type: `static Value to_value(const T&)` and
// `static Status from_value(const Value&, T& out, const std::string& path)`.
template <typename T>
struct Codec;

namespace binding_detail {
inline Status wrong_kind(const std::string& path, const char* expected, const Value& v) {
  return Status::invalid_argument(at_path(path, std::string("expected ") + expected + ", got " + v.kind_name()));
}

template <typename M>
Status check_enums(const TypeRegistry& schema);

// A C++ type a Value holds as it is: of kind K, read with Get.
template <typename T, Value::Kind K, auto Get>
struct HeldAsIs {
  static Value to_value(const T& t) { return Value(t); }
  static Status from_value(const Value& v, T& out, const std::string& path) {
    if (v.kind() != K) return wrong_kind(path, Value::kind_name(K), v);
    out = (v.*Get)();
    return Status::ok();
  }
};
}  // namespace binding_detail

template <typename E>
class EnumBinding {
 public:
  // `members`: each C++ value with its member name in the schema's enum `type`.
  EnumBinding(std::string type, std::vector<std::pair<E, std::string>> members)
      : type_(std::move(type)), members_(std::move(members)) {}

  const std::string& type_name() const { return type_; }
  // Null for a value the binding does not list.
  const std::string* name_of(E value) const {
    for (const auto& [v, name] : members_)
      if (v == value) return &name;
    return nullptr;
  }
  std::optional<E> value_of(const std::string& name) const {
    for (const auto& [v, n] : members_)
      if (n == name) return v;
    return std::nullopt;
  }

  // OK when `schema` declares the enum and every member the binding names.
  Status check(const TypeRegistry& schema) const {
    auto declared = schema.find_enum(type_);
    if (!declared) return Status::invalid_argument("the schema has no enum " + type_);
    for (const auto& [v, name] : members_)
      if (!declared->find(name)) return Status::invalid_argument("the schema's enum " + type_ + " has no member " + name);
    return Status::ok();
  }

 private:
  std::string type_;
  std::vector<std::pair<E, std::string>> members_;
};

template <typename T>
class RecordBinding {
 public:
  explicit RecordBinding(std::string type) : type_(std::move(type)) {}

  // Binds the record field `name` to `member`. REQUIRES: Codec<M> exists.
  template <typename M>
  RecordBinding& field(std::string name, M T::*member) & {
    Field f;
    f.name = std::move(name);
    f.get = [member](const T& obj) { return Codec<M>::to_value(obj.*member); };
    f.set = [member](const Value& v, T& obj, const std::string& path) {
      return Codec<M>::from_value(v, obj.*member, path);
    };
    f.check = [](const TypeRegistry& schema) { return binding_detail::check_enums<M>(schema); };
    fields_.push_back(std::move(f));
    return *this;
  }
  template <typename M>
  RecordBinding&& field(std::string name, M T::*member) && {
    return std::move(field(std::move(name), member));
  }

  const std::string& type_name() const { return type_; }
  std::vector<std::string> field_names() const {
    std::vector<std::string> out;
    for (const Field& f : fields_) out.push_back(f.name);
    return out;
  }

  // The bound fields that are not null.
  Map fields_of(const T& obj) const {
    Map out;
    for (const Field& f : fields_) {
      Value v = f.get(obj);
      if (!v.is_null()) out.emplace(f.name, std::move(v));
    }
    return out;
  }
  Value to_value(const T& obj) const { return Value::record(type_, fields_of(obj)); }

  // REQUIRES: T is default-constructible.
  Status from_value(const Value& v, T& out, const std::string& path) const {
    if (!v.is_record()) return binding_detail::wrong_kind(path, ("record " + type_).c_str(), v);
    const RecordValue& r = v.as_record();
    if (r.type != type_)
      return Status::invalid_argument(at_path(path, "expected record " + type_ + ", got record " + r.type));
    T obj{};
    for (const Field& f : fields_) {
      auto it = r.fields.find(f.name);
      if (it == r.fields.end() || it->second.is_null()) continue;
      REPLOG_RETURN_IF_ERROR(f.set(it->second, obj, path_child(path, f.name)));
    }
    out = std::move(obj);
    return Status::ok();
  }

  // OK when `schema` declares the record type and every bound field, and the
  // enums of the bound fields (in optionals, lists and maps too) as bound.
  Status check(const TypeRegistry& schema) const {
    auto declared = schema.find_record(type_);
    if (!declared) return Status::invalid_argument("the schema has no record type " + type_);
    for (const Field& f : fields_) {
      if (!declared->find_field(f.name))
        return Status::invalid_argument("the schema's " + type_ + " has no field " + f.name);
      REPLOG_RETURN_IF_ERROR(f.check(schema).with_context(type_ + "." + f.name));
    }
    return Status::ok();
  }

  // The bound fields whose values differ between `before` and `after`, with
  // their new values; null for a field `after` no longer holds. This is what
  // an `update` needs to change exactly these fields and keep every other.
  Map changed_fields(const T& before, const T& after) const {
    Map out;
    for (const Field& f : fields_) {
      Value now = f.get(after);
      if (!(f.get(before) == now)) out.emplace(f.name, std::move(now));
    }
    return out;
  }

 private:
  struct Field {
    std::string name;
    std::function<Value(const T&)> get;
    std::function<Status(const Value&, T&, const std::string&)> set;
    std::function<Status(const TypeRegistry&)> check;
  };
  std::string type_;
  std::vector<Field> fields_;
};

namespace binding_detail {
template <typename T>
struct ElementOf {
  using type = void;  // not a container
};
template <typename M>
struct ElementOf<std::optional<M>> {
  using type = M;
};
template <typename M>
struct ElementOf<std::vector<M>> {
  using type = M;
};
template <typename M>
struct ElementOf<std::map<std::string, M>> {
  using type = M;
};

// The enum bindings a member of type M reaches, checked against `schema`
// (a nested record is checked on its own: Bind<Nested>::binding().check()).
template <typename M>
Status check_enums(const TypeRegistry& schema) {
  if constexpr (BoundEnum<M>) return Bind<M>::binding().check(schema);
  else if constexpr (!std::is_void_v<typename ElementOf<M>::type>) return check_enums<typename ElementOf<M>::type>(schema);
  else return Status::ok();
}
}  // namespace binding_detail

// Converts `v` (at `path`, for errors) into a T.
template <typename T>
Result<T> from_value(const Value& v, const std::string& path = "") {
  T out{};
  Status s = Codec<T>::from_value(v, out, path);
  if (!s) return s;
  return out;
}
template <typename T>
Value to_value(const T& obj) {
  return Codec<T>::to_value(obj);
}

// --- the codecs ----------------------------------------------------------------------

template <>
struct Codec<Value> {
  static Value to_value(const Value& v) { return v; }
  static Status from_value(const Value& v, Value& out, const std::string&) {
    out = v;
    return Status::ok();
  }
};

template <>
struct Codec<bool> : binding_detail::HeldAsIs<bool, Value::Kind::kBool, &Value::as_bool> {};

template <typename I>
  requires(std::integral<I> && !std::same_as<I, bool>)
struct Codec<I> {
  // REQUIRES: the value fits int64 (a uint64 above INT64_MAX does not).
  static Value to_value(I i) { return Value(static_cast<int64_t>(i)); }
  static Status from_value(const Value& v, I& out, const std::string& path) {
    if (!v.is_int()) return binding_detail::wrong_kind(path, "int", v);
    if (!std::in_range<I>(v.as_int()))
      return Status::invalid_argument(at_path(path, std::to_string(v.as_int()) + " is out of range"));
    out = static_cast<I>(v.as_int());
    return Status::ok();
  }
};

template <std::floating_point F>
struct Codec<F> {
  static Value to_value(F f) { return Value(static_cast<double>(f)); }
  static Status from_value(const Value& v, F& out, const std::string& path) {
    if (v.is_int()) out = static_cast<F>(v.as_int());  // people type 3 for 3.0
    else if (v.kind() == Value::Kind::kFloat) out = static_cast<F>(v.as_float());
    else return binding_detail::wrong_kind(path, "float", v);
    return Status::ok();
  }
};

template <>
struct Codec<std::string> : binding_detail::HeldAsIs<std::string, Value::Kind::kString, &Value::as_string> {};
template <>
struct Codec<Bytes> : binding_detail::HeldAsIs<Bytes, Value::Kind::kBytes, &Value::as_bytes> {};
template <>
struct Codec<Time> : binding_detail::HeldAsIs<Time, Value::Kind::kTime, &Value::as_time> {};

// A system_clock time point of any precision. A stored time finer than the
// duration is rounded down (toward the past); one the duration cannot hold
// is an error.
template <typename D>
struct Codec<std::chrono::time_point<std::chrono::system_clock, D>> {
  using TimePoint = std::chrono::time_point<std::chrono::system_clock, D>;
  using Period = typename D::period;
  static_assert(std::is_integral_v<typename D::rep>, "a time point with an integer count");

  // Whether `secs` seconds after the epoch (and a fraction) fit D's count.
  static bool fits(int64_t secs) {
    using Rep = typename D::rep;
    if constexpr (std::ratio_greater_equal_v<Period, std::ratio<1>>) {
      return std::in_range<Rep>(secs / (Period::num / Period::den) - 1);
    } else {
      constexpr int64_t per_second = Period::den / Period::num;
      constexpr int64_t most = static_cast<int64_t>(std::numeric_limits<Rep>::max() / per_second) - 1;
      return secs <= most && secs >= -most;
    }
  }
  static Value to_value(const TimePoint& tp) {
    using namespace std::chrono;
    const auto secs = floor<seconds>(tp);
    const auto nanos = duration_cast<nanoseconds>(tp - secs).count();
    return Value(Time{secs.time_since_epoch().count(), static_cast<uint32_t>(nanos)});
  }
  static Status from_value(const Value& v, TimePoint& out, const std::string& path) {
    using namespace std::chrono;
    if (v.kind() != Value::Kind::kTime) return binding_detail::wrong_kind(path, "time", v);
    const Time& t = v.as_time();
    if (!fits(t.seconds))
      return Status::invalid_argument(at_path(path, format_iso8601(t) + " does not fit the C++ time point"));
    if constexpr (std::ratio_greater_equal_v<typename D::period, std::ratio<1>>)
      out = TimePoint(floor<D>(seconds(t.seconds)));  // whole seconds of D: the fraction never reaches the next
    else
      out = TimePoint(duration_cast<D>(seconds(t.seconds)) + floor<D>(nanoseconds(t.nanos)));
    return Status::ok();
  }
};

template <typename M>
struct Codec<std::optional<M>> {
  static Value to_value(const std::optional<M>& o) { return o ? Codec<M>::to_value(*o) : Value(); }
  static Status from_value(const Value& v, std::optional<M>& out, const std::string& path) {
    if (v.is_null()) {
      out.reset();
      return Status::ok();
    }
    M m{};
    REPLOG_RETURN_IF_ERROR(Codec<M>::from_value(v, m, path));
    out = std::move(m);
    return Status::ok();
  }
};

template <typename M>
struct Codec<std::vector<M>> {
  static Value to_value(const std::vector<M>& items) {
    List out;
    out.reserve(items.size());
    for (const M& m : items) out.push_back(Codec<M>::to_value(m));
    return Value(std::move(out));
  }
  static Status from_value(const Value& v, std::vector<M>& out, const std::string& path) {
    if (!v.is_list()) return binding_detail::wrong_kind(path, "list", v);
    std::vector<M> items(v.as_list().size());
    for (size_t i = 0; i < items.size(); ++i)
      REPLOG_RETURN_IF_ERROR(Codec<M>::from_value(v.as_list()[i], items[i], path_index(path, i)));
    out = std::move(items);
    return Status::ok();
  }
};

template <typename M>
struct Codec<std::map<std::string, M>> {
  static Value to_value(const std::map<std::string, M>& items) {
    Map out;
    for (const auto& [k, m] : items) out.emplace(k, Codec<M>::to_value(m));
    return Value(std::move(out));
  }
  static Status from_value(const Value& v, std::map<std::string, M>& out, const std::string& path) {
    if (!v.is_map()) return binding_detail::wrong_kind(path, "map", v);
    std::map<std::string, M> items;
    for (const auto& [k, item] : v.as_map())
      REPLOG_RETURN_IF_ERROR(Codec<M>::from_value(item, items[k], path_child(path, k)));
    out = std::move(items);
    return Status::ok();
  }
};

template <BoundEnum E>
struct Codec<E> {
  // REQUIRES: the binding lists `e`.
  static Value to_value(E e) {
    const auto& b = Bind<E>::binding();
    const std::string* name = b.name_of(e);
    return Value::enumeration(b.type_name(), name ? *name : std::string());
  }
  static Status from_value(const Value& v, E& out, const std::string& path) {
    const auto& b = Bind<E>::binding();
    if (v.kind() != Value::Kind::kEnum) return binding_detail::wrong_kind(path, ("enum " + b.type_name()).c_str(), v);
    const EnumValue& e = v.as_enum();
    auto value = e.type == b.type_name() ? b.value_of(e.member) : std::nullopt;
    if (!value)
      return Status::invalid_argument(at_path(path, "enum member " + e.type + "." + e.member + " has no " +
                                                        b.type_name() + " value in C++"));
    out = *value;
    return Status::ok();
  }
};

template <BoundRecord T>
struct Codec<T> {
  static Value to_value(const T& obj) { return Bind<T>::binding().to_value(obj); }
  static Status from_value(const Value& v, T& out, const std::string& path) {
    return Bind<T>::binding().from_value(v, out, path);
  }
};

}  // namespace replog
