// S3Client: a small S3 client for the archive (put, get, head, delete and
// ListObjectsV2), on libcurl with its built-in AWS Signature V4.
//
// Addressing is always path-style (ENDPOINT/BUCKET/KEY): it works with AWS and
// with the S3-compatible servers the tests and self-hosters run, which rarely
// have wildcard DNS for virtual-hosted buckets. Every key the caller names is
// relative to S3Config::prefix; list results come back relative to it too.
//
// curl 7.88 signs the query string exactly as it is given and does not send
// x-amz-content-sha256, so the client builds every query sorted by name and
// RFC 3986-encoded (sorted_query) and sends the payload's SHA-256 itself.
//
// Errors: a 404 is kNotFound; any other 4xx is kRefused with one line naming
// the HTTP status, S3's error Code and Message, and the key; network errors and
// 5xx (SlowDown included) are retried with exponential backoff and jitter, and
// are kIOError when the retries run out.
//
// Thread safety: an S3Client keeps one curl handle (so connections are reused);
// use one client per thread. The free functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "replog/status.h"

namespace replog {

// S3's largest object (5 TiB): a listed or reported size above it is a lie.
inline constexpr uint64_t kS3MaxObjectSize = uint64_t{5} << 40;
// What get() reads into memory at most, unless told otherwise.
inline constexpr size_t kS3MaxGetBytes = size_t{1} << 30;

struct S3Config {
  std::string endpoint;  // "http://127.0.0.1:9000" or "https://s3.eu-west-1.amazonaws.com"
  std::string region = "us-east-1";
  std::string bucket;
  std::string prefix;  // prepended to every key, e.g. "replog/" (path-style, no option)
  std::string access_key;
  std::string secret_key;
  std::string session_token;  // sent as x-amz-security-token when set
  long connect_timeout_ms = 10'000;
  long timeout_ms = 300'000;  // the whole request, body included
  int retries = 5;            // attempts after the first
  long backoff_base_ms = 100;
  long backoff_cap_ms = 5'000;
};

struct S3Location {
  std::string bucket;
  std::string prefix;  // empty, or ending in '/'
};

// "s3://BUCKET" or "s3://BUCKET/PREFIX". kInvalidArgument (one line) for
// anything else: another scheme, an empty or malformed bucket name, control
// characters. A non-empty prefix gets a trailing '/'.
Result<S3Location> parse_s3_uri(std::string_view uri);

// Fills credentials, region and endpoint from AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (else
// AWS_DEFAULT_REGION) and AWS_ENDPOINT_URL; without the key variables, from
// the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
// ~/.aws/credentials), and without a region variable from the config file
// (AWS_CONFIG_FILE, else ~/.aws/config), profile AWS_PROFILE or "default".
// Unset or empty variables leave the field alone. kInvalidArgument when only one of the key id and the secret is
// set. `lookup` is getenv unless a test gives its own.
Status s3_config_from_env(S3Config& config,
                          const std::function<const char*(const char*)>& lookup = nullptr);

// Everything a command or the node needs to reach `uri` ("s3://BUCKET/PREFIX"):
// the bucket and prefix from it, credentials, region and endpoint from the
// environment, and `endpoint` (--s3-endpoint) over AWS_ENDPOINT_URL when not
// empty. Without either, AWS's regional endpoint. kInvalidArgument (one line)
// without credentials, or for a bad URI or endpoint.
Result<S3Config> s3_config_for(std::string_view uri, std::string_view endpoint);

// RFC 3986 percent-encoding as SigV4 wants it: A-Z a-z 0-9 - _ . ~ are kept,
// every other byte is %XX (uppercase hex); '/' is kept when keep_slash (paths).
std::string s3_uri_encode(std::string_view s, bool keep_slash);

// "a=1&b=2": names and values encoded with s3_uri_encode, sorted by encoded
// name (then value), as SigV4's canonical query string is.
std::string sorted_query(std::vector<std::pair<std::string, std::string>> params);

struct S3Object {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // as S3 sends it, quotes included
};

struct S3ListResult {
  std::vector<S3Object> objects;
  std::vector<std::string> common_prefixes;
  bool is_truncated = false;
  std::string next_continuation_token;  // set when is_truncated
};

// Parses a ListObjectsV2 response body. The bytes come from the network:
// kCorruption with one line for anything malformed (not XML, another root, a
// Contents without Key or Size, a Size that is not a number or is above
// kS3MaxObjectSize, a truncated listing without NextContinuationToken).
Result<S3ListResult> parse_list_objects_v2(std::string_view xml);

struct S3ListRequest {
  std::string prefix;  // relative to S3Config::prefix
  std::string delimiter;
  std::string start_after;  // relative to S3Config::prefix
  std::string continuation_token;
  int max_keys = 0;  // 0: the server's default (1000)
};

struct S3PutOptions {
  bool if_none_match = false;  // If-None-Match: *: kRefused (412) when the key exists
};

struct S3Head {
  uint64_t size = 0;
  std::string etag;
};

class S3Client {
 public:
  explicit S3Client(S3Config config);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // Stores `bytes` at `key`; returns the ETag S3 answered with.
  Result<std::string> put(const std::string& key, std::string_view bytes, const S3PutOptions& options = {});
  // A body over `max_bytes` is kCorruption (a bucket's answer is input too).
  Result<std::string> get(const std::string& key, size_t max_bytes = kS3MaxGetBytes);
  Result<S3Head> head(const std::string& key);
  Status del(const std::string& key);
  // One ListObjectsV2 page; keys and common prefixes relative to the config's prefix.
  Result<S3ListResult> list(const S3ListRequest& request);
  // Every object under `prefix` after `start_after`, following continuation tokens.
  Result<std::vector<S3Object>> list_all(const std::string& prefix, const std::string& start_after = "");

  const S3Config& config() const { return config_; }
  // The HTTP status of the last request's final attempt (0: none was answered),
  // e.g. 412 after a put with if_none_match found the key taken.
  long last_status() const { return last_status_; }

  // One HTTP exchange; defined in the .cc (public only for its curl callbacks).
  struct Request;
  struct Response;

 private:
  Result<Response> perform(const Request& request);
  Result<Response> perform_once(const Request& request);
  std::string object_url(const std::string& full_key) const;

  S3Config config_;
  void* curl_ = nullptr;  // CURL*, kept out of this header
  long last_status_ = 0;
};

}  // namespace replog
