// Stored peers: DATA/peers.json (docs/STORAGE.md), where `replog join` leaves
// the inviter's device id and endpoints so that the new node finds the
// cluster without discovery. The daemon dials them as it dials --peer: each
// once its device is trusted (node/api/daemon.cc, TrustFollower).
//
// The file is JSON: {"version": 1, "peers": [{"id": DEVICE_ID, "endpoints":
// ["tcp://HOST:PORT", ...], "how": "invite"}, ...]}, ordered by public key,
// one entry per device. It is checked when read (exactly these members, 1..8
// endpoints of tcp://HOST:PORT with PORT 1..65535, at most 256 peers) and refused
// with one line naming it otherwise. As the trust list, it decides whom the
// node dials, so it is written 0600 and read only when it is a regular file of
// this user's that group and others cannot write.
//
// Thread safety: functions; across processes, only the holder of the data
// directory's LOCK writes the file.
#pragma once

#include <string>
#include <vector>

#include "replog/status.h"
#include "storage/env.h"

namespace replog {

struct StoredPeer {
  std::string public_key;              // Ed25519, 32 bytes
  std::vector<std::string> endpoints;  // 1..8 of tcp://HOST:PORT
  std::string how = "invite";          // how the peer came to be stored: "invite"
};

inline constexpr size_t kMaxStoredPeers = 256;
inline constexpr size_t kMaxStoredPeerEndpoints = 8;

// The peers in `path`; none when the file does not exist.
Result<std::vector<StoredPeer>> load_peers(const std::string& path, Env& env);
// Adds `peer` to the file (replacing the entry of the same device), written
// at once, 0600. kInvalidArgument for a peer outside the rules above.
Status store_peer(const std::string& path, const StoredPeer& peer, Env& env);

}  // namespace replog
