// The trust list (storage/trust.h): its file, what loading refuses, who may
// write it, what a failed write leaves, readers beside a writer; and the local
// API's trust ops (node/api/trust_ops.h) over a real node.
#include "storage/trust.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "node/api/local_api.h"
#include "node/engine/node.h"
#include "protocol/device_id.h"
#include "storage/data_dir.h"
#include "storage/identity.h"
#include "support/faulty_env.h"
#include "temp_dir.h"
#include "test_seed.h"

namespace replog {
namespace {

using testing::FaultyEnv;
using testing::TempDir;

std::string key_of_byte(unsigned char first, unsigned char rest = 0x11) {
  std::string key(kDeviceKeyBytes, static_cast<char>(rest));
  key[0] = static_cast<char>(first);
  return key;
}

std::vector<std::string> random_keys(int count) {
  auto rng = testing::seeded_rng();
  std::vector<std::string> keys;
  for (int k = 0; k < count; ++k) {
    std::string key(kDeviceKeyBytes, '\0');
    for (auto& c : key) c = static_cast<char>(rng() & 0xff);
    keys.push_back(key);
  }
  return keys;
}

TrustedDevice device(std::string key, std::string name = "", int64_t added_ms = 1'700'000'000'000,
                     std::string how = "manual") {
  return TrustedDevice{std::move(key), std::move(name), added_ms, std::move(how), 0, ""};
}

std::unique_ptr<TrustStore> open_ok(const std::string& path, Env& env = Env::posix()) {
  auto store = TrustStore::open(path, env);
  EXPECT_TRUE(store) << store.status().message();
  return store ? std::move(store).value() : nullptr;
}

std::vector<std::string> keys_in(const TrustStore& store) {
  std::vector<std::string> keys;
  for (const auto& d : store.list()) keys.push_back(d.public_key);
  return keys;
}

unsigned mode_of(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

// --- what is kept -------------------------------------------------------------------

TEST(TrustStore, AMissingFileIsAnEmptyListAndStaysMissing) {
  TempDir dir;
  auto store = open_ok(dir.sub("trust.json"));
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->list().empty());
  EXPECT_FALSE(store->contains(key_of_byte(1)));
  EXPECT_FALSE(Env::posix().file_exists(dir.sub("trust.json")));
}

TEST(TrustStore, DevicesComeBackAfterReopenOrderedByKey) {
  TempDir dir;
  const std::string path = dir.sub("trust.json");
  auto store = open_ok(path);
  // Added out of order; 0xff.. prints as 7..., which sorts before A... as text.
  ASSERT_TRUE(store->add(device(key_of_byte(0xff), "phone", 3, "introducer")));
  ASSERT_TRUE(store->add(device(key_of_byte(0x00), "laptop", 1, "manual")));
  ASSERT_TRUE(store->add(device(key_of_byte(0x80), "büro ☕", 2, "invite")));
  auto again = open_ok(path);
  ASSERT_TRUE(again);
  auto devices = again->list();
  ASSERT_EQ(devices.size(), 3u);
  EXPECT_EQ(devices[0].public_key, key_of_byte(0x00));
  EXPECT_EQ(devices[1].public_key, key_of_byte(0x80));
  EXPECT_EQ(devices[2].public_key, key_of_byte(0xff));
  EXPECT_EQ(devices[1].name, "büro ☕");
  EXPECT_EQ(devices[1].added_ms, 2);
  EXPECT_EQ(devices[1].how, "invite");
  EXPECT_EQ(devices[2].how, "introducer");
  // Key order is the ids' order read in base32 (A-Z, then 2-7).
  EXPECT_EQ(format_device_id(devices[0].public_key)[0], 'A');
  EXPECT_EQ(format_device_id(devices[1].public_key)[0], 'Q');
  EXPECT_EQ(format_device_id(devices[2].public_key)[0], '7');
  auto found = again->find(key_of_byte(0x80));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->name, "büro ☕");
}

// Pinned so that the format in docs/STORAGE.md cannot drift unseen.
TEST(TrustStore, FileIsOwnerOnlyInTheDocumentedForm) {
  TempDir dir;
  const std::string path = dir.sub("trust.json");
  std::string counting;
  for (int i = 0; i < 32; ++i) counting.push_back(static_cast<char>(i));
  ::umask(0);  // the file's mode must not depend on the umask
  auto store = open_ok(path);
  Status added = store->add(device(counting, "laptop", 1'700'000'000'000));
  ::umask(022);
  ASSERT_TRUE(added) << added.message();
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(*Env::posix().read_file(path),
            "{\n"
            "  \"version\": 2,\n"
            "  \"devices\": [\n"
            "    {\n"
            "      \"id\": \"AAAQEAY-EAUDAO5-CAJBIFQ-YDIOB4T-IBCEQTC-QKRMFYR-YDENBWH-A5DYPQE\",\n"
            "      \"name\": \"laptop\",\n"
            "      \"added_ms\": 1700000000000,\n"
            "      \"how\": \"manual\",\n"
            "      \"changed_ms\": 1700000000000,\n"
            "      \"by\": \"\"\n"
            "    }\n"
            "  ],\n"
            "  \"removed\": []\n"
            "}\n");
  // A removal keeps a tombstone, newer than the entry it replaces, naming its author.
  ASSERT_TRUE(*store->remove(counting, key_of_byte(0x80), 1'600'000'000'000));
  EXPECT_EQ(*Env::posix().read_file(path),
            "{\n"
            "  \"version\": 2,\n"
            "  \"devices\": [],\n"
            "  \"removed\": [\n"
            "    {\n"
            "      \"id\": \"AAAQEAY-EAUDAO5-CAJBIFQ-YDIOB4T-IBCEQTC-QKRMFYR-YDENBWH-A5DYPQE\",\n"
            "      \"name\": \"laptop\",\n"
            "      \"removed_ms\": 1700000000001,\n"
            "      \"by\": \"" + format_device_id(key_of_byte(0x80)) + "\"\n"
            "    }\n"
            "  ]\n"
            "}\n");
}

TEST(TrustStore, AddingATrustedDeviceRenamesItAndKeepsTheRest) {
  TempDir dir;
  auto store = open_ok(dir.sub("trust.json"));
  const std::string key = key_of_byte(7);
  ASSERT_TRUE(store->add(device(key, "laptop", 100, "invite")));
  ASSERT_TRUE(store->add(device(key, "desk", 200, "manual")));
  auto renamed = store->find(key);
  ASSERT_TRUE(renamed);
  EXPECT_EQ(renamed->name, "desk");
  EXPECT_EQ(renamed->added_ms, 100);
  EXPECT_EQ(renamed->how, "invite");
  ASSERT_TRUE(store->add(device(key, "", 300)));  // an empty name keeps the old one
  EXPECT_EQ(store->find(key)->name, "desk");
  EXPECT_EQ(store->list().size(), 1u);
  EXPECT_EQ(open_ok(dir.sub("trust.json"))->find(key)->name, "desk");
}

TEST(TrustStore, RemoveSaysWhetherTheDeviceWasTrusted) {
  TempDir dir;
  auto store = open_ok(dir.sub("trust.json"));
  ASSERT_TRUE(store->add(device(key_of_byte(1))));
  ASSERT_TRUE(store->add(device(key_of_byte(2))));
  auto removed = store->remove(key_of_byte(1));
  ASSERT_TRUE(removed);
  EXPECT_TRUE(*removed);
  auto again = store->remove(key_of_byte(1));
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  EXPECT_FALSE(*store->remove(key_of_byte(3)));
  EXPECT_EQ(keys_in(*store), std::vector<std::string>{key_of_byte(2)});
  EXPECT_EQ(keys_in(*open_ok(dir.sub("trust.json"))), std::vector<std::string>{key_of_byte(2)});
}

TEST(TrustStore, GenerationGrowsByOneWithEveryChangeAndOnlyThen) {
  TempDir dir;
  auto store = open_ok(dir.sub("trust.json"));
  const uint64_t g = store->generation();
  ASSERT_TRUE(store->add(device(key_of_byte(1), "a")));
  EXPECT_EQ(store->generation(), g + 1);
  ASSERT_TRUE(store->add(device(key_of_byte(1), "b")));  // a rename
  EXPECT_EQ(store->generation(), g + 2);
  ASSERT_TRUE(store->add(device(key_of_byte(1), "b")));  // the same name: no change
  ASSERT_TRUE(store->add(device(key_of_byte(1), "")));   // no name: no change
  EXPECT_EQ(store->generation(), g + 2);
  ASSERT_TRUE(*store->remove(key_of_byte(1)));
  EXPECT_EQ(store->generation(), g + 3);
  ASSERT_FALSE(*store->remove(key_of_byte(1)));  // removed already: no change
  EXPECT_EQ(store->generation(), g + 3);
  ASSERT_FALSE(*store->remove(key_of_byte(2)));  // never trusted: a tombstone, so that the removal spreads
  EXPECT_EQ(store->generation(), g + 4);
  EXPECT_FALSE(store->add(device(key_of_byte(1), std::string(65, 'x'))));  // refused: no change
  EXPECT_EQ(store->generation(), g + 4);
}

// --- what is refused ------------------------------------------------------------------

TEST(TrustStore, AddRefusesWhatTheFileCouldNotHold) {
  TempDir dir;
  const std::string path = dir.sub("trust.json");
  auto store = open_ok(path);
  std::string e_acute = "\xc3\xa9";
  std::string name64, name66;
  for (int i = 0; i < 32; ++i) name64 += e_acute;
  name66 = name64 + e_acute;
  struct Case {
    TrustedDevice device;
    std::string says;
  };
  const std::vector<Case> cases = {
      {device(std::string(31, 'k')), "public key: 31 bytes, want 32"},
      {device(std::string(33, 'k')), "public key: 33 bytes, want 32"},
      {device(key_of_byte(1), std::string(65, 'x')), "name: 65 bytes, at most 64"},
      {device(key_of_byte(1), name66), "name: 66 bytes"},
      {device(key_of_byte(1), "bad \xc3"), "name: not valid UTF-8"},
      {device(key_of_byte(1), "bad \xed\xa0\x80"), "name: not valid UTF-8"},  // a surrogate
      {device(key_of_byte(1), "two\nlines"), "name: a control character at byte 4"},
      {device(key_of_byte(1), "tab\t"), "name: a control character"},
      {device(key_of_byte(1), "del\x7f"), "name: a control character"},
      {device(key_of_byte(1), "c1 \xc2\x85"), "name: a control character at byte 4"},
      {device(key_of_byte(1), "esc \x1b[2J"), "name: a control character"},
      {device(key_of_byte(1), "x", 1, "friend"), "how: \"friend\" is not manual, invite or introducer"},
      {device(key_of_byte(1), "x", -1), "added_ms: negative"},
  };
  for (const auto& c : cases) {
    Status s = store->add(c.device);
    ASSERT_FALSE(s) << c.says;
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.message();
    EXPECT_NE(s.message().find(c.says), std::string::npos) << s.message();
  }
  EXPECT_TRUE(store->list().empty());
  EXPECT_FALSE(Env::posix().file_exists(path));
  // At the limits: 64 bytes of two-byte characters, and U+00A0 right after C1.
  ASSERT_TRUE(store->add(device(key_of_byte(1), name64)));
  ASSERT_TRUE(store->add(device(key_of_byte(2), "nbsp\xc2\xa0")));
  EXPECT_EQ(open_ok(path)->find(key_of_byte(1))->name, name64);
}

// One valid device entry, with `field` replaced by `value` (raw JSON), or left
// out when `value` is empty.
std::string entry(const std::string& field = "", const std::string& value = "") {
  std::vector<std::pair<std::string, std::string>> members = {
      {"id", "\"" + format_device_id(key_of_byte(9)) + "\""},
      {"name", "\"laptop\""},
      {"added_ms", "5"},
      {"how", "\"manual\""}};
  std::string out = "{";
  bool replaced = false;
  for (auto& [k, v] : members) {
    if (k == field) {
      replaced = true;
      if (value.empty()) continue;
      v = value;
    }
    out += (out.size() > 1 ? ", " : "") + ("\"" + k + "\": " + v);
  }
  if (!replaced && !field.empty()) out += ", \"" + field + "\": " + value;
  return out + "}";
}

std::string file_of(const std::string& devices) { return "{\"version\": 1, \"devices\": [" + devices + "]}"; }

TEST(TrustStore, EveryBadFileFailsWithOneLineNamingTheFileAndTheProblem) {
  TempDir dir;
  const std::string path = dir.sub("trust.json");
  std::string id = format_device_id(key_of_byte(9));
  std::string typo = id;
  typo[20] = typo[20] == 'B' ? 'C' : 'B';
  std::string same_key_other_spelling = id;
  std::erase(same_key_other_spelling, '-');
  for (auto& c : same_key_other_spelling) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  struct Case {
    std::string file;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"", "not JSON"},
      {"{\"version\": 1, \"devices\": [", "not JSON"},
      {"{\"version\": 1, \"devices\": []} trailing", "not JSON"},
      {file_of(entry("name", "\"bad \xff\"")), "not JSON"},
      {"[]", "not a JSON object"},
      {"{\"devices\": []}", "version: want the integer 1"},
      {"{\"version\": \"1\", \"devices\": []}", "version: want the integer 1"},
      {"{\"version\": 1.0, \"devices\": []}", "version: want the integer 1"},
      {"{\"version\": 3, \"devices\": [], \"removed\": []}", "version 3 is not known (this build reads versions 1 and 2)"},
      {"{\"version\": 2, \"devices\": []}", "removed: want an array"},
      {"{\"version\": 1, \"devices\": [], \"removed\": []}", "unknown member \"removed\""},
      {"{\"version\": -1, \"devices\": []}", "version -1 is not known"},
      {"{\"version\": 1}", "devices: want an array"},
      {"{\"version\": 1, \"devices\": {}}", "devices: want an array"},
      {"{\"version\": 1, \"devices\": [], \"peers\": []}", "unknown member \"peers\""},
      {file_of("5"), "devices[0]: not an object"},
      {file_of(entry() + ", 5"), "devices[1]: not an object"},
      {file_of(entry("id")), "devices[0]: id: want a device id"},
      {file_of(entry("id", "5")), "devices[0]: id: want a device id"},
      {file_of(entry("id", "\"" + typo + "\"")), "devices[0]: id: device id: the check fails in groups 3-4"},
      {file_of(entry("id", "\"" + id.substr(1) + "\"")), "devices[0]: id: device id: 55 characters"},
      {file_of(entry() + ", " + entry("id", "\"" + same_key_other_spelling + "\"")),
       id + " is listed twice"},
      {file_of(entry("name")), "devices[0]: name: want a string"},
      {file_of(entry("name", "null")), "devices[0]: name: want a string"},
      {file_of(entry("name", "\"" + std::string(65, 'x') + "\"")), "devices[0]: name: 65 bytes"},
      {file_of(entry("name", "\"a\\u0007b\"")), "devices[0]: name: a control character at byte 2"},
      {file_of(entry("name", "\"a\\u0085b\"")), "devices[0]: name: a control character at byte 2"},
      {file_of(entry("name", "\"a\\u007fb\"")), "devices[0]: name: a control character"},
      {file_of(entry("name", "\"a\\u0000b\"")), "devices[0]: name: a control character"},
      {file_of(entry("how")), "devices[0]: how: want a string"},
      {file_of(entry("how", "\"friend\"")), "devices[0]: how: \"friend\" is not manual, invite or introducer"},
      {file_of(entry("how", "\"Manual\"")), "devices[0]: how: \"Manual\" is not"},
      {file_of(entry("added_ms")), "devices[0]: added_ms: want an integer, 0 or more"},
      {file_of(entry("added_ms", "-1")), "devices[0]: added_ms: want an integer"},
      {file_of(entry("added_ms", "1.5")), "devices[0]: added_ms: want an integer"},
      {file_of(entry("added_ms", "\"5\"")), "devices[0]: added_ms: want an integer"},
      {file_of(entry("added_ms", "9223372036854775808")), "devices[0]: added_ms: want an integer"},
      {file_of(entry("note", "\"x\"")), "devices[0]: unknown member \"note\""},
  };
  for (const auto& c : cases) {
    ASSERT_TRUE(Env::posix().write_file(path, c.file, 0600));
    auto store = TrustStore::open(path, Env::posix());
    ASSERT_FALSE(store) << c.file << " was accepted";
    const std::string message = store.status().message();
    EXPECT_EQ(store.status().code(), Status::Code::kCorruption) << message;
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(c.says), std::string::npos) << c.file << "\n  gave: " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  // And the entry all of those spoil is sound, as is the largest added_ms.
  for (const std::string& good : {file_of(entry()), file_of(entry("added_ms", "9223372036854775807")),
                                  file_of(entry("name", "\"\""))}) {
    ASSERT_TRUE(Env::posix().write_file(path, good, 0600));
    EXPECT_TRUE(open_ok(path)) << good;
  }
}

TEST(TrustStore, AFileOthersMayWriteIsRefusedAndKept) {
  TempDir dir;
  const std::string path = dir.sub("trust.json");
  ASSERT_TRUE(open_ok(path)->add(device(key_of_byte(1), "laptop")));
  const std::string before = *Env::posix().read_file(path);
  for (unsigned mode : {0620u, 0602u, 0664u, 0666u, 0622u}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto store = TrustStore::open(path, Env::posix());
    ASSERT_FALSE(store) << std::oct << mode;
    EXPECT_EQ(store.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(store.status().message().find("lets others change whom this node trusts; run: chmod 600 " + path),
              std::string::npos)
        << store.status().message();
    EXPECT_EQ(*Env::posix().read_file(path), before);
  }
  // Others may read it: it holds no secret.
  for (unsigned mode : {0600u, 0644u, 0640u, 0400u}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    EXPECT_TRUE(open_ok(path)) << std::oct << mode;
  }
}

// An Env in which every file belongs to someone else.
class OtherUserEnv : public FaultyEnv {
 public:
  int64_t user_id() override { return FaultyEnv::user_id() + 1; }
};

TEST(TrustStore, AFileOfAnotherUserOrNotAFileIsRefused) {
  TempDir dir;
  const std::string path = dir.sub("trust.json");
  ASSERT_TRUE(open_ok(path)->add(device(key_of_byte(1))));
  OtherUserEnv other;
  auto theirs = TrustStore::open(path, other);
  ASSERT_FALSE(theirs);
  EXPECT_NE(theirs.status().message().find("not by this user"), std::string::npos) << theirs.status().message();

  const std::string link = dir.sub("link.json");
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  auto linked = TrustStore::open(link, Env::posix());
  ASSERT_FALSE(linked);
  EXPECT_NE(linked.status().message().find(link + ": not a regular file; the trust list must be one"),
            std::string::npos)
      << linked.status().message();

  ASSERT_TRUE(Env::posix().make_dir(dir.sub("dir.json"), 0700));
  EXPECT_FALSE(TrustStore::open(dir.sub("dir.json"), Env::posix()));
}

TEST(TrustStore, AFileThatCannotBeReadIsNotTakenForAnEmptyList) {
  TempDir dir;
  const std::string path = dir.sub("trust.json");
  ASSERT_TRUE(open_ok(path)->add(device(key_of_byte(1))));
  for (auto op : {FaultyEnv::Op::kStat, FaultyEnv::Op::kRead}) {
    FaultyEnv env;
    env.fail(op, EIO, "trust.json");
    auto store = TrustStore::open(path, env);
    ASSERT_FALSE(store);
    EXPECT_EQ(store.status().code(), Status::Code::kIOError);
    EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status().message();
  }
}

// --- failures and threads ------------------------------------------------------------

TEST(TrustStore, AFailedWriteChangesNothing) {
  TempDir dir;
  const std::string path = dir.sub("trust.json");
  FaultyEnv env;
  auto store = open_ok(path, env);
  ASSERT_TRUE(store->add(device(key_of_byte(1), "laptop")));
  const std::string file = *Env::posix().read_file(path);
  const uint64_t g = store->generation();
  auto unchanged = [&](const char* after) {
    EXPECT_EQ(keys_in(*store), std::vector<std::string>{key_of_byte(1)}) << after;
    EXPECT_EQ(store->find(key_of_byte(1))->name, "laptop") << after;
    EXPECT_EQ(store->generation(), g) << after;
    EXPECT_EQ(*Env::posix().read_file(path), file) << after;
  };
  env.fail(FaultyEnv::Op::kWrite, ENOSPC, "trust.json");
  Status add = store->add(device(key_of_byte(2), "phone"));
  ASSERT_FALSE(add);
  EXPECT_EQ(add.code(), Status::Code::kNoSpace);
  EXPECT_EQ(add.message().rfind(path + ": ", 0), 0u) << add.message();
  unchanged("a failed add");
  EXPECT_FALSE(store->add(device(key_of_byte(1), "desk")));
  unchanged("a failed rename");
  auto removed = store->remove(key_of_byte(1));
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.status().code(), Status::Code::kNoSpace);
  unchanged("a failed remove");
  env.heal(FaultyEnv::Op::kWrite);
  ASSERT_TRUE(store->add(device(key_of_byte(2), "phone")));
  EXPECT_EQ(store->generation(), g + 1);
  EXPECT_EQ(keys_in(*open_ok(path)), (std::vector<std::string>{key_of_byte(1), key_of_byte(2)}));
}

// Readers on other threads only ever see a whole list: ordered, without
// duplicates, each device as it was added; the generation never goes back.
TEST(TrustStore, ReadersSeeWholeListsWhileAnotherThreadChangesIt) {
  TempDir dir;
  auto store = open_ok(dir.sub("trust.json"));
  const uint64_t g0 = store->generation();
  const std::vector<std::string> keys = random_keys(12);
  auto name_of = [&](const std::string& key) { return format_device_id(key).substr(0, 7); };
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::thread writer([&] {
    for (int round = 0; round < 4; ++round) {
      for (const auto& k : keys) EXPECT_TRUE(store->add(device(k, name_of(k))));
      for (const auto& k : keys) EXPECT_TRUE(*store->remove(k));
    }
    done = true;
  });
  auto read = [&] {
    uint64_t last = 0;
    do {
      uint64_t g = store->generation();
      EXPECT_GE(g, last);
      last = g;
      auto list = store->list();
      for (size_t i = 0; i < list.size(); ++i) {
        if (i > 0) {
          EXPECT_LT(list[i - 1].public_key, list[i].public_key);
        }
        EXPECT_EQ(list[i].name, name_of(list[i].public_key));
      }
      EXPECT_LE(list.size(), keys.size());
      auto found = store->find(keys[static_cast<size_t>(reads.load()) % keys.size()]);
      if (found) {
        EXPECT_EQ(found->name, name_of(found->public_key));
      }
      ++reads;
    } while (!done);
  };
  std::thread r1(read), r2(read);
  writer.join();
  r1.join();
  r2.join();
  EXPECT_TRUE(store->list().empty());
  EXPECT_EQ(store->generation(), g0 + 4u * 2 * keys.size());
  EXPECT_GT(reads.load(), 0);
}

// --- the local API's trust ops, over a real node --------------------------------------------

class TrustApi : public ::testing::Test {
 protected:
  void SetUp() override {
    engine::InitOptions init;
    init.dir = dir_.path();
    ASSERT_TRUE(engine::Node::init(init));
    engine::NodeOptions options;
    options.dir = dir_.path();
    auto node = engine::Node::open(options);
    ASSERT_TRUE(node) << node.status().message();
    node_ = std::move(node).value();
    own_ = load_identity(DataDir(dir_.path()).identity_file(), Env::posix())->device_id();
  }
  void TearDown() override {
    if (api_) api_->stop();
    if (node_) {
      EXPECT_TRUE(node_->close());
    }
  }

  // Starts the API (with `trust` when given) and connects a client to it.
  void start(TrustStore* trust) {
    api_ = std::make_unique<LocalApi>(*node_, context_, nullptr);
    if (trust) api_->set_trust(trust);
    ASSERT_TRUE(api_->start());
    auto endpoints = DataDir(dir_.path()).api_endpoints();
    ASSERT_TRUE(endpoints);
    auto client = ApiClient::connect(*endpoints, context_);
    ASSERT_TRUE(client);
    client_ = std::move(client).value();
  }
  Result<Value> request(const std::string& op, Value arg) { return client_->request(op, arg, 10'000); }
  std::string trust_file() const { return DataDir(dir_.path()).trust_file(); }
  // The store the API is given lives until TearDown has stopped the API's
  // thread, which may still touch it until then.
  TrustStore* keep(std::unique_ptr<TrustStore> store) {
    store_ = std::move(store);
    return store_.get();
  }

  TempDir dir_;
  zmq::context_t context_{1};
  std::unique_ptr<engine::Node> node_;
  std::unique_ptr<TrustStore> store_;
  std::unique_ptr<LocalApi> api_;
  std::unique_ptr<ApiClient> client_;
  std::string own_;
};

TEST_F(TrustApi, WithoutATrustListTheOpsSaySo) {
  start(nullptr);
  for (const char* op : {"trust.list", "trust.add", "trust.remove"}) {
    auto reply = request(op, Value(Map{{"id", Value(own_)}}));
    ASSERT_FALSE(reply) << op;
    EXPECT_EQ(reply.status().message(), "this node has no trust list");
  }
  EXPECT_TRUE(request("status", Value()));  // and the API goes on
}

TEST_F(TrustApi, AddListRemoveChangeTheStoreAndItsFile) {
  TrustStore* store = keep(open_ok(trust_file()));
  start(store);
  const std::string other = format_device_id(key_of_byte(0x42));
  auto added = request("trust.add", Value(Map{{"id", Value(other)}, {"name", Value("laptop")}}));
  ASSERT_TRUE(added) << added.status().message();
  EXPECT_EQ(added->find("id")->as_string(), other);
  EXPECT_EQ(added->find("name")->as_string(), "laptop");
  EXPECT_EQ(added->find("how")->as_string(), "manual");
  EXPECT_GT(added->find("added_ms")->as_int(), 1'600'000'000'000);
  EXPECT_TRUE(store->contains(key_of_byte(0x42)));
  EXPECT_TRUE(open_ok(trust_file())->contains(key_of_byte(0x42)));

  // Lower case without dashes names the same device: a rename, not a second one.
  std::string lower = other;
  std::erase(lower, '-');
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  ASSERT_TRUE(request("trust.add", Value(Map{{"id", Value(lower)}, {"name", Value("desk")}})));
  auto list = request("trust.list", Value());
  ASSERT_TRUE(list) << list.status().message();
  ASSERT_EQ(list->as_list().size(), 1u);
  EXPECT_EQ(list->as_list()[0], *request("trust.add", Value(Map{{"id", Value(other)}})));
  EXPECT_EQ(list->as_list()[0].find("name")->as_string(), "desk");

  auto removed = request("trust.remove", Value(Map{{"id", Value(other)}}));
  ASSERT_TRUE(removed) << removed.status().message();
  EXPECT_EQ(*removed, Value(Map{{"removed", Value(true)}}));
  EXPECT_EQ(*request("trust.remove", Value(Map{{"id", Value(other)}})), Value(Map{{"removed", Value(false)}}));
  EXPECT_TRUE(request("trust.list", Value())->as_list().empty());
  EXPECT_FALSE(open_ok(trust_file())->contains(key_of_byte(0x42)));
}

TEST_F(TrustApi, BadRequestsAreOneLineErrorsAndChangeNothing) {
  TrustStore* store = keep(open_ok(trust_file()));
  start(store);
  std::string typo = format_device_id(key_of_byte(0x42));
  typo[9] = typo[9] == 'B' ? 'C' : 'B';
  struct Case {
    std::string op;
    Value arg;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"trust.add", Value(Map{{"id", Value(own_)}}), own_ + " is this node's own device id"},
      {"trust.add", Value(Map{{"id", Value(typo)}}), "device id: the check fails in groups 1-2"},
      {"trust.add", Value(Map{{"id", Value("hello")}}), "device id: "},
      {"trust.add", Value(), "trust.add needs {id: device id, name?: str}"},
      {"trust.add", Value(Map{{"id", Value(int64_t{5})}}), "trust.add needs {id"},
      {"trust.add", Value(Map{{"id", Value(format_device_id(key_of_byte(1)))}, {"name", Value(int64_t{5})}}),
       "trust.add needs {id"},
      {"trust.add", Value(Map{{"id", Value(format_device_id(key_of_byte(1)))}, {"name", Value("a\nb")}}),
       "name: a control character"},
      {"trust.remove", Value(List{}), "trust.remove needs {id: device id}"},
      {"trust.remove", Value(Map{{"id", Value(typo)}}), "device id: the check fails"},
  };
  for (const auto& c : cases) {
    auto reply = request(c.op, c.arg);
    ASSERT_FALSE(reply) << c.says;
    EXPECT_NE(reply.status().message().find(c.says), std::string::npos) << reply.status().message();
    EXPECT_EQ(reply.status().message().find('\n'), std::string::npos) << reply.status().message();
  }
  EXPECT_TRUE(store->list().empty());
  EXPECT_FALSE(Env::posix().file_exists(trust_file()));
}

}  // namespace
}  // namespace replog
