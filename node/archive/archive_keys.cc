#include "node/archive/archive_keys.h"

#include <sodium.h>

#include <nlohmann/json.hpp>

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

Result<archive::Keyring> load_archive_keys(const DataDir& dir, Env& env) {
  auto secret = load_cluster_secret(dir.cluster_secret_file(), env);
  if (!secret) return secret.status().with_context("the archive key comes from the cluster secret");
  auto derived = secret->derive("archive0");
  auto key = archive::ArchiveKey::from_bytes(std::string_view(reinterpret_cast<const char*>(derived.data()), 32));
  sodium_memzero(derived.data(), derived.size());
  if (!key) return key.status();
  return archive::Keyring{*key};
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

}  // namespace replog
