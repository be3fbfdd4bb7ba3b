// The archive's keys (docs/ARCHIVE.md "Keys"): where a member finds them and
// the passphrase-sealed key file that restores an archive when every device
// is lost.
//
// A member's first archive key is derived from the cluster secret
// (storage/cluster_secret.h) with the context "archive0", so every member (made
// by init, or by invite and join) holds it without another exchange.
//
// The key file (`replog archive key export`) holds the cluster id, the cluster
// secret, the archive keys and the trust list, sealed under a passphrase:
//   "replog-k" ‖ u8 1 ‖ salt[16] ‖ u64be opslimit ‖ u64be memlimit ‖ nonce[24] ‖
//   XChaCha20-Poly1305(key = Argon2id(passphrase, salt, ops, mem), ad = all before it)
// over a JSON object {cluster, cluster_secret, archive_keys: [hex], trust, device}.
// A reader refuses limits above libsodium's "sensitive" ones, so a hostile
// file cannot ask for unbounded work.
//
// Thread safety: pure functions (sealing draws randomness from the Env).
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>
#include <string_view>

#include "protocol/archive_format.h"
#include "replog/status.h"
#include "storage/data_dir.h"
#include "storage/env.h"
#include "storage/object_store.h"

namespace replog {

// The keyring of a member directory: the key derived from its cluster secret
// (generation 0) and the rotated ones kept in DATA/archive.keys. kNotFound
// (one line) when the directory holds no cluster secret.
Result<archive::Keyring> load_archive_keys(const DataDir& dir, Env& env);
// Adds a rotated key to DATA/archive.keys (mode 0600), replacing the file at once.
Status keep_archive_key(const DataDir& dir, Env& env, const archive::ArchiveKey& key);

// Rotation (a device was revoked): a fresh random key of the next generation,
// granted to each of `members` (device public keys, 32 bytes) by an object
// keys/<generation>-<id>/<device> sealed to that device's X25519 key. The
// caller keeps it (keep_archive_key) and writes with it from then on.
Result<archive::ArchiveKey> rotate_archive_key(ObjectStore& bucket, const archive::Keyring& held,
                                               const std::vector<std::string>& members, Env& env);
// The keys granted to this device (its Ed25519 secret key, 64 bytes) that
// `held` lacks. Grants that do not open are skipped (another device's, or
// damaged) and named in `problems`.
Result<std::vector<archive::ArchiveKey>> take_key_grants(ObjectStore& bucket, const archive::Keyring& held,
                                                         std::string_view device_secret,
                                                         std::vector<std::string>* problems = nullptr);

struct ArchiveKeyFile {
  std::string cluster;
  std::string cluster_secret;  // 32 bytes
  archive::Keyring keys;       // at least one; the last writes
  std::string trust_json;      // the trust list's file (storage/trust.h), possibly empty
  std::string device;          // the exporting device's public key (not on its own list)
};

struct PassphraseCost {
  unsigned long long opslimit;
  size_t memlimit;
};
// libsodium's "moderate" Argon2id cost: about a second and 256 MiB here.
PassphraseCost default_passphrase_cost();

Result<std::string> seal_key_file(const ArchiveKeyFile& file, std::string_view passphrase, Env& env,
                                  PassphraseCost cost = default_passphrase_cost());
// kInvalidArgument "wrong passphrase (or an altered key file)" when it does not open.
Result<ArchiveKeyFile> open_key_file(std::string_view bytes, std::string_view passphrase);

// What an Archiver does with a member directory's keys (ArchiveOptions):
// `take_grants` takes the keys granted to its device and keeps them in
// DATA/archive.keys; `rotate_if_left`, when `members` is given (the daemon),
// rotates the key for the devices that remain as soon as one has left the
// list since the last call (removed, or revoked and so removed).
struct KeyHooks {
  std::function<Status(ObjectStore&, archive::Keyring&)> take_grants;
  std::function<Status(ObjectStore&, archive::Keyring&)> rotate_if_left;
};
KeyHooks key_hooks(std::string dir, std::string device_secret,
                   std::function<std::vector<std::string>()> members = nullptr);

}  // namespace replog
