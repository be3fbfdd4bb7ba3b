// ClusterSecret: the 32-byte secret every member of a cluster holds, kept in
// DATA/cluster.key (docs/STORAGE.md), beside the identity key and outside LMDB.
//
// It is made with the cluster (`replog init`) and handed to a new device inside
// the invite exchange (`replog join`), never sent anywhere else. Nothing uses it
// directly: each use gets its own subkey (derive()), so that a beacon's MAC key
// (discovery) says nothing about any other key made from the same secret.
//
// The file holds exactly 32 bytes, written 0600 through the Env, and is read
// only when it is a regular file of the current user with no group or other
// permission bits (as the identity key; storage/identity.h).
//
// Thread safety: a ClusterSecret is a value; the functions are safe from any
// thread when their Env is.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "replog/status.h"
#include "storage/env.h"

namespace replog {

class ClusterSecret {
 public:
  static constexpr size_t kBytes = 32;

  // 32 bytes from env.fill_random.
  static Result<ClusterSecret> generate(Env& env);
  // Exactly 32 bytes; kCorruption naming `what` otherwise.
  static Result<ClusterSecret> from_bytes(std::string_view bytes, const std::string& what);

  ClusterSecret(const ClusterSecret&) = default;
  ClusterSecret& operator=(const ClusterSecret&) = default;
  ~ClusterSecret();

  std::string_view bytes() const;
  // A 32-byte subkey for one use: libsodium's crypto_kdf_derive_from_key with
  // the 8-character `context` (e.g. "beacon01") and subkey id 1. Different
  // contexts give unrelated keys.
  std::array<unsigned char, 32> derive(std::string_view context) const;

  bool operator==(const ClusterSecret& other) const;

 private:
  ClusterSecret() = default;
  std::array<unsigned char, kBytes> secret_{};
};

// Reads the file at `path`: kNotFound when it does not exist; kInvalidArgument
// ("... chmod 600 PATH") for a mode wider than 0600 or a file not the current
// user's; kCorruption when it is not 32 bytes.
Result<ClusterSecret> load_cluster_secret(const std::string& path, Env& env);

// Writes `secret` to `path`, mode 0600, replacing the file at once.
Status store_cluster_secret(const std::string& path, const ClusterSecret& secret, Env& env);

// The file's secret, made and stored first when the file does not exist.
// REQUIRES: the caller holds the data directory's writer lock (DataDir).
Result<ClusterSecret> load_or_create_cluster_secret(const std::string& path, Env& env);

}  // namespace replog
