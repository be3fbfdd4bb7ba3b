// Identity: the node's Ed25519 key pair, kept in DATA/identity.key
// (docs/STORAGE.md), never in LMDB, where mdb_dump would print it.
//
// The file holds exactly 64 bytes: libsodium's Ed25519 secret key, the 32-byte
// seed followed by the 32-byte public key. It is written 0600 through the Env
// (atomically), and read only when it is a regular file owned by the current
// user with no group or other permission bits; otherwise loading fails with one
// line saying how to fix it. The public half must be the one the seed gives.
//
// The public key, printed as a device id (protocol/device_id.h), is who the
// node is on links, in origins and to people. Its CURVE (X25519) key pair for
// ZeroMQ is derived from it, never stored.
//
// Thread safety: an Identity is a value; the functions are safe from any
// thread when their Env is.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "replog/status.h"
#include "storage/env.h"

namespace replog {

// An X25519 key pair (crypto_box / ZeroMQ CURVE), derived from an Identity.
struct CurveKeyPair {
  std::array<unsigned char, 32> public_key{};
  std::array<unsigned char, 32> secret_key{};
  ~CurveKeyPair();
};

class Identity {
 public:
  static constexpr size_t kPublicKeyBytes = 32;
  static constexpr size_t kSecretKeyBytes = 64;  // the file's size

  // A fresh key pair from a 32-byte seed drawn from env.fill_random
  // (crypto_sign_seed_keypair: what crypto_sign_keypair does with its own seed).
  static Result<Identity> generate(Env& env);
  // From the 64 bytes of a key file. kCorruption naming `what` when the length
  // is wrong or the public half is not the seed's.
  static Result<Identity> from_secret_key(std::string_view bytes, const std::string& what);

  Identity(const Identity&) = default;
  Identity& operator=(const Identity&) = default;
  ~Identity();

  // The Ed25519 public key, 32 bytes.
  std::string public_key() const;
  // The libsodium secret key, 64 bytes (seed ‖ public key).
  std::string_view secret_key() const;
  // format_device_id(public_key()).
  std::string device_id() const;
  // crypto_sign_ed25519_pk_to_curve25519 / _sk_to_curve25519 of this key pair.
  Result<CurveKeyPair> curve_keys() const;

 private:
  Identity() = default;
  std::array<unsigned char, kSecretKeyBytes> secret_{};
};

// The X25519 public key of a device's Ed25519 public key
// (crypto_sign_ed25519_pk_to_curve25519): the device's CURVE server key.
// kInvalidArgument when the key is not 32 bytes or has no X25519 form.
Result<std::string> curve_public_key(std::string_view ed25519_public_key);

// Reads the key file at `path`. kNotFound when it does not exist; kInvalidArgument
// ("... chmod 600 PATH") when its mode gives group or others any permission,
// or it is not a regular file owned by the current user; kCorruption when its
// content is not a key.
Result<Identity> load_identity(const std::string& path, Env& env);

// Writes `identity` to `path`, mode 0600, replacing the file at once.
Status store_identity(const std::string& path, const Identity& identity, Env& env);

// The key file's identity, made and stored first when the file does not exist.
// REQUIRES: the caller holds the data directory's writer lock (DataDir), so
// that two processes never make two keys.
Result<Identity> load_or_create_identity(const std::string& path, Env& env);

}  // namespace replog
