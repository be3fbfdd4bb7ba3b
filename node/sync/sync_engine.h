// SyncEngine: replication by version vectors (docs/ARCHITECTURE.md, PROTOCOL.md).
//
// Pure protocol logic over a Transport and a Clock: no socket calls, so a
// cluster can run in one process under simulation. It
//   - handshakes (Hello) on every outgoing link and answers Hellos on incoming
//     ones, refusing other protocol versions and other clusters, and Hellos
//     whose signature does not bind the link's device to the node id they name;
//   - pushes every committed update (local or received) to every ready peer
//     whose known vector lacks it, coalesced for push_delay_ms;
//   - runs anti-entropy rounds (jittered, a few random ready peers): vectors in
//     pages, answered with the other side's vector, after which each side pulls
//     what it lacks on its own outgoing link;
//   - pulls a range of one origin from one peer at a time, under a per-link byte
//     credit, re-requesting after a timeout; a gap seen in a push pulls at once.
// Bad frames are counted, logged by the owner and dropped; they never stop it.
//
// Thread safety: everything runs on the owner's event-loop thread except
// on_committed(), which the node's writer thread calls.
#pragma once

#include <atomic>
#include <functional>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "node/core/clock.h"
#include "node/sync/sync_store.h"
#include "node/sync/transport.h"
#include "protocol/wire.h"
#include "storage/trust.h"

namespace replog {

struct SyncOptions {
  std::string endpoint;            // where this node listens, told to peers
  std::vector<std::string> peers;  // endpoints to connect to
  // Secure transports: the device key (Ed25519) of each configured peer, by
  // endpoint, and this node's own. Empty on a transport without keys.
  std::map<std::string, std::string> peer_keys;
  // PeerStatus::how of a configured peer, by endpoint, when not "static"
  // (e.g. "invite" for the peers `replog join` stored).
  std::map<std::string, std::string> peer_how;
  std::string own_key;
  // The secret half of own_key (64 bytes, libsodium form): with it, every
  // Hello carries a signature binding the link to this node's origin
  // (PROTOCOL.md §2 "Handshake"). Empty: Hellos go unsigned (--insecure).
  std::string device_secret;
  // How a device that dialled this node was found, for the link connected
  // back to it (PeerStatus::how); nothing set, or an empty answer, is "inbound".
  std::function<std::string(const std::string& device_key)> how_inbound;
  // The trust list membership spreads through (not owned; outlives the
  // engine); null, or without own_key, membership does not spread.
  TrustStore* members = nullptr;
  int64_t members_resend_ms = 30'000;       // a peer's copy is refreshed this often
  int64_t max_member_ahead_ms = 3'600'000;  // entries further ahead of this clock are refused
  int64_t anti_entropy_ms = 1000;
  size_t fanout = 3;                      // peers per anti-entropy round
  int64_t push_delay_ms = 3;              // coalescing of pushes
  int64_t request_timeout_ms = 5000;      // a pull not answered by then is asked again
  int64_t hello_retry_ms = 200;
  size_t credit_bytes = 8 << 20;          // requested-but-unanswered bytes per link
  size_t max_pending_push_bytes = 64 << 20;  // pushes waiting to be sent, per node
  // Pushed updates received and not yet handed to the store (bodies): past
  // it, further pushes are dropped until the store catches up, and pulled later.
  size_t max_waiting_push_bytes = 64 << 20;
  int64_t save_peers_ms = 5000;           // how often peer state is stored in LMDB
  // A pushed run the store verifies ahead of its writer (SyncStore::
  // verify_ahead) goes on to peers from this thread at once; off, runs go on
  // once the writer has checked them (on_verified) or committed them.
  bool relay_ahead = true;
  uint64_t seed = 0;
  // Feature bits (wire::kFeature*) this node does not offer: benchmarks
  // measure a feature against the protocol without it in the same run.
  uint64_t features_off = 0;
};

struct PeerStatus {
  std::string endpoint;
  std::string device_key;  // empty without a secure transport
  // How the peer was found: "static" (--peer), "discovered" (a LAN beacon),
  // "invite", "introducer", or "inbound" (it dialled this node, and nothing
  // else says how it came to be trusted).
  std::string how;
  OriginId node_id = 0;
  bool ready = false;
  // Its Hello's signature proved node_id to be the origin of its device (or
  // of a key the device certified).
  bool origin_bound = false;
  int64_t last_seen_ms = 0;
  VersionVector their_vector;  // as last told (seq only)
  uint64_t they_lack = 0;      // updates we hold that they do not, by vectors
  uint64_t we_lack = 0;
  // Traffic with the peer since it was added, on both links: frame bytes sent
  // on the link this node opened (replies on the peer's link are not counted),
  // frame bytes received on either, updates pushed or served to it and
  // received from it (pushes and pull replies).
  uint64_t bytes_sent = 0, bytes_received = 0, updates_sent = 0, updates_received = 0;
};

// The form a peer's status takes in the local API and in LMDB (`peers` database).
Value peer_status_value(const PeerStatus& p);

struct SyncCounters {
  uint64_t frames_in = 0, frames_out = 0, bytes_in = 0, bytes_out = 0;
  uint64_t bad_frames = 0, updates_received = 0, updates_sent = 0;
  uint64_t refused_updates = 0;  // for a reason other than a gap
  uint64_t refused_endpoints = 0;  // connect-backs refused: not tcp://HOST:PORT, or backing off
  uint64_t blocked_frames = 0;   // from a source cut off for sending bad frames
  uint64_t blocks = 0;           // times a source was cut off
  uint64_t silent_peers = 0;     // ready peers dropped for silence (then handshaken again)
  uint64_t tip_mismatches = 0;   // origins a peer holds at our seq with another chain tip (another branch)
  uint64_t prunes = 0;           // origins pruned: a peer pushed only what this node held
  uint64_t grafts = 0;           // origins grafted: a peer announced what no push brought
  uint64_t pushes_dropped = 0;   // pushed updates dropped: too many waiting for the store (pulled later)
  uint64_t members_received = 0;  // Members frames taken from authenticated peers
  uint64_t members_accepted = 0;  // entries of them that changed the trust list
  std::map<std::string, uint64_t> members_refused;  // entries refused, by reason (member_refusal_name)
};

class SyncEngine {
 public:
  using Log = std::function<void(int level, const std::string& line)>;  // 0 error, 1 warn, 2 info, 3 debug

  SyncEngine(SyncStore& store, Transport& transport, const Clock& clock, SyncOptions options, Log log);
  ~SyncEngine();
  SyncEngine(const SyncEngine&) = delete;
  SyncEngine& operator=(const SyncEngine&) = delete;

  void start();
  void on_frame(const Frame& frame);
  // Several frames (one poll's worth): pushed updates among them are stored together.
  void on_frames(const std::vector<Frame>& frames);
  // Timers: handshake retries, anti-entropy, pull timeouts, coalesced pushes.
  void on_tick();
  // From the writer thread: updates that were just committed. The first of a
  // coalescing window wakes the transport, so that the loop waits for the
  // window's end (poll_timeout_ms) rather than its whole poll.
  void on_committed(const std::vector<Update>& updates, const std::vector<proof::Head>& heads);
  // From the writer thread: received updates whose checks passed, before
  // their commit. They are pushed as committed ones are, and not again when
  // their commit comes (relay before commit).
  void on_verified(const std::vector<Update>& updates, const std::vector<proof::Head>& heads);
  // How long the loop's next poll may wait, at most `longest`: until the
  // coalesced pushes are due when some are waiting.
  int poll_timeout_ms(int longest);
  // Updates copied so far to be pushed (committed, or verified and relayed
  // before their commit): a figure for tests.
  uint64_t updates_taken_for_push();

  // Runtime changes of whom to sync with (the daemon's trust list):
  // dials a device (nothing when a link to the endpoint exists) ...
  void add_peer(const std::string& endpoint, const std::string& device_key, const std::string& how = "static");
  // ... dials a device a LAN beacon named (node/discovery), unless a link to
  // it exists: a link kept only when it becomes ready within 30 s, counted
  // among the learned links (at most kMaxLearnedPeers) as a connect-back is ...
  void dial_discovered(const std::string& endpoint, const std::string& device_key);
  // ... and forgets every link and all state of a device no longer trusted.
  void forget_device(const std::string& device_key);
  // True when an outgoing link to the device exists (ready or being tried).
  // REQUIRES: the event-loop thread.
  bool linked_to(const std::string& device_key) const;

  // True while pushed updates wait for the store or are with it and not back
  // (ingest_async); on_tick() takes the results. REQUIRES: the event-loop thread.
  bool storing() const { return !gathering_.updates.empty() || !waiting_.empty() || !out_.empty(); }

  // A snapshot refreshed every 100 ms; safe from any thread.
  std::vector<PeerStatus> peers() const;
  // REQUIRES: the event-loop thread.
  SyncCounters counters() const { return counters_; }

 private:
  // Pages of one vector, accepted only in order (0, 1, ..., pages-1).
  struct VectorAssembly {
    uint32_t next_page = 0;
    uint32_t pages = 0;
    VersionVector entries;
    std::map<OriginId, std::string> tips;
    // Adds a page; true when the vector is complete. An out-of-order page
    // drops what was assembled.
    bool add(const wire::Vector& v);
  };
  // Who a peer is: its device key when the transport authenticates it, else
  // (insecure) the node id its Hello claims, as 8 bytes.
  using PeerId = std::string;
  struct Peer {  // an outgoing link
    std::string endpoint;
    std::string key;  // the device dialled; empty without keys
    std::string how;  // PeerStatus::how
    PeerId id;        // set by its Hello
    uint64_t features = 0;  // what both sides support (wire::kFeatures)
    int64_t members_sent_ms = -1;  // when our membership was last sent on this link
    bool ready = false;
    OriginId node_id = 0;
    bool origin_bound = false;  // its Hello's signature bound node_id to its device
    int64_t hello_sent_ms = -1;
    int hello_attempts = 0;  // since the last answer
    int64_t dialled_ms = 0;  // when the link was (re)opened
    int redials = 0;         // since it was last ready
    int64_t last_seen_ms = 0;
    int64_t probed_ms = 0;  // a vector sent because it was silent
    VersionVector their;  // their vector (seq), as known
    OriginId pulled_last = 0;  // pull_missing's last Request: its next scan of `their` starts after it
    // Relay trees (kFeatureTree, node/sync/relay_tree.cc), all reset at its
    // handshake. Per origin, the first seq pushed to it since the last frame
    // heard from it: a round starts by pushing these again, since a link
    // that went quiet after a push may have lost it (start_round).
    std::map<OriginId, uint64_t> unheard;
    int64_t unheard_since_ms = -1;  // when the oldest of them was pushed
    std::set<OriginId> lazy;   // origins it pruned: announced to it (Have), not relayed
    std::set<OriginId> hears;  // origins it is linked to (its last Tree.hears): not relayed to it
    std::map<OriginId, uint64_t> have_out;  // announcements for its lazy origins, sent with the pushes
    VectorAssembly incoming_vector;      // a Vector reply being assembled
    size_t credit_used = 0;
    uint64_t bytes_sent = 0, bytes_received = 0, updates_sent = 0, updates_received = 0;  // PeerStatus
    bool reverify_asked = false;  // ranges held unverified were asked for again on this link
    bool learned = false;     // connected back to, on a Hello's (or a beacon's) word: not configured
    PeerId learned_for;       // the peer whose Hello named it
    int64_t learned_ms = 0;   // when (afresh when it goes silent)
    // The device said Hello on a link of its own while this learned link was
    // too young to give way (connect_back): it gives way at the next tick
    // once kGiveWayAfterMs old, to a link to this endpoint and key.
    std::optional<std::pair<std::string, std::string>> hello_seen;
  };
  // Connect-backs to one node: at most one link at a time, and a growing wait after each failure.
  struct ConnectBack {
    int failures = 0;
    int64_t not_before_ms = 0;
  };
  static constexpr size_t kMaxLearnedPeers = 64;
  static constexpr size_t kMaxIncoming = 256;  // incoming links known at once; the oldest goes
  // A source (a device, or without keys a connection) that sends more than
  // kBadFramesAllowed bad frames within kBadWindowMs is not heard for
  // kBlockMs, doubled at each repeat up to 16 times.
  static constexpr int kBadFramesAllowed = 20;
  static constexpr int64_t kBadWindowMs = 10'000;
  static constexpr int64_t kBlockMs = 60'000;
  struct Offender {
    int bad = 0;
    int64_t window_start_ms = 0;
    int64_t blocked_until_ms = 0;
    int strikes = 0;
  };
  struct Incoming {
    PeerId id;
    int64_t since_ms = 0;
    uint64_t features = 0;  // what both Hellos name
  };
  static constexpr int64_t kLearnedPeerGraceMs = 30'000;  // to say Hello back, else dropped
  // A learned link not ready this long gives way when its device dials in.
  static constexpr int64_t kGiveWayAfterMs = 2'000;
  // A graft waiting on its delay: a peer announced (Have) what this node
  // lacks; if no push brings it by due_ms, that peer is grafted and pulled.
  struct Graft {
    std::string endpoint;
    uint64_t seq = 0;
    int64_t due_ms = 0;
  };
  static constexpr int64_t kGraftDelayMs = 10;
  // A graft changes the tree (a Tree graft beside its pull) only when no push
  // has brought anything new of the origin for this long: while one does, the
  // origin's tree reaches this node and the graft is a pull alone.
  static constexpr int64_t kGraftTreeAfterMs = 1000;
  static constexpr int64_t kGraftTakesOverMs = 1000;  // a pull older than this gives way to a graft
  struct Pull {
    std::string endpoint;
    uint64_t from_seq;  // an answer to this pull starts here (others are late or repeated)
    uint64_t to_seq;
    size_t bytes;
    int64_t deadline_ms;
  };

  void handle_frame(const Frame& frame);
  static std::string source_of(const Frame& frame);
  bool blocked(const Frame& frame, int64_t now);
  void note_bad(const Frame& frame, int64_t now);
  void admit_incoming(const std::string& routing_id, const PeerId& id, uint64_t features);
  void check_silent_peers(int64_t now);
  void redial_unready_peers(int64_t now);
  void connect_back(const PeerId& id, const std::string& endpoint, const std::string& key);
  // Opens a learned link (a connect-back or a discovered device); false when refused (counted).
  bool open_learned(const PeerId& id, const std::string& endpoint, const std::string& key, const std::string& how);
  PeerId self_id() const;
  static PeerId peer_id(const std::string& key, OriginId node_id);
  void drop_silent_learned_peers(int64_t now);
  void flush_received();
  void start_waiting();
  // REQUIRES: committed_mu_ held.
  void push_due_locked();
  // REQUIRES: committed_mu_ held.
  void take_committed_locked(const std::vector<Update>& updates, const std::vector<proof::Head>& heads);
  // REQUIRES: committed_mu_ held. Whether a push may still owe the update
  // (origin, seq) to a peer: held_by_all_ does not cover it.
  bool owed_locked(OriginId origin, uint64_t seq) const { return seq > seq_of(held_by_all_, origin); }
  // Per origin of `updates`, their top seq, where every ready peer this node
  // relays that origin to holds it already.
  std::map<OriginId, uint64_t> held_by_all(const std::vector<Update>& updates) const;
  // Whether a ready peer this node relays `origin` to lacks its `seq` (as far
  // as this node knows): the update would go on from here.
  bool lacked_by_a_peer(OriginId origin, uint64_t seq) const;
  // Whether any of `updates` is lacked by a peer, so that it would go on from here.
  bool relays_on(const std::vector<Update>& updates) const;
  // Takes the results of the ingests the store finished (any thread's), as
  // ingest() takes its own.
  void finish_ingests();
  // The seq of `origin` this node holds by `held` or has on its way to the
  // store (waiting, or handed over and not back yet), whichever is higher.
  uint64_t held_or_coming(const VersionVector& held, OriginId origin) const;
  // REQUIRES: u.updates is not empty.
  void keep_answer(const Peer& p, wire::Updates& u, bool answers_pull);
  // Stores the answers (Updates) gathered from each peer, one ingest per
  // peer, but holds back those that the answers still to come from that
  // peer would land below (see the definition).
  void flush_answers();
  size_t pull_bytes(const Peer& p) const;
  static constexpr size_t kMinPullBytes = 64 << 10;
  // What both Hellos of the link named (0 before its handshake).
  uint64_t link_features(const Link& link) const;
  void send(const Link& link, const wire::Message& m);
  void send_hello(Peer& p);
  // Takes the store's node id into hello_ and signs it again, when it changed.
  void refresh_hello();
  // Whether a peer's Hello binds its node id to the device `link_key` (the
  // link's authenticated key; empty without keys): its signature when it
  // carries one, and that a signed-origins peer on an authenticated link
  // carries one. Sets `bound` when the signature verified.
  Status check_hello(const wire::Hello& h, const std::string& link_key, bool& bound) const;
  void send_vector(const Link& link, bool reply, bool tips);
  void start_round(Peer& p);
  // The ranges from `from` up to `mine` (this node's vector, read once by the caller).
  std::vector<Range> small_diff(const VersionVector& mine, const std::map<OriginId, uint64_t>& from, bool signed_link);
  // Sends the small diff `theirs` lacks; returns, per origin, the last seq sent.
  VersionVector answer_diff(const Link& link, const VersionVector& theirs, bool signed_link);
  bool spreads_members() const { return options_.members && !options_.own_key.empty(); }
  void send_members(Peer& p);
  void send_evidence(Peer* to);
  void take_evidence(const proof::Evidence& e);
  void retry_evidence(int64_t now);
  void spread_members(int64_t now);
  void take_members(const std::string& sender, const wire::Members& m);
  void handle_outgoing(Peer& p, wire::Message& m);
  void handle_outgoing_hello(Peer& p, const wire::Hello& h, int64_t now);
  void handle_incoming_hello(const Frame& frame, const wire::Hello& h);
  void handle_incoming(const Frame& frame, wire::Message& m);
  void serve_requests();
  struct Serving;
  void serve(Serving& s);
  void take_push(const Link& link, Peer* from, bool tree, wire::Push& push);
  // Applies a vector learned from `node_id` and pulls what we lack from it.
  void learn_vector(const PeerId& id, const VersionVector& theirs, const std::map<OriginId, std::string>& tips);
  void compare_tips(Peer& p, const std::map<OriginId, std::string>& theirs);
  void pull_missing(Peer& p);
  void reverify_from(Peer& p);
  // Stores received updates; false when the store failed (a full disk, say):
  // then nothing is pulled from `from` again before its next vector.
  bool ingest(std::vector<Update> updates, std::vector<proof::Head> heads, Peer* from);
  // What follows an ingest: refusals, pulls from below, evidence, a new origin.
  bool after_ingest(const Result<IngestReport>& r, const std::set<OriginId>& origins, Peer* from);
  // Asks for `origin` from below `seq` (IngestReport::unchained), from `from`
  // or else from the peer that last pushed the origin.
  void pull_below(OriginId origin, uint64_t seq, Peer* from);
  void flush_pushes();
  // Relay trees (relay_tree.cc).
  bool tree_link(const Peer& p) const { return (p.features & wire::kFeatureTree) != 0; }
  // Whether a pushed run of `origin` goes to `p` as updates (true), or not
  // at all: a relayed origin it hears first hand or pruned.
  bool relays_to(const Peer& p, OriginId origin) const;
  // Whether `p` pruned `origin` here, so that it is told what this node
  // holds of it (Have) instead of being pushed it.
  bool announces_to(const Peer& p, OriginId origin) const;
  // Whether `origin`'s updates reach `p` other than from this node: it is the
  // origin, hears it first hand, or pruned it here.
  bool reaches_otherwise(const Peer& p, OriginId origin) const;
  void take_tree(Peer& p, const wire::Tree& t);
  // Sets any_lazy_ from the peers' `lazy` sets, after one of them changed.
  void note_lazy_changed();
  // After the Push frames of one poll are read: prunes for the duplicates.
  void prune_duplicates(const Link& link, Peer& from, const wire::Push& push);
  void run_grafts(int64_t now);
  void spread_hears();
  void heard_from(Peer& p) {
    p.unheard.clear();
    p.unheard_since_ms = -1;
  }
  // Pushes younger than this are in flight, not lost: a round does not send them again.
  static constexpr int64_t kInFlightMs = 50;
  Peer* peer_by_id(const PeerId& id);
  void release_pulls(Peer& p);
  void refresh_status();
  void note_their(Peer& p, const std::vector<Update>& updates);
  // The most origins kept per peer's vector and in pushed_by_: as many as
  // one whole Vector carries.
  static constexpr size_t kMaxKnownOrigins = wire::kVectorPageEntries * wire::kMaxVectorPages;

  SyncStore& node_;
  Transport& transport_;
  const Clock& clock_;
  SyncOptions options_;
  Log log_;
  std::mt19937_64 rng_;
  wire::Hello hello_;
  std::string own_curve_key_;  // X25519 form of options_.own_key, when Hellos are signed

  std::map<std::string, Peer> peers_;                 // by endpoint
  std::map<std::string, Incoming> incoming_;          // routing id -> peer (after Hello)
  std::map<std::string, Offender> offenders_;         // by source_of()
  std::map<PeerId, ConnectBack> connect_backs_;       // by peer
  std::map<PeerId, VectorAssembly> incoming_vectors_;  // Vectors being assembled, by sender
  std::map<OriginId, Pull> pulls_;                    // one range per origin at a time
  // An answer (Updates) waiting to be stored, with the seq and hlc of its newest update.
  struct Answer {
    OriginId origin = 0;
    std::vector<Update> updates;
    std::optional<proof::Head> head;
    uint64_t top_seq = 0;
    uint64_t top_hlc = 0;
  };
  std::map<std::string, std::vector<Answer>> answers_;  // by endpoint: answers not yet stored
  // Per origin, from its newest answer: the hlc of its newest update and the
  // mean hlc step between its updates, which says about where the origin's
  // next answer starts (flush_answers).
  struct AnswerPace {
    uint64_t top_hlc = 0;
    uint64_t step = 0;
  };
  std::map<OriginId, AnswerPace> answer_pace_;
  // Pushes are stored without the loop waiting (SyncStore::ingest_async):
  // a poll's pushes are gathered into a batch; batches wait while an ingest
  // of pushes is out, and go out together when the last one is back, so the
  // loop serves and relays meanwhile and a busy node stores more per commit.
  struct PushBatch {
    std::vector<Update> updates;
    std::vector<proof::Head> heads;           // the heads pushed with them
    std::set<std::string> sources;            // endpoints of the peers that pushed them
    std::map<OriginId, std::string> origins;  // the origins among them -> the link that pushed them
  };
  struct OutIngest {
    std::set<std::string> sources;
    std::map<OriginId, uint64_t> seqs;  // per origin, the highest seq in it
  };
  struct Finished {  // filled on the store's writer thread
    std::mutex mu;
    std::vector<std::pair<uint64_t, Result<IngestReport>>> done;  // by ticket
    Transport* wake = nullptr;  // woken when one is done; cleared when the engine goes
  };
  PushBatch gathering_;                 // this poll's pushes
  std::deque<PushBatch> waiting_;       // closed, not yet handed to the store
  std::map<OriginId, uint64_t> waiting_seqs_;  // per origin, the highest seq waiting
  size_t waiting_bytes_ = 0;            // bodies in gathering_ and waiting_ (max_waiting_push_bytes)
  std::map<uint64_t, OutIngest> out_;   // by ticket: handed to the store, not back yet
  uint64_t next_ticket_ = 0;
  std::shared_ptr<Finished> finished_ = std::make_shared<Finished>();
  std::map<OriginId, std::string> pushed_by_;         // origin -> endpoint of the peer that last pushed it
  std::map<OriginId, uint64_t> below_;                // origin -> how far below an unchained run to pull it next
  // Evidence this node could not store for a local reason (a full disk): taken
  // again every second until it is stored or refused, since its senders give
  // it only when a link becomes ready or they keep new evidence.
  static constexpr size_t kMaxEvidenceRetries = 16;
  std::vector<proof::Evidence> evidence_retry_;
  int64_t evidence_retry_ms_ = 0;
  std::map<OriginId, uint64_t> forked_;               // origin -> fork seq, of the evidence the node holds
  VersionVector mine_;                                // cached; refreshed on commit
  std::map<OriginId, Graft> grafts_;                  // one per origin
  std::vector<OriginId> hears_sent_;                  // the hears last spread to every tree peer
  std::map<OriginId, uint64_t> poll_seen_;            // per origin, the highest seq pushed in this poll
  // Requests of one incoming link that came one after another in this poll,
  // not yet answered (serve_requests); at most a link's credit of bytes asked.
  struct Serving {
    Link link;
    PeerId peer;
    bool signed_link = false;
    std::vector<wire::Request> requests;
    size_t bytes = 0;
  };
  Serving serving_;
  // Per origin, what pushes have brought: the highest seq, and when one last
  // brought something new. A duplicate of what only a pull brought prunes
  // nobody (its sender is the tree, late), and grafts look at the time.
  struct Pushed {
    uint64_t seq = 0;
    int64_t new_ms = -1;
  };
  std::map<OriginId, Pushed> pushed_;
  static constexpr size_t kMaxPushedOrigins = 65'536;
  int64_t next_round_ms_ = 0;
  uint64_t members_generation_ = 0;  // of the trust list last sent to every peer

  std::mutex committed_mu_;
  std::vector<Update> committed_;  // guarded by committed_mu_
  std::vector<proof::Head> committed_heads_;  // guarded by committed_mu_: the heads covering committed_
  size_t committed_bytes_ = 0;            // guarded by committed_mu_
  uint64_t taken_for_push_ = 0;           // guarded by committed_mu_: updates_taken_for_push()
  int64_t first_committed_ms_ = -1;       // guarded by committed_mu_
  bool relay_now_ = false;  // a run verified ahead waits in committed_: flush_pushes sends it without push_delay_ms
  std::map<OriginId, uint64_t> relayed_early_;  // guarded by committed_mu_: per origin, the highest seq on_verified took
  // Guarded by committed_mu_: while an answer is stored (ingest), per origin,
  // the seq up to which every ready peer this node relays to holds the
  // origin's updates already, so that storing them copies none for a push
  // that would go nowhere (a catch-up from one peer). Set and cleared by the
  // loop around Node::ingest; peers_ cannot change while it waits there.
  std::map<OriginId, uint64_t> held_by_all_;
  // Guarded by committed_mu_: per origin, the highest seq committed since the
  // last flush. Only these are announced (Have): a Have says the node holds
  // them, and a graft's Request is answered from the store.
  std::map<OriginId, uint64_t> committed_seqs_;
  // Whether some peer has pruned an origin here (its `lazy` is not empty):
  // only then can a commit owe a Have, and only then does on_committed keep
  // committed_seqs_ and wake the loop for it. Written by the loop
  // (note_lazy_changed), read on the writer's turn; it may stay set after a
  // peer that pruned goes, which costs only the keeping.
  std::atomic<bool> any_lazy_{false};

  SyncCounters counters_;
  int64_t status_refreshed_ms_ = 0;
  int64_t peers_saved_ms_ = 0;
  uint64_t reported_refusals_ = 0;
  int64_t refusals_reported_ms_ = 0;
  std::string last_refusal_;
  mutable std::mutex status_mu_;
  std::vector<PeerStatus> status_;  // guarded by status_mu_
};

}  // namespace replog
