// The node's identity: device ids (protocol/device_id.h) and the key file
// (storage/identity.h): its permissions, its length, and the CURVE key pair
// derived from it.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <cstring>
#include <string>
#include <vector>

#include "protocol/bytes.h"
#include "protocol/device_id.h"
#include "storage/cluster_secret.h"
#include "storage/data_dir.h"
#include "storage/identity.h"
#include "support/faulty_env.h"
#include "temp_dir.h"
#include "test_seed.h"

namespace replog {
namespace {

using testing::FaultyEnv;
using testing::TempDir;

const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

// Random keys, plus the two extremes.
std::vector<std::string> sample_keys(int random_count) {
  auto rng = testing::seeded_rng();
  std::vector<std::string> keys{std::string(32, '\0'), std::string(32, '\xff')};
  for (int k = 0; k < random_count; ++k) {
    std::string key(32, '\0');
    for (auto& c : key) c = static_cast<char>(rng() & 0xff);
    keys.push_back(key);
  }
  return keys;
}

std::string without_dashes(std::string id) {
  std::erase(id, '-');
  return id;
}

TEST(DeviceId, RoundTripsInEitherCaseWithOrWithoutDashes) {
  for (const auto& key : sample_keys(20)) {
    std::string id = format_device_id(key);
    ASSERT_EQ(id.size(), kDeviceIdPrintedChars) << id;
    for (size_t i = 7; i < id.size(); i += 8) EXPECT_EQ(id[i], '-') << id;
    std::string lower = id;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const std::string& text : {id, lower, without_dashes(id), without_dashes(lower)}) {
      auto back = parse_device_id(text);
      ASSERT_TRUE(back) << text << ": " << back.status().message();
      EXPECT_EQ(to_hex(*back), to_hex(key));
    }
  }
}

// Pinned so that the format (PROTOCOL.md "Device ids") cannot drift unseen.
TEST(DeviceId, KnownVectors) {
  EXPECT_EQ(format_device_id(std::string(32, '\0')),
            "AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA");
  std::string counting;
  for (int i = 0; i < 32; ++i) counting.push_back(static_cast<char>(i));
  EXPECT_EQ(format_device_id(counting),
            "AAAQEAY-EAUDAO5-CAJBIFQ-YDIOB4T-IBCEQTC-QKRMFYR-YDENBWH-A5DYPQE");
}

TEST(DeviceId, EverySingleCharacterSubstitutionIsRefused) {
  int tried = 0;
  for (const auto& key : sample_keys(8)) {
    const std::string id = format_device_id(key);
    for (size_t pos = 0; pos < id.size(); ++pos) {
      for (char c : kAlphabet + "abcdefghijklmnopqrstuvwxyz") {
        if (std::toupper(static_cast<unsigned char>(c)) == id[pos]) continue;  // same character, other case
        std::string typo = id;
        typo[pos] = c;
        ++tried;
        auto parsed = parse_device_id(typo);
        ASSERT_FALSE(parsed) << typo << " (from " << id << ") was accepted";
        EXPECT_EQ(parsed.status().code(), Status::Code::kInvalidArgument);
      }
    }
  }
  // 10 keys x (56 characters x at least 56 others, either case, + 7 dashes x 58).
  EXPECT_GE(tried, 10 * (56 * 56 + 7 * 58));
  std::cerr << tried << " single-character typos tried, all refused\n";
}

TEST(DeviceId, EveryAdjacentTranspositionIsRefused) {
  int tried = 0;
  for (const auto& key : sample_keys(50)) {
    const std::string id = without_dashes(format_device_id(key));
    for (size_t pos = 0; pos + 1 < id.size(); ++pos) {
      if (id[pos] == id[pos + 1]) continue;  // swapping equal characters changes nothing
      std::string typo = id;
      std::swap(typo[pos], typo[pos + 1]);
      ++tried;
      ASSERT_FALSE(parse_device_id(typo)) << typo << " (from " << id << ") was accepted";
    }
  }
  EXPECT_GT(tried, 50 * 50);
}

TEST(DeviceId, ErrorsAreOneLineAndSayWhere) {
  std::string id = format_device_id(sample_keys(1).back());
  std::string typo = id;
  typo[4 * 8 + 2] = typo[4 * 8 + 2] == 'B' ? 'C' : 'B';  // in group 5
  auto bad = parse_device_id(typo);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("groups 5-6 (" + typo.substr(32, 15) + ")"), std::string::npos)
      << bad.status().message();
  auto not_base32 = parse_device_id(id.substr(0, 8) + "1" + id.substr(9));
  ASSERT_FALSE(not_base32);
  EXPECT_NE(not_base32.status().message().find("'1' (character 9) is not base32"), std::string::npos)
      << not_base32.status().message();
  auto short_id = parse_device_id(id.substr(0, 62));
  ASSERT_FALSE(short_id);
  EXPECT_NE(short_id.status().message().find("55 characters without dashes, want 56"), std::string::npos)
      << short_id.status().message();
  for (const auto& e : {bad, not_base32, short_id}) EXPECT_EQ(e.status().message().find('\n'), std::string::npos);
}

TEST(DeviceId, UnusedBitsMustBeZero) {
  // Character 52 holds one bit of the key and four zero bits: 'B' (00001) is
  // not a key's spelling, even with its block's check made to match.
  std::string zero = without_dashes(format_device_id(std::string(32, '\0')));
  for (char last : {'B', 'C', 'R'}) {
    // Character 52 is the 13th of the last block (index 54 without dashes);
    // try every check character after it: one passes the check.
    bool found = false;
    for (char check : kAlphabet) {
      std::string candidate = zero.substr(0, 54) + last + check;
      auto parsed = parse_device_id(candidate);
      if (!parsed && parsed.status().message().find("must be A or Q") != std::string::npos) found = true;
      EXPECT_FALSE(parsed) << candidate;
    }
    EXPECT_TRUE(found) << "no check character reached the unused-bits rule for " << last;
  }
}

// --- the key file ----------------------------------------------------------------

unsigned mode_of(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

TEST(Identity, KeyFileIsMadeOwnerOnlyAndKept) {
  TempDir dir;
  std::string path = DataDir(dir.path()).identity_file();
  ::umask(0);  // the file's mode must not depend on the umask
  auto made = load_or_create_identity(path, Env::posix());
  ::umask(022);
  ASSERT_TRUE(made) << made.status().message();
  EXPECT_EQ(mode_of(path), 0600u);
  auto bytes = Env::posix().read_file(path);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(bytes->size(), 64u);
  EXPECT_EQ(*bytes, std::string(made->secret_key()));
  EXPECT_EQ(bytes->substr(32), made->public_key());
  auto again = load_or_create_identity(path, Env::posix());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->device_id(), made->device_id()) << "a second call made a new key";
  EXPECT_EQ(*parse_device_id(made->device_id()), made->public_key());
}

TEST(Identity, KeyFileOpenToOthersIsRefusedAndKept) {
  TempDir dir;
  std::string path = dir.sub("identity.key");
  ASSERT_TRUE(load_or_create_identity(path, Env::posix()));
  std::string before = *Env::posix().read_file(path);
  for (unsigned mode : {0644u, 0640u, 0604u, 0660u, 0601u, 0610u}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto loaded = load_identity(path, Env::posix());
    ASSERT_FALSE(loaded) << std::oct << mode;
    EXPECT_EQ(loaded.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(loaded.status().message().find("chmod 600 " + path), std::string::npos) << loaded.status().message();
    // Not replaced by a fresh key either.
    EXPECT_FALSE(load_or_create_identity(path, Env::posix()));
    EXPECT_EQ(*Env::posix().read_file(path), before);
  }
  for (unsigned mode : {0600u, 0400u}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    EXPECT_TRUE(load_identity(path, Env::posix())) << std::oct << mode;
  }
}

// An Env in which every file belongs to someone else.
class OtherUserEnv : public FaultyEnv {
 public:
  int64_t user_id() override { return FaultyEnv::user_id() + 1; }
};

TEST(Identity, KeyFileOfAnotherUserIsRefused) {
  TempDir dir;
  std::string path = dir.sub("identity.key");
  ASSERT_TRUE(load_or_create_identity(path, Env::posix()));
  OtherUserEnv env;
  auto loaded = load_identity(path, env);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.status().message().find("not by this user"), std::string::npos) << loaded.status().message();
}

TEST(Identity, KeyFileOfTheWrongLengthIsRefused) {
  TempDir dir;
  std::string path = dir.sub("identity.key");
  auto made = load_or_create_identity(path, Env::posix());
  ASSERT_TRUE(made);
  std::string whole(made->secret_key());
  for (const std::string& content : {whole.substr(0, 32), whole.substr(0, 63), whole + "x", std::string()}) {
    ASSERT_TRUE(Env::posix().write_file(path, content, 0600));
    auto loaded = load_identity(path, Env::posix());
    ASSERT_FALSE(loaded) << content.size() << " bytes accepted";
    EXPECT_EQ(loaded.status().code(), Status::Code::kCorruption);
    EXPECT_NE(loaded.status().message().find("holds " + std::to_string(content.size()) + " bytes"), std::string::npos)
        << loaded.status().message();
  }
  std::string damaged = whole;
  damaged[40] ^= 1;  // the public half no longer matches the seed
  ASSERT_TRUE(Env::posix().write_file(path, damaged, 0600));
  auto loaded = load_identity(path, Env::posix());
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.status().code(), Status::Code::kCorruption);
}

TEST(Identity, NoRandomnessNoKey) {
  TempDir dir;
  FaultyEnv env;
  env.fail(FaultyEnv::Op::kRandom, EIO);
  EXPECT_FALSE(load_or_create_identity(dir.sub("identity.key"), env));
  EXPECT_FALSE(Env::posix().file_exists(dir.sub("identity.key")));
}

TEST(Identity, CurveKeysAreLibsodiumsConversionAndAWorkingPair) {
  ASSERT_GE(sodium_init(), 0);
  TempDir dir;
  auto a = load_or_create_identity(dir.sub("a.key"), Env::posix());
  auto b = load_or_create_identity(dir.sub("b.key"), Env::posix());
  ASSERT_TRUE(a && b);
  ASSERT_NE(a->public_key(), b->public_key());
  auto ca = a->curve_keys(), cb = b->curve_keys();
  ASSERT_TRUE(ca && cb);
  // The same as libsodium's conversion of the Ed25519 keys.
  unsigned char pk[32], sk[32];
  ASSERT_EQ(crypto_sign_ed25519_pk_to_curve25519(pk, reinterpret_cast<const unsigned char*>(a->public_key().data())), 0);
  ASSERT_EQ(crypto_sign_ed25519_sk_to_curve25519(sk, reinterpret_cast<const unsigned char*>(a->secret_key().data())), 0);
  EXPECT_EQ(0, std::memcmp(pk, ca->public_key.data(), 32));
  EXPECT_EQ(0, std::memcmp(sk, ca->secret_key.data(), 32));
  // The public key is the secret key's: X25519 base-point multiplication.
  unsigned char from_secret[32];
  ASSERT_EQ(crypto_scalarmult_base(from_secret, ca->secret_key.data()), 0);
  EXPECT_EQ(0, std::memcmp(from_secret, ca->public_key.data(), 32));
  // A box from a to b opens at b, and not under a stranger's key.
  const std::string message = "a payload only b may read";
  unsigned char nonce[crypto_box_NONCEBYTES];
  randombytes_buf(nonce, sizeof nonce);
  std::vector<unsigned char> boxed(message.size() + crypto_box_MACBYTES), opened(message.size());
  ASSERT_EQ(crypto_box_easy(boxed.data(), reinterpret_cast<const unsigned char*>(message.data()), message.size(), nonce,
                            cb->public_key.data(), ca->secret_key.data()),
            0);
  ASSERT_EQ(crypto_box_open_easy(opened.data(), boxed.data(), boxed.size(), nonce, ca->public_key.data(),
                                 cb->secret_key.data()),
            0);
  EXPECT_EQ(std::string(opened.begin(), opened.end()), message);
  unsigned char stranger_pk[32], stranger_sk[32];
  crypto_box_keypair(stranger_pk, stranger_sk);
  EXPECT_NE(crypto_box_open_easy(opened.data(), boxed.data(), boxed.size(), nonce, stranger_pk, cb->secret_key.data()),
            0);
}

// --- the cluster secret (storage/cluster_secret.h) --------------------------------

TEST(ClusterSecret, MadeOnceOwnerOnlyAndKept) {
  TempDir dir;
  std::string path = dir.sub("cluster.key");
  auto made = load_or_create_cluster_secret(path, Env::posix());
  ASSERT_TRUE(made) << made.status().message();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(Env::posix().read_file(path)->size(), ClusterSecret::kBytes);
  auto again = load_or_create_cluster_secret(path, Env::posix());
  ASSERT_TRUE(again);
  EXPECT_TRUE(*again == *made) << "a second call made a new secret";
  auto other = ClusterSecret::generate(Env::posix());
  ASSERT_TRUE(other);
  EXPECT_FALSE(*other == *made);
}

TEST(ClusterSecret, FileOpenToOthersOrOfTheWrongLengthIsRefusedAndKept) {
  TempDir dir;
  std::string path = dir.sub("cluster.key");
  ASSERT_TRUE(load_or_create_cluster_secret(path, Env::posix()));
  std::string before = *Env::posix().read_file(path);
  for (unsigned mode : {0644u, 0640u, 0604u, 0660u}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    auto loaded = load_cluster_secret(path, Env::posix());
    ASSERT_FALSE(loaded) << std::oct << mode;
    EXPECT_NE(loaded.status().message().find("chmod 600 " + path), std::string::npos) << loaded.status().message();
    EXPECT_FALSE(load_or_create_cluster_secret(path, Env::posix()));
    EXPECT_EQ(*Env::posix().read_file(path), before);
  }
  for (const std::string& content : {before.substr(0, 31), before + "x", std::string()}) {
    ASSERT_TRUE(Env::posix().write_file(path, content, 0600));
    auto loaded = load_cluster_secret(path, Env::posix());
    ASSERT_FALSE(loaded) << content.size();
    EXPECT_EQ(loaded.status().code(), Status::Code::kCorruption);
  }
}

TEST(ClusterSecret, SubkeysDependOnContextAndSecret) {
  auto a = ClusterSecret::from_bytes(std::string(32, 'a'), "a");
  auto b = ClusterSecret::from_bytes(std::string(32, 'b'), "b");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->derive("beacon01"), a->derive("beacon01"));
  EXPECT_NE(a->derive("beacon01"), a->derive("archive1"));
  EXPECT_NE(a->derive("beacon01"), b->derive("beacon01"));
  EXPECT_FALSE(ClusterSecret::from_bytes(std::string(31, 'a'), "short"));
}

}  // namespace
}  // namespace replog
