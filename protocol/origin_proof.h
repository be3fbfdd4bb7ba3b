// Authenticated origins (PROTOCOL.md §8 "Signed origins"): origin ids derived
// from keys, each origin's hash chain, signed heads, key certificates and
// fork evidence. Pure functions over bytes: no storage, no clock.
//
//   origin id  the first 8 bytes, big-endian, of BLAKE2b-256("replog-origin-v1" ‖ K)
//   c_0        BLAKE2b-256("replog-chain-v1" ‖ u8 len(cluster) ‖ cluster ‖ K)
//   c_n        BLAKE2b-256(c_{n-1} ‖ K ‖ u64be hlc_n ‖ body_n)
//   head       (origin, seq, c_seq, flags), signed by K (Ed25519, detached) over
//              "replog-head-v1" ‖ u64be origin ‖ u64be seq ‖ c_seq ‖ u8 flags
//   cert       a device key D vouching for an origin key K that is not D itself:
//              D signs "replog-origin-cert-v1" ‖ u8 len(cluster) ‖ cluster ‖ K
//   hello      a device key D binding the link its CURVE key X authenticates to
//              the origin a Hello names: D signs
//              "replog-hello-v1" ‖ u8 len(cluster) ‖ cluster ‖ X ‖ u64be node_id
//
// An origin's writer is the holder of K. A node writes first as its device
// key; after a fork it writes as a fresh key that its device key certifies.
// A legacy origin (a random id from a data directory made before signed
// origins) is attested by its former writer's device key: its head has the
// kLegacy flag, and its id is not derived from the key.
//
// Fork evidence is a proof that one key signed two heads that are not on one
// chain: two branches that share c_{s-1} and differ at seq s (kChain), or two
// keys that both claim one origin id (kKeys). s is the fork seq: every node
// leaves the origin's updates from s on out of replay, whichever branch it holds.
//
// Thread safety: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "replog/status.h"
#include "protocol/update.h"
#include "replog/types.h"

namespace replog::proof {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kChainBytes = 32;
inline constexpr size_t kSignatureBytes = 64;
inline constexpr size_t kSecretKeyBytes = 64;  // libsodium's Ed25519 secret key (seed ‖ public key)

using Chain = std::array<unsigned char, kChainBytes>;

// The origin id of key K; 0 when K is not 32 bytes. A key whose id is reserved
// (0 or all ones) cannot write; key generation draws another.
OriginId origin_of_key(std::string_view key);

Chain chain_start(std::string_view cluster, std::string_view key);
// c <- BLAKE2b-256(c ‖ key ‖ u64be hlc ‖ body). The hlc is chained with the
// body: it places the update in replay order, so a relay may not change it.
void chain_step(Chain& c, std::string_view key, uint64_t hlc, std::string_view body);
std::string_view chain_bytes(const Chain& c);
// 32 bytes to a Chain; nullopt for any other length.
std::optional<Chain> chain_from(std::string_view bytes);

// Head flags.
inline constexpr uint8_t kFinal = 1;   // the origin's last head: it writes nothing after (retire)
inline constexpr uint8_t kLegacy = 2;  // an attestation of a legacy origin by its former writer
inline constexpr uint8_t kKnownFlags = kFinal | kLegacy;

struct Head {
  OriginId origin = 0;
  uint64_t seq = 0;
  Chain chain{};
  uint8_t flags = 0;
  std::string signature;  // 64 bytes
  // The signing key, carried where a receiver may not know it yet (a range or
  // batch from seq 1, a legacy attestation); empty otherwise.
  std::string key;
  // When `key` is carried and is not a device key: the device that vouches
  // for it and its certificate. Both empty otherwise.
  std::string device;
  std::string cert;

  bool operator==(const Head&) const = default;
};

// The bytes a head's signature covers.
std::string head_message(OriginId origin, uint64_t seq, const Chain& chain, uint8_t flags);
// A head signed with `secret_key` (64 bytes, libsodium form). Carries no key.
Head sign_head(OriginId origin, uint64_t seq, const Chain& chain, uint8_t flags, std::string_view secret_key);
// Whether `head.signature` is `key`'s signature over the head.
bool head_signed_by(const Head& head, std::string_view key);

std::string cert_message(std::string_view cluster, std::string_view key);
// `device_secret` (64 bytes) vouching for `key`.
std::string sign_cert(std::string_view cluster, std::string_view key, std::string_view device_secret);
bool cert_valid(std::string_view cluster, std::string_view key, std::string_view device, std::string_view cert);

// What a Hello carries to bind its link to its node id (PROTOCOL.md §2
// "Handshake"): the sender's device key D, D's signature over hello_message,
// and, when the node id is not D's own origin, the origin key K it writes with
// and D's certificate for K (the certificate heads carry).
struct HelloProof {
  std::string device;     // D, 32 bytes
  std::string signature;  // 64 bytes
  std::string key;        // K, 32 bytes; empty when the node id is id(D)
  std::string cert;       // 64 bytes with `key`; empty otherwise

  bool operator==(const HelloProof&) const = default;
};

// The bytes a Hello's signature covers. `curve_key` is D's X25519 form (32
// bytes): the key the link authenticates, so the signature says that this
// link speaks for `node_id`.
std::string hello_message(std::string_view cluster, std::string_view curve_key, OriginId node_id);
// D's signature (`device_secret`, 64 bytes) over hello_message.
std::string sign_hello(std::string_view cluster, std::string_view curve_key, OriginId node_id,
                       std::string_view device_secret);
// Whether `p` binds `node_id` to its device in `cluster`: the node id is
// id(D), or id(K) with a valid certificate by D for K (a carried key must
// hold the node id even when D's own would), and the signature verifies under
// D over hello_message(cluster, curve_key, node_id). Whether D is the link's
// key, and `curve_key` D's X25519 form, is the caller's to ensure.
// kInvalidArgument with one line on any failure.
Status check_hello(const HelloProof& p, std::string_view cluster, std::string_view curve_key, OriginId node_id);

// Checks everything a head says about its key, without the updates: the
// signature under `key` (the head's own when carried, else `known_key`), that
// the key may hold the id (derived from it, or kLegacy), and a carried
// certificate. kInvalidArgument with one line on any failure; kNotFound when
// there is no key to check with.
Status check_head(const Head& head, std::string_view cluster, std::string_view known_key);

// MessagePack: [origin, seq, chain bin32, flags, signature bin64] followed by
// key bin32 when carried, and then device bin32, cert bin64 when certified
// (an array of 5, 6 or 8 elements).
void append_head(const Head& head, std::string& out);
std::string encode_head(const Head& head);
// Reads one head at `bytes`; `used` gets its length. Checks the shape and the
// lengths, not the signature.
Result<Head> read_head(std::string_view bytes, size_t& used);
Result<Head> decode_head(std::string_view bytes);

// Fork evidence.
struct Evidence {
  enum class Kind : uint8_t { kChain = 1, kKeys = 2 };
  Kind kind = Kind::kChain;
  Head a, b;  // both carry their keys
  // kChain: the fork seq, c_{seq-1} (shared by both branches), and each
  // branch's updates from seq up to its head.
  uint64_t seq = 0;
  Chain base{};
  std::vector<Update> branch_a, branch_b;

  // The first seq that replay leaves out: `seq` for kChain, 1 for kKeys.
  uint64_t fork_seq() const { return kind == Kind::kChain ? seq : 1; }
  OriginId origin() const { return a.origin; }
};

// Evidence from two branches sharing c_{seq-1}: heads a and b (with keys) and
// each branch's updates from seq on. The caller has the updates;
// check_evidence decides whether they prove a fork.
Evidence chain_evidence(Head a, Head b, uint64_t seq, const Chain& base, std::vector<Update> branch_a,
                        std::vector<Update> branch_b);
Evidence key_evidence(Head a, Head b);

// Whether `e` proves a fork in `cluster`: both heads verify (check_head), name
// one origin and, for kChain, one key; each branch's updates are its origin's seqs
// from e.seq on (their seq fields say so) and chain from e.base to its head;
// the first updates differ (in hlc or body); and when e.seq is 1, e.base is c_0. For kKeys: the two
// keys differ, both may hold the id, and the id is derived from neither or from
// both (a legacy claim on an id derived from another key proves nothing). One
// line saying what fails.
Status check_evidence(const Evidence& e, std::string_view cluster);

// Evidence is at most this large encoded (two branches of a batch each).
inline constexpr size_t kMaxEvidenceBytes = 3 << 20;
// MessagePack: kChain [1, head a, head b, seq, base bin32, [envelope...], [envelope...]]
// (envelopes as protocol/update.h writes them);
// kKeys [2, head a, head b].
std::string encode_evidence(const Evidence& e);
Result<Evidence> decode_evidence(std::string_view bytes);

}  // namespace replog::proof
