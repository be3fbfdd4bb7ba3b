#include "node/archive/archive_keys.h"

#include <sodium.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <memory>
#include <optional>

#include "protocol/bytes.h"
#include "storage/cluster_secret.h"

namespace replog {
namespace {

using json = nlohmann::json;

constexpr std::string_view kMagic = "replog-k";
constexpr size_t kSaltBytes = crypto_pwhash_SALTBYTES;
constexpr size_t kPrefixBytes = 8 + 1 + kSaltBytes + 8 + 8 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;

Result<std::array<unsigned char, 32>> stretch(std::string_view passphrase, const unsigned char* salt,
                                              unsigned long long ops, size_t mem) {
  std::array<unsigned char, 32> key{};
  if (crypto_pwhash(key.data(), key.size(), passphrase.data(), passphrase.size(), salt, ops, mem,
                    crypto_pwhash_ALG_ARGON2ID13) != 0)
    return Status::io_error("out of memory stretching the passphrase (" + std::to_string(mem >> 20) + " MiB)");
  return key;
}

}  // namespace

namespace {

std::string keys_file(const DataDir& dir) { return dir.path() + "/archive.keys"; }

// DATA/archive.keys: {"keys": [{"generation": g, "key": hex}, ...]}.
Result<archive::Keyring> read_rotated(const DataDir& dir, Env& env) {
  archive::Keyring out;
  if (!env.file_exists(keys_file(dir))) return out;
  auto text = env.read_file(keys_file(dir));
  if (!text) return text.status();
  try {
    for (const auto& e : json::parse(*text).at("keys")) {
      auto raw = from_hex(e.at("key").get<std::string>());
      if (!raw) return raw.status().with_context(keys_file(dir));
      auto k = archive::ArchiveKey::from_bytes(*raw, e.at("generation").get<uint32_t>());
      if (!k) return k.status().with_context(keys_file(dir));
      archive::add_key(out, *k);
    }
  } catch (const json::exception& e) {
    return Status::corruption(keys_file(dir) + ": " + e.what());
  }
  return out;
}

}  // namespace

Result<archive::Keyring> load_archive_keys(const DataDir& dir, Env& env) {
  auto secret = load_cluster_secret(dir.cluster_secret_file(), env);
  if (!secret) return secret.status().with_context("the archive key comes from the cluster secret");
  auto derived = secret->derive("archive0");
  auto key = archive::ArchiveKey::from_bytes(std::string_view(reinterpret_cast<const char*>(derived.data()), 32));
  sodium_memzero(derived.data(), derived.size());
  if (!key) return key.status();
  auto ring = read_rotated(dir, env);
  if (!ring) return ring.status();
  archive::add_key(*ring, *key);
  return ring;
}

Status keep_archive_key(const DataDir& dir, Env& env, const archive::ArchiveKey& key) {
  auto ring = read_rotated(dir, env);
  if (!ring) return ring.status();
  if (!archive::add_key(*ring, key)) return Status::ok();
  json keys = json::array();
  for (const auto& k : *ring) keys.push_back({{"generation", k.generation()}, {"key", to_hex(k.bytes())}});
  const std::string tmp = keys_file(dir) + ".tmp";
  REPLOG_RETURN_IF_ERROR(env.write_file(tmp, json{{"keys", keys}}.dump() + "\n", 0600));
  return env.rename_file(tmp, keys_file(dir));
}

Result<archive::ArchiveKey> rotate_archive_key(ObjectStore& bucket, const archive::Keyring& held,
                                               const std::vector<std::string>& members, Env& env) {
  unsigned char raw[32];
  REPLOG_RETURN_IF_ERROR(env.fill_random(raw, sizeof raw));
  const uint32_t generation = held.empty() ? 1 : held.back().generation() + 1;
  auto key = archive::ArchiveKey::from_bytes(std::string_view(reinterpret_cast<const char*>(raw), 32), generation);
  sodium_memzero(raw, sizeof raw);
  if (!key) return key.status();
  for (const std::string& device : members) {
    unsigned char curve[crypto_box_PUBLICKEYBYTES];
    if (device.size() != 32 ||
        crypto_sign_ed25519_pk_to_curve25519(curve, reinterpret_cast<const unsigned char*>(device.data())) != 0)
      return Status::invalid_argument("a member's device key has no X25519 form: " + to_hex(device));
    std::string sealed(crypto_box_SEALBYTES + 32, '\0');
    crypto_box_seal(reinterpret_cast<unsigned char*>(sealed.data()),
                    reinterpret_cast<const unsigned char*>(key->bytes().data()), 32, curve);
    auto put = bucket.put_new(archive::key_grant_key({generation, key->id(), device}), sealed);
    if (!put) return put.status();
  }
  return key;
}

Result<std::vector<archive::ArchiveKey>> take_key_grants(ObjectStore& bucket, const archive::Keyring& held,
                                                         std::string_view device_secret,
                                                         std::vector<std::string>* problems) {
  if (device_secret.size() != 64) return Status::invalid_argument("a device secret key is 64 bytes");
  const std::string device(device_secret.substr(32));
  unsigned char pk[32], sk[32];
  if (crypto_sign_ed25519_pk_to_curve25519(pk, reinterpret_cast<const unsigned char*>(device.data())) != 0 ||
      crypto_sign_ed25519_sk_to_curve25519(sk, reinterpret_cast<const unsigned char*>(device_secret.data())) != 0)
    return Status::invalid_argument("this device's key has no X25519 form");
  auto listed = bucket.list(std::string(archive::kKeysPrefix), "", 0);
  std::vector<archive::ArchiveKey> out;
  for (const auto& o : listed ? *listed : std::vector<StoredObject>{}) {
    auto g = archive::parse_key_grant_key(o.key);
    if (!g || g->device != device) continue;
    bool known = std::any_of(held.begin(), held.end(), [&](const auto& k) { return k.id() == g->key_id; });
    if (known) continue;
    auto sealed = bucket.get(o.key, 1024);
    unsigned char raw[32];
    std::optional<archive::ArchiveKey> key;
    if (sealed && sealed->size() == crypto_box_SEALBYTES + 32 &&
        crypto_box_seal_open(raw, reinterpret_cast<const unsigned char*>(sealed->data()), sealed->size(), pk, sk) == 0) {
      auto k = archive::ArchiveKey::from_bytes(std::string_view(reinterpret_cast<const char*>(raw), 32), g->generation);
      if (k && k->id() == g->key_id) key = *k;
    }
    sodium_memzero(raw, sizeof raw);
    if (key) out.push_back(*key);
    else if (problems) problems->push_back(o.key + ": a key grant that does not open with this device's key");
  }
  sodium_memzero(sk, sizeof sk);
  if (!listed) return listed.status();
  return out;
}

PassphraseCost default_passphrase_cost() {
  return {crypto_pwhash_OPSLIMIT_MODERATE, crypto_pwhash_MEMLIMIT_MODERATE};
}

Result<std::string> seal_key_file(const ArchiveKeyFile& file, std::string_view passphrase, Env& env,
                                  PassphraseCost cost) {
  if (passphrase.empty()) return Status::invalid_argument("an empty passphrase protects nothing");
  json keys = json::array();
  for (const auto& k : file.keys) keys.push_back(to_hex(k.bytes()));
  const std::string plain = json{{"cluster", file.cluster},
                                 {"cluster_secret", to_hex(file.cluster_secret)},
                                 {"archive_keys", keys},
                                 {"trust", file.trust_json},
                                 {"device", to_hex(file.device)}}
                                .dump();
  std::string out(kMagic);
  out.push_back(1);
  unsigned char salt[kSaltBytes], nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
  REPLOG_RETURN_IF_ERROR(env.fill_random(salt, sizeof salt));
  REPLOG_RETURN_IF_ERROR(env.fill_random(nonce, sizeof nonce));
  out.append(reinterpret_cast<const char*>(salt), sizeof salt);
  out += u64_be(cost.opslimit);
  out += u64_be(cost.memlimit);
  out.append(reinterpret_cast<const char*>(nonce), sizeof nonce);
  auto key = stretch(passphrase, salt, cost.opslimit, cost.memlimit);
  if (!key) return key.status();
  const size_t at = out.size();
  out.resize(at + plain.size() + crypto_aead_xchacha20poly1305_ietf_ABYTES);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(reinterpret_cast<unsigned char*>(out.data() + at), &clen,
                                             reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
                                             reinterpret_cast<const unsigned char*>(out.data()), at, nullptr, nonce,
                                             key->data());
  sodium_memzero(key->data(), key->size());
  return out;
}

Result<ArchiveKeyFile> open_key_file(std::string_view bytes, std::string_view passphrase) {
  if (bytes.size() < kPrefixBytes + crypto_aead_xchacha20poly1305_ietf_ABYTES || !bytes.starts_with(kMagic) ||
      bytes[8] != 1)
    return Status::corruption("not a replog archive key file");
  const auto* salt = reinterpret_cast<const unsigned char*>(bytes.data() + 9);
  const uint64_t ops = get_u64_be(bytes.data() + 9 + kSaltBytes);
  const uint64_t mem = get_u64_be(bytes.data() + 17 + kSaltBytes);
  if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > crypto_pwhash_OPSLIMIT_SENSITIVE || mem < crypto_pwhash_MEMLIMIT_MIN ||
      mem > crypto_pwhash_MEMLIMIT_SENSITIVE)
    return Status::corruption("archive key file asks for a passphrase cost outside libsodium's bounds");
  auto key = stretch(passphrase, salt, ops, mem);
  if (!key) return key.status();
  const auto* nonce = reinterpret_cast<const unsigned char*>(bytes.data() + 25 + kSaltBytes);
  std::string plain(bytes.size() - kPrefixBytes - crypto_aead_xchacha20poly1305_ietf_ABYTES, '\0');
  unsigned long long mlen = 0;
  const int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
      reinterpret_cast<unsigned char*>(plain.data()), &mlen, nullptr,
      reinterpret_cast<const unsigned char*>(bytes.data() + kPrefixBytes), bytes.size() - kPrefixBytes,
      reinterpret_cast<const unsigned char*>(bytes.data()), kPrefixBytes, nonce, key->data());
  sodium_memzero(key->data(), key->size());
  if (rc != 0) return Status::invalid_argument("wrong passphrase (or an altered key file)");
  ArchiveKeyFile out;
  try {
    const json j = json::parse(plain);
    out.cluster = j.at("cluster").get<std::string>();
    auto secret = from_hex(j.at("cluster_secret").get<std::string>());
    if (!secret || secret->size() != 32) return Status::corruption("archive key file: bad cluster secret");
    out.cluster_secret = std::move(secret).value();
    for (const auto& k : j.at("archive_keys")) {
      auto raw = from_hex(k.get<std::string>());
      if (!raw) return raw.status().with_context("archive key file");
      auto key_ = archive::ArchiveKey::from_bytes(*raw);
      if (!key_) return key_.status().with_context("archive key file");
      out.keys.push_back(*key_);
    }
    out.trust_json = j.at("trust").get<std::string>();
    auto device = from_hex(j.at("device").get<std::string>());
    if (!device || (!device->empty() && device->size() != 32)) return Status::corruption("archive key file: bad device key");
    out.device = std::move(device).value();
  } catch (const json::exception& e) {
    return Status::corruption(std::string("archive key file: ") + e.what());
  }
  if (out.keys.empty()) return Status::corruption("archive key file holds no archive key");
  return out;
}

KeyHooks key_hooks(std::string dir, std::string device_secret, std::function<std::vector<std::string>()> members) {
  KeyHooks hooks;
  hooks.take_grants = [dir, secret = std::move(device_secret)](ObjectStore& bucket, archive::Keyring& ring) -> Status {
    auto granted = take_key_grants(bucket, ring, secret);
    if (!granted) return granted.status();
    for (const auto& k : *granted) {
      REPLOG_RETURN_IF_ERROR(keep_archive_key(DataDir(dir), Env::posix(), k));
      archive::add_key(ring, k);
    }
    return Status::ok();
  };
  if (!members) return hooks;
  auto seen = std::make_shared<std::optional<std::set<std::string>>>();
  hooks.rotate_if_left = [dir, members = std::move(members), seen](ObjectStore& bucket,
                                                                   archive::Keyring& ring) -> Status {
    std::vector<std::string> now = members();
    std::set<std::string> current(now.begin(), now.end());
    const bool someone_left = seen->has_value() && std::any_of((*seen)->begin(), (*seen)->end(),
                                                               [&](const std::string& d) { return !current.count(d); });
    if (someone_left) {
      auto key = rotate_archive_key(bucket, ring, now, Env::posix());
      if (!key) return key.status();  // tried again at the next push: `seen` stays as it was
      REPLOG_RETURN_IF_ERROR(keep_archive_key(DataDir(dir), Env::posix(), *key));
      archive::add_key(ring, *key);
    }
    *seen = std::move(current);
    return Status::ok();
  };
  return hooks;
}

}  // namespace replog
