// Codec tests: round trips through MessagePack and typed JSON keep every value
// and its type; untrusted input is refused with an error naming the place.
#include <gtest/gtest.h>

#include <cmath>

#include "protocol/json_codec.h"
#include "protocol/msgpack_codec.h"
#include "random_value.h"
#include "test_seed.h"

namespace replog {
namespace {

using testing::RandomValues;

std::string hex(const std::string& hex_text) {
  std::string out;
  for (size_t i = 0; i < hex_text.size(); i += 2) out += static_cast<char>(std::stoi(hex_text.substr(i, 2), nullptr, 16));
  return out;
}

TEST(ValueCodec, RandomValuesRoundTripThroughMessagePack) {
  auto rng = testing::seeded_rng();
  RandomValues gen(rng);
  for (int i = 0; i < 5000; ++i) {
    Value v = gen.any(4);
    std::string bytes = encode_msgpack(v);
    auto back = decode_msgpack(bytes);
    ASSERT_TRUE(back) << back.status().message() << " for " << to_typed_json(v);
    ASSERT_EQ(*back, v) << to_typed_json(v);
    ASSERT_EQ(encode_msgpack(*back), bytes) << "encoding is not deterministic";
  }
}

TEST(ValueCodec, RandomValuesRoundTripThroughTypedJson) {
  auto rng = testing::seeded_rng();
  RandomValues gen(rng);
  for (int i = 0; i < 5000; ++i) {
    Value v = gen.any(4);
    std::string text = to_typed_json(v);
    auto back = parse_typed_json(text);
    ASSERT_TRUE(back) << back.status().message() << " for " << text;
    ASSERT_EQ(*back, v) << text;
    ASSERT_EQ(back->kind(), v.kind());
  }
}

TEST(ValueCodec, TimeComesBackAsTimeNotString) {
  auto v = parse_typed_json(R"({"due": {"$time": "2026-11-25T14:33:07.123Z"}})");
  ASSERT_TRUE(v) << v.status().message();
  auto back = decode_msgpack(encode_msgpack(*v));
  ASSERT_TRUE(back);
  const Value* due = back->find("due");
  ASSERT_NE(due, nullptr);
  ASSERT_EQ(due->kind(), Value::Kind::kTime);
  EXPECT_EQ(due->as_time().to_millis(), 1795617187123LL);
  EXPECT_EQ(to_info_json(*back), R"({"due":"2026-11-25T14:33:07.123Z"})");
}

TEST(ValueCodec, TimeUsesSmallestTimestampForm) {
  // 32-bit seconds: fixext 4 (d6 ff), 64-bit: fixext 8 (d7 ff), 96-bit: ext 8 with 12 bytes (c7 0c ff).
  EXPECT_EQ(encode_msgpack(Value(Time{1, 0})), hex("d6ff00000001"));
  EXPECT_EQ(encode_msgpack(Value(Time{1, 1})), hex("d7ff0000000400000001"));
  EXPECT_EQ(encode_msgpack(Value(Time{-1, 0})), hex("c70cff00000000ffffffffffffffff"));
}

TEST(ValueCodec, IntegersUseSmallestEncodingAndFloatsFloat64) {
  EXPECT_EQ(encode_msgpack(Value(5)), hex("05"));
  EXPECT_EQ(encode_msgpack(Value(-1)), hex("ff"));
  EXPECT_EQ(encode_msgpack(Value(300)), hex("cd012c"));
  EXPECT_EQ(encode_msgpack(Value(1.0)), hex("cb3ff0000000000000"));
}

TEST(ValueCodec, EnumAndRecordUseApplicationExtensions) {
  std::string e = encode_msgpack(Value::enumeration("Color", "Red"));
  // ext 8, len 11, type 1, payload [ "Color", "Red" ]
  EXPECT_EQ(e, hex("c70b0192a5436f6c6f72a3526564"));
  std::string r = encode_msgpack(Value::record("T", Map{{"a", Value(1)}}));
  EXPECT_EQ(r, hex("c7070292a15481a16101"));
}

TEST(ValueCodec, MapKeysAreEncodedInByteOrder) {
  Map m{{"b", Value(1)}, {"a", Value(2)}, {"é", Value(3)}, {"Z", Value(4)}};
  EXPECT_EQ(encode_msgpack(Value(m)), hex("84a15a04a16102a16201a2c3a903"));
}

TEST(ValueCodec, FloatThatIsIntegralStaysFloatInJson) {
  auto v = parse_typed_json(to_typed_json(Value(2.0)));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->kind(), Value::Kind::kFloat);
  auto i = parse_typed_json("2");
  ASSERT_TRUE(i);
  EXPECT_EQ(i->kind(), Value::Kind::kInt);
}

TEST(ValueCodec, InfoJsonIsLossyForDisplay) {
  Map m{{"c", Value::enumeration("Color", "Red")},
        {"t", Value(Time::from_millis(0))},
        {"b", Value(Bytes{"hi"})},
        {"r", Value::record("Task", Map{{"x", Value(1)}})},
        {"n", Value(std::nan(""))}};
  EXPECT_EQ(to_info_json(Value(m)), R"({"b":"aGk=","c":"Red","n":null,"r":{"x":1},"t":"1970-01-01T00:00:00Z"})");
}

TEST(ValueCodec, DollarKeysAreWrappedSoTheyRoundTrip) {
  Value v(Map{{"$time", Value("not a tag")}});
  std::string text = to_typed_json(v);
  EXPECT_EQ(text, R"({"$map":{"$time":"not a tag"}})");
  auto back = parse_typed_json(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, v);
}

// --- untrusted MessagePack ---------------------------------------------------

TEST(MsgpackDecode, HugeDeclaredArrayFailsFastWithoutAllocating) {
  // array 32 declaring 2^32-1 elements, in 10 bytes.
  std::string evil = hex("ddffffffff") + hex("c0c0c0c0c0");
  auto v = decode_msgpack(evil);
  ASSERT_FALSE(v);
  EXPECT_NE(v.status().message().find("more than the input holds"), std::string::npos) << v.status().message();
}

TEST(MsgpackDecode, HugeDeclaredMapFailsFast) {
  auto v = decode_msgpack(hex("df7fffffff") + hex("a161c0"));
  ASSERT_FALSE(v);
}

TEST(MsgpackDecode, HugeDeclaredStringIsTruncatedInput) {
  auto v = decode_msgpack(hex("dbffffffff") + "abc");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.status().code(), Status::Code::kCorruption);
}

TEST(MsgpackDecode, DeepNestingIsRefused) {
  std::string deep(100, static_cast<char>(0x91));
  deep += static_cast<char>(0xc0);
  auto v = decode_msgpack(deep);
  ASSERT_FALSE(v);
  EXPECT_NE(v.status().message().find("nesting deeper"), std::string::npos);
}

TEST(MsgpackDecode, DeepNestingThroughExtensionsIsRefused) {
  // A record whose field holds a record whose field ... 80 levels.
  Value v(1);
  for (int i = 0; i < 80; ++i) v = Value::record("T", Map{{"f", v}});
  auto back = decode_msgpack(encode_msgpack(v));
  ASSERT_FALSE(back);
}

TEST(MsgpackDecode, ErrorNamesThePath) {
  // {"tasks": {"t1": {"due": <timestamp ext with 5 bytes>}}}
  std::string bad = hex("81a57461736b7381a2743181a3647565") + hex("c705ff0000000000");
  auto v = decode_msgpack(bad);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.status().message(), "tasks.t1.due: timestamp extension of 5 bytes (expected 4, 8 or 12)");
}

TEST(MsgpackDecode, NonStringMapKeyIsRefused) {
  auto v = decode_msgpack(hex("810102"));
  ASSERT_FALSE(v);
  EXPECT_NE(v.status().message().find("map key is not a string"), std::string::npos);
}

TEST(MsgpackDecode, DuplicateMapKeyIsRefused) {
  auto v = decode_msgpack(hex("82a16101a16102"));
  ASSERT_FALSE(v);
  EXPECT_NE(v.status().message().find("duplicate map key"), std::string::npos);
}

TEST(MsgpackDecode, InvalidUtf8StringIsRefused) {
  auto v = decode_msgpack(hex("a2c328"));
  ASSERT_FALSE(v);
  EXPECT_NE(v.status().message().find("UTF-8"), std::string::npos);
}

TEST(MsgpackDecode, UnknownExtensionIsRefused) {
  auto v = decode_msgpack(hex("d40700"));
  ASSERT_FALSE(v);
  EXPECT_NE(v.status().message().find("unknown extension type 7"), std::string::npos);
}

TEST(MsgpackDecode, TrailingBytesAreRefused) {
  EXPECT_FALSE(decode_msgpack(hex("0101")));
}

TEST(MsgpackDecode, TruncatedInputIsRefusedAtEveryCut) {
  auto rng = testing::seeded_rng();
  RandomValues gen(rng);
  for (int i = 0; i < 300; ++i) {
    std::string bytes = encode_msgpack(gen.any(3));
    for (size_t cut = 0; cut < bytes.size(); ++cut) EXPECT_FALSE(decode_msgpack(bytes.substr(0, cut)));
  }
}

TEST(MsgpackDecode, RandomBytesNeverCrash) {
  auto rng = testing::seeded_rng();
  for (int i = 0; i < 20000; ++i) {
    std::string junk(rng() % 40, '\0');
    for (auto& c : junk) c = static_cast<char>(rng() & 0xff);
    auto v = decode_msgpack(junk);
    if (v) {
      EXPECT_TRUE(decode_msgpack(encode_msgpack(*v)).is_ok());
    }
  }
}

// --- typed JSON from people ---------------------------------------------------

TEST(TypedJson, MalformedJsonIsOneReadableLine) {
  auto v = parse_typed_json(R"({"a": )");
  ASSERT_FALSE(v);
  EXPECT_NE(v.status().message().find("malformed JSON"), std::string::npos);
  EXPECT_EQ(v.status().message().find('\n'), std::string::npos);
}

TEST(TypedJson, BadTimeNamesThePath) {
  auto v = parse_typed_json(R"({"tasks": {"t1": {"due": {"$time": "tomorrow"}}}})");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.status().message(), "tasks.t1.due: not an ISO-8601 time: \"tomorrow\"");
}

TEST(TypedJson, TimeWithoutZoneIsRefused) {
  auto v = parse_typed_json(R"({"$time": "2026-11-25T10:00:00"})");
  ASSERT_FALSE(v);
  EXPECT_NE(v.status().message().find("no zone"), std::string::npos);
}

TEST(TypedJson, TimeWithOffsetIsConvertedToUtc) {
  auto v = parse_typed_json(R"({"$time": "2026-11-25T10:00:00+02:00"})");
  ASSERT_TRUE(v);
  EXPECT_EQ(format_iso8601(v->as_time()), "2026-11-25T08:00:00Z");
}

TEST(TypedJson, UnknownTagIsRefused) {
  auto v = parse_typed_json(R"([1, {"$date": "x"}])");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.status().message(), "[1]: unknown tag \"$date\"");
}

TEST(TypedJson, EnumNeedsTypeAndMember) {
  auto v = parse_typed_json(R"({"c": {"$enum": "Red"}})");
  ASSERT_FALSE(v);
  EXPECT_NE(v.status().message().find("Type.Member"), std::string::npos);
}

TEST(TypedJson, IntegerBeyondInt64IsRefused) {
  EXPECT_FALSE(parse_typed_json("18446744073709551615"));
  auto ok = parse_typed_json("-9223372036854775808");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->as_int(), std::numeric_limits<int64_t>::min());
}

TEST(TypedJson, DeepNestingIsRefused) {
  std::string deep(200, '[');
  deep += std::string(200, ']');
  auto v = parse_typed_json(deep);
  ASSERT_FALSE(v);
  EXPECT_NE(v.status().message().find("nesting deeper"), std::string::npos);
}

TEST(TypedJson, BadBase64IsRefused) {
  EXPECT_FALSE(parse_typed_json(R"({"$bytes": "***"})"));
}

}  // namespace
}  // namespace replog
