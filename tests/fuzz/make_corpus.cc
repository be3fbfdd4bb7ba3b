// Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/)
// with the real encoders, so that every seed is a valid value, frame, body or
// JSON text the fuzzer can mutate from. Deterministic: the same files each run.
//   fuzz_make_corpus OUT_DIR     (tools/fuzz.sh --write-corpus runs it)
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "fuzz_archive.h"
#include "fuzz_beacon.h"
#include "fuzz_proof.h"
#include "protocol/archive_format.h"
#include "protocol/invite.h"
#include "protocol/json_codec.h"
#include "protocol/msgpack_codec.h"
#include "protocol/origin_proof.h"
#include "protocol/update.h"
#include "protocol/wire.h"
#include "replog/schema.h"

namespace fs = std::filesystem;
using namespace replog;

namespace {

fs::path out_dir;
int written = 0;

void put(const char* target, const std::string& name, const std::string& bytes) {
  fs::create_directories(out_dir / target);
  std::ofstream(out_dir / target / name, std::ios::binary) << bytes;
  ++written;
}

Value task() {
  Map f;
  f["title"] = Value("write the fuzzers");
  f["due"] = Value(Time{1795617187, 123000000});
  f["tags"] = Value(List{Value("a"), Value("日本")});
  f["color"] = Value::enumeration("Color", "Red");
  f["weight"] = Value(2.5);
  f["meta"] = Value(Map{{"$x", Value(1)}, {"k", Value()}});
  return Value::record("Task", std::move(f));
}

Value nested(int depth) {
  Value v(1);
  for (int i = 0; i < depth; ++i) v = Value(List{v});
  return v;
}

struct Named {
  const char* name;
  Value value;
};

std::vector<Named> values() {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  return {
      {"null", Value()},
      {"true", Value(true)},
      {"int-small", Value(7)},
      {"int-negative", Value(-33)},
      {"int-min", Value(std::numeric_limits<int64_t>::min())},
      {"int-max", Value(std::numeric_limits<int64_t>::max())},
      {"float", Value(1.5)},
      {"float-integral", Value(3.0)},
      {"float-nan", Value(nan)},
      {"float-inf", Value(-inf)},
      {"float-negative-zero", Value(-0.0)},
      {"string", Value("héllo 🙂")},
      {"string-empty", Value("")},
      {"bytes", Value(Bytes{std::string("\0\1\xff", 3)})},
      {"time-32", Value(Time{1700000000, 0})},
      {"time-64", Value(Time{1795617187, 123000000})},
      {"time-96", Value(Time{-1, 999999999})},
      {"enum", Value::enumeration("Color", "Red")},
      {"record", task()},
      {"list", Value(List{Value(1), Value("two"), Value(3.0), Value()})},
      {"map-dollar-keys", Value(Map{{"$type", Value("not a tag")}, {"a", Value(List{})}})},
      {"nested-32", nested(32)},
      {"nested-64", nested(64)},
  };
}

Update update(uint64_t hlc, uint64_t origin, uint64_t seq, const char* method, const Value& arg) {
  return Update::make(UpdateId{hlc, origin}, seq, method, encode_msgpack(arg));
}

void write_values() {
  for (const auto& [name, v] : values()) put("values", name, encode_msgpack(v));
  put("values", "nested-65-refused", encode_msgpack(nested(65)));
  // Valid but not canonical: the decoder takes them, the encoder never writes them.
  put("values", "noncanonical-float32", std::string("\xca\x3f\xc0\x00\x00", 5));
  put("values", "noncanonical-uint64", std::string("\xcf\0\0\0\0\0\0\0\x05", 9));
  put("values", "noncanonical-map-order", std::string("\x82\xa1" "b\x01\xa1" "a\x02", 7));
}

void write_frames() {
  using namespace replog::wire;
  Update a = update(0x18000000001, 0x11, 1, "set", Value(Map{{"path", Value("x")}, {"value", Value(1)}}));
  Update b = update(0x18000000002, 0x11, 2, "create", Value(Map{{"record", task()}}));
  Update c = update(0x18000000003, 0x22, 9, "inc", Value(Map{{"path", Value("n")}, {"by", Value(-1)}}));
  put("frames", "hello", encode(Hello{"cluster-a", 0x11, "tcp://127.0.0.1:7001", 1 << 20, 4 << 20}));
  put("frames", "error", encode(Error{ErrorCode::kCluster, "another cluster"}));
  put("frames", "vector-empty", encode(Vector{0, 1, false, {}}));
  put("frames", "vector", encode(Vector{1, 2, true, {{0x11, 2}, {0x22, 9}, {~0ULL - 1, ~0ULL}}}));
  put("frames", "request", encode(Request{0x11, 1, 2, 1 << 20}));
  put("frames", "updates", encode(Updates{0x11, true, {a, b}, std::nullopt}));
  put("frames", "updates-empty", encode(Updates{0x22, false, {}, std::nullopt}));
  put("frames", "push", encode(Push{{c}, {}}));
  // Signed origins: a range and a push with the heads they end at (shape only).
  const proof::Head head{0x11, 2, proof::Chain{}, 0, std::string(64, '\x55'), std::string(32, '\x66'), {}, {}};
  put("frames", "updates-signed", encode(Updates{0x11, false, {a, b}, head}));
  put("frames", "push-signed", encode(Push{{c}, {head}}));
  put("frames", "join", encode(Join{std::string(32, '\x11'), std::string(32, '\x22'), "laptop"}));
  put("frames", "join-reply", encode(JoinReply{true, std::string(32, '\x33'), "cluster-a", std::string(32, '\x44')}));
  put("frames", "join-refused", encode(JoinReply{}));
  put("frames", "tree", encode(Tree{{0x11}, {0x22}, {{0x11, 2}}, std::vector<uint64_t>{0x22, 0x33}}));
  // A compressed body (feature bit 4): updates and a head, as a catch-up sends them.
  if (auto z = compress(encode(Updates{0x11, false, {a, b, a, b}, head}))) put("frames", "updates-compressed", *z);
  std::string v2 = encode(Request{1, 1, 1, 1});
  v2[1] = 2;  // [2, type, body]: a version this node does not speak
  put("frames", "version-2-refused", v2);
}

void write_bodies() {
  Update a = update(5, 6, 1, "set", Value(Map{{"path", Value("a.b")}, {"value", task()}}));
  Update b = update(7, 6, 2, "retire", Value());
  Update c = Update::make(UpdateId{8, 6}, 3, "bad-arg", std::string("\xc1", 1));  // arg checked in replay only
  put("bodies", "body-set", a.body());
  put("bodies", "body-null-arg", b.body());
  put("bodies", "body-undecodable-arg", c.body());
  std::string one, three;
  append_envelope(a, one);
  put("bodies", "envelope", one);
  append_envelope(a, three);
  append_envelope(b, three);
  append_envelope(c, three);
  put("bodies", "envelope-stream", three);
  // A body that fails ([0, ...]: seq 0) between two that read: the stream goes on.
  std::string bad = Update::make(UpdateId{9, 6}, 1, "set", "").body();
  bad[1] = 0;
  std::string mixed;
  append_envelope(b, mixed);
  mixed += std::string("\x93\x09\x06\xc4") + static_cast<char>(bad.size()) + bad;
  append_envelope(c, mixed);
  put("bodies", "envelope-stream-bad-body", mixed);
}

void write_json() {
  for (const auto& [name, v] : values()) {
    if (std::string(name) == "nested-64") continue;  // deeper than typed JSON's limit once tagged
    put("json", std::string("value-") + name, to_typed_json(v));
  }
  put("json", "plain", R"({"a": [1, 2.5, "x", null, true], "b": {"c": -7}})");
  put("json", "tags", R"({"due": {"$time": "2026-11-25T14:33:07.123+02:00"}, "c": {"$enum": "Size.M"},)"
                      R"( "raw": {"$map": {"$k": 1}}, "f": {"$float": "Infinity"}})");
  put("json", "task-resolves", to_typed_json(task()));
  put("json", "blob-resolves", R"({"$type": "Blob", "data": {"$bytes": "AAH/"}, "ok": true, "none": null,)"
                               R"( "sizes": {"a": {"$enum": "Size.L"}}})");
  put("json", "schema", R"({"enums": {"Color": ["Red", "Green"]}, "records": {"Task": {"fields":)"
                        R"( {"title": "string", "tags": "list<map<Color>>", "sub": "Task"},)"
                        R"( "required": ["title"], "unique": ["title"]}}})");
  std::string deep;
  for (size_t i = 0; i < 65; ++i) deep += "list<";
  deep += "int" + std::string(65, '>');
  put("json", "schema-type-too-deep", R"({"records": {"A": {"fields": {"b": ")" + deep + R"("}}}})");
  put("json", "schema-unknown-type", R"({"records": {"A": {"fields": {"b": "B"}}}})");
}

void write_beacon() {
  using replog::fuzz::beacon_device;
  const BeaconKeys keys = replog::fuzz::beacon_keys();
  BeaconNonce nonce{};
  for (size_t i = 0; i < nonce.size(); ++i) nonce[i] = static_cast<unsigned char>(i * 37 + 1);
  put("beacon", "device0", encode_beacon(keys, beacon_device(0), 21029, nonce));
  put("beacon", "device1-port1", encode_beacon(keys, beacon_device(1), 1, nonce));
  put("beacon", "unknown-device", encode_beacon(keys, std::string(32, 'z'), 7400, nonce));
  const BeaconKeys other = BeaconKeys::from(*ClusterSecret::from_bytes(std::string(32, 'o'), "other"));
  put("beacon", "other-cluster", encode_beacon(other, beacon_device(0), 21029, nonce));
  std::string v2 = encode_beacon(keys, beacon_device(0), 21029, nonce);
  v2[4] = 2;
  put("beacon", "version-2", v2);
  put("beacon", "short", v2.substr(0, 20));
}

void write_invites() {
  invite::InviteLine line{"b755c768b006290ea21654ae91847016", std::string(32, '\x5a'), std::string(16, '\x07'),
                          {"tcp://192.168.1.20:7701"}};
  put("invite", "one-endpoint", invite::format_line(line) + "\n");
  line.cluster = "c-1";
  line.endpoints = {"tcp://10.0.0.2:7701", "tcp://[2001:db8::2]:7701", "tcp://laptop.local:65535"};
  put("invite", "three-endpoints", invite::format_line(line));
  line.endpoints.assign(invite::kMaxEndpoints, "tcp://" + std::string(240, 'h') + ":1");
  put("invite", "largest", invite::format_line(line));
  std::string damaged = invite::format_line(line);
  damaged[40] = damaged[40] == 'a' ? 'b' : 'a';
  put("invite", "check-fails", damaged);
  put("invite", "another-version", "replog-invite-2:aaaa");
}

// Heads of each form and evidence of both kinds that verify in fuzz_proof's
// cluster, and a few that do not.
void write_proof() {
  using namespace replog::proof;
  using replog::fuzz::kProofCluster;
  using replog::fuzz::proof_keys;
  const auto& k = proof_keys(0);
  const auto& d = proof_keys(1);
  const auto& fresh = proof_keys(2);
  const OriginId legacy = 0x0123456789abcdefULL;
  auto keyed = [](const replog::fuzz::ProofKeys& key, OriginId origin, uint64_t seq, const Chain& c, uint8_t flags) {
    Head h = sign_head(origin, seq, c, flags, key.secret);
    h.key = key.pub;
    return h;
  };
  // Updates seq first.. of K's origin, their hlcs rising with seq (`late` puts a
  // branch's hlcs one millisecond later than the other's).
  auto branch = [&k](uint64_t first, size_t n, const char* tag, uint64_t late = 0) {
    std::vector<Update> out;
    for (size_t i = 0; i < n; ++i)
      out.push_back(update(((uint64_t{1'795'617'187'000} + first + i + late) << 16), origin_of_key(k.pub), first + i,
                           "set", Value(Map{{"path", Value(tag)}, {"value", Value(int64_t(i))}})));
    return out;
  };
  auto over = [](Chain c, const std::string& key, const std::vector<Update>& us) {
    for (const auto& u : us) chain_step(c, key, u.id().hlc, u.body());
    return c;
  };

  const Chain c2 = over(chain_start(kProofCluster, k.pub), k.pub, branch(1, 2, "x"));
  Head h = sign_head(origin_of_key(k.pub), 2, c2, 0, k.secret);
  put("proof", "head-5", encode_head(h));
  h.key = k.pub;
  put("proof", "head-6", encode_head(h));
  Head certified = keyed(fresh, origin_of_key(fresh.pub), 1, chain_start(kProofCluster, fresh.pub), kFinal);
  certified.device = d.pub;
  certified.cert = sign_cert(kProofCluster, fresh.pub, d.secret);
  const std::string eight = encode_head(certified);
  put("proof", "head-8", eight);
  put("proof", "head-legacy-final", encode_head(keyed(d, legacy, 9, c2, kLegacy | kFinal)));
  put("proof", "head-7-refused", "\x97" + eight.substr(1, eight.size() - 1 - 66));

  for (uint64_t shared : {0, 2}) {
    const Chain base = over(chain_start(kProofCluster, k.pub), k.pub, branch(1, shared, "common"));
    const auto a = branch(shared + 1, 2, "a"), b = branch(shared + 1, 3, "b");
    const Evidence e =
        chain_evidence(keyed(k, origin_of_key(k.pub), shared + 2, over(base, k.pub, a), 0),
                       keyed(k, origin_of_key(k.pub), shared + 3, over(base, k.pub, b), 0), shared + 1, base, a, b);
    put("proof", "evidence-chain-seq" + std::to_string(shared + 1), encode_evidence(e));
  }
  {
    // Branches whose first updates hold one body at two hlcs: a fork at seq 3.
    const Chain base = over(chain_start(kProofCluster, k.pub), k.pub, branch(1, 2, "common"));
    const auto a = branch(3, 2, "a"), b = branch(3, 2, "a", 1000);
    const Evidence e = chain_evidence(keyed(k, origin_of_key(k.pub), 4, over(base, k.pub, a), 0),
                                      keyed(k, origin_of_key(k.pub), 4, over(base, k.pub, b), 0), 3, base, a, b);
    put("proof", "evidence-chain-hlc-only", encode_evidence(e));
  }
  put("proof", "evidence-keys",
      encode_evidence(key_evidence(keyed(k, legacy, 5, chain_start(kProofCluster, k.pub), kLegacy),
                                   keyed(d, legacy, 9, chain_start(kProofCluster, d.pub), kLegacy))));
  // A legacy claim on an id derived from another key: decodes, proves nothing.
  put("proof", "evidence-keys-false-legacy-claim",
      encode_evidence(key_evidence(keyed(k, origin_of_key(k.pub), 3, c2, 0),
                                   keyed(d, origin_of_key(k.pub), 9, chain_start(kProofCluster, d.pub), kLegacy))));
}

}  // namespace

// fuzz_archive seeds: byte 0 picks the decoder (0 sealed, 1 segment, 2 snapshot, 3 names).
void write_archive() {
  using replog::fuzz::proof_keys;
  const auto& k = proof_keys(0);
  const OriginId origin = proof::origin_of_key(k.pub);
  archive::Segment seg;
  seg.name = {origin, 1, 2};
  proof::Chain c = proof::chain_start(replog::fuzz::kArchiveCluster, k.pub);
  for (uint64_t seq = 1; seq <= 2; ++seq) {
    seg.updates.push_back(update((uint64_t{1'795'617'187'000} + seq) << 16, origin, seq, "set",
                                 Value(Map{{"path", Value("a")}, {"value", Value(int64_t(seq))}})));
    proof::chain_step(c, k.pub, seg.updates.back().id().hlc, seg.updates.back().body());
  }
  seg.head = proof::sign_head(origin, 2, c, 0, k.secret);
  seg.head.key = k.pub;
  const std::string plain = archive::encode_segment(seg);
  put("archive", "segment", "\x01" + plain);
  put("archive", "sealed-segment",
      "\x00" + archive::seal(replog::fuzz::archive_key(), archive::Kind::kSegment, replog::fuzz::archive_context(), plain));
  put("archive", "sealed-empty",
      "\x00" + archive::seal(replog::fuzz::archive_key(), archive::Kind::kSegment, replog::fuzz::archive_context(), ""));
  archive::Snapshot snap;
  snap.cut = std::string(16, '\x01');
  snap.vector = {{origin, 2}};
  snap.state_hash = std::string(32, '\x02');
  snap.heads = {seg.head};
  snap.checkpoint = "state";
  put("archive", "snapshot", "\x02" + archive::encode_snapshot(snap, replog::fuzz::kArchiveCluster, k.secret));
  put("archive", "name-segment", "\x03" + archive::segment_key(seg.name));
  put("archive", "name-feed", "\x03" + archive::feed_key({1'795'617'187'000, origin, 2}));
  put("archive", "name-snapshot",
      "\x03" + archive::snapshot_key({snap.cut, archive::vector_digest(snap.vector), std::string(8, '\x03')}));
  put("archive", "name-origin", "\x03" + archive::origin_prefix(origin));
}

// Request heads and bodies as fuzz_http reads them: METHOD TARGET, Host,
// Origin ("-": none), Authorization, Cookie, X-Replog-CSRF, then the body.
void write_http() {
  const std::string token = "0123456789abcdef0123456789abcdef";
  const std::string csrf = "fedcba9876543210fedcba9876543210";
  put("http", "get-status", "GET /api/status\n127.0.0.1:8380\n-\n\n\n\n");
  put("http", "get-state-query", "GET /api/state?path=a.b%2Ec&form=info\nlocalhost:8380\nhttp://localhost:8380\n\n\n\n");
  put("http", "rebinding", "GET /\nevil.example:8380\n-\n\n\n\n");
  put("http", "foreign-origin", "GET /api/events\n127.0.0.1:8380\nhttp://evil.example\n\n\n\n");
  put("http", "call", "POST /api/call\n127.0.0.1:8380\nhttp://127.0.0.1:8380\n\n\n" + csrf + "\n" +
                          R"({"method": "set", "arg": {"path": "t.due", "value": {"$time": "2026-11-25T14:33:07.123Z"}}})");
  put("http", "call-no-csrf", "POST /api/call\n127.0.0.1:8380\n-\n\n\n\n{\"method\": \"inc\", \"arg\": {\"path\": \"n\", \"by\": 1}}");
  put("http", "resolve", "POST /api/resolve\n[::1]:8380\n-\n\n\n" + csrf + "\n{\"update\": \"0123456789abcdef0123456789abcdef\"}");
  put("http", "token-bearer", "GET /metrics\n127.0.0.2:8380\n-\nBearer " + token + "\n\n\n");
  put("http", "token-cookie", "GET /app.js\n127.0.0.2:8380\n-\n\na=1; replog_token=" + token + "\n\n");
  put("http", "token-query", "GET /?token=" + token + "&x=%41\n127.0.0.2:8380\n-\n\n\n\n");
  put("http", "typed-arg", "POST /api/call\n127.0.0.1:8380\n-\n\n\n" + csrf + "\n" +
                               to_typed_json(Value(Map{{"method", Value("create")}, {"arg", task()}})));
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];
  write_values();
  write_frames();
  write_bodies();
  write_json();
  write_beacon();
  write_invites();
  write_proof();
  write_archive();
  write_http();
  std::printf("%d seeds written under %s\n", written, out_dir.string().c_str());
  return 0;
}
