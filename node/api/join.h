// The joiner's side of joining with an invite (`replog join`, PROTOCOL.md §7
// "Joining with an invite"), run by the command itself, not inside a node.
//
// join_cluster() reads the data directory first: one that holds another
// cluster's data is refused before anything is sent; a missing one is made
// (Node::init with the line's cluster id). Under the directory's LOCK (a node
// running there is refused), it dials the inviter's endpoints with a DEALER
// whose CURVE keys are this device's and whose server key is the inviter's,
// sends Join (resent every 500 ms until answered) and waits for a JoinReply.
// The inviter's proof is checked before anything is stored; then the cluster
// secret is written (over the one init made), the inviter is trusted
// (how = "invite") and its endpoints are stored in peers.json.
//
// A refused handshake (the inviter has no open invite: used, expired, or the
// node restarted) and a refused Join end it at once; silence ends it at the
// timeout. A directory that join made stays when the exchange fails: it holds
// the invite's cluster id, so joining it again with a new line works.
//
// Thread safety: one call at a time per data directory (it takes LOCK).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/invite.h"
#include "replog/status.h"

namespace replog {

struct JoinOptions {
  std::string dir;
  invite::InviteLine line;  // as parse_line read it
  std::string name;         // what the inviter is asked to call this device; may be empty
  int64_t timeout_ms = 30'000;
};

struct JoinOutcome {
  bool made_dir = false;        // the data directory did not exist
  std::string device_id;        // this device's
  std::string inviter_device_id;
  std::string cluster;
  std::vector<std::string> endpoints;  // stored in peers.json
};

Result<JoinOutcome> join_cluster(const JoinOptions& options);

}  // namespace replog
