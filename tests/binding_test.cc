// Bindings of C++ types to values (include/replog/binding.h): every kind
// converts both ways, errors name the place, and changed_fields is minimal.
#include <gtest/gtest.h>

#include "bound_types.h"
#include "replog/binding.h"

namespace replog {
namespace {

using bound_types::Color;
using bound_types::Everything;
using bound_types::full;
using bound_types::Inner;

TEST(Binding, EveryKindRoundTripsThroughAValue) {
  const Everything e = full();
  Value v = to_value(e);
  ASSERT_TRUE(v.is_record());
  EXPECT_EQ(v.as_record().type, "Everything");
  EXPECT_EQ(*v.find("color"), Value::enumeration("Color", "Green"));
  EXPECT_EQ(v.find("when")->as_time(), (Time{1'798'137'000, 250'000'000}));
  EXPECT_EQ(*v.find("inner"), Value::record("Inner", Map{{"n", 9}, {"name", "in"}}));
  auto back = from_value<Everything>(v);
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_EQ(*back, e);
}

TEST(Binding, AnEmptyOptionalIsNotStoredAndAnAbsentFieldKeepsTheDefault) {
  Everything e;
  Value v = to_value(e);
  EXPECT_EQ(v.find("maybe"), nullptr);
  EXPECT_EQ(v.find("any"), nullptr) << "a null is not stored";
  auto back = from_value<Everything>(Value::record("Everything", Map{{"text", "only"}}));
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_EQ(back->text, "only");
  EXPECT_EQ(back->count, 0);
  EXPECT_FALSE(back->maybe);
}

TEST(Binding, FieldsTheBindingDoesNotNameAreIgnoredOnRead) {
  auto back = from_value<Inner>(Value::record("Inner", Map{{"name", "a"}, {"added_later", 1}}));
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_EQ(back->name, "a");
}

TEST(Binding, ErrorsNameThePlace) {
  auto wrong = from_value<Everything>(Value::record("Everything", Map{{"at", "yesterday"}}), "Everything.e1");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.status().message(), "Everything.e1.at: expected time, got string");
  auto deep = from_value<Everything>(Value::record("Everything", Map{{"list", List{Value(1), Value("x")}}}), "e");
  EXPECT_EQ(deep.status().message(), "e.list[1]: expected int, got string");
  auto member = from_value<Color>(Value::enumeration("Color", "Purple"), "c");
  EXPECT_EQ(member.status().message(), "c: enum member Color.Purple has no Color value in C++");
  auto other = from_value<Inner>(Value::record("Task", {}), "x");
  EXPECT_EQ(other.status().message(), "x: expected record Inner, got record Task");
  auto range = from_value<Everything>(Value::record("Everything", Map{{"small", 70'000}}));
  EXPECT_EQ(range.status().message(), "small: 70000 is out of range");
}

TEST(Binding, AnIntIsTakenForAFloat) {
  auto back = from_value<Everything>(Value::record("Everything", Map{{"ratio", 3}}));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->ratio, 3.0);
}

TEST(Binding, TimeBeforeTheEpochRoundsTowardThePast) {
  using Ms = std::chrono::sys_time<std::chrono::milliseconds>;
  using Days = std::chrono::sys_days;
  const Value t(Time{-1, 999'999'999});  // 1969-12-31T23:59:59.999999999Z
  auto ms = from_value<Ms>(t);
  ASSERT_TRUE(ms) << ms.status().message();
  EXPECT_EQ(ms->time_since_epoch().count(), -1);
  auto days = from_value<Days>(t);
  ASSERT_TRUE(days) << days.status().message();
  EXPECT_EQ(days->time_since_epoch().count(), -1);
  EXPECT_EQ(to_value(Ms(std::chrono::milliseconds(-1))).as_time(), (Time{-1, 999'000'000}));
}

TEST(Binding, ChangedFieldsHoldOnlyWhatDiffersAndNullForWhatWasRemoved) {
  const Everything before = full();
  Everything after = before;
  after.text = "new";
  after.maybe.reset();
  after.inner.n = 10;
  const Map changed = Bind<Everything>::binding().changed_fields(before, after);
  EXPECT_EQ(changed, (Map{{"inner", Value::record("Inner", Map{{"n", 10}, {"name", "in"}})},
                          {"maybe", Value()},
                          {"text", "new"}}));
  EXPECT_TRUE(Bind<Everything>::binding().changed_fields(before, before).empty());
}

TEST(Binding, ACheckAgainstTheSchemaFindsMisspeltFieldsAndMissingMembers) {
  auto schema = TypeRegistry::from_json_text(bound_types::kSchema);
  ASSERT_TRUE(schema) << schema.status().message();
  EXPECT_TRUE(Bind<Everything>::binding().check(*schema)) << Bind<Everything>::binding().check(*schema).message();
  EXPECT_TRUE(Bind<Inner>::binding().check(*schema));

  const auto misspelt = RecordBinding<Inner>("Inner").field("nmae", &Inner::name);
  EXPECT_EQ(misspelt.check(*schema).message(), "the schema's Inner has no field nmae");
  const auto unknown = RecordBinding<Inner>("Outer").field("name", &Inner::name);
  EXPECT_EQ(unknown.check(*schema).message(), "the schema has no record type Outer");

  auto older = TypeRegistry::from_json_text(R"({"enums": {"Color": ["Red"]},
      "records": {"Inner": {"fields": {"name": "string", "n": "int"}},
                  "Everything": {"fields": {"color": "Color", "list": "list<int>"}}}})");
  ASSERT_TRUE(older);
  const auto colored = RecordBinding<Everything>("Everything").field("color", &Everything::color);
  EXPECT_EQ(colored.check(*older).message(), "Everything.color: the schema's enum Color has no member Green");
}

}  // namespace
}  // namespace replog
