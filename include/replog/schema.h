// TypeRegistry: the enum types, record types and constraints of a schema
// (docs/VALUES.md), and the resolve step that binds decoded values to them.
//
// A registry is built from a schema document (JSON, docs/VALUES.md "The schema document") or
// registered from C++ with add_enum()/add_record(). Its EnumMember and
// RecordType objects are shared (std::shared_ptr), so a resolved value keeps
// its member alive and identity comparisons stay valid after the registry that
// made it is replaced by a newer schema.
//
// Thread safety: build on one thread; afterwards a const registry may be read
// from any number of threads.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "replog/status.h"
#include "replog/value.h"

namespace replog {

class EnumMember {
 public:
  EnumMember(std::string type, std::string name, int ordinal)
      : type_(std::move(type)), name_(std::move(name)), ordinal_(ordinal) {}
  const std::string& type_name() const { return type_; }
  const std::string& name() const { return name_; }
  int ordinal() const { return ordinal_; }
  std::string qualified_name() const { return type_ + "." + name_; }

 private:
  std::string type_;
  std::string name_;
  int ordinal_;
};

class EnumType {
 public:
  EnumType(std::string name, const std::vector<std::string>& members);
  const std::string& name() const { return name_; }
  const std::vector<std::shared_ptr<const EnumMember>>& members() const { return members_; }
  std::shared_ptr<const EnumMember> find(const std::string& member) const;

 private:
  std::string name_;
  std::vector<std::shared_ptr<const EnumMember>> members_;
};

// A declared type: "any", a scalar ("null", "bool", "int", "float", "string",
// "bytes", "time"), an enum or record name, "list<T>" or "map<T>".
struct TypeRef {
  enum class Kind { kAny, kNull, kBool, kInt, kFloat, kString, kBytes, kTime, kNamed, kList, kMap };
  Kind kind = Kind::kAny;
  std::string name;                     // kNamed: an enum or record type
  std::shared_ptr<const TypeRef> element;  // kList, kMap

  static Result<TypeRef> parse(const std::string& text);
  std::string to_string() const;
};

class RecordType {
 public:
  struct Field {
    std::string name;
    TypeRef type;
  };
  RecordType(std::string name, std::vector<Field> fields, std::vector<std::string> required,
             std::vector<std::string> unique);

  const std::string& name() const { return name_; }
  const std::vector<Field>& fields() const { return fields_; }  // sorted by name
  const Field* find_field(const std::string& name) const;
  const std::vector<std::string>& required() const { return required_; }
  // Fields whose values must be unique among all records of this type.
  const std::vector<std::string>& unique() const { return unique_; }

 private:
  std::string name_;
  std::vector<Field> fields_;
  std::vector<std::string> required_;
  std::vector<std::string> unique_;
};

class TypeRegistry {
 public:
  TypeRegistry() = default;

  // Builds a registry from a schema document (docs/VALUES.md "The schema document"); every error
  // names the place in the document.
  static Result<TypeRegistry> from_json_text(const std::string& text);
  static Result<TypeRegistry> from_document(const Value& document);

  // C++ registration. Names are identifiers ([A-Za-z_][A-Za-z0-9_]*), unique
  // across enums and records. Record fields may name types registered later;
  // check_references() (called by from_document) verifies they all exist.
  Status add_enum(const std::string& name, const std::vector<std::string>& members);
  Status add_record(const std::string& name, const std::map<std::string, std::string>& fields,
                    const std::vector<std::string>& required = {},
                    const std::vector<std::string>& unique = {});
  Status check_references() const;

  std::shared_ptr<const EnumType> find_enum(const std::string& name) const;
  std::shared_ptr<const RecordType> find_record(const std::string& name) const;
  // The registry's own member object, or null.
  std::shared_ptr<const EnumMember> find_member(const std::string& type, const std::string& member) const;

  // The schema document this registry was built from, in canonical form (map
  // keys sorted), so two registries with the same types produce equal documents.
  Value to_document() const;


  // Resolves a decoded value in place: every enum is bound to the registry's
  // member, every record's fields are checked against their declared types
  // (required fields present, no undeclared fields). Untyped places (maps and
  // lists outside records) are walked for enums and records inside them.
  // Errors name the path: "tasks.t1.due: expected time, got string".
  Status resolve(Value& value, const std::string& path = "") const;
  // Resolves `value` where `type` is declared; an int given for a float is
  // converted (people type 3 for 3.0).
  Status resolve_as(Value& value, const TypeRef& type, const std::string& path) const;

 private:
  Status resolve_record(Value& value, const std::string& path) const;
  Status check_name_free(const std::string& name) const;

  std::map<std::string, std::shared_ptr<const EnumType>> enums_;
  std::map<std::string, std::shared_ptr<const RecordType>> records_;
};

// True for [A-Za-z_][A-Za-z0-9_]*.
bool is_identifier(const std::string& s);

}  // namespace replog
