#include "storage/s3_client.h"

#include <curl/curl.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <pugixml.hpp>
#include <random>
#include <thread>

namespace replog {

namespace {

// A listing is at most 1000 keys of at most 1024 bytes each; far more than
// that is a hostile or broken server, not a listing.
constexpr size_t kMaxListBody = 16 << 20;
constexpr size_t kMaxKeyBytes = 1024;

std::string sha256_hex(std::string_view bytes) {
  unsigned char hash[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(hash, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  char hex[2 * crypto_hash_sha256_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
  return hex;
}

// Text from the network or the user, made fit for a one-line message.
std::string one_line(std::string_view s, size_t max = 200) {
  std::string out;
  for (char c : s.substr(0, max)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  if (s.size() > max) out += "...";
  return out;
}

bool starts_with_ci(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  return true;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return std::string(s);
}

// Decimal digits only (no sign, no spaces), at most kS3MaxObjectSize.
bool parse_size(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 15) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > kS3MaxObjectSize) return false;
  out = v;
  return true;
}

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    // 1 when another part of replog initialised libsodium first; -1 is not expected.
    if (sodium_init() < 0) std::abort();
  });
}

}  // namespace

Result<S3Location> parse_s3_uri(std::string_view uri) {
  const std::string shown = "\"" + one_line(uri, 100) + "\"";
  if (uri.substr(0, 5) != "s3://") return Status::invalid_argument(shown + ": want s3://BUCKET[/PREFIX]");
  std::string_view rest = uri.substr(5);
  const size_t slash = rest.find('/');
  S3Location loc;
  loc.bucket = std::string(rest.substr(0, slash));
  // S3's bucket naming rules, checked loosely: 3 to 63 of a-z 0-9 . -
  if (loc.bucket.size() < 3 || loc.bucket.size() > 63 ||
      loc.bucket.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos)
    return Status::invalid_argument(shown + ": bucket must be 3 to 63 characters of a-z 0-9 . -");
  if (slash != std::string_view::npos) loc.prefix = std::string(rest.substr(slash + 1));
  if (!loc.prefix.empty() && loc.prefix.front() == '/')
    return Status::invalid_argument(shown + ": the prefix starts with '/'");
  for (char c : loc.prefix)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return Status::invalid_argument(shown + ": control character in the prefix");
  if (loc.prefix.size() > kMaxKeyBytes / 2) return Status::invalid_argument(shown + ": prefix too long");
  if (!loc.prefix.empty() && loc.prefix.back() != '/') loc.prefix += '/';
  return loc;
}

namespace {

// The `key = value` lines of one [section] of an AWS shared file (missing: none).
std::map<std::string, std::string> read_ini_section(const std::string& path, const std::string& section) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  bool inside = false;
  auto trim = [](std::string t) {
    const auto b = t.find_first_not_of(" \t\r"), e = t.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : t.substr(b, e - b + 1);
  };
  for (std::string line; std::getline(in, line) && out.size() < 64;) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      inside = line.back() == ']' && trim(line.substr(1, line.size() - 2)) == section;
      continue;
    }
    const auto eq = line.find('=');
    if (inside && eq != std::string::npos) out[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return out;
}

}  // namespace

Status s3_config_from_env(S3Config& config, const std::function<const char*(const char*)>& lookup) {
  auto get = [&](const char* name) -> std::string {
    const char* v = lookup ? lookup(name) : std::getenv(name);
    return v ? std::string(v) : std::string();
  };
  const std::string id = get("AWS_ACCESS_KEY_ID"), secret = get("AWS_SECRET_ACCESS_KEY");
  if (id.empty() != secret.empty())
    return Status::invalid_argument("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
  if (!id.empty()) config.access_key = id, config.secret_key = secret;
  if (auto token = get("AWS_SESSION_TOKEN"); !token.empty()) config.session_token = token;
  // The shared files when the variables say nothing: ~/.aws/credentials and
  // ~/.aws/config (or AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE), profile
  // AWS_PROFILE or "default".
  const std::string home = get("HOME"), profile = get("AWS_PROFILE").empty() ? "default" : get("AWS_PROFILE");
  if (id.empty()) {
    std::string path = get("AWS_SHARED_CREDENTIALS_FILE");
    if (path.empty() && !home.empty()) path = home + "/.aws/credentials";
    auto c = read_ini_section(path, profile);
    if (c.count("aws_access_key_id") != c.count("aws_secret_access_key"))
      return Status::invalid_argument(path + " [" + profile + "]: aws_access_key_id and aws_secret_access_key go together");
    if (c.count("aws_access_key_id")) config.access_key = c["aws_access_key_id"], config.secret_key = c["aws_secret_access_key"];
    if (c.count("aws_session_token")) config.session_token = c["aws_session_token"];
  }
  std::string region = get("AWS_REGION");
  if (region.empty()) region = get("AWS_DEFAULT_REGION");
  if (region.empty()) {
    std::string path = get("AWS_CONFIG_FILE");
    if (path.empty() && !home.empty()) path = home + "/.aws/config";
    auto c = read_ini_section(path, profile == "default" ? profile : "profile " + profile);
    if (c.count("region")) region = c["region"];
  }
  if (!region.empty()) config.region = region;
  if (auto endpoint = get("AWS_ENDPOINT_URL"); !endpoint.empty()) config.endpoint = endpoint;
  return Status::ok();
}

std::string s3_uri_encode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                            c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string sorted_query(std::vector<std::pair<std::string, std::string>> params) {
  for (auto& [name, value] : params) {
    name = s3_uri_encode(name, false);
    value = s3_uri_encode(value, false);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out += '&';
    out += name + "=" + value;
  }
  return out;
}

namespace {

Status parse_contents(const pugi::xml_node& c, S3Object& o) {
  const pugi::xml_node key = c.child("Key"), size = c.child("Size");
  if (!key) return Status::corruption("Contents without Key");
  o.key = key.child_value();
  if (o.key.empty() || o.key.size() > kMaxKeyBytes) return Status::corruption("Contents: empty or over-long Key");
  if (!size) return Status::corruption("Contents \"" + one_line(o.key) + "\" without Size");
  if (!parse_size(size.child_value(), o.size))
    return Status::corruption("Contents \"" + one_line(o.key) + "\": Size \"" + one_line(size.child_value(), 40) +
                              "\" is not a number up to 5 TiB");
  o.etag = c.child("ETag").child_value();
  return Status::ok();
}

}  // namespace

Result<S3ListResult> parse_list_objects_v2(std::string_view xml) {
  if (xml.size() > kMaxListBody) return Status::corruption("ListObjectsV2: response over 16 MiB");
  pugi::xml_document doc;
  // ws_pcdata_single keeps a key made of blanks; pugixml never fetches DTDs.
  const auto parsed = doc.load_buffer(xml.data(), xml.size(), pugi::parse_default | pugi::parse_ws_pcdata_single);
  if (!parsed) return Status::corruption(std::string("ListObjectsV2: not XML: ") + parsed.description());
  const pugi::xml_node root = doc.document_element();
  if (std::string_view(root.name()) != "ListBucketResult")
    return Status::corruption("ListObjectsV2: root is <" + one_line(root.name(), 40) + ">, not <ListBucketResult>");
  S3ListResult out;
  for (const pugi::xml_node c : root.children("Contents")) {
    S3Object o;
    REPLOG_RETURN_IF_ERROR(parse_contents(c, o).with_context("ListObjectsV2"));
    out.objects.push_back(std::move(o));
  }
  for (const pugi::xml_node p : root.children("CommonPrefixes")) {
    if (!p.child("Prefix")) return Status::corruption("ListObjectsV2: CommonPrefixes without Prefix");
    out.common_prefixes.emplace_back(p.child("Prefix").child_value());
  }
  const std::string_view truncated = root.child("IsTruncated").child_value();
  if (truncated != "true" && truncated != "false")
    return Status::corruption("ListObjectsV2: IsTruncated is \"" + one_line(truncated, 40) + "\", not true or false");
  out.is_truncated = truncated == "true";
  out.next_continuation_token = root.child("NextContinuationToken").child_value();
  if (out.is_truncated && out.next_continuation_token.empty())
    return Status::corruption("ListObjectsV2: truncated without NextContinuationToken");
  return out;
}

// --- the client ---

struct S3Client::Request {
  const char* method = "GET";  // GET, PUT, HEAD or DELETE
  std::string key;             // the full key, for messages ("" for a listing)
  std::string url;
  std::string_view body;  // PUT only
  bool if_none_match = false;
  size_t max_body = 64 << 10;  // answers without an object (errors, PUT, DELETE); GET and listings set theirs
};

struct S3Client::Response {
  long status = 0;
  std::string body;
  std::string etag;
  std::string content_length;
  bool body_too_large = false;
  size_t max_body = SIZE_MAX;
};

namespace {

// Returning less than given makes curl fail the transfer: a body above the
// request's limit is cut off instead of filling memory.
size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<S3Client::Response*>(user);
  if (r->body.size() + size * n > r->max_body) {
    r->body_too_large = true;
    return 0;
  }
  r->body.append(data, size * n);
  return size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<S3Client::Response*>(user);
  const std::string_view line(data, size * n);
  if (starts_with_ci(line, "etag:")) r->etag = trim(line.substr(5));
  if (starts_with_ci(line, "content-length:")) r->content_length = trim(line.substr(15));
  return size * n;
}

struct Upload {
  std::string_view rest;
};

size_t on_upload(char* buffer, size_t size, size_t n, void* user) {
  auto* up = static_cast<Upload*>(user);
  const size_t len = std::min(size * n, up->rest.size());
  std::copy_n(up->rest.data(), len, buffer);
  up->rest.remove_prefix(len);
  return len;
}

// S3's <Error><Code>..</Code><Message>..</Message></Error>, when the body is one.
std::string s3_error_text(const std::string& body) {
  pugi::xml_document doc;
  if (!doc.load_buffer(body.data(), std::min(body.size(), size_t{64 << 10}))) return "";
  const pugi::xml_node e = doc.child("Error");
  if (!e) return "";
  std::string text = one_line(e.child_value("Code"), 80);
  if (*e.child_value("Message")) text += ": " + one_line(e.child_value("Message"));
  return text;
}

bool retryable(long status, const std::string& body) {
  return status >= 500 || s3_error_text(body).rfind("SlowDown", 0) == 0;
}

// Equal jitter: half the exponential delay, plus up to as much again at random.
std::chrono::milliseconds backoff(const S3Config& c, int attempt) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const long exp = std::min(c.backoff_cap_ms, c.backoff_base_ms << std::min(attempt, 20));
  const long half = std::max(exp / 2, 1L);
  return std::chrono::milliseconds(half + std::uniform_int_distribution<long>(0, half)(rng));
}

}  // namespace

S3Client::S3Client(S3Config config) : config_(std::move(config)) {
  init_curl_once();
  while (!config_.endpoint.empty() && config_.endpoint.back() == '/') config_.endpoint.pop_back();
  curl_ = curl_easy_init();
}

S3Client::~S3Client() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

std::string S3Client::object_url(const std::string& full_key) const {
  return config_.endpoint + "/" + s3_uri_encode(config_.bucket, false) + "/" + s3_uri_encode(full_key, true);
}

namespace {

// The headers curl signs along with host and x-amz-date.
curl_slist* request_headers(const S3Config& config, const S3Client::Request& r) {
  curl_slist* h = nullptr;
  // GET, HEAD and DELETE hash the empty body, as SigV4 says.
  h = curl_slist_append(h, ("x-amz-content-sha256: " + sha256_hex(r.body)).c_str());
  if (!config.session_token.empty())
    h = curl_slist_append(h, ("x-amz-security-token: " + config.session_token).c_str());
  if (r.if_none_match) h = curl_slist_append(h, "If-None-Match: *");
  return h;
}

void set_method(CURL* h, const S3Client::Request& r, Upload& upload) {
  const std::string_view m = r.method;
  if (m == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (m == "DELETE") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
  } else if (m == "PUT") {
    // An upload (not POSTFIELDS): curl adds no Content-Type to sign and send.
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
    curl_easy_setopt(h, CURLOPT_READDATA, &upload);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
  }
}

}  // namespace

Result<S3Client::Response> S3Client::perform_once(const Request& r) {
  CURL* h = static_cast<CURL*>(curl_);
  if (!h) return Status::io_error("S3: curl_easy_init failed");
  curl_easy_reset(h);
  Response resp;
  resp.max_body = r.max_body;
  Upload upload{r.body};
  const std::string sigv4 = "aws:amz:" + config_.region + ":s3";
  const std::string userpwd = config_.access_key + ":" + config_.secret_key;
  curl_slist* headers = request_headers(config_, r);
  curl_easy_setopt(h, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for timeouts
  curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4.c_str());
  curl_easy_setopt(h, CURLOPT_USERPWD, userpwd.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, config_.connect_timeout_ms);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, config_.timeout_ms);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &resp);
  set_method(h, r, upload);
  const CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(headers);
  if (resp.body_too_large)
    return Status::corruption("S3 " + std::string(r.method) + " \"" + one_line(r.key) + "\": response body too large");
  if (rc != CURLE_OK) return Status::io_error(std::string("curl: ") + curl_easy_strerror(rc));
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

Result<S3Client::Response> S3Client::perform(const Request& r) {
  const std::string what = "S3 " + std::string(r.method) + " \"" + one_line(r.key) + "\"";
  for (int attempt = 0;; ++attempt) {
    auto resp = perform_once(r);
    if (!resp && resp.status().code() == Status::Code::kCorruption) return resp.status();
    const bool again = !resp || retryable(resp->status, resp->body);
    if (again && attempt < config_.retries) {
      std::this_thread::sleep_for(backoff(config_, attempt));
      continue;
    }
    last_status_ = resp ? resp->status : 0;
    if (!resp) return resp.status().with_context(what);
    const long status = resp->status;
    if (status >= 200 && status < 300) return resp;
    std::string detail = s3_error_text(resp->body);
    const std::string msg =
        what + ": HTTP " + std::to_string(status) + (detail.empty() ? "" : " " + detail);
    if (status == 404) return Status::not_found(msg);
    if (status >= 400 && status < 500) return Status::refused(msg);
    return Status::io_error(msg);
  }
}

Result<std::string> S3Client::put(const std::string& key, std::string_view bytes, const S3PutOptions& options) {
  Request r;
  r.method = "PUT";
  r.key = config_.prefix + key;
  r.url = object_url(r.key);
  r.body = bytes;
  r.if_none_match = options.if_none_match;
  auto resp = perform(r);
  if (!resp) return resp.status();
  return resp->etag;
}

Result<std::string> S3Client::get(const std::string& key, size_t max_bytes) {
  Request r;
  r.key = config_.prefix + key;
  r.url = object_url(r.key);
  r.max_body = max_bytes;
  auto resp = perform(r);
  if (!resp) return resp.status();
  return std::move(resp->body);
}

Result<S3Head> S3Client::head(const std::string& key) {
  Request r;
  r.method = "HEAD";
  r.key = config_.prefix + key;
  r.url = object_url(r.key);
  auto resp = perform(r);
  if (!resp) return resp.status();
  S3Head out;
  if (!parse_size(resp->content_length, out.size))
    return Status::corruption("S3 HEAD \"" + one_line(r.key) + "\": Content-Length \"" +
                              one_line(resp->content_length, 40) + "\" is not a size");
  out.etag = resp->etag;
  return out;
}

Status S3Client::del(const std::string& key) {
  Request r;
  r.method = "DELETE";
  r.key = config_.prefix + key;
  r.url = object_url(r.key);
  return perform(r).status();
}

namespace {

// Keys from the server are under the configured prefix; the caller sees them without it.
Status strip_prefix(const std::string& prefix, std::string& key) {
  if (key.compare(0, prefix.size(), prefix) != 0)
    return Status::corruption("ListObjectsV2: key \"" + one_line(key) + "\" is outside the prefix");
  key.erase(0, prefix.size());
  return Status::ok();
}

}  // namespace

Result<S3ListResult> S3Client::list(const S3ListRequest& req) {
  std::vector<std::pair<std::string, std::string>> q{{"list-type", "2"}};
  if (!config_.prefix.empty() || !req.prefix.empty()) q.emplace_back("prefix", config_.prefix + req.prefix);
  if (!req.delimiter.empty()) q.emplace_back("delimiter", req.delimiter);
  if (!req.start_after.empty()) q.emplace_back("start-after", config_.prefix + req.start_after);
  if (!req.continuation_token.empty()) q.emplace_back("continuation-token", req.continuation_token);
  if (req.max_keys > 0) q.emplace_back("max-keys", std::to_string(req.max_keys));
  Request r;
  r.key = config_.prefix + req.prefix;
  r.url = config_.endpoint + "/" + s3_uri_encode(config_.bucket, false) + "?" + sorted_query(std::move(q));
  r.max_body = kMaxListBody;
  auto resp = perform(r);
  if (!resp) return resp.status();
  auto parsed = parse_list_objects_v2(resp->body);
  if (!parsed) return parsed.status().with_context("S3 list \"" + one_line(r.key) + "\"");
  for (auto& o : parsed->objects) REPLOG_RETURN_IF_ERROR(strip_prefix(config_.prefix, o.key));
  for (auto& p : parsed->common_prefixes) REPLOG_RETURN_IF_ERROR(strip_prefix(config_.prefix, p));
  return parsed;
}

Result<std::vector<S3Object>> S3Client::list_all(const std::string& prefix, const std::string& start_after) {
  std::vector<S3Object> all;
  S3ListRequest req;
  req.prefix = prefix;
  req.start_after = start_after;
  for (;;) {
    auto page = list(req);
    if (!page) return page.status();
    for (auto& o : page->objects) all.push_back(std::move(o));
    if (!page->is_truncated) return all;
    // A server handing back the token it was given would loop forever.
    if (page->next_continuation_token == req.continuation_token)
      return Status::corruption("S3 list \"" + one_line(prefix) + "\": the continuation token repeats");
    req.continuation_token = page->next_continuation_token;
  }
}

Result<S3Config> s3_config_for(std::string_view uri, std::string_view endpoint) {
  auto where = parse_s3_uri(uri);
  if (!where) return where.status();
  S3Config c;
  c.bucket = where->bucket;
  c.prefix = where->prefix;
  REPLOG_RETURN_IF_ERROR(s3_config_from_env(c));
  if (!endpoint.empty()) c.endpoint = std::string(endpoint);
  if (c.endpoint.empty()) c.endpoint = "https://s3." + c.region + ".amazonaws.com";
  if (!c.endpoint.starts_with("http://") && !c.endpoint.starts_with("https://"))
    return Status::invalid_argument("S3 endpoint must start with http:// or https://: " + c.endpoint);
  while (c.endpoint.ends_with("/")) c.endpoint.pop_back();
  if (c.access_key.empty())
    return Status::invalid_argument("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  return c;
}

}  // namespace replog
