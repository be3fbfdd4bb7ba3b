#include "node/core/methods.h"

#include <sodium.h>

#include <algorithm>
#include <limits>

#include "node/core/revocations.h"
#include "protocol/bytes.h"
#include "protocol/limits.h"
#include "protocol/msgpack_codec.h"

namespace replog {

namespace {

MethodFailure failure(ConflictKind kind, std::string message, Path path = {}, std::vector<UpdateId> involved = {}) {
  return MethodFailure{kind, std::move(message), std::move(path), std::move(involved)};
}

MethodFailure bad_arg(const std::string& message) { return failure(ConflictKind::kBadArgument, message); }

// The type the schema declares at `path`, or a failure for an undeclared field.
std::optional<MethodFailure> declared_type(const TypeRegistry& schema, const Path& path, TypeRef& out) {
  out = TypeRef{};
  if (path.empty()) return std::nullopt;
  auto record = schema.find_record(path[0]);
  if (!record) return std::nullopt;
  TypeRef named;
  named.kind = TypeRef::Kind::kNamed;
  named.name = path[0];
  if (path.size() == 1) {
    out.kind = TypeRef::Kind::kMap;
    out.element = std::make_shared<const TypeRef>(named);
    return std::nullopt;
  }
  TypeRef t = named;
  for (size_t i = 2; i < path.size(); ++i) {
    if (t.kind == TypeRef::Kind::kNamed) {
      auto rt = schema.find_record(t.name);
      if (!rt) return failure(ConflictKind::kSchema, at_path(path_to_string(path), t.name + " has no fields"), path);
      const auto* field = rt->find_field(path[i]);
      if (!field)
        return failure(ConflictKind::kSchema,
                       at_path(path_to_string(Path(path.begin(), path.begin() + static_cast<long>(i) + 1)),
                               "field not declared in " + t.name),
                       path);
      t = field->type;
    } else if (t.kind == TypeRef::Kind::kList || t.kind == TypeRef::Kind::kMap) {
      t = *t.element;
    } else {
      t = TypeRef{};
      break;
    }
  }
  out = t;
  return std::nullopt;
}

// The checks every path argument passes, however it was written.
std::optional<MethodFailure> check_path(const Path& out) {
  if (out.empty()) return bad_arg("empty path");
  if (out.size() > limits::kMaxPathSegments)
    return bad_arg("path longer than " + std::to_string(limits::kMaxPathSegments) + " segments");
  for (const auto& seg : out)
    if (seg.empty()) return bad_arg("path \"" + path_to_string(out) + "\" has an empty segment");
  return std::nullopt;
}

}  // namespace

std::optional<MethodFailure> parse_path(const Value* v, Path& out) {
  out.clear();
  if (v == nullptr) return bad_arg("missing path");
  if (v->is_string()) {
    out = parse_dotted_path(v->as_string());
  } else if (v->is_list()) {
    for (const auto& seg : v->as_list()) {
      if (!seg.is_string()) return bad_arg("path segments must be strings");
      out.push_back(seg.as_string());
    }
  } else {
    return bad_arg(std::string("path must be a string or a list of strings, got ") + v->kind_name());
  }
  return check_path(out);
}

namespace {
// True when resolving `v` as "any" could fail or change it: it holds an enum or a record.
bool holds_typed(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kEnum:
    case Value::Kind::kRecord: return true;
    case Value::Kind::kList:
      return std::any_of(v.as_list().begin(), v.as_list().end(), holds_typed);
    case Value::Kind::kMap:
      return std::any_of(v.as_map().begin(), v.as_map().end(), [](const auto& kv) { return holds_typed(kv.second); });
    default: return false;
  }
}
}  // namespace

const Value* StateView::get(const Path& path) const { return state_.get(path); }
const TypeRegistry& StateView::schema() const { return state_.schema(); }
bool StateView::has_conflict(const UpdateId& id) const { return state_.conflicts().count(id) > 0; }

std::optional<MethodFailure> MethodContext::set(const Path& path, Value value) {
  TypeRef type;
  if (auto f = declared_type(state_.schema(), path, type)) return f;
  // The common case, untyped data at an undeclared place, needs no resolving.
  if (type.kind != TypeRef::Kind::kAny || holds_typed(value)) {
    if (Status s = state_.schema().resolve_as(value, type, path_to_string(path)); !s)
      return failure(ConflictKind::kSchema, s.message(), path);
  }
  if (schema().find_record(path[0])) {
    if (path.size() >= 2) {
      touch(path[0], path[1]);
    } else if (value.is_map()) {
      for (const auto& [id, _] : value.as_map()) touch(path[0], id);
      if (const Value* old = state_.get(path); old && old->is_map())
        for (const auto& [id, _] : old->as_map()) touch(path[0], id);
    }
  }
  if (Status s = state_.write(path, std::move(value), undo_); !s) return failure(ConflictKind::kFailed, s.message(), path);
  return std::nullopt;
}

std::optional<MethodFailure> MethodContext::unset(const Path& path) {
  if (schema().find_record(path[0])) {
    if (path.size() >= 2) {
      touch(path[0], path[1]);
    } else if (const Value* old = state_.get(path); old && old->is_map()) {
      for (const auto& [id, _] : old->as_map()) touch(path[0], id);
    }
  }
  if (Status s = state_.write(path, std::nullopt, undo_); !s) return failure(ConflictKind::kFailed, s.message(), path);
  return std::nullopt;
}

void MethodContext::touch(const std::string& type, const std::string& id) {
  auto key = std::make_pair(type, id);
  if (touched_.count(key)) return;
  const Value* before = state_.get({type, id});
  touched_.emplace(std::move(key), before ? std::optional<Value>(*before) : std::nullopt);
}

std::optional<MethodFailure> MethodContext::check_records() {
  for (const auto& [key, before] : touched_) {
    const auto& [type, id] = key;
    const Value* record = state_.get({type, id});
    if (record == nullptr) {
      state_.set_writer(type, id, std::nullopt, undo_);
      continue;
    }
    Path where{type, id};
    Value copy = *record;  // resolving may convert (int -> float); the stored value stays as written
    TypeRef t;
    t.kind = TypeRef::Kind::kNamed;
    t.name = type;
    if (Status s = schema().resolve_as(copy, t, path_to_string(where)); !s)
      return failure(ConflictKind::kSchema, s.message(), where);
    if (auto rt = schema().find_record(type)) {
      for (const auto& field : rt->unique()) {
        const Value* v = record->find(field);
        if (!v || v->is_null()) continue;
        // Constraints bind the values an update writes: a value this update
        // left as it was may repeat one that predates the constraint.
        const Value* old = before ? before->find(field) : nullptr;
        if (old && *old == *v) continue;
        auto holder = state_.unique_holder(type, field, *v, id);
        if (holder) {
          std::vector<UpdateId> involved;
          if (auto w = state_.record_writer(type, *holder)) involved.push_back(*w);
          return failure(ConflictKind::kUnique,
                         at_path(path_to_string({type, id, field}),
                                 "value already used by " + type + " " + *holder + " (unique field)"),
                         {type, id, field}, std::move(involved));
        }
      }
    }
    state_.set_writer(type, id, id_, undo_);
  }
  return std::nullopt;
}

// --- built-in methods -----------------------------------------------------------

namespace {

const Value* field(const Value& arg, const char* name) { return arg.is_map() ? arg.find(name) : nullptr; }

std::optional<MethodFailure> need_map(const Value& arg, const char* method) {
  if (!arg.is_map()) return bad_arg(std::string(method) + " takes a map argument");
  return std::nullopt;
}

std::optional<MethodFailure> record_ref(const Value& arg, const TypeRegistry& schema, std::string& type,
                                        std::string& id) {
  const Value* t = field(arg, "type");
  const Value* i = field(arg, "id");
  if (!t || !t->is_string()) return bad_arg("type must be a string");
  if (!i || !i->is_string() || i->as_string().empty()) return bad_arg("id must be a non-empty string");
  type = t->as_string();
  id = i->as_string();
  if (!schema.find_record(type))
    return failure(ConflictKind::kSchema, "unknown record type " + type, {type, id});
  return std::nullopt;
}

std::optional<MethodFailure> m_set(MethodContext& ctx, Value& arg) {
  if (auto f = need_map(arg, "set")) return f;
  Path path;
  if (auto f = parse_path(field(arg, "path"), path)) return f;
  Value* value = arg.find("value");
  if (!value) return bad_arg("set needs a value");
  return ctx.set(path, std::move(*value));
}

std::optional<MethodFailure> m_unset(MethodContext& ctx, const Value& arg) {
  if (auto f = need_map(arg, "unset")) return f;
  Path path;
  if (auto f = parse_path(field(arg, "path"), path)) return f;
  return ctx.unset(path);
}

std::optional<MethodFailure> m_inc(MethodContext& ctx, const Value& arg) {
  if (auto f = need_map(arg, "inc")) return f;
  Path path;
  if (auto f = parse_path(field(arg, "path"), path)) return f;
  const Value* by = field(arg, "by");
  Value one(int64_t{1});
  if (!by) by = &one;
  if (by->kind() != Value::Kind::kInt && by->kind() != Value::Kind::kFloat) return bad_arg("by must be a number");
  const Value* cur = ctx.get(path);
  Value next;
  if (cur == nullptr || cur->is_null()) {
    next = *by;
  } else if (cur->is_int() && by->is_int()) {
    int64_t r;
    if (__builtin_add_overflow(cur->as_int(), by->as_int(), &r))
      return failure(ConflictKind::kOverflow, at_path(path_to_string(path), "inc would overflow int64"), path);
    next = Value(r);
  } else if (cur->kind() == Value::Kind::kFloat) {
    next = Value(cur->as_float() + (by->is_int() ? static_cast<double>(by->as_int()) : by->as_float()));
  } else {
    return failure(ConflictKind::kSchema,
                   at_path(path_to_string(path), std::string("cannot inc a ") + cur->kind_name() + " by a " + by->kind_name()),
                   path);
  }
  return ctx.set(path, std::move(next));
}

std::optional<MethodFailure> set_member(MethodContext& ctx, const Value& arg, bool add) {
  if (auto f = need_map(arg, add ? "add" : "remove")) return f;
  Path path;
  if (auto f = parse_path(field(arg, "path"), path)) return f;
  const Value* value = field(arg, "value");
  if (!value) return bad_arg(std::string(add ? "add" : "remove") + " needs a value");
  const Value* cur = ctx.get(path);
  if (cur != nullptr && !cur->is_list() && !cur->is_null())
    return failure(ConflictKind::kSchema, at_path(path_to_string(path), std::string("is a ") + cur->kind_name() + ", not a set"), path);
  List members = cur && cur->is_list() ? cur->as_list() : List{};
  auto it = std::find(members.begin(), members.end(), *value);
  if (add == (it != members.end())) return std::nullopt;  // already a member / already absent
  if (add) members.push_back(*value);
  else members.erase(it);
  return ctx.set(path, Value(std::move(members)));
}

std::optional<MethodFailure> m_create(MethodContext& ctx, const Value& arg) {
  if (auto f = need_map(arg, "create")) return f;
  std::string type, id;
  if (auto f = record_ref(arg, ctx.schema(), type, id)) return f;
  if (ctx.get({type, id})) {
    std::vector<UpdateId> involved;
    if (auto w = MethodAccess::state(ctx).record_writer(type, id)) involved.push_back(*w);
    return failure(ConflictKind::kExists, type + " " + id + " already exists", {type, id}, std::move(involved));
  }
  const Value* fields = field(arg, "fields");
  if (fields && !fields->is_map()) return bad_arg("fields must be a map");
  return ctx.set({type, id}, Value::record(type, fields ? fields->as_map() : Map{}));
}

std::optional<MethodFailure> m_update(MethodContext& ctx, const Value& arg) {
  if (auto f = need_map(arg, "update")) return f;
  std::string type, id;
  if (auto f = record_ref(arg, ctx.schema(), type, id)) return f;
  if (!ctx.get({type, id})) return failure(ConflictKind::kMissing, type + " " + id + " does not exist", {type, id});
  const Value* fields = field(arg, "fields");
  if (!fields || !fields->is_map()) return bad_arg("fields must be a map");
  for (const auto& [name, value] : fields->as_map()) {
    auto f = value.is_null() ? ctx.unset({type, id, name}) : ctx.set({type, id, name}, value);
    if (f) return f;
  }
  return std::nullopt;
}

std::optional<MethodFailure> m_delete(MethodContext& ctx, const Value& arg) {
  if (auto f = need_map(arg, "delete")) return f;
  std::string type, id;
  if (auto f = record_ref(arg, ctx.schema(), type, id)) return f;
  return ctx.unset({type, id});
}

std::optional<MethodFailure> m_schema(MethodContext& ctx, const Value& arg) {
  if (auto f = need_map(arg, "schema")) return f;
  const Value* doc = field(arg, "document");
  if (!doc) return bad_arg("schema needs a document");
  auto reg = TypeRegistry::from_document(*doc);
  if (!reg) return failure(ConflictKind::kSchema, reg.status().message());
  MethodAccess::state(ctx).set_schema(std::make_shared<const TypeRegistry>(std::move(reg).value()), MethodAccess::undo(ctx));
  return std::nullopt;
}

std::optional<MethodFailure> m_resolve(MethodContext& ctx, const Value& arg) {
  if (auto f = need_map(arg, "resolve")) return f;
  const Value* u = field(arg, "update");
  if (!u || !u->is_string()) return bad_arg("resolve needs update: the 32-hex id of the conflict's update");
  auto id = UpdateId::parse(u->as_string());
  if (!id) return bad_arg(id.status().message());
  // Two people resolving the same conflict is no conflict: the second is a no-op.
  MethodAccess::state(ctx).remove_conflict(*id, MethodAccess::undo(ctx));
  return std::nullopt;
}

// At the keyboard, resolving a conflict that is not open is a mistake.
std::optional<std::string> resolve_is_open(const StateView& state, const Value& arg) {
  const Value* u = field(arg, "update");
  auto id = u && u->is_string() ? UpdateId::parse(u->as_string()) : Result<UpdateId>(Status::invalid_argument(""));
  if (id && !state.has_conflict(*id)) return "no open conflict for update " + id->to_string();
  return std::nullopt;
}

std::optional<MethodFailure> m_retire(MethodContext& ctx, const Value& arg) {
  if (auto f = need_map(arg, "retire")) return f;
  const Value* o = field(arg, "origin");
  const Value* last = field(arg, "last_seq");
  if (!o || !o->is_string()) return bad_arg("retire needs origin: 16 hex digits");
  auto origin = parse_hex16(o->as_string());
  if (!origin) return bad_arg(origin.status().message());
  if (!last || !last->is_int() || last->as_int() < 0) return bad_arg("retire needs last_seq: a non-negative int");
  MethodAccess::state(ctx).set_retired(*origin, static_cast<uint64_t>(last->as_int()), MethodAccess::undo(ctx));
  return std::nullopt;
}

// The effect of a revocation is not folded here: which revocations take effect
// is decided over the whole log (node/core/revocations.h), and replay leaves
// the revoked updates out wherever they fall. Here only the shape is judged.
std::optional<MethodFailure> m_revoke(MethodContext&, const Value& arg) {
  std::string why;
  if (!parse_revoke_arg(arg, &why)) return bad_arg(why);
  return std::nullopt;
}

}  // namespace

bool is_builtin_set(const MethodFn& fn) {
  using Pointer = std::optional<MethodFailure> (*)(MethodContext&, Value&);
  const Pointer* target = fn.target<Pointer>();
  return target != nullptr && *target == &m_set;
}

std::optional<SetArgument> read_set_argument(std::string_view bytes) {
  size_t offset = 0;
  auto pairs = read_msgpack_map_header(bytes, offset);
  if (!pairs || *pairs != 2) return std::nullopt;
  auto key = read_msgpack_str(bytes, offset);
  if (!key || *key != "path") return std::nullopt;
  auto path = read_msgpack_str(bytes, offset);
  if (!path) return std::nullopt;
  key = read_msgpack_str(bytes, offset);
  if (!key || *key != "value") return std::nullopt;
  // One level down, inside the argument map, as the whole decode reads it.
  auto value = decode_msgpack_nested(bytes, offset, 1);
  if (!value || offset != bytes.size()) return std::nullopt;
  return SetArgument{*path, std::move(value).value()};
}

// What m_set does once it has found a string path and a value.
std::optional<MethodFailure> apply_set(MethodContext& ctx, SetArgument& arg, Path& path) {
  parse_dotted_path_into(arg.path, path);
  if (auto f = check_path(path)) return f;
  return ctx.set(path, std::move(arg.value));
}

MethodRegistry MethodRegistry::with_builtins() {
  MethodRegistry r;
  r.add("set", "1", m_set);
  r.add("unset", "1", m_unset);
  r.add("inc", "1", m_inc);
  r.add("add", "1", [](MethodContext& c, Value& a) { return set_member(c, a, true); });
  r.add("remove", "1", [](MethodContext& c, Value& a) { return set_member(c, a, false); });
  r.add("create", "1", m_create);
  r.add("update", "1", m_update);
  r.add("delete", "1", m_delete);
  r.add("schema", "1", m_schema);
  r.add("resolve", "1", m_resolve, resolve_is_open);
  r.add("retire", "1", m_retire);
  r.add(kRevokeMethod, "1", m_revoke);
  return r;
}

Status MethodRegistry::add(const std::string& name, const std::string& version, MethodFn fn, LocalCheck check) {
  if (name.empty() || name.size() > 255) return Status::invalid_argument("method name must be 1..255 bytes");
  if (methods_.count(name)) return Status::invalid_argument("method " + name + " is registered twice");
  methods_[name] = Entry{version, std::move(fn), std::move(check)};
  return Status::ok();
}

const MethodFn* MethodRegistry::find(std::string_view name) const {
  auto it = methods_.find(name);
  return it == methods_.end() ? nullptr : &it->second.fn;
}

const LocalCheck* MethodRegistry::local_check(std::string_view name) const {
  auto it = methods_.find(name);
  return it == methods_.end() || !it->second.check ? nullptr : &it->second.check;
}

std::string MethodRegistry::digest() const {
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, 32);
  for (const auto& [name, e] : methods_) {
    std::string part = name + '\0' + e.version + '\0';
    crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(part.data()), part.size());
  }
  unsigned char h[32];
  crypto_generichash_final(&st, h, sizeof h);
  return to_hex(std::string_view(reinterpret_cast<const char*>(h), sizeof h));
}

}  // namespace replog
