// The S3 client (storage/s3_client.h): its encoding and query helpers, the
// ListObjectsV2 parser on good and hostile XML, the SigV4 signature curl sends
// (checked with an independent signer, itself checked against AWS's published
// example), and retries, against a one-thread HTTP server on loopback.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <fstream>
#include <filesystem>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/s3_client.h"

namespace replog {
namespace {

const std::string kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// --- helpers and the listing parser ---

TEST(S3Encode, KeepsUnreservedAndEncodesTheRest) {
  EXPECT_EQ(s3_uri_encode("AZaz09-_.~", false), "AZaz09-_.~");
  EXPECT_EQ(s3_uri_encode("a b+c=d&e/f", false), "a%20b%2Bc%3Dd%26e%2Ff");
  EXPECT_EQ(s3_uri_encode("a b+c=d&e/f", true), "a%20b%2Bc%3Dd%26e/f");
  EXPECT_EQ(s3_uri_encode("\xc3\xa9t\xc3\xa9", true), "%C3%A9t%C3%A9");  // "été"
  EXPECT_EQ(s3_uri_encode("100%", false), "100%25");
}

TEST(S3Encode, SortedQuerySortsByEncodedName) {
  EXPECT_EQ(sorted_query({{"prefix", "a b/"}, {"list-type", "2"}, {"delimiter", "/"}, {"max-keys", "5"}}),
            "delimiter=%2F&list-type=2&max-keys=5&prefix=a%20b%2F");
  EXPECT_EQ(sorted_query({{"start-after", "x+y=z&w"}, {"continuation-token", ""}}),
            "continuation-token=&start-after=x%2By%3Dz%26w");
  EXPECT_EQ(sorted_query({}), "");
}

TEST(S3Uri, ParsesBucketAndPrefix) {
  auto a = parse_s3_uri("s3://my-bucket/archive/node1");
  ASSERT_TRUE(a) << a.status().message();
  EXPECT_EQ(a->bucket, "my-bucket");
  EXPECT_EQ(a->prefix, "archive/node1/");
  auto b = parse_s3_uri("s3://my-bucket");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->prefix, "");
  for (const char* bad : {"http://b/x", "s3://", "s3://B/x", "s3://ab", "s3://bucket//x", "bucket/x"}) {
    auto r = parse_s3_uri(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  }
}

TEST(S3Env, FillsFromTheEnvironment) {
  std::map<std::string, std::string> env{{"AWS_ACCESS_KEY_ID", "AK"}, {"AWS_SECRET_ACCESS_KEY", "SK"},
                                         {"AWS_SESSION_TOKEN", "TOK"}, {"AWS_DEFAULT_REGION", "eu-west-3"},
                                         {"AWS_ENDPOINT_URL", "http://127.0.0.1:9"}};
  auto lookup = [&](const char* n) -> const char* { return env.count(n) ? env[n].c_str() : nullptr; };
  S3Config c;
  ASSERT_TRUE(s3_config_from_env(c, lookup));
  EXPECT_EQ(c.access_key, "AK");
  EXPECT_EQ(c.secret_key, "SK");
  EXPECT_EQ(c.session_token, "TOK");
  EXPECT_EQ(c.region, "eu-west-3");
  EXPECT_EQ(c.endpoint, "http://127.0.0.1:9");
  env["AWS_REGION"] = "us-west-2";
  ASSERT_TRUE(s3_config_from_env(c, lookup));
  EXPECT_EQ(c.region, "us-west-2");
  env.erase("AWS_SECRET_ACCESS_KEY");
  EXPECT_FALSE(s3_config_from_env(c, lookup));
}

TEST(S3Env, FallsBackToTheSharedFilesOfTheProfile) {
  const std::string dir = ::testing::TempDir() + "/s3env-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir + "/.aws");
  std::ofstream(dir + "/.aws/credentials") << "[default]\naws_access_key_id = DAK\naws_secret_access_key = DSK\n"
                                              "# a comment\n[work]\naws_access_key_id=WAK\naws_secret_access_key=WSK\n"
                                              "aws_session_token = WTOK\n";
  std::ofstream(dir + "/.aws/config") << "[default]\nregion = eu-north-1\n[profile work]\nregion=ap-south-1\n";
  std::map<std::string, std::string> env{{"HOME", dir}};
  auto lookup = [&](const char* n) -> const char* { return env.count(n) ? env[n].c_str() : nullptr; };
  S3Config c;
  ASSERT_TRUE(s3_config_from_env(c, lookup));
  EXPECT_EQ(c.access_key, "DAK");
  EXPECT_EQ(c.secret_key, "DSK");
  EXPECT_EQ(c.region, "eu-north-1");
  env["AWS_PROFILE"] = "work";
  S3Config w;
  ASSERT_TRUE(s3_config_from_env(w, lookup));
  EXPECT_EQ(w.access_key, "WAK");
  EXPECT_EQ(w.session_token, "WTOK");
  EXPECT_EQ(w.region, "ap-south-1");
  env["AWS_ACCESS_KEY_ID"] = "EAK";  // the variables win over the files
  env["AWS_SECRET_ACCESS_KEY"] = "ESK";
  S3Config e;
  ASSERT_TRUE(s3_config_from_env(e, lookup));
  EXPECT_EQ(e.access_key, "EAK");
  std::filesystem::remove_all(dir);
}

const char* kListing = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>
  <Contents><Key>p/a b&amp;c</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>
    <ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>1234</Size></Contents>
  <Contents><Key>p/empty</Key><ETag>"d41d8cd98f00b204e9800998ecf8427e"</ETag><Size>0</Size></Contents>
  <CommonPrefixes><Prefix>p/dir/</Prefix></CommonPrefixes>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>)";

TEST(S3List, ParsesContentsPrefixesAndToken) {
  auto r = parse_list_objects_v2(kListing);
  ASSERT_TRUE(r) << r.status().message();
  ASSERT_EQ(r->objects.size(), 2u);
  EXPECT_EQ(r->objects[0].key, "p/a b&c");
  EXPECT_EQ(r->objects[0].size, 1234u);
  EXPECT_EQ(r->objects[0].etag, "\"9b2cf535f27731c974343645a3985328\"");
  EXPECT_EQ(r->objects[1].key, "p/empty");
  EXPECT_EQ(r->objects[1].size, 0u);
  ASSERT_EQ(r->common_prefixes.size(), 1u);
  EXPECT_EQ(r->common_prefixes[0], "p/dir/");
  EXPECT_TRUE(r->is_truncated);
  EXPECT_EQ(r->next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
  auto last = parse_list_objects_v2("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
  ASSERT_TRUE(last);
  EXPECT_TRUE(last->objects.empty());
  EXPECT_FALSE(last->is_truncated);
}

std::string contents(const std::string& inner) {
  return "<ListBucketResult><IsTruncated>false</IsTruncated><Contents>" + inner + "</Contents></ListBucketResult>";
}

TEST(S3List, HostileInputsAreErrors) {
  const std::vector<std::string> bad = {
      "",
      "not xml at all",
      "<ListBucketResult><IsTruncated>false</IsTruncated>",  // unclosed
      "<Error><Code>AccessDenied</Code></Error>",
      "<ListBucketResult/>",  // no IsTruncated
      "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",  // no token
      contents("<Size>1</Size>"),
      contents("<Key>k</Key>"),
      contents("<Key>k</Key><Size>12abc</Size>"),
      contents("<Key>k</Key><Size>-1</Size>"),
      contents("<Key>k</Key><Size>99999999999999999999999999</Size>"),
      contents("<Key>k</Key><Size>5497558138881</Size>"),  // 5 TiB + 1
      contents("<Key></Key><Size>1</Size>"),
      contents("<Key>" + std::string(2000, 'k') + "</Key><Size>1</Size>"),
      std::string("<ListBucketResult>\0</ListBucketResult>", 38),
  };
  for (const auto& xml : bad) {
    auto r = parse_list_objects_v2(xml);
    ASSERT_FALSE(r) << xml.substr(0, 100);
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
  }
  EXPECT_TRUE(parse_list_objects_v2(contents("<Key>k</Key><Size>5497558138880</Size>")));  // exactly 5 TiB
}

// --- an independent SigV4 signer ---

std::string hmac(const std::string& key, const std::string& data) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  unsigned char out[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_final(&st, out);
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

std::string hex(const std::string& bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  out.pop_back();
  return out;
}

std::string sha256(const std::string& s) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, reinterpret_cast<const unsigned char*>(s.data()), s.size());
  return std::string(reinterpret_cast<char*>(h), sizeof h);
}

struct SignInput {
  std::string method, path, query;
  std::vector<std::pair<std::string, std::string>> headers;  // lowercase names, in signing order
  std::string payload_hash, amz_date, region, secret;
};

std::string sigv4(const SignInput& in) {
  std::string canonical_headers, signed_headers;
  for (const auto& [name, value] : in.headers) {
    canonical_headers += name + ":" + value + "\n";
    signed_headers += (signed_headers.empty() ? "" : ";") + name;
  }
  const std::string canonical = in.method + "\n" + in.path + "\n" + in.query + "\n" + canonical_headers + "\n" +
                                signed_headers + "\n" + in.payload_hash;
  const std::string date = in.amz_date.substr(0, 8);
  const std::string scope = date + "/" + in.region + "/s3/aws4_request";
  const std::string to_sign = "AWS4-HMAC-SHA256\n" + in.amz_date + "\n" + scope + "\n" + hex(sha256(canonical));
  std::string key = hmac("AWS4" + in.secret, date);
  key = hmac(key, in.region);
  key = hmac(key, "s3");
  key = hmac(key, "aws4_request");
  return hex(hmac(key, to_sign));
}

// AWS S3 API reference, "Signature Calculations for the Authorization Header",
// Example: GET Object.
TEST(S3SigV4, TheTestSignerReproducesAwsExample) {
  SignInput in{"GET", "/test.txt", "",
               {{"host", "examplebucket.s3.amazonaws.com"},
                {"range", "bytes=0-9"},
                {"x-amz-content-sha256", kEmptySha256},
                {"x-amz-date", "20130524T000000Z"}},
               kEmptySha256, "20130524T000000Z", "us-east-1", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};
  EXPECT_EQ(sigv4(in), "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

// --- a loopback HTTP server: one connection at a time, scripted answers ---

struct Recorded {
  std::string method, target;
  std::map<std::string, std::string> headers;  // lowercase names, trimmed values
};

class LoopbackServer {
 public:
  explicit LoopbackServer(std::vector<std::string> answers) : answers_(std::move(answers)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(fd_, 8);
    thread_ = std::thread([this] { run(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_; }
  std::vector<Recorded> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      serve(c);
      close(c);
    }
  }
  void serve(int c) {
    std::string in;
    char buf[4096];
    while (in.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) return;
      in.append(buf, n);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(parse(in.substr(0, in.find("\r\n\r\n"))));
    }
    const size_t i = std::min<size_t>(connections_, answers_.size() - 1);
    ++connections_;
    const std::string& out = answers_[i];
    (void)!write(c, out.data(), out.size());
  }
  static Recorded parse(const std::string& head) {
    Recorded r;
    size_t pos = head.find("\r\n");
    const std::string line = head.substr(0, pos);
    r.method = line.substr(0, line.find(' '));
    r.target = line.substr(line.find(' ') + 1, line.rfind(' ') - line.find(' ') - 1);
    while (pos != std::string::npos && pos + 2 < head.size()) {
      const size_t end = head.find("\r\n", pos + 2);
      const std::string h = head.substr(pos + 2, end == std::string::npos ? std::string::npos : end - pos - 2);
      std::string name = h.substr(0, h.find(':'));
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      std::string value = h.substr(h.find(':') + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      while (!value.empty() && value.back() == ' ') value.pop_back();
      r.headers[name] = value;
      pos = end;
    }
    return r;
  }

  std::vector<std::string> answers_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::vector<Recorded> requests_;
  std::thread thread_;
};

std::string answer(const std::string& status, const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + status + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n" + extra + "\r\n" + body;
}

S3Config test_config(const std::string& endpoint) {
  S3Config c;
  c.endpoint = endpoint;
  c.bucket = "examplebucket";
  c.prefix = "arch/";
  c.access_key = "AKIAIOSFODNN7EXAMPLE";
  c.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  c.connect_timeout_ms = 2000;
  c.timeout_ms = 5000;
  c.retries = 3;
  c.backoff_base_ms = 1;
  c.backoff_cap_ms = 5;
  return c;
}

TEST(S3SigV4, CurlSignsTheSortedEncodedQuery) {
  const std::string body =
      "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>arch/my dir/b</Key>"
      "<Size>3</Size><ETag>\"e\"</ETag></Contents></ListBucketResult>";
  LoopbackServer server({answer("200 OK", body)});
  S3Client client(test_config(server.endpoint()));
  S3ListRequest req;
  req.prefix = "my dir/";
  req.start_after = "my dir/a+b=c";
  req.delimiter = "/";
  req.max_keys = 7;
  auto listed = client.list(req);
  ASSERT_TRUE(listed) << listed.status().message();
  ASSERT_EQ(listed->objects.size(), 1u);
  EXPECT_EQ(listed->objects[0].key, "my dir/b");  // relative to the configured prefix

  ASSERT_EQ(server.requests().size(), 1u);
  const Recorded r = server.requests()[0];
  const size_t q = r.target.find('?');
  ASSERT_NE(q, std::string::npos);
  EXPECT_EQ(r.target.substr(0, q), "/examplebucket");
  EXPECT_EQ(r.target.substr(q + 1),
            "delimiter=%2F&list-type=2&max-keys=7&prefix=arch%2Fmy%20dir%2F&start-after=arch%2Fmy%20dir%2Fa%2Bb%3Dc");
  EXPECT_EQ(r.headers.at("x-amz-content-sha256"), kEmptySha256);

  // Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=a;b, Signature=hex
  const std::string auth = r.headers.at("authorization");
  const size_t sh = auth.find("SignedHeaders="), sg = auth.find("Signature=");
  ASSERT_NE(sh, std::string::npos);
  ASSERT_NE(sg, std::string::npos);
  EXPECT_NE(auth.find("Credential=AKIAIOSFODNN7EXAMPLE/"), std::string::npos);
  const std::string names = auth.substr(sh + 14, auth.find(',', sh) - sh - 14);
  SignInput in{"GET", r.target.substr(0, q), r.target.substr(q + 1), {}, r.headers.at("x-amz-content-sha256"),
               r.headers.at("x-amz-date"), "us-east-1", test_config("").secret_key};
  for (size_t start = 0; start <= names.size();) {
    const size_t end = std::min(names.find(';', start), names.size());
    const std::string name = names.substr(start, end - start);
    in.headers.emplace_back(name, r.headers.at(name));
    start = end + 1;
  }
  EXPECT_NE(names.find("x-amz-content-sha256"), std::string::npos) << names;
  EXPECT_EQ(sigv4(in), auth.substr(sg + 10)) << auth;
}

// --- retries and errors ---

TEST(S3Retry, SlowDownIsRetried) {
  LoopbackServer server({answer("503 Slow Down", "<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>"),
                         answer("200 OK", "hello", "ETag: \"abc\"\r\n")});
  S3Client client(test_config(server.endpoint()));
  auto got = client.get("some key");
  ASSERT_TRUE(got) << got.status().message();
  EXPECT_EQ(*got, "hello");
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(server.requests()[1].target, "/examplebucket/arch/some%20key");
}

TEST(S3Retry, AccessDeniedIsOneLineAndNotRetried) {
  const std::string denied = "<?xml version=\"1.0\"?>\n<Error><Code>AccessDenied</Code>"
                             "<Message>Access Denied</Message></Error>";
  LoopbackServer server({answer("403 Forbidden", denied)});
  S3Client client(test_config(server.endpoint()));
  auto got = client.get("k/1");
  ASSERT_FALSE(got);
  const std::string m = got.status().message();
  EXPECT_EQ(got.status().code(), Status::Code::kRefused);
  EXPECT_NE(m.find("403"), std::string::npos) << m;
  EXPECT_NE(m.find("AccessDenied"), std::string::npos) << m;
  EXPECT_NE(m.find("Access Denied"), std::string::npos) << m;
  EXPECT_NE(m.find("arch/k/1"), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  EXPECT_EQ(server.connections(), 1);
}

TEST(S3Retry, NotFoundAndPutAndHead) {
  LoopbackServer server({answer("404 Not Found", "<Error><Code>NoSuchKey</Code></Error>"),
                         answer("200 OK", "", "ETag: \"put-etag\"\r\n")});
  S3Client client(test_config(server.endpoint()));
  auto missing = client.get("nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  auto put = client.put("obj", "payload", S3PutOptions{true});
  ASSERT_TRUE(put) << put.status().message();
  EXPECT_EQ(*put, "\"put-etag\"");
  const Recorded r = server.requests()[1];
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.headers.at("if-none-match"), "*");
  EXPECT_EQ(r.headers.at("x-amz-content-sha256"), hex(sha256("payload")));
  EXPECT_EQ(server.connections(), 2);
}

TEST(S3Retry, HeadDeleteAndListAll) {
  const std::string page1 =
      "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t/1+=</NextContinuationToken>"
      "<Contents><Key>arch/x/1</Key><Size>1</Size></Contents></ListBucketResult>";
  const std::string page2 =
      "<ListBucketResult><IsTruncated>false</IsTruncated>"
      "<Contents><Key>arch/x/2</Key><Size>2</Size></Contents></ListBucketResult>";
  // A HEAD answer carries the object's Content-Length and no body.
  LoopbackServer server({"HTTP/1.1 200 OK\r\nContent-Length: 42\r\nETag: \"h\"\r\nConnection: close\r\n\r\n",
                         answer("204 No Content", ""), answer("200 OK", page1), answer("200 OK", page2)});
  S3Client client(test_config(server.endpoint()));
  auto h = client.head("obj");
  ASSERT_TRUE(h) << h.status().message();
  EXPECT_EQ(h->size, 42u);
  EXPECT_EQ(h->etag, "\"h\"");
  EXPECT_TRUE(client.del("obj"));
  auto all = client.list_all("x/");
  ASSERT_TRUE(all) << all.status().message();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].key, "x/1");
  EXPECT_EQ((*all)[1].size, 2u);
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(reqs[0].method, "HEAD");
  EXPECT_EQ(reqs[1].method, "DELETE");
  EXPECT_EQ(reqs[3].target, "/examplebucket?continuation-token=t%2F1%2B%3D&list-type=2&prefix=arch%2Fx%2F");
}

TEST(S3Retry, NetworkErrorsRunOutAsIOError) {
  int port;
  {
    LoopbackServer gone({answer("200 OK", "")});
    port = std::stoi(gone.endpoint().substr(gone.endpoint().rfind(':') + 1));
  }
  S3Client client(test_config("http://127.0.0.1:" + std::to_string(port)));
  auto got = client.get("k");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.status().code(), Status::Code::kIOError) << got.status().message();
}

}  // namespace
}  // namespace replog
