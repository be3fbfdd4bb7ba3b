// The archive's objects: their names and their bytes (docs/ARCHIVE.md).
//
// An archive is a prefix of an S3 bucket. Every object in it is a pure
// function of the log it comes from, so that any member that writes one
// writes the same bytes:
//
//   log/<origin:16 hex>/<last:20 digits>-<first:20 digits>.seg
//       updates first..last of one origin, ending at a head of that origin,
//       sealed under the archive key;
//   changes/<uploader ms:13 digits>-<origin:16 hex>-<last:20 digits>
//       an empty marker written after each segment, so that pollers find new
//       segments with one listing;
//   snapshots/…  signed roll-ups of state (below);
//   evidence/<origin:16 hex>/<fork seq:20 digits>-<digest:16 hex>.ev
//       fork evidence (protocol/origin_proof.h), sealed like a segment.
//
// Sealing is deterministic authenticated encryption: the plaintext is cut into
// 64 KiB chunks, each sealed with XChaCha20-Poly1305 under a nonce that is a
// keyed BLAKE2b of the object's header, its name, the chunk's index and the
// chunk's plaintext (a synthetic IV). Equal objects get equal bytes; different
// plaintext never shares a nonce. The bucket sees only sizes, names and times.
//
// Everything read here comes from a bucket and is hostile: decoders check every
// length and answer kCorruption with one line, never more than they were given.
//
// Thread safety: pure functions and values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/origin_proof.h"
#include "protocol/update.h"
#include "protocol/version_vector.h"
#include "replog/status.h"

namespace replog::archive {

inline constexpr uint8_t kFormat = 1;
// Plaintext bytes per sealed chunk.
inline constexpr size_t kChunkBytes = 64 * 1024;
// "replog-a" ‖ u8 format ‖ u8 kind ‖ u16 0 ‖ u32be key id ‖ u32be chunk bytes ‖ u64be plaintext length.
inline constexpr size_t kHeaderBytes = 28;
inline constexpr size_t kNonceBytes = 24;
inline constexpr size_t kTagBytes = 16;
// The largest plaintext an object may hold: a merged segment or a snapshot.
// Readers refuse anything that says it is larger before reading further.
inline constexpr uint64_t kMaxPlaintextBytes = uint64_t{256} << 20;

enum class Kind : uint8_t { kSegment = 1, kSnapshot = 2, kEvidence = 3 };

// ---- names ----------------------------------------------------------------

struct SegmentName {
  OriginId origin = 0;
  uint64_t first = 0;  // 1 ≤ first ≤ last
  uint64_t last = 0;
  bool operator==(const SegmentName&) const = default;
};

// "log/<origin>/" : every segment of one origin.
std::string origin_prefix(OriginId origin);
// The origin of an origin_prefix; nullopt for any other string.
std::optional<OriginId> parse_origin_prefix(std::string_view prefix);
std::string segment_key(const SegmentName& name);
// The key of a segment object, relative to the archive's prefix; kInvalidArgument
// for anything else (another prefix, a malformed number, first > last, 0).
Result<SegmentName> parse_segment_key(std::string_view key);
// The segments that carry a node holding 1..held furthest, in order: each
// starts at or below the next seq needed and ends past it, the one reaching
// furthest first. Stops where no segment starts at or below the next seq.
std::vector<SegmentName> cover(const std::vector<SegmentName>& names, uint64_t held);
// A ListObjectsV2 start-after that skips the segments of `origin` ending at or
// below `seq`: what a node holding 1..seq still lacks comes after it.
std::string segments_after(OriginId origin, uint64_t seq);

inline constexpr std::string_view kLogPrefix = "log/";
inline constexpr std::string_view kChangesPrefix = "changes/";

struct FeedEntry {
  int64_t uploader_ms = 0;  // the uploader's wall clock, 0 ≤ ms < 10^13
  OriginId origin = 0;
  uint64_t last = 0;
  bool operator==(const FeedEntry&) const = default;
};

std::string feed_key(const FeedEntry& entry);
Result<FeedEntry> parse_feed_key(std::string_view key);
// The start-after for a feed listing that begins at `ms` (entries at or after it).
std::string feed_after(int64_t ms);

// ---- keys and sealing -------------------------------------------------------

// A 32-byte archive key and its id: the first 4 bytes, big-endian, of
// BLAKE2b-256("replog-archive-key-id-v1" ‖ key). The id is in every object's
// header, so that a reader holding several keys (after a rotation) knows
// which one opens it.
class ArchiveKey {
 public:
  static constexpr size_t kBytes = 32;
  // `generation`: 0 for the key every member derives; each rotation adds one.
  static Result<ArchiveKey> from_bytes(std::string_view bytes, uint32_t generation = 0);
  ArchiveKey(const ArchiveKey&) = default;
  ArchiveKey& operator=(const ArchiveKey&) = default;
  ~ArchiveKey();

  uint32_t id() const { return id_; }
  uint32_t generation() const { return generation_; }
  std::string_view bytes() const;
  // The subkeys actually used: libsodium's crypto_kdf_derive_from_key with
  // the context "rlarchiv", id 1 for the AEAD key and id 2 for the nonce key.
  std::array<unsigned char, 32> aead_key() const;
  std::array<unsigned char, 32> nonce_key() const;

 private:
  ArchiveKey() = default;
  std::array<unsigned char, kBytes> key_{};
  uint32_t id_ = 0;
  uint32_t generation_ = 0;
};

// The keys a reader holds, ordered by (generation, id): the last writes, so
// members that hold the same keys seal with the same one (equal objects).
using Keyring = std::vector<ArchiveKey>;
// Adds `key` in order; false when the ring holds its id already.
bool add_key(Keyring& ring, const ArchiveKey& key);

// keys/<generation:10 digits>-<key id:8 hex>/<device public key:64 hex>: a
// rotated archive key sealed (crypto_box_seal) to one member device's X25519
// key (docs/ARCHIVE.md §7).
inline constexpr std::string_view kKeysPrefix = "keys/";
struct KeyGrant {
  uint32_t generation = 0;
  uint32_t key_id = 0;
  std::string device;  // 32 bytes, Ed25519
};
std::string key_grant_key(const KeyGrant& grant);
Result<KeyGrant> parse_key_grant_key(std::string_view key);

// `context` binds the object to its name (segment_context for segments):
// a sealed object moved to another name does not open.
std::string seal(const ArchiveKey& key, Kind kind, std::string_view context, std::string_view plaintext);
// The plaintext, after checking the header, the key id, every chunk's tag and
// the total length. kCorruption with one line when anything is wrong;
// kNotFound when no key of `keys` has the object's key id.
Result<std::string> open(const Keyring& keys, Kind kind, std::string_view context, std::string_view sealed);
// The key id of a sealed object's header, when it has one.
std::optional<uint32_t> sealed_key_id(std::string_view sealed);

// u64be origin ‖ u64be first ‖ u64be last.
std::string segment_context(const SegmentName& name);

// ---- segments ---------------------------------------------------------------

// Updates first..last of one origin and the head that ends them (at `last`),
// carrying the origin's key when first is 1.
struct Segment {
  SegmentName name;
  proof::Head head;
  std::vector<Update> updates;
};

// u8 format ‖ u64be origin ‖ u64be first ‖ u64be last ‖ head (MessagePack,
// origin_proof.h) ‖ (last - first + 1) update envelopes [hlc, origin, bin(body)].
// REQUIRES: updates are seqs first..last of head.origin, head.seq == last.
std::string encode_segment(const Segment& segment);
// Checks the shape: the name's numbers, the head at `last` of the same origin,
// exactly last - first + 1 updates of that origin with consecutive seqs and
// rising hlc, nothing after them. Proof (chains, signature) is the caller's.
Result<Segment> decode_segment(std::string_view plaintext);

// seal(kind segment) of encode_segment, under the segment's own name.
std::string seal_segment(const ArchiveKey& key, const Segment& segment);
// open + decode_segment, and the object's name must be the segment's own.
Result<Segment> open_segment(const Keyring& keys, std::string_view object_key, std::string_view sealed);

// ---- snapshots --------------------------------------------------------------

inline constexpr std::string_view kSnapshotsPrefix = "snapshots/";

// snapshots/<cut key:32 hex>-<vector digest:16 hex>-<methods digest:16 hex>.snap
struct SnapshotName {
  std::string cut;             // the 16-byte key of the newest update folded
  std::string vector_digest;   // 8 bytes: vector_digest()
  std::string methods_digest;  // 8 bytes: the first 8 of the methods' BLAKE2b-256
  bool operator==(const SnapshotName&) const = default;
};

std::string snapshot_key(const SnapshotName& name);
Result<SnapshotName> parse_snapshot_key(std::string_view key);
// The first 8 bytes of BLAKE2b-256 over u32be n ‖ n × (u64be origin ‖ u64be seq), origins ascending.
std::string vector_digest(const VersionVector& vector);
// cut ‖ vector digest ‖ methods digest: the sealing context of a snapshot.
std::string snapshot_context(const SnapshotName& name);

// The state folded from exactly the updates of `vector`, signed by the member
// that wrote it.
struct Snapshot {
  std::string cut;  // 16 bytes
  VersionVector vector;
  std::string state_hash;  // 32 bytes, as State::hash()
  std::vector<proof::Head> heads;  // the newest head per origin at its vector seq, where held
  std::string checkpoint;  // node/core/checkpoint.h bytes: cut, vector, methods digest, state
  std::string signer;      // 32 bytes: the writer's device key
  std::string signature;   // 64 bytes
};

// u8 format ‖ cut[16] ‖ u32be n ‖ n × (u64be origin ‖ u64be seq) ‖ state hash[32] ‖
// u32be h ‖ h × head ‖ u64be len ‖ checkpoint[len] ‖ signer[32] ‖ signature[64]
// The signature (Ed25519) covers BLAKE2b-256("replog-snapshot-v1" ‖ u8 len ‖ cluster ‖
// every byte before the signer).
std::string encode_snapshot(const Snapshot& s, std::string_view cluster, std::string_view signer_secret);
// Checks the shape and the signature; whether the signer is trusted is the caller's.
Result<Snapshot> decode_snapshot(std::string_view plaintext, std::string_view cluster);

// ---- fork evidence ----------------------------------------------------------

inline constexpr std::string_view kEvidencePrefix = "evidence/";

// evidence/<origin:16 hex>/<fork seq:20 digits>-<digest:16 hex>.ev
struct EvidenceName {
  OriginId origin = 0;
  uint64_t fork_seq = 0;  // the first seq replay leaves out
  std::string digest;     // 8 bytes: the first 8 of BLAKE2b-256 of the evidence encoding
  bool operator==(const EvidenceName&) const = default;
};

std::string evidence_key(const EvidenceName& name);
Result<EvidenceName> parse_evidence_key(std::string_view key);
// The name of fork evidence (proof::encode_evidence bytes), from its contents.
Result<EvidenceName> evidence_name(std::string_view evidence);
// u64be origin ‖ u64be fork seq ‖ digest: the sealing context of evidence.
std::string evidence_context(const EvidenceName& name);

// seal(kind evidence) of u8 format ‖ the evidence encoding, under its own name
// (the key evidence_key(evidence_name(evidence)) returns). REQUIRES: it decodes.
std::string seal_evidence(const ArchiveKey& key, std::string_view evidence);
// The evidence encoding, after open and a check that it decodes and that the
// object's name is its own. Whether it proves a fork is check_evidence's.
Result<std::string> open_evidence(const Keyring& keys, std::string_view object_key, std::string_view sealed);

}  // namespace replog::archive
