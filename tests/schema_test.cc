// TypeRegistry tests: schema documents, resolution to the registry's own enum
// members, and errors that name the path.
#include <gtest/gtest.h>

#include "protocol/json_codec.h"
#include "protocol/limits.h"
#include "protocol/msgpack_codec.h"
#include "replog/schema.h"

namespace replog {
namespace {

const char* kSchema = R"({
  "enums": {"Color": ["Red", "Green", "Blue"]},
  "records": {
    "Task": {
      "fields": {"title": "string", "due": "time", "color": "Color", "tags": "list<string>",
                 "estimate": "float", "sub": "map<Task>"},
      "required": ["title"],
      "unique": ["title"]
    }
  }
})";

TypeRegistry registry() {
  auto r = TypeRegistry::from_json_text(kSchema);
  EXPECT_TRUE(r) << r.status().message();
  return std::move(r).value();
}

Value typed(const std::string& text) {
  auto v = parse_typed_json(text);
  EXPECT_TRUE(v) << v.status().message();
  return std::move(v).value();
}

TEST(Schema, EnumDecodedFromStorageIsTheRegistrysOwnMember) {
  TypeRegistry reg = registry();
  Value v = typed(R"({"c": {"$enum": "Color.Green"}})");
  auto stored = decode_msgpack(encode_msgpack(v));
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->find("c")->enum_member(), nullptr) << "decoding needs no registry";
  ASSERT_TRUE(reg.resolve(*stored));
  const EnumMember* member = stored->find("c")->enum_member();
  ASSERT_NE(member, nullptr);
  EXPECT_EQ(member, reg.find_member("Color", "Green").get()) << "identity, not a look-alike";
  EXPECT_EQ(member->ordinal(), 1);
}

TEST(Schema, IdentitySurvivesCopiesOfTheRegistry) {
  TypeRegistry reg = registry();
  TypeRegistry copy = reg;  // NOLINT(performance-unnecessary-copy-initialization): the copy is what is tested
  Value v = Value::enumeration("Color", "Blue");
  ASSERT_TRUE(copy.resolve(v));
  EXPECT_EQ(v.enum_member(), reg.find_member("Color", "Blue").get());
}

TEST(Schema, RecordFieldsAreCheckedAgainstDeclaredTypes) {
  TypeRegistry reg = registry();
  Value v = typed(R"({"tasks": {"t1": {"$type": "Task", "title": "x", "due": "tomorrow"}}})");
  Status s = reg.resolve(v);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.message(), "tasks.t1.due: expected time, got string");
}

TEST(Schema, UnknownEnumMemberNamesThePath) {
  TypeRegistry reg = registry();
  Value v = typed(R"({"tasks": {"t1": {"$type": "Task", "title": "x", "color": {"$enum": "Color.Purple"}}}})");
  Status s = reg.resolve(v);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.message(), "tasks.t1.color: unknown enum member Color.Purple");
}

TEST(Schema, UnknownEnumTypeOutsideRecordsIsRefused) {
  TypeRegistry reg = registry();
  Value v = typed(R"([{"$enum": "Mood.Happy"}])");
  Status s = reg.resolve(v);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.message(), "[0]: unknown enum type Mood");
}

TEST(Schema, MissingRequiredFieldIsRefused) {
  TypeRegistry reg = registry();
  Value v = typed(R"({"$type": "Task", "due": {"$time": "2026-01-01T00:00:00Z"}})");
  Status s = reg.resolve(v);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.message(), "title: required field of Task is missing");
}

TEST(Schema, UndeclaredFieldIsRefused) {
  TypeRegistry reg = registry();
  Value v = typed(R"({"$type": "Task", "title": "a", "colour": 1})");
  Status s = reg.resolve(v);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.message(), "colour: field not declared in Task");
}

TEST(Schema, NestedTypesAreResolvedThroughListsAndMaps) {
  TypeRegistry reg = registry();
  Value v = typed(R"({"$type": "Task", "title": "a", "tags": ["x", 2]})");
  Status s = reg.resolve(v);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.message(), "tags[1]: expected string, got int");
  Value sub = typed(R"({"$type": "Task", "title": "a", "sub": {"k": {"$type": "Task", "title": "b",
                       "color": {"$enum": "Color.Red"}}}})");
  ASSERT_TRUE(reg.resolve(sub));
  EXPECT_EQ(sub.find("sub")->find("k")->find("color")->enum_member(), reg.find_member("Color", "Red").get());
}

TEST(Schema, IntGivenForFloatIsConverted) {
  TypeRegistry reg = registry();
  Value v = typed(R"({"$type": "Task", "title": "a", "estimate": 3})");
  ASSERT_TRUE(reg.resolve(v));
  EXPECT_EQ(v.find("estimate")->kind(), Value::Kind::kFloat);
}

TEST(Schema, BadDocumentsNameThePlace) {
  struct Case {
    const char* doc;
    const char* message;
  } cases[] = {
      {R"({"enums": {"Color": ["Red", "Red"]}})", "schema.enums.Color: enum Color: member Red is listed twice"},
      {R"({"enums": {"Color": "Red"}})", "schema.enums.Color: expected list of strings, got string"},
      {R"({"records": {"T": {"fields": {"a": "Nope"}}}})", "schema: record T.a: unknown type Nope"},
      {R"({"records": {"T": {"fields": {"a": "int"}, "required": ["b"]}}})",
       "schema.records.T: record T: required field b is not declared"},
      {R"({"records": {"int": {"fields": {}}}})", "schema.records.int: type name \"int\" is a built-in type"},
      {R"({"tables": {}})", "schema.tables: unknown section (expected enums, records)"},
      {R"({"enums": )", nullptr},
  };
  for (const auto& c : cases) {
    auto r = TypeRegistry::from_json_text(c.doc);
    ASSERT_FALSE(r) << c.doc;
    if (c.message) {
      EXPECT_EQ(r.status().message(), c.message);
    }
  }
}

// A schema arrives in an update and is replayed on every node: a type nested
// thousands deep once overflowed the stack of each (found by fuzz_json).
TEST(Schema, TypesNestedDeeperThanValuesAreRefused) {
  auto nested = [](size_t n) {
    std::string t;
    for (size_t i = 0; i < n; ++i) t += i % 2 ? "map<" : "list<";
    return t + "int" + std::string(n, '>');
  };
  auto at_limit = TypeRef::parse(nested(limits::kMaxDepth));
  ASSERT_TRUE(at_limit) << at_limit.status().message();
  EXPECT_EQ(at_limit->to_string(), nested(limits::kMaxDepth));
  EXPECT_FALSE(TypeRef::parse(nested(limits::kMaxDepth + 1)));
  for (size_t n : {size_t{limits::kMaxDepth + 1}, size_t{100000}}) {
    auto r = TypeRegistry::from_json_text(R"({"records": {"A": {"fields": {"b": ")" + nested(n) + R"("}}}})");
    ASSERT_FALSE(r) << n;
    EXPECT_NE(r.status().message().find("nests deeper than 64"), std::string::npos) << r.status().message();
  }
}

TEST(Schema, DocumentRoundTripsCanonically) {
  TypeRegistry reg = registry();
  Value doc = reg.to_document();
  auto again = TypeRegistry::from_document(doc);
  ASSERT_TRUE(again) << again.status().message();
  EXPECT_EQ(encode_msgpack(again->to_document()), encode_msgpack(doc));
}

TEST(Schema, CppRegistrationMatchesDocument) {
  TypeRegistry reg;
  ASSERT_TRUE(reg.add_enum("Color", {"Red", "Green", "Blue"}));
  ASSERT_TRUE(reg.add_record("Task",
                             {{"title", "string"}, {"due", "time"}, {"color", "Color"}, {"tags", "list<string>"},
                              {"estimate", "float"}, {"sub", "map<Task>"}},
                             {"title"}, {"title"}));
  ASSERT_TRUE(reg.check_references());
  EXPECT_EQ(reg.to_document(), registry().to_document());
  EXPECT_FALSE(reg.add_enum("Color", {"X"})) << "a name is declared once";
}

}  // namespace
}  // namespace replog
