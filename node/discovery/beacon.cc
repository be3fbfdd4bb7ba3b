#include "node/discovery/beacon.h"

#include <sodium.h>

#include <cstring>

namespace replog {

namespace {

constexpr size_t kNonceAt = 6;
constexpr size_t kTagAt = kNonceAt + kBeaconNonceBytes;
constexpr size_t kPortAt = kTagAt + kBeaconTagBytes;
constexpr size_t kMacAt = kPortAt + 2;
static_assert(kMacAt + kBeaconMacBytes == kBeaconBytes);

const unsigned char* bytes_of(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

std::array<unsigned char, kBeaconTagBytes> tag_of(const BeaconKeys& keys, const BeaconNonce& nonce,
                                                  std::string_view public_key) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, keys.tag_key.data(), keys.tag_key.size(), kBeaconTagBytes);
  crypto_generichash_update(&st, nonce.data(), nonce.size());
  crypto_generichash_update(&st, bytes_of(public_key), public_key.size());
  std::array<unsigned char, kBeaconTagBytes> tag{};
  crypto_generichash_final(&st, tag.data(), tag.size());
  return tag;
}

// The port's pad: BLAKE2b(tag key, nonce), first two bytes. Its input (the
// nonce alone) differs from every tag's input (nonce || key) in length, so it
// is an independent output of the same keyed hash.
uint16_t port_pad(const BeaconKeys& keys, const BeaconNonce& nonce) {
  unsigned char pad[16];
  crypto_generichash(pad, sizeof pad, nonce.data(), nonce.size(), keys.tag_key.data(), keys.tag_key.size());
  return static_cast<uint16_t>(pad[0] << 8 | pad[1]);
}

std::array<unsigned char, kBeaconMacBytes> mac_of(const BeaconKeys& keys, const unsigned char* head) {
  std::array<unsigned char, kBeaconMacBytes> mac{};
  crypto_generichash(mac.data(), mac.size(), head, kMacAt, keys.mac_key.data(), keys.mac_key.size());
  return mac;
}

}  // namespace

BeaconKeys BeaconKeys::from(const ClusterSecret& secret) {
  return BeaconKeys{secret.derive(kBeaconTagContext), secret.derive(kBeaconMacContext)};
}

std::string encode_beacon(const BeaconKeys& keys, std::string_view public_key, uint16_t port,
                          const BeaconNonce& nonce) {
  std::string out(kBeaconBytes, '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  std::memcpy(p, kBeaconMagic, sizeof kBeaconMagic);
  p[4] = kBeaconVersion;
  p[5] = 0;  // flags: none defined in version 1
  std::memcpy(p + kNonceAt, nonce.data(), nonce.size());
  auto tag = tag_of(keys, nonce, public_key);
  std::memcpy(p + kTagAt, tag.data(), tag.size());
  const uint16_t masked = port ^ port_pad(keys, nonce);
  p[kPortAt] = static_cast<unsigned char>(masked >> 8);
  p[kPortAt + 1] = static_cast<unsigned char>(masked & 0xff);
  auto mac = mac_of(keys, p);
  std::memcpy(p + kMacAt, mac.data(), mac.size());
  return out;
}

BeaconVerdict open_beacon(const BeaconKeys& keys, std::string_view packet, OpenedBeacon* out) {
  if (packet.size() != kBeaconBytes || std::memcmp(packet.data(), kBeaconMagic, sizeof kBeaconMagic) != 0 ||
      static_cast<uint8_t>(packet[4]) != kBeaconVersion)
    return BeaconVerdict::kMalformed;
  const unsigned char* p = bytes_of(packet);
  auto mac = mac_of(keys, p);
  if (sodium_memcmp(mac.data(), p + kMacAt, mac.size()) != 0) return BeaconVerdict::kBadMac;
  out->flags = p[5];
  std::memcpy(out->nonce.data(), p + kNonceAt, out->nonce.size());
  std::memcpy(out->tag.data(), p + kTagAt, out->tag.size());
  const auto masked = static_cast<uint16_t>(p[kPortAt] << 8 | p[kPortAt + 1]);
  out->port = masked ^ port_pad(keys, out->nonce);
  return BeaconVerdict::kOk;
}

bool beacon_is_from(const BeaconKeys& keys, const OpenedBeacon& beacon, std::string_view public_key) {
  auto tag = tag_of(keys, beacon.nonce, public_key);
  return sodium_memcmp(tag.data(), beacon.tag.data(), tag.size()) == 0;
}

std::optional<std::string> beacon_sender(const BeaconKeys& keys, const OpenedBeacon& beacon,
                                         const std::vector<std::string>& candidates) {
  for (const auto& key : candidates)
    if (beacon_is_from(keys, beacon, key)) return key;
  return std::nullopt;
}

}  // namespace replog
