#include "replog/schema.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "protocol/json_codec.h"
#include "protocol/limits.h"

namespace replog {

bool is_identifier(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); });
}

EnumType::EnumType(std::string name, const std::vector<std::string>& members) : name_(std::move(name)) {
  int ordinal = 0;
  for (const auto& m : members) members_.push_back(std::make_shared<EnumMember>(name_, m, ordinal++));
}

std::shared_ptr<const EnumMember> EnumType::find(const std::string& member) const {
  for (const auto& m : members_)
    if (m->name() == member) return m;
  return nullptr;
}

namespace {

const std::map<std::string, TypeRef::Kind>& scalar_kinds() {
  static const std::map<std::string, TypeRef::Kind> kinds = {
      {"any", TypeRef::Kind::kAny},       {"null", TypeRef::Kind::kNull},   {"bool", TypeRef::Kind::kBool},
      {"int", TypeRef::Kind::kInt},       {"float", TypeRef::Kind::kFloat}, {"string", TypeRef::Kind::kString},
      {"bytes", TypeRef::Kind::kBytes},   {"time", TypeRef::Kind::kTime},
  };
  return kinds;
}

// `text` nested inside `depth` list<>/map<> wrappers. A value nests at most
// limits::kMaxDepth deep, so a type may too: deeper ones are refused before
// the recursion (and the chain of element types) could exhaust the stack.
Result<TypeRef> parse_type(const std::string& text, size_t depth) {
  using Kind = TypeRef::Kind;
  TypeRef t;
  for (const char* wrapper : {"list<", "map<"}) {
    std::string w(wrapper);
    if (text.size() > w.size() + 1 && text.compare(0, w.size(), w) == 0 && text.back() == '>') {
      if (depth >= limits::kMaxDepth)
        return Status::invalid_argument("type \"" + text.substr(0, 32) + "...\" nests deeper than " +
                                        std::to_string(limits::kMaxDepth));
      auto inner = parse_type(text.substr(w.size(), text.size() - w.size() - 1), depth + 1);
      if (!inner) return inner.status();
      t.kind = w == "list<" ? Kind::kList : Kind::kMap;
      t.element = std::make_shared<const TypeRef>(std::move(inner).value());
      return t;
    }
  }
  auto it = scalar_kinds().find(text);
  if (it != scalar_kinds().end()) {
    t.kind = it->second;
    return t;
  }
  if (!is_identifier(text)) return Status::invalid_argument("not a type: \"" + text + "\"");
  t.kind = Kind::kNamed;
  t.name = text;
  return t;
}

}  // namespace

Result<TypeRef> TypeRef::parse(const std::string& text) { return parse_type(text, 0); }

std::string TypeRef::to_string() const {
  switch (kind) {
    case Kind::kNamed: return name;
    case Kind::kList: return "list<" + element->to_string() + ">";
    case Kind::kMap: return "map<" + element->to_string() + ">";
    default:
      for (const auto& [n, k] : scalar_kinds())
        if (k == kind) return n;
  }
  return "?";
}

RecordType::RecordType(std::string name, std::vector<Field> fields, std::vector<std::string> required,
                       std::vector<std::string> unique)
    : name_(std::move(name)), fields_(std::move(fields)), required_(std::move(required)), unique_(std::move(unique)) {
  std::sort(fields_.begin(), fields_.end(), [](const Field& a, const Field& b) { return a.name < b.name; });
  std::sort(required_.begin(), required_.end());
  std::sort(unique_.begin(), unique_.end());
}

const RecordType::Field* RecordType::find_field(const std::string& name) const {
  auto it = std::lower_bound(fields_.begin(), fields_.end(), name,
                             [](const Field& f, const std::string& n) { return f.name < n; });
  return it != fields_.end() && it->name == name ? &*it : nullptr;
}

Status TypeRegistry::check_name_free(const std::string& name) const {
  if (!is_identifier(name)) return Status::invalid_argument("type name \"" + name + "\" is not an identifier");
  if (scalar_kinds().count(name) || name == "list" || name == "map")
    return Status::invalid_argument("type name \"" + name + "\" is a built-in type");
  if (enums_.count(name) || records_.count(name))
    return Status::invalid_argument("type \"" + name + "\" is declared twice");
  return Status::ok();
}

Status TypeRegistry::add_enum(const std::string& name, const std::vector<std::string>& members) {
  REPLOG_RETURN_IF_ERROR(check_name_free(name));
  if (members.empty()) return Status::invalid_argument("enum " + name + " has no members");
  std::set<std::string> seen;
  for (const auto& m : members) {
    if (!is_identifier(m)) return Status::invalid_argument("enum " + name + ": member \"" + m + "\" is not an identifier");
    if (!seen.insert(m).second) return Status::invalid_argument("enum " + name + ": member " + m + " is listed twice");
  }
  enums_[name] = std::make_shared<const EnumType>(name, members);
  return Status::ok();
}

Status TypeRegistry::add_record(const std::string& name, const std::map<std::string, std::string>& fields,
                                const std::vector<std::string>& required, const std::vector<std::string>& unique) {
  REPLOG_RETURN_IF_ERROR(check_name_free(name));
  std::vector<RecordType::Field> parsed;
  for (const auto& [field, type_text] : fields) {
    if (!is_identifier(field))
      return Status::invalid_argument("record " + name + ": field \"" + field + "\" is not an identifier");
    auto type = TypeRef::parse(type_text);
    if (!type) return type.status().with_context("record " + name + "." + field);
    parsed.push_back({field, std::move(type).value()});
  }
  for (const auto* list : {&required, &unique}) {
    std::set<std::string> seen;
    for (const auto& f : *list) {
      const char* what = list == &required ? "required" : "unique";
      if (!fields.count(f))
        return Status::invalid_argument("record " + name + ": " + what + " field " + f + " is not declared");
      if (!seen.insert(f).second)
        return Status::invalid_argument("record " + name + ": " + what + " field " + f + " is listed twice");
    }
  }
  records_[name] = std::make_shared<const RecordType>(name, std::move(parsed), required, unique);
  return Status::ok();
}

Status TypeRegistry::check_references() const {
  for (const auto& [name, record] : records_) {
    for (const auto& field : record->fields()) {
      const TypeRef* t = &field.type;
      while (t->element) t = t->element.get();
      if (t->kind == TypeRef::Kind::kNamed && !enums_.count(t->name) && !records_.count(t->name))
        return Status::invalid_argument("record " + name + "." + field.name + ": unknown type " + t->name);
    }
  }
  return Status::ok();
}

std::shared_ptr<const EnumType> TypeRegistry::find_enum(const std::string& name) const {
  auto it = enums_.find(name);
  return it == enums_.end() ? nullptr : it->second;
}

std::shared_ptr<const RecordType> TypeRegistry::find_record(const std::string& name) const {
  auto it = records_.find(name);
  return it == records_.end() ? nullptr : it->second;
}

std::shared_ptr<const EnumMember> TypeRegistry::find_member(const std::string& type, const std::string& member) const {
  auto e = find_enum(type);
  return e ? e->find(member) : nullptr;
}

namespace {

Result<std::vector<std::string>> string_list(const Value& v, const std::string& path) {
  if (v.kind() != Value::Kind::kList)
    return Status::invalid_argument(at_path(path, std::string("expected list of strings, got ") + v.kind_name()));
  std::vector<std::string> out;
  for (size_t i = 0; i < v.as_list().size(); ++i) {
    const Value& item = v.as_list()[i];
    if (!item.is_string())
      return Status::invalid_argument(
          at_path(path_index(path, i), std::string("expected string, got ") + item.kind_name()));
    out.push_back(item.as_string());
  }
  return out;
}

Status expect_map(const Value& v, const std::string& path) {
  if (v.is_map()) return Status::ok();
  return Status::invalid_argument(at_path(path, std::string("expected map, got ") + v.kind_name()));
}

}  // namespace

Result<TypeRegistry> TypeRegistry::from_json_text(const std::string& text) {
  auto doc = parse_typed_json(text);
  if (!doc) return doc.status().with_context("schema");
  return from_document(*doc);
}

Result<TypeRegistry> TypeRegistry::from_document(const Value& doc) {
  TypeRegistry reg;
  REPLOG_RETURN_IF_ERROR(expect_map(doc, "schema"));
  for (const auto& [key, _] : doc.as_map())
    if (key != "enums" && key != "records")
      return Status::invalid_argument("schema." + key + ": unknown section (expected enums, records)");
  if (const Value* enums = doc.find("enums")) {
    REPLOG_RETURN_IF_ERROR(expect_map(*enums, "schema.enums"));
    for (const auto& [name, members] : enums->as_map()) {
      std::string path = "schema.enums." + name;
      auto list = string_list(members, path);
      if (!list) return list.status();
      REPLOG_RETURN_IF_ERROR(reg.add_enum(name, *list).with_context(path));
    }
  }
  if (const Value* records = doc.find("records")) {
    REPLOG_RETURN_IF_ERROR(expect_map(*records, "schema.records"));
    for (const auto& [name, spec] : records->as_map()) {
      std::string path = "schema.records." + name;
      REPLOG_RETURN_IF_ERROR(expect_map(spec, path));
      std::map<std::string, std::string> fields;
      std::vector<std::string> required, unique;
      for (const auto& [key, v] : spec.as_map()) {
        std::string p = path_child(path, key);
        if (key == "fields") {
          REPLOG_RETURN_IF_ERROR(expect_map(v, p));
          for (const auto& [f, t] : v.as_map()) {
            if (!t.is_string())
              return Status::invalid_argument(
                  at_path(path_child(p, f), std::string("expected type name, got ") + t.kind_name()));
            fields[f] = t.as_string();
          }
        } else if (key == "required" || key == "unique") {
          auto list = string_list(v, p);
          if (!list) return list.status();
          (key == "required" ? required : unique) = std::move(list).value();
        } else {
          return Status::invalid_argument(p + ": unknown key (expected fields, required, unique)");
        }
      }
      REPLOG_RETURN_IF_ERROR(reg.add_record(name, fields, required, unique).with_context(path));
    }
  }
  REPLOG_RETURN_IF_ERROR(reg.check_references().with_context("schema"));
  return reg;
}

Value TypeRegistry::to_document() const {
  Map enums, records;
  for (const auto& [name, e] : enums_) {
    List members;
    for (const auto& m : e->members()) members.emplace_back(m->name());
    enums[name] = Value(std::move(members));
  }
  for (const auto& [name, r] : records_) {
    Map fields;
    for (const auto& f : r->fields()) fields[f.name] = Value(f.type.to_string());
    Map spec;
    spec["fields"] = Value(std::move(fields));
    auto to_list = [](const std::vector<std::string>& v) {
      List l(v.begin(), v.end());
      return Value(std::move(l));
    };
    if (!r->required().empty()) spec["required"] = to_list(r->required());
    if (!r->unique().empty()) spec["unique"] = to_list(r->unique());
    records[name] = Value(std::move(spec));
  }
  Map doc;
  if (!enums.empty()) doc["enums"] = Value(std::move(enums));
  if (!records.empty()) doc["records"] = Value(std::move(records));
  return Value(std::move(doc));
}

Status TypeRegistry::resolve(Value& value, const std::string& path) const {
  return resolve_as(value, TypeRef{}, path);
}

// Resolves a record's fields against its declared type and checks its required fields.
Status TypeRegistry::resolve_record(Value& value, const std::string& path) const {
  RecordValue& r = value.as_record();
  auto record_type = find_record(r.type);
  if (!record_type) return Status::invalid_argument(at_path(path, "unknown record type " + r.type));
  for (auto& [name, field_value] : r.fields) {
    const auto* field = record_type->find_field(name);
    std::string p = path_child(path, name);
    if (!field) return Status::invalid_argument(at_path(p, "field not declared in " + r.type));
    // A field that is not required may be null: "no value".
    if (field_value.is_null() &&
        !std::binary_search(record_type->required().begin(), record_type->required().end(), name))
      continue;
    REPLOG_RETURN_IF_ERROR(resolve_as(field_value, field->type, p));
  }
  for (const auto& req : record_type->required()) {
    const Value* f = value.find(req);
    if (f == nullptr || f->is_null())
      return Status::invalid_argument(at_path(path_child(path, req), "required field of " + r.type + " is missing"));
  }
  r.resolved = record_type;
  return Status::ok();
}

Status TypeRegistry::resolve_as(Value& value, const TypeRef& type, const std::string& path) const {
  using K = Value::Kind;
  auto mismatch = [&](const std::string& expected) {
    return Status::invalid_argument(at_path(path, "expected " + expected + ", got " + value.kind_name()));
  };
  switch (type.kind) {
    case TypeRef::Kind::kAny: break;
    case TypeRef::Kind::kNull: if (value.kind() != K::kNull) return mismatch("null"); break;
    case TypeRef::Kind::kBool: if (value.kind() != K::kBool) return mismatch("bool"); break;
    case TypeRef::Kind::kInt: if (value.kind() != K::kInt) return mismatch("int"); break;
    case TypeRef::Kind::kFloat:
      if (value.kind() == K::kInt) value = Value(static_cast<double>(value.as_int()));
      if (value.kind() != K::kFloat) return mismatch("float");
      break;
    case TypeRef::Kind::kString: if (value.kind() != K::kString) return mismatch("string"); break;
    case TypeRef::Kind::kBytes: if (value.kind() != K::kBytes) return mismatch("bytes"); break;
    case TypeRef::Kind::kTime: if (value.kind() != K::kTime) return mismatch("time"); break;
    case TypeRef::Kind::kList:
      if (value.kind() != K::kList) return mismatch(type.to_string());
      for (size_t i = 0; i < value.as_list().size(); ++i)
        REPLOG_RETURN_IF_ERROR(resolve_as(value.as_list()[i], *type.element, path_index(path, i)));
      return Status::ok();
    case TypeRef::Kind::kMap:
      if (value.kind() != K::kMap) return mismatch(type.to_string());
      for (auto& [k, v] : value.as_map()) REPLOG_RETURN_IF_ERROR(resolve_as(v, *type.element, path_child(path, k)));
      return Status::ok();
    case TypeRef::Kind::kNamed:
      if (enums_.count(type.name)) {
        if (value.kind() != K::kEnum || value.as_enum().type != type.name) {
          if (value.kind() == K::kEnum)
            return Status::invalid_argument(
                at_path(path, "expected " + type.name + ", got enum " + value.as_enum().type));
          return mismatch("enum " + type.name);
        }
      } else if (value.kind() != K::kRecord || value.as_record().type != type.name) {
        if (value.kind() == K::kRecord)
          return Status::invalid_argument(
              at_path(path, "expected " + type.name + ", got record " + value.as_record().type));
        return mismatch("record " + type.name);
      }
      break;
  }

  // The value's own kind decides what inside it needs resolving.
  switch (value.kind()) {
    case K::kEnum: {
      EnumValue& e = value.as_enum();
      auto enum_type = find_enum(e.type);
      if (!enum_type) return Status::invalid_argument(at_path(path, "unknown enum type " + e.type));
      e.resolved = enum_type->find(e.member);
      if (!e.resolved)
        return Status::invalid_argument(at_path(path, "unknown enum member " + e.type + "." + e.member));
      return Status::ok();
    }
    case K::kRecord:
      return resolve_record(value, path);
    case K::kList:
      for (size_t i = 0; i < value.as_list().size(); ++i)
        REPLOG_RETURN_IF_ERROR(resolve_as(value.as_list()[i], TypeRef{}, path_index(path, i)));
      return Status::ok();
    case K::kMap:
      for (auto& [k, v] : value.as_map()) REPLOG_RETURN_IF_ERROR(resolve_as(v, TypeRef{}, path_child(path, k)));
      return Status::ok();
    default:
      return Status::ok();
  }
}

}  // namespace replog
