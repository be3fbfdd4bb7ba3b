// TrustStore: the devices this node trusts, kept in DATA/trust.json
// (docs/STORAGE.md), beside the key file and outside LMDB.
//
// Membership spreads (PROTOCOL.md §7 "Membership"): the list is a
// last-writer-wins set with one entry per device key, member or removed, each
// stamped with when (ms) and by whom (the author's device key) it was made.
// Removed devices stay as tombstones, so that an older "member" entry cannot
// bring them back. merge() takes a peer's entries under the rules against a
// stolen device; add() and remove() make entries of this node's own.
//
// A device is its Ed25519 public key (protocol/device_id.h prints it). Only a
// trusted device's links are admitted (the ZAP handler) and only trusted
// devices are dialled. Every change is written to the file (atomically, 0600)
// before it takes effect in memory, so what is in force is always what a
// restart would load.
//
// The file is JSON: {"version": 2, "devices": [{"id": DEVICE_ID, "name": TEXT,
// "added_ms": N, "how": "manual"|"invite"|"introducer", "changed_ms": N,
// "by": DEVICE_ID|""}, ...], "removed": [{"id", "name", "removed_ms", "by"},
// ...]}; version 1 (devices without changed_ms and by, no removed) is read
// too and written as version 2 at the next change. It is checked
// when loaded: a bad file fails with one line naming it; nothing is guessed.
// So is who may change it: a file that is not a regular file of the current
// user, or that group or others may write, is refused ("chmod 600 PATH").
//
// The store does not know the node's own key: refusing it is for the callers
// that do (node/api/trust_ops.h, for the local API and the CLI).
//
// Thread safety: every member function is safe from any thread (the daemon's
// event loop reads it while the local API's thread changes it). Across
// processes, only the holder of the data directory's LOCK changes the file.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "replog/status.h"
#include "storage/env.h"

namespace replog {

struct TrustedDevice {
  std::string public_key;   // 32 bytes, Ed25519
  std::string name;         // for people; may be empty
  int64_t added_ms = 0;     // wall clock when trusted
  std::string how = "manual";  // "manual", "invite" or "introducer"
  // Its membership entry: when it was last made a member or renamed, and by
  // whom (a device key; empty: by this node, before it had a key or in a
  // version 1 file). add() sets changed_ms itself.
  int64_t changed_ms = 0;
  std::string changed_by;
};

// OK when `name` may name a trusted device: at most 64 bytes of UTF-8 without
// control characters (C0, DEL, C1); else kInvalidArgument saying why.
Status check_device_name(const std::string& name);

// A tombstone: a device removed, kept so that the removal wins over older
// entries that still travel.
struct RemovedDevice {
  std::string public_key;
  std::string name;
  int64_t removed_ms = 0;
  std::string removed_by;  // as changed_by
};

// One entry of the replicated membership, as merge() takes it and entries()
// gives it. Entries about one key are ordered by (ms, removed over member,
// author, name): the greater wins, on every node alike.
struct MemberEntry {
  std::string public_key;
  bool removed = false;
  int64_t ms = 0;
  std::string author;  // 32 bytes; entries() gives "" for this node's own unkeyed entries
  std::string name;
};
bool supersedes(const MemberEntry& a, const MemberEntry& b);

// At most this many entries, members and tombstones together: what one
// Members frame carries (wire::kMaxMemberEntries is the same number).
inline constexpr size_t kMaxTrustEntries = 1024;

// Why an entry of a peer was refused (the counters' names).
enum class MemberRefusal { kAboutSender, kSelfAuthored, kAuthorRemoved, kFuture, kInvalid, kFull };
const char* member_refusal_name(MemberRefusal r);

struct MergeResult {
  std::vector<std::string> added;    // keys that became trusted
  std::vector<std::string> removed;  // keys no longer trusted
  uint64_t accepted = 0;             // entries that changed the list (added, removed or renamed)
  std::vector<std::pair<MemberRefusal, std::string>> refused;  // (why, key)
};

struct MergeRules {
  std::string sender;   // the authenticated device that sent the entries
  std::string own_key;  // this node's: entries about it are skipped
  int64_t now_ms = 0;
  int64_t max_ahead_ms = 3'600'000;  // entries further ahead of now_ms are refused
};
class TrustStore {
 public:
  // Loads `path` (a missing file is an empty list).
  static Result<std::unique_ptr<TrustStore>> open(const std::string& path, Env& env);

  // Ordered by public key, which is the device ids' order when their
  // characters are read in base32 order (A-Z, then 2-7).
  std::vector<TrustedDevice> list() const;
  std::optional<TrustedDevice> find(std::string_view public_key) const;
  bool contains(std::string_view public_key) const { return find(public_key).has_value(); }
  // The tombstones, ordered by public key.
  std::vector<RemovedDevice> removed() const;
  // Every member and tombstone as entries, ordered by public key.
  std::vector<MemberEntry> entries() const;
  // Adds the device, or renames it when trusted already (an empty name keeps
  // the old one; added_ms and how stay the first ones); a device removed
  // before is trusted again. The entry made is authored by
  // device.changed_by, at max(device.added_ms, the replaced entry's ms + 1),
  // so it wins over the entry it replaces. Written to the file first; on
  // failure nothing changes. kInvalidArgument for a key or author that is not
  // 32 bytes, a name of more than 64 bytes, not UTF-8 or with a control
  // character, an unknown `how`, or kMaxTrustEntries entries already.
  Status add(TrustedDevice device);
  // Removes the device and keeps a tombstone (authored by `author` at
  // max(ms, the replaced entry's ms + 1)); a key never seen gets one too, so
  // that its removal spreads. False when it was not trusted.
  Result<bool> remove(std::string_view public_key, std::string_view author = {}, int64_t ms = 0);
  // Takes a peer's entries: for each key the newer entry wins, except that
  // entries about rules.own_key are skipped and these are refused (counted,
  // not applied): an entry about the sender itself, one whose author is the
  // device it is about, one whose author is removed here at or before its ms,
  // one more than max_ahead_ms ahead, one that is not valid (a name, a key),
  // and one that would grow the list past kMaxTrustEntries. A device that
  // becomes a member gets how "introducer" and added_ms now_ms. One write
  // (and one generation) for all the changes; on a failed write nothing
  // changes and the error is returned.
  Result<MergeResult> merge(const std::vector<MemberEntry>& entries, const MergeRules& rules);
  // Grows by one with every change (an add that changes nothing is none): a
  // reader polls it to notice removals.
  uint64_t generation() const;

 private:
  TrustStore(std::string path, Env& env) : path_(std::move(path)), env_(env) {}
  // REQUIRES: mu_ held
  Status write_locked(const std::vector<TrustedDevice>& devices, const std::vector<RemovedDevice>& removed);

  std::string path_;
  Env& env_;
  mutable std::mutex mu_;
  std::vector<TrustedDevice> devices_;  // guarded by mu_, ordered by public key
  std::vector<RemovedDevice> removed_;  // guarded by mu_, ordered by public key; no key in both
  uint64_t generation_ = 0;             // guarded by mu_
};

}  // namespace replog
