#include "node/sync/invites.h"

#include <algorithm>

#include "protocol/device_id.h"
#include "protocol/invite.h"
#include "protocol/wire.h"
#include "storage/identity.h"

namespace replog {

// --- InviteBook ------------------------------------------------------------------

void InviteBook::prune_locked(int64_t now) const {
  for (auto it = invites_.begin(); it != invites_.end();) {
    if (it->expires_ms > now) {
      ++it;
      continue;
    }
    if (it->used_by.empty()) last_closed_ms_ = std::max(last_closed_ms_, it->expires_ms);
    it = invites_.erase(it);
  }
}

Result<InviteBook::Opened> InviteBook::open(int64_t expires_in_ms) {
  if (expires_in_ms < 1 || expires_in_ms > kMaxExpiryMs)
    return Status::invalid_argument("an invite expires after 1 ms to 24 h, not " + std::to_string(expires_in_ms) + " ms");
  std::string secret(invite::kSecretBytes, '\0');
  REPLOG_RETURN_IF_ERROR(env_.fill_random(secret.data(), secret.size()));
  const int64_t now = clock_.now_millis();
  std::lock_guard<std::mutex> l(mu_);
  prune_locked(now);
  if (invites_.size() >= kMaxInvites)
    return Status::busy(std::to_string(kMaxInvites) + " invites are open or used and not yet expired; wait for one to expire");
  invites_.push_back(Invite{secret, now + expires_in_ms, "", 0});
  return Opened{std::move(secret), now + expires_in_ms};
}

bool InviteBook::any_open() const {
  std::lock_guard<std::mutex> l(mu_);
  prune_locked(clock_.now_millis());
  return std::any_of(invites_.begin(), invites_.end(), [](const Invite& i) { return i.used_by.empty(); });
}

std::optional<int64_t> InviteBook::none_open_since() const {
  std::lock_guard<std::mutex> l(mu_);
  prune_locked(clock_.now_millis());
  if (last_closed_ms_ == 0 ||
      std::any_of(invites_.begin(), invites_.end(), [](const Invite& i) { return i.used_by.empty(); }))
    return std::nullopt;
  return last_closed_ms_;
}

std::optional<std::string> InviteBook::match(std::string_view joiner_key, std::string_view inviter_key,
                                             std::string_view proof) const {
  std::lock_guard<std::mutex> l(mu_);
  prune_locked(clock_.now_millis());
  std::optional<std::string> found;
  for (const auto& i : invites_) {
    if (!i.used_by.empty() && i.used_by != joiner_key) continue;  // used by another device: gone for good
    if (invite::same_proof(invite::join_proof(i.secret, joiner_key, inviter_key), proof)) found = i.secret;
  }
  return found;
}

bool InviteBook::mark_used(std::string_view secret, std::string_view joiner_key) {
  const int64_t now = clock_.now_millis();
  std::lock_guard<std::mutex> l(mu_);
  for (auto& i : invites_) {
    if (i.secret != secret || !i.used_by.empty()) continue;
    i.used_by = std::string(joiner_key);
    i.used_ms = now;
    last_closed_ms_ = std::max(last_closed_ms_, now);
    return true;
  }
  return false;
}

// --- JoinService -----------------------------------------------------------------

JoinService::JoinService(InviteBook& book, TrustStore& trust, ZmqTransport& transport, Inviter self,
                         const Clock& clock, SyncEngine::Log log)
    : book_(book), trust_(trust), transport_(transport), self_(std::move(self)), clock_(clock), log_(std::move(log)) {}

void JoinService::run_once() {
  for (const auto& frame : transport_.take_join_frames()) handle(frame);
  if (!transport_.has_joiners()) return;
  auto since = book_.none_open_since();
  if (!since || clock_.now_millis() - *since < InviteBook::kCutDelayMs) return;
  if (Status s = transport_.close_joiners(); !s) log_(0, "closing the joiners' connections: " + s.message());
  else log_(2, "no invite is open: the joiners' connections are closed");
}

void JoinService::refuse(const Link& link, const std::string& why) {
  ++counters_.refused;
  log_(1, "refused a join: " + why);
  transport_.send(link, wire::encode(wire::JoinReply{}));
}

void JoinService::handle(const JoinFrame& frame) {
  auto m = wire::decode(frame.bytes);
  auto* join = m ? std::get_if<wire::Join>(&*m) : nullptr;
  if (!join) {
    ++counters_.bad_frames;
    log_(3, "a joiner sent " + (m ? std::string("a ") + wire::type_name(*m) : "a bad frame") + "; dropped");
    return;
  }
  // The key the Join names must be the key CURVE authenticated.
  auto curve = curve_public_key(join->device_key);
  if (!curve || *curve != frame.curve_key) return refuse(frame.link, "its device key is not the one it connected with");
  if (join->device_key == self_.public_key) return refuse(frame.link, "it names this node's own key");
  auto secret = book_.match(join->device_key, self_.public_key, join->proof);
  if (!secret) return refuse(frame.link, "no open invite matches its proof (a wrong, used or expired line)");
  std::string name = join->name;
  if (!check_device_name(name)) name.clear();
  // Authored by this node, like a `trust add`: the entry spreads (PROTOCOL.md §7 Membership).
  Status trusted =
      trust_.add(TrustedDevice{join->device_key, name, clock_.now_millis(), "invite", 0, self_.public_key});
  if (!trusted) return refuse(frame.link, "trusting it failed: " + trusted.message());
  if (book_.mark_used(*secret, join->device_key)) {
    ++counters_.joined;
    log_(2, "device " + format_device_id(join->device_key) + (name.empty() ? "" : " (" + name + ")") +
                " joined with an invite: trusted");
  }
  wire::JoinReply reply{true, invite::accept_proof(*secret, self_.public_key, join->device_key), self_.cluster,
                        std::string(self_.cluster_secret.bytes())};
  transport_.send(frame.link, wire::encode(reply));
}

}  // namespace replog
