// Beacons: the UDP packet a node sends on its LAN so that the other members of
// its cluster find it (PROTOCOL.md "Discovery", byte by byte). Pure functions
// over bytes: no sockets, no clock, so the parser can be fuzzed
// (tests/fuzz/fuzz_beacon.cc) and the wire logic tested without a network.
//
// A beacon says "a member of this cluster listens on this port" to members
// only. Two keys derived from the cluster secret (storage/cluster_secret.h)
// make it so:
//   - the tag key: tag = BLAKE2b-128(tag key, nonce || Ed25519 public key).
//     A member finds which trusted device sent it by computing the tag for
//     each key it trusts (one hash per trusted device); a stranger sees 16
//     bytes that change with every beacon.
//   - the MAC key: mac = BLAKE2b-128(MAC key, every byte before it). A beacon
//     of another cluster (or a forged one) fails here, before any tag is
//     computed.
// The listen port is masked with a pad from the tag key and the nonce, so
// that a device on an unusual port cannot be recognised by it either. The
// nonce is 16 fresh random bytes per beacon: two beacons of one node share
// only the magic, the version and the flags.
//
// Nothing here stops a replay (there is no clock in a beacon): a replayed
// beacon makes a member dial the named device at the replayer's address,
// where the CURVE handshake fails unless it is that device. Discovery's
// per-address dial limit keeps that cheap (node/discovery/discovery.h).
//
// Thread safety: pure functions; BeaconKeys is a value.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/cluster_secret.h"

namespace replog {

inline constexpr char kBeaconMagic[4] = {'R', 'P', 'L', 'D'};
inline constexpr uint8_t kBeaconVersion = 1;
inline constexpr size_t kBeaconNonceBytes = 16;
inline constexpr size_t kBeaconTagBytes = 16;
inline constexpr size_t kBeaconMacBytes = 16;
// magic 4, version 1, flags 1, nonce 16, tag 16, masked port 2, MAC 16.
inline constexpr size_t kBeaconBytes = 4 + 1 + 1 + kBeaconNonceBytes + kBeaconTagBytes + 2 + kBeaconMacBytes;
// The crypto_kdf contexts of the two keys (8 characters each).
inline constexpr std::string_view kBeaconTagContext = "beaconid";
inline constexpr std::string_view kBeaconMacContext = "beaconmc";

using BeaconNonce = std::array<unsigned char, kBeaconNonceBytes>;

struct BeaconKeys {
  std::array<unsigned char, 32> tag_key{};
  std::array<unsigned char, 32> mac_key{};
  static BeaconKeys from(const ClusterSecret& secret);
};

// The fields of a beacon whose MAC held; the sender is not known yet.
struct OpenedBeacon {
  BeaconNonce nonce{};
  std::array<unsigned char, kBeaconTagBytes> tag{};
  uint16_t port = 0;
  uint8_t flags = 0;
};

enum class BeaconVerdict {
  kOk,
  kMalformed,  // not kBeaconBytes long, another magic, or another version
  kBadMac,     // the shape of a beacon, not made with this cluster's MAC key
};

// The beacon of the device `public_key` (32 bytes) listening on `port`.
// REQUIRES: public_key.size() == 32; `nonce` fresh random bytes.
std::string encode_beacon(const BeaconKeys& keys, std::string_view public_key, uint16_t port,
                          const BeaconNonce& nonce);

// Checks the shape and the MAC (in constant time) of `packet`; fills `out`
// only with kOk. Never reads beyond `packet`, whatever it holds.
BeaconVerdict open_beacon(const BeaconKeys& keys, std::string_view packet, OpenedBeacon* out);

// True when `beacon` was made by the device `public_key` (its tag matches).
bool beacon_is_from(const BeaconKeys& keys, const OpenedBeacon& beacon, std::string_view public_key);

// The first of `candidates` (32-byte keys) that made `beacon`, or nothing. One
// BLAKE2b per candidate: about a microsecond each.
std::optional<std::string> beacon_sender(const BeaconKeys& keys, const OpenedBeacon& beacon,
                                         const std::vector<std::string>& candidates);

}  // namespace replog
