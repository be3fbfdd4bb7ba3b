#include "storage/identity.h"

#include <sodium.h>

#include <cstring>

#include "protocol/device_id.h"

namespace replog {

namespace {

Status sodium_ready() {
  return sodium_init() < 0 ? Status::io_error("libsodium failed to initialise") : Status::ok();
}

}  // namespace

CurveKeyPair::~CurveKeyPair() { sodium_memzero(secret_key.data(), secret_key.size()); }

Identity::~Identity() { sodium_memzero(secret_.data(), secret_.size()); }

Result<Identity> Identity::generate(Env& env) {
  REPLOG_RETURN_IF_ERROR(sodium_ready());
  unsigned char seed[crypto_sign_SEEDBYTES];
  REPLOG_RETURN_IF_ERROR(env.fill_random(seed, sizeof seed).with_context("identity key"));
  Identity id;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_seed_keypair(pk, id.secret_.data(), seed);
  sodium_memzero(seed, sizeof seed);
  return id;
}

Result<Identity> Identity::from_secret_key(std::string_view bytes, const std::string& what) {
  REPLOG_RETURN_IF_ERROR(sodium_ready());
  if (bytes.size() != kSecretKeyBytes)
    return Status::corruption(what + ": holds " + std::to_string(bytes.size()) + " bytes, an identity key is " +
                              std::to_string(kSecretKeyBytes));
  Identity id;
  std::memcpy(id.secret_.data(), bytes.data(), kSecretKeyBytes);
  // The public half must be the seed's: a damaged file is refused, not used.
  Identity check;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_seed_keypair(pk, check.secret_.data(), id.secret_.data());
  if (sodium_memcmp(check.secret_.data(), id.secret_.data(), kSecretKeyBytes) != 0)
    return Status::corruption(what + ": the public key it holds is not its seed's; the file is damaged");
  return id;
}

std::string Identity::public_key() const {
  return std::string(reinterpret_cast<const char*>(secret_.data()) + crypto_sign_SEEDBYTES, kPublicKeyBytes);
}

std::string_view Identity::secret_key() const {
  return std::string_view(reinterpret_cast<const char*>(secret_.data()), secret_.size());
}

std::string Identity::device_id() const { return format_device_id(public_key()); }

Result<CurveKeyPair> Identity::curve_keys() const {
  CurveKeyPair pair;
  const auto* pk = secret_.data() + crypto_sign_SEEDBYTES;
  if (crypto_sign_ed25519_pk_to_curve25519(pair.public_key.data(), pk) != 0)
    return Status::corruption("identity key: its public key has no CURVE form");
  crypto_sign_ed25519_sk_to_curve25519(pair.secret_key.data(), secret_.data());
  return pair;
}

Result<std::string> curve_public_key(std::string_view ed25519_public_key) {
  REPLOG_RETURN_IF_ERROR(sodium_ready());
  if (ed25519_public_key.size() != Identity::kPublicKeyBytes)
    return Status::invalid_argument("a device key is 32 bytes, not " + std::to_string(ed25519_public_key.size()));
  std::string out(crypto_scalarmult_curve25519_BYTES, '\0');
  if (crypto_sign_ed25519_pk_to_curve25519(reinterpret_cast<unsigned char*>(out.data()),
                                           reinterpret_cast<const unsigned char*>(ed25519_public_key.data())) != 0)
    return Status::invalid_argument("device key " + format_device_id(ed25519_public_key) + " has no CURVE form");
  return out;
}

Result<Identity> load_identity(const std::string& path, Env& env) {
  auto bytes = read_owner_only_file(env, path, "an identity key file", "lets others read the secret key");
  if (!bytes) return bytes.status();
  auto id = Identity::from_secret_key(*bytes, path);
  sodium_memzero(bytes->data(), bytes->size());
  return id;
}

Status store_identity(const std::string& path, const Identity& identity, Env& env) {
  return env.write_file(path, identity.secret_key(), 0600);
}

Result<Identity> load_or_create_identity(const std::string& path, Env& env) {
  auto loaded = load_identity(path, env);
  if (loaded || loaded.status().code() != Status::Code::kNotFound) return loaded;
  auto made = Identity::generate(env);
  if (!made) return made.status();
  REPLOG_RETURN_IF_ERROR(store_identity(path, *made, env));
  // Read back: proves the file is whole and its mode is 0600 (a leftover
  // temporary file could have kept a wider one).
  return load_identity(path, env);
}

}  // namespace replog
