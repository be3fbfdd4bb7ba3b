// Peer protocol messages (PROTOCOL.md "Peer protocol").
//
// Every ZeroMQ frame is one MessagePack array [version, type, body]. Bodies are
// positional arrays; ids and seqs are unsigned 64-bit integers; an update
// travels as [hlc, origin, body(bin)] with its body exactly as stored.
// decode() is bounded like every decoder of untrusted bytes: the frame size,
// nesting depth, and no declared count larger than the bytes that remain are
// checked before anything is allocated. The bodies of the updates a frame
// carries are parsed there (Update::parse): one that fails makes the whole
// frame malformed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "replog/status.h"
#include "protocol/origin_proof.h"
#include "protocol/update.h"

namespace replog::wire {

inline constexpr uint64_t kVersion = 1;
// Largest frame a node sends or accepts; ZMQ_MAXMSGSIZE is set above it.
inline constexpr size_t kMaxFrameBytes = 4 << 20;
// A batch of updates (Updates, Push) stops growing past this many body bytes;
// it always holds at least one update, so a frame stays below kMaxFrameBytes.
inline constexpr size_t kMaxBatchBytes = 1 << 20;
// Origins per Vector page, and pages per vector: a vector covers at most
// 65,536 origins, so assembling one from a peer holds bounded memory.
inline constexpr size_t kVectorPageEntries = 1024;
inline constexpr uint32_t kMaxVectorPages = 64;

// Entries per Members frame: a node's whole membership, tombstones included
// (storage/trust.h keeps at most as many), so a frame stays far below
// kMaxFrameBytes (an entry is at most ~420 bytes).
inline constexpr size_t kMaxMemberEntries = 1024;
inline constexpr size_t kMaxMemberNameBytes = 64;
inline constexpr size_t kMaxMemberEndpointBytes = 265;  // "tcp://" + a 253-byte DNS name + ":65535"

// 7 and 8 are the invite exchange's (PROTOCOL.md §7), sent only on a link a
// joiner opened while an invite is open, never on a sync link; 9 spreads
// membership between authenticated devices.
enum class Type : uint8_t {
  kHello = 1, kError = 2, kVector = 3, kRequest = 4, kUpdates = 5, kPush = 6, kJoin = 7, kJoinReply = 8, kMembers = 9,
  kEvidence = 10, kTree = 11
};
// Slots of an array indexed by a Type's value (0: a frame that does not read).
inline constexpr size_t kTypeSlots = 12;
// Whether `type` is one this implementation decodes.
bool known_type(uint64_t type);

enum class ErrorCode : uint32_t {
  kMalformed = 1,        // the frame did not decode
  kVersion = 2,          // protocol version not spoken here
  kCluster = 3,          // another cluster id
  kHelloFirst = 4,       // a message before the handshake
  kUnavailable = 5,      // the node cannot serve now (closing)
  kUnbound = 6,          // a Hello whose signature does not bind the link to its node id
};

struct Hello {
  std::string cluster;
  uint64_t node_id = 0;
  std::string endpoint;  // where this node listens (peers connect back to it)
  uint64_t max_update = 0;
  uint64_t max_frame = 0;
  // What the sender supports beyond version 1 (PROTOCOL.md "Features"); a
  // link uses the features both sides name. Absent (5 elements) means 0.
  uint64_t features = 0;
  // The sender's device key and its signature binding this link to node_id
  // (elements 7 and 8), with the origin key and its certificate when node_id
  // is not the device key's own origin (9 and 10); absent or nil: unsigned.
  std::optional<proof::HelloProof> proof = std::nullopt;
};
// Feature bits: each is used on a link only when both Hellos set it.
// Members frames (membership that spreads, PROTOCOL.md §7); set only by a
// node whose links authenticate devices.
inline constexpr uint64_t kFeatureMembers = 1;
// Signed origins (PROTOCOL.md §8): Updates and Push frames carry the heads
// that cover their updates, and a receiver stores only what they cover.
inline constexpr uint64_t kFeatureSigned = 2;
// A small diff in one round trip (PROTOCOL.md "Features"): a node answering a
// round's Vector first sends, as Updates, what that vector says the peer
// lacks; a node starting a round first pushes what its last-known vector of
// the peer says it lacks. Both within kDiffBytes of bodies per round.
inline constexpr uint64_t kFeatureDiff = 4;
inline constexpr size_t kDiffBytes = 64 * 1024;
// Relay along trees (PROTOCOL.md "Relay trees"): Tree frames prune and graft
// the per-origin relay edges, announce what a lazy edge would have pushed,
// and name the origins the sender hears directly.
inline constexpr uint64_t kFeatureTree = 8;
// Compressed bodies (PROTOCOL.md "Compressed bodies"): a frame's body may be
// a bin holding the body's MessagePack compressed as one zstd frame.
inline constexpr uint64_t kFeatureCompress = 16;
// Frames shorter than this go as they are (compressing saves too little).
inline constexpr size_t kCompressFromBytes = 192;
// Feature bits this implementation knows.
inline constexpr uint64_t kFeatures = kFeatureMembers | kFeatureSigned | kFeatureDiff | kFeatureTree | kFeatureCompress;
struct Error {
  ErrorCode code = ErrorCode::kMalformed;
  std::string message;
};
struct Vector {
  uint32_t page = 0;
  uint32_t pages = 1;
  bool reply = false;  // an answer to a Vector, not a new round
  std::vector<std::pair<uint64_t, uint64_t>> entries;  // (origin, seq), at most kVectorPageEntries
  // origin -> the first kTipBytes of the sender's chain at that entry's seq
  // (signed links only; only for origins verified up to the seq held).
  std::map<uint64_t, std::string> tips = {};
};
inline constexpr size_t kTipBytes = 8;
struct Request {
  uint64_t origin = 0;
  uint64_t from_seq = 0;  // first seq wanted
  uint64_t to_seq = 0;    // last seq wanted
  uint64_t max_bytes = 0;
};
struct Updates {
  uint64_t origin = 0;
  bool more = false;  // the range held more than fit
  std::vector<Update> updates;
  // kFeatureSigned: the head the range ends at (a 4th element; absent or nil: none).
  std::optional<proof::Head> head;
};
struct Push {
  std::vector<Update> updates;
  // kFeatureSigned: the heads its runs end at (a 2nd element; absent: none).
  std::vector<proof::Head> heads;
};
// Heads per Push frame: one per origin run, each run at least one update.
inline constexpr size_t kMaxPushHeads = 4096;

// A joiner's request (invite/join, PROTOCOL.md §7): its device key, which
// must be the key CURVE authenticated, its proof of the invite's secret
// (protocol/invite.h join_proof), and the name it asks to be trusted under.
struct Join {
  std::string device_key;  // Ed25519, 32 bytes
  std::string proof;       // 32 bytes
  std::string name;        // at most kMaxJoinNameBytes; may be empty
};
inline constexpr size_t kMaxJoinNameBytes = 64;
// The inviter's answer. Accepted: its proof (accept_proof), the cluster id and
// the cluster secret (32 bytes). Refused: the three are empty; why is not said.
struct JoinReply {
  bool accepted = false;
  std::string proof;           // 32 bytes when accepted
  std::string cluster;         // 1..64 bytes when accepted
  std::string cluster_secret;  // 32 bytes when accepted
};

// One entry of a node's membership (storage/trust.h MemberEntry), with where
// the sender last reached that device, when it did (a hint for dialling).
struct MemberEntry {
  std::string key;  // 32 bytes, Ed25519
  bool removed = false;
  uint64_t ms = 0;     // at most 2^63-1
  std::string author;  // 32 bytes
  std::string name;    // at most kMaxMemberNameBytes
  std::string endpoint;  // at most kMaxMemberEndpointBytes; empty when unknown
};
struct Members {
  std::vector<MemberEntry> entries;  // at most kMaxMemberEntries
};

// Fork evidence (PROTOCOL.md §8), sent only on a link with kFeatureSigned.
struct Evidence {
  proof::Evidence evidence;
};

// Relay trees (kFeatureTree, PROTOCOL.md "Relay trees"), on either link.
struct Tree {
  std::vector<uint64_t> prune;  // stop pushing these origins' updates to the sender (it has them from elsewhere)
  std::vector<uint64_t> graft;  // push them to the sender again
  std::vector<std::pair<uint64_t, uint64_t>> have;  // (origin, seq): the sender holds the origin up to seq
  // The origins the sender is linked to now (it hears their pushes first
  // hand); absent: unchanged since the last Tree that carried it.
  std::optional<std::vector<uint64_t>> hears = std::nullopt;
};
// Entries per list of a Tree frame.
inline constexpr size_t kMaxTreeEntries = 4096;

using Message = std::variant<Hello, Error, Vector, Request, Updates, Push, Join, JoinReply, Members, Evidence, Tree>;

std::string encode(const Message& m);
// `compressed_ok`: the link agreed to kFeatureCompress, so a body may be a
// compressed bin; without it such a frame is malformed.
Result<Message> decode(std::string_view frame, bool compressed_ok = false);
// `frame` (encode's output) with its body compressed (kFeatureCompress), when
// it is a type that may be (never Hello, Error, Join or JoinReply), is at
// least kCompressFromBytes long and comes out shorter; else nullopt.
std::optional<std::string> compress(std::string_view frame);
// The type of an encoded frame, read from its header alone (no body decoded):
// for logs, counters and test transports. Fails on anything but
// [version 1, known type, ...].
Result<Type> type_of(std::string_view frame);
const char* type_name(const Message& m);

}  // namespace replog::wire
