#include "storage/object_store.h"

#include <sodium.h>

#include "protocol/bytes.h"

namespace replog {

// ---- S3 ----------------------------------------------------------------------

Result<PutResult> S3ObjectStore::put_new(const std::string& key, std::string_view bytes) {
  ++requests_;
  auto etag = client_.put(key, bytes, S3PutOptions{.if_none_match = true});
  if (etag) return PutResult{std::move(etag).value(), false};
  if (client_.last_status() == 412) return PutResult{{}, true};
  return etag.status();
}

Result<std::string> S3ObjectStore::get(const std::string& key, size_t max_bytes) {
  ++requests_;
  return client_.get(key, max_bytes);
}

Status S3ObjectStore::del(const std::string& key) {
  ++requests_;
  return client_.del(key);
}

// Follows a listing's continuation tokens, handing each page to `take` until
// it answers false. A bucket is input too: a token that repeats, or more
// entries than kMaxListed, ends the listing with an error instead of a loop.
Status S3ObjectStore::pages(S3ListRequest req, const std::function<bool(S3ListResult&)>& take) {
  uint64_t seen = 0;
  for (;;) {
    ++requests_;
    auto page = client_.list(req);
    if (!page) return page.status();
    seen += page->objects.size() + page->common_prefixes.size();
    if (!take(*page) || !page->is_truncated) return Status::ok();
    if (page->next_continuation_token == req.continuation_token)
      return Status::corruption("S3 list \"" + req.prefix + "\": the continuation token repeats");
    if (seen > kMaxListed)
      return Status::corruption("S3 list \"" + req.prefix + "\": more than " + std::to_string(kMaxListed) + " entries");
    req.continuation_token = page->next_continuation_token;
  }
}

Result<std::vector<StoredObject>> S3ObjectStore::list(const std::string& prefix, const std::string& start_after,
                                                      size_t max_keys) {
  std::vector<StoredObject> out;
  S3ListRequest req;
  req.prefix = prefix;
  req.start_after = start_after;
  if (max_keys > 0 && max_keys < 1000) req.max_keys = static_cast<int>(max_keys);
  Status s = pages(req, [&](S3ListResult& page) {
    for (auto& o : page.objects) {
      if (max_keys > 0 && out.size() >= max_keys) return false;
      out.push_back({std::move(o.key), o.size, std::move(o.etag)});
    }
    return max_keys == 0 || out.size() < max_keys;
  });
  if (!s) return s;
  return out;
}

Result<std::vector<std::string>> S3ObjectStore::list_prefixes(const std::string& prefix) {
  std::vector<std::string> out;
  S3ListRequest req;
  req.prefix = prefix;
  req.delimiter = "/";
  Status s = pages(req, [&](S3ListResult& page) {
    for (auto& p : page.common_prefixes) out.push_back(std::move(p));
    return true;
  });
  if (!s) return s;
  return out;
}

// ---- memory ------------------------------------------------------------------

namespace {

std::string memory_etag(std::string_view bytes) {
  unsigned char d[16];
  crypto_generichash(d, sizeof d, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), nullptr, 0);
  return "\"" + to_hex(std::string_view(reinterpret_cast<const char*>(d), sizeof d)) + "\"";
}

}  // namespace

// Outside the lock: a fault may use the store itself (a merge between a listing and a get).
Status MemoryObjectStore::charge(std::string_view op, const std::string& key) {
  Fault fault;
  {
    std::lock_guard lock(mu_);
    ++requests_;
    fault = fault_;
  }
  return fault ? fault(op, key) : Status::ok();
}

Result<PutResult> MemoryObjectStore::put_new(const std::string& key, std::string_view bytes) {
  if (Status f = charge("put", key); !f.is_ok()) return f;
  Fault after;
  PutResult result;
  {
    std::lock_guard lock(mu_);
    auto [it, inserted] = objects_.try_emplace(key, bytes);
    result = PutResult{memory_etag(it->second), !inserted};
    after = after_put_;
  }
  if (after)
    if (Status f = after("put", key); !f.is_ok()) return f;
  return result;
}

Result<std::string> MemoryObjectStore::get(const std::string& key, size_t max_bytes) {
  if (Status f = charge("get", key); !f.is_ok()) return f;
  std::lock_guard lock(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return Status::not_found("no object " + key);
  if (it->second.size() > max_bytes) return Status::corruption(key + ": object larger than allowed");
  return it->second;
}

Status MemoryObjectStore::del(const std::string& key) {
  if (Status f = charge("del", key); !f.is_ok()) return f;
  std::lock_guard lock(mu_);
  objects_.erase(key);
  return Status::ok();
}

Result<std::vector<StoredObject>> MemoryObjectStore::list(const std::string& prefix, const std::string& start_after,
                                                          size_t max_keys) {
  if (Status f = charge("list", prefix); !f.is_ok()) return f;
  std::lock_guard lock(mu_);
  std::vector<StoredObject> out;
  auto it = start_after < prefix ? objects_.lower_bound(prefix) : objects_.upper_bound(start_after);
  for (; it != objects_.end() && it->first.starts_with(prefix); ++it) {
    if (max_keys > 0 && out.size() >= max_keys) break;
    out.push_back({it->first, it->second.size(), memory_etag(it->second)});
  }
  return out;
}

Result<std::vector<std::string>> MemoryObjectStore::list_prefixes(const std::string& prefix) {
  if (Status f = charge("list", prefix); !f.is_ok()) return f;
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (auto it = objects_.lower_bound(prefix); it != objects_.end() && it->first.starts_with(prefix); ++it) {
    size_t slash = it->first.find('/', prefix.size());
    if (slash == std::string::npos) continue;
    std::string dir = it->first.substr(0, slash + 1);
    if (out.empty() || out.back() != dir) out.push_back(std::move(dir));
  }
  return out;
}

uint64_t MemoryObjectStore::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

void MemoryObjectStore::set_fault(Fault fault) {
  std::lock_guard lock(mu_);
  fault_ = std::move(fault);
}

void MemoryObjectStore::set_fault_after_put(Fault fault) {
  std::lock_guard lock(mu_);
  after_put_ = std::move(fault);
}

std::map<std::string, std::string> MemoryObjectStore::objects() const {
  std::lock_guard lock(mu_);
  return objects_;
}

void MemoryObjectStore::overwrite(const std::string& key, std::string bytes) {
  std::lock_guard lock(mu_);
  objects_[key] = std::move(bytes);
}

}  // namespace replog
