// TrustStore: the devices this node trusts, kept in DATA/trust.json
// (docs/STORAGE.md), beside the key file and outside LMDB: it is this node's
// own configuration, never replicated.
//
// A device is its Ed25519 public key (protocol/device_id.h prints it). Only a
// trusted device's links are admitted (the ZAP handler) and only trusted
// devices are dialled. Every change is written to the file (atomically, 0600)
// before it takes effect in memory, so what is in force is always what a
// restart would load.
//
// The file is JSON: {"version": 1, "devices": [{"id": DEVICE_ID, "name": TEXT,
// "added_ms": N, "how": "manual"|"invite"|"introducer"}, ...]}. It is checked
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
};

// OK when `name` may name a trusted device: at most 64 bytes of UTF-8 without
// control characters (C0, DEL, C1); else kInvalidArgument saying why.
Status check_device_name(const std::string& name);

class TrustStore {
 public:
  // Loads `path` (a missing file is an empty list).
  static Result<std::unique_ptr<TrustStore>> open(const std::string& path, Env& env);

  // Ordered by public key, which is the device ids' order when their
  // characters are read in base32 order (A-Z, then 2-7).
  std::vector<TrustedDevice> list() const;
  std::optional<TrustedDevice> find(std::string_view public_key) const;
  bool contains(std::string_view public_key) const { return find(public_key).has_value(); }
  // Adds the device, or renames it when trusted already (an empty name keeps
  // the old one; added_ms and how stay the first ones). Written to the file
  // first; on failure nothing changes. kInvalidArgument for a key that is not
  // 32 bytes, a name of more than 64 bytes, not UTF-8 or with a control
  // character, or an unknown `how`.
  Status add(TrustedDevice device);
  // Removes the device; false when it was not trusted.
  Result<bool> remove(std::string_view public_key);
  // Grows by one with every change (an add that changes nothing is none): a
  // reader polls it to notice removals.
  uint64_t generation() const;

 private:
  TrustStore(std::string path, Env& env) : path_(std::move(path)), env_(env) {}
  Status write_locked(const std::vector<TrustedDevice>& devices);  // REQUIRES: mu_ held

  std::string path_;
  Env& env_;
  mutable std::mutex mu_;
  std::vector<TrustedDevice> devices_;  // guarded by mu_, ordered by public key
  uint64_t generation_ = 0;             // guarded by mu_
};

}  // namespace replog
