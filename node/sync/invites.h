// The inviter's side of joining with an invite (PROTOCOL.md §7 "Joining with
// an invite"): the open invites (InviteBook) and the service that answers
// joiners on the event loop (JoinService).
//
// Invites live in memory only: an invite is good while the node that made it
// runs, and a restart forgets every one. Each is used once and expires
// (default 10 minutes, at most 24 hours). While one is open, the transport
// admits unknown keys as joiners (TransportSecurity::joining); their frames
// reach JoinService alone, never the sync engine. A Join whose proof matches
// no open invite is refused and counted, and the invite stays open: 128 bits
// cannot be guessed, so a stranger must not be able to spend it. A repeated
// Join from the device that used an invite gets the same acceptance again (a
// lost reply is re-sent). Once no invite is open, the joiners' connections
// are cut, a second after the last invite closed so that the acceptance
// reaches the device that used it.
//
// Thread safety: InviteBook's members are safe from any thread (the local
// API's thread opens invites, the event loop redeems them). JoinService runs
// on the event loop only.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "node/core/clock.h"
#include "node/sync/sync_engine.h"
#include "node/sync/zmq_transport.h"
#include "replog/status.h"
#include "storage/cluster_secret.h"
#include "storage/env.h"
#include "storage/trust.h"

namespace replog {

class InviteBook {
 public:
  static constexpr int64_t kDefaultExpiryMs = 10 * 60'000;
  static constexpr int64_t kMaxExpiryMs = 24 * 3'600'000;
  static constexpr size_t kMaxInvites = 64;  // open or used, not yet expired
  // How long after the last invite closed the joiners' connections are cut.
  static constexpr int64_t kCutDelayMs = 1000;

  // REQUIRES: `clock` and `env` (its random source) outlive the book.
  InviteBook(const Clock& clock, Env& env) : clock_(clock), env_(env) {}

  struct Opened {
    std::string secret;  // invite::kSecretBytes
    int64_t expires_ms = 0;
  };
  // A new invite good for `expires_in_ms` (1..kMaxExpiryMs). kInvalidArgument
  // for another span, kBusy when kMaxInvites are open or used and unexpired.
  Result<Opened> open(int64_t expires_in_ms);
  // Whether an invite is open (made, not used, not expired).
  bool any_open() const;
  // When the last invite closed (used or expired), while none is open; nothing
  // while one is open or none was ever made.
  std::optional<int64_t> none_open_since() const;

  // The secret of the invite the proof is for: an open one, or one this
  // joiner used already. Nothing when no invite matches. Every candidate is
  // compared in constant time.
  std::optional<std::string> match(std::string_view joiner_key, std::string_view inviter_key,
                                   std::string_view proof) const;
  // Marks the open invite of `secret` used by `joiner_key`; false when it
  // was used already (a repeated Join).
  bool mark_used(std::string_view secret, std::string_view joiner_key);

 private:
  struct Invite {
    std::string secret;
    int64_t expires_ms = 0;
    std::string used_by;  // empty while open
    int64_t used_ms = 0;
  };
  void prune_locked(int64_t now) const;  // REQUIRES: mu_ held

  const Clock& clock_;
  Env& env_;
  mutable std::mutex mu_;
  mutable std::vector<Invite> invites_;  // guarded by mu_
  mutable int64_t last_closed_ms_ = 0;   // guarded by mu_; 0: none closed yet
};

struct JoinCounters {
  uint64_t joined = 0;       // devices trusted through an invite
  uint64_t refused = 0;      // Joins refused: no invite matches, or a key CURVE did not see
  uint64_t bad_frames = 0;   // joiners' frames that are not a Join (a stranger's Hello, say)
};

class JoinService {
 public:
  struct Inviter {
    std::string public_key;  // this node's Ed25519 key
    std::string cluster;
    ClusterSecret cluster_secret;
  };
  JoinService(InviteBook& book, TrustStore& trust, ZmqTransport& transport, Inviter self, const Clock& clock,
              SyncEngine::Log log);

  // Answers the joiners' frames; cuts their connections once no invite is open.
  void run_once();
  const JoinCounters& counters() const { return counters_; }

 private:
  void handle(const JoinFrame& frame);
  void refuse(const Link& link, const std::string& why);

  InviteBook& book_;
  TrustStore& trust_;
  ZmqTransport& transport_;
  Inviter self_;
  const Clock& clock_;
  SyncEngine::Log log_;
  JoinCounters counters_;
};

}  // namespace replog
