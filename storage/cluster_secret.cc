#include "storage/cluster_secret.h"

#include <sodium.h>

#include <algorithm>
#include <cstring>

namespace replog {

ClusterSecret::~ClusterSecret() { sodium_memzero(secret_.data(), secret_.size()); }

Result<ClusterSecret> ClusterSecret::generate(Env& env) {
  ClusterSecret s;
  REPLOG_RETURN_IF_ERROR(env.fill_random(s.secret_.data(), s.secret_.size()));
  return s;
}

Result<ClusterSecret> ClusterSecret::from_bytes(std::string_view bytes, const std::string& what) {
  if (bytes.size() != kBytes)
    return Status::corruption(what + ": a cluster secret is " + std::to_string(kBytes) + " bytes, this holds " +
                              std::to_string(bytes.size()));
  ClusterSecret s;
  std::memcpy(s.secret_.data(), bytes.data(), kBytes);
  return s;
}

std::string_view ClusterSecret::bytes() const {
  return {reinterpret_cast<const char*>(secret_.data()), secret_.size()};
}

std::array<unsigned char, 32> ClusterSecret::derive(std::string_view context) const {
  static_assert(crypto_kdf_KEYBYTES == kBytes);
  char ctx[crypto_kdf_CONTEXTBYTES] = {};
  std::memcpy(ctx, context.data(), std::min(context.size(), sizeof ctx));
  std::array<unsigned char, 32> key{};
  crypto_kdf_derive_from_key(key.data(), key.size(), 1, ctx, secret_.data());
  return key;
}

bool ClusterSecret::operator==(const ClusterSecret& other) const {
  return sodium_memcmp(secret_.data(), other.secret_.data(), kBytes) == 0;
}

Result<ClusterSecret> load_cluster_secret(const std::string& path, Env& env) {
  auto bytes = read_owner_only_file(env, path, "a cluster secret file", "lets others read the cluster's secret");
  if (!bytes) return bytes.status();
  auto secret = ClusterSecret::from_bytes(*bytes, path);
  sodium_memzero(bytes->data(), bytes->size());
  return secret;
}

Status store_cluster_secret(const std::string& path, const ClusterSecret& secret, Env& env) {
  return env.write_file(path, secret.bytes(), 0600);
}

Result<ClusterSecret> load_or_create_cluster_secret(const std::string& path, Env& env) {
  auto loaded = load_cluster_secret(path, env);
  if (loaded || loaded.status().code() != Status::Code::kNotFound) return loaded;
  auto made = ClusterSecret::generate(env);
  if (!made) return made.status();
  REPLOG_RETURN_IF_ERROR(store_cluster_secret(path, *made, env));
  return load_cluster_secret(path, env);  // read back: whole, and 0600
}

}  // namespace replog
