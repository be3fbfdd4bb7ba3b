#include "common/signed_log.h"

#include <sodium.h>

#include <algorithm>
#include <map>
#include <utility>

#include "common/bench_common.h"
#include "protocol/bytes.h"

namespace replog::bench {

namespace {

// The 32-byte Ed25519 seed of key k of `seed` (attempt > 0 after a reserved id).
std::string key_seed(uint64_t seed, uint64_t k, uint64_t attempt) {
  const std::string input = std::string("replog-bench-key-v1") + u64_be(seed) + u64_be(k) + u64_be(attempt);
  std::string out(crypto_sign_SEEDBYTES, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                     reinterpret_cast<const unsigned char*>(input.data()), input.size(), nullptr, 0);
  return out;
}

}  // namespace

SignedOrigins::SignedOrigins(std::string cluster, uint64_t seed, size_t count) : cluster_(std::move(cluster)) {
  if (sodium_init() < 0) die("libsodium failed to initialise");
  origins_.resize(count);
  for (size_t k = 0; k < count; ++k) {
    Origin& o = origins_[k];
    for (uint64_t attempt = 0;; ++attempt) {
      const std::string s = key_seed(seed, k, attempt);
      o.key.assign(proof::kKeyBytes, '\0');
      o.secret.assign(proof::kSecretKeyBytes, '\0');
      crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(o.key.data()),
                               reinterpret_cast<unsigned char*>(o.secret.data()),
                               reinterpret_cast<const unsigned char*>(s.data()));
      o.id = proof::origin_of_key(o.key);
      if (!is_reserved_origin(o.id)) break;  // a reserved id cannot write: draw another key
    }
    o.chains.push_back(proof::chain_start(cluster_, o.key));
  }
}

std::vector<OriginId> SignedOrigins::ids() const {
  std::vector<OriginId> out;
  for (const Origin& o : origins_) out.push_back(o.id);
  return out;
}

size_t SignedOrigins::index_of(OriginId origin) const {
  for (size_t k = 0; k < origins_.size(); ++k)
    if (origins_[k].id == origin) return k;
  die("origin " + hex16(origin) + " is not one of the benchmark's signed origins");
}

Update SignedOrigins::append(size_t k, uint64_t hlc, std::string_view method, std::string_view arg) {
  Origin& o = origins_[k];
  if (hlc <= o.last_hlc) die("signed origin " + hex16(o.id) + ": hlc not rising");
  Update u = Update::make(UpdateId{hlc, o.id}, o.chains.size(), method, arg);
  proof::Chain c = o.chains.back();
  proof::chain_step(c, o.key, hlc, u.body());
  o.chains.push_back(c);
  o.last_hlc = hlc;
  return u;
}

proof::Head SignedOrigins::head(size_t k, uint64_t s, bool with_key) const {
  const Origin& o = origins_[k];
  if (s == 0 || s >= o.chains.size()) die("signed origin " + hex16(o.id) + ": no update #" + std::to_string(s));
  proof::Head h = proof::sign_head(o.id, s, o.chains[s], 0, o.secret);
  if (with_key) h.key = o.key;
  return h;
}

std::vector<proof::Head> SignedOrigins::heads_for(const std::vector<Update>& updates) const {
  std::map<OriginId, std::vector<const Update*>> runs;
  for (const Update& u : updates) runs[u.id().origin].push_back(&u);
  std::vector<proof::Head> heads;
  for (auto& [origin, run] : runs) {
    const size_t k = index_of(origin);
    std::sort(run.begin(), run.end(), [](const Update* x, const Update* y) { return x->seq() < y->seq(); });
    bool key_due = run.front()->seq() == 1;
    uint64_t bytes = 0;
    for (size_t i = 0; i < run.size(); ++i) {
      if (i > 0 && run[i]->seq() != run[i - 1]->seq() + 1)
        die("signed origin " + hex16(origin) + ": the run has a hole at #" + std::to_string(run[i]->seq()));
      bytes += run[i]->body().size();
      if (i + 1 == run.size() || bytes >= kHeadEveryBytes) {
        heads.push_back(head(k, run[i]->seq(), key_due));
        key_due = false;
        bytes = 0;
      }
    }
  }
  return heads;
}

SignedBatch signed_batch(const SignedOrigins& origins, std::vector<Update> updates) {
  SignedBatch b;
  b.heads = origins.heads_for(updates);
  b.updates = std::move(updates);
  return b;
}

}  // namespace replog::bench
