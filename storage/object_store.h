// ObjectStore: the few operations the archive needs of a bucket, behind one
// interface, so that the archiver runs over S3 (S3ObjectStore) or over memory
// (MemoryObjectStore: tests and the simulator, which injects its faults there).
//
// Keys are relative to the archive's prefix. What a store returns is input from
// outside: callers check everything they read.
//
// Thread safety: an ObjectStore is used by one thread at a time.
// MemoryObjectStore may be shared between threads (it locks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "replog/status.h"
#include "storage/s3_client.h"

namespace replog {

struct StoredObject {
  std::string key;
  uint64_t size = 0;
  std::string etag;
};

struct PutResult {
  std::string etag;
  bool existed = false;  // put_new found the key taken and wrote nothing
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  // Writes `bytes` at `key` only when nothing is there (If-None-Match: *).
  // A store that cannot refuse (s3rver, some self-hosted servers) writes it
  // anyway; the archive writes equal bytes under one name, so that is safe.
  virtual Result<PutResult> put_new(const std::string& key, std::string_view bytes) = 0;
  // kNotFound when there is no object; kCorruption when it is over max_bytes.
  virtual Result<std::string> get(const std::string& key, size_t max_bytes) = 0;
  virtual Status del(const std::string& key) = 0;
  // Objects under `prefix` whose keys sort after `start_after`, in key order,
  // at most `max_keys` (0: all, following continuation).
  virtual Result<std::vector<StoredObject>> list(const std::string& prefix, const std::string& start_after,
                                                 size_t max_keys) = 0;
  // The "directories" right under `prefix` (ListObjectsV2 with delimiter
  // '/'): "log/0123456789abcdef/" and so on, in key order.
  virtual Result<std::vector<std::string>> list_prefixes(const std::string& prefix) = 0;
  // Requests made so far (each page of a listing counts), for status and benchmarks.
  virtual uint64_t requests() const = 0;
};

class S3ObjectStore final : public ObjectStore {
 public:
  // The most entries one listing gathers (a bucket that pages without end is refused).
  static constexpr uint64_t kMaxListed = 10'000'000;

  explicit S3ObjectStore(S3Config config) : client_(std::move(config)) {}
  Result<PutResult> put_new(const std::string& key, std::string_view bytes) override;
  Result<std::string> get(const std::string& key, size_t max_bytes) override;
  Status del(const std::string& key) override;
  Result<std::vector<StoredObject>> list(const std::string& prefix, const std::string& start_after,
                                         size_t max_keys) override;
  Result<std::vector<std::string>> list_prefixes(const std::string& prefix) override;
  uint64_t requests() const override { return requests_; }

 private:
  Status pages(S3ListRequest req, const std::function<bool(S3ListResult&)>& take);

  S3Client client_;
  uint64_t requests_ = 0;
};

// An in-memory bucket. `fault`, when set, is asked before every operation
// ("put", "get", "del", "list") with the key or prefix; a non-ok answer is
// returned instead of doing it (the simulator's 500s and outages).
class MemoryObjectStore final : public ObjectStore {
 public:
  using Fault = std::function<Status(std::string_view op, const std::string& key)>;

  Result<PutResult> put_new(const std::string& key, std::string_view bytes) override;
  Result<std::string> get(const std::string& key, size_t max_bytes) override;
  Status del(const std::string& key) override;
  Result<std::vector<StoredObject>> list(const std::string& prefix, const std::string& start_after,
                                         size_t max_keys) override;
  Result<std::vector<std::string>> list_prefixes(const std::string& prefix) override;
  uint64_t requests() const override;

  void set_fault(Fault fault);
  // Asked after a put_new that stored its object: a non-ok answer is returned
  // although the object stays (an upload cut off after the bucket had it).
  void set_fault_after_put(Fault fault);
  // Direct access for tests: damage an object, count them.
  std::map<std::string, std::string> objects() const;
  void overwrite(const std::string& key, std::string bytes);

 private:
  Status charge(std::string_view op, const std::string& key);  // counts the request; the fault's answer

  mutable std::mutex mu_;
  std::map<std::string, std::string> objects_;
  Fault fault_, after_put_;
  uint64_t requests_ = 0;
};

}  // namespace replog
