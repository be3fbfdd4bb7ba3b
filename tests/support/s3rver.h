// TestS3Server: a real S3-compatible HTTP server (s3rver, installed by
// tools/deps.sh into tests/s3/node_modules) started on loopback for one test,
// in a directory of its own, with one bucket. It listens on a port the kernel
// picks (--port 0); the port is read from the line it prints. The process is
// stopped (SIGTERM, then SIGKILL) when the object goes, so no test leaves one
// behind.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace replog::testing {

class TestS3Server {
 public:
  // `program`: the s3rver script; `dir`: an empty directory for its objects.
  TestS3Server(std::string program, std::string dir, std::string bucket)
      : program_(std::move(program)), dir_(std::move(dir)), bucket_(std::move(bucket)) {}
  ~TestS3Server() { stop(); }
  TestS3Server(const TestS3Server&) = delete;
  TestS3Server& operator=(const TestS3Server&) = delete;

  // Starts it and waits (at most `timeout`) for its port; "" when it is up,
  // else what went wrong in one line.
  std::string start(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    if (access(program_.c_str(), X_OK) != 0) return program_ + " is missing: run tools/deps.sh (it installs s3rver with npm)";
    int out[2];
    if (pipe(out) != 0) return "pipe failed";
    pid_ = fork();
    if (pid_ < 0) return "fork failed";
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(out[1], STDERR_FILENO);
      close(out[0]);
      close(out[1]);
      // s3rver makes continuation tokens with DES, which Node's OpenSSL 3 only
      // has in its legacy provider: without it every truncated listing is a 500.
      setenv("NODE_OPTIONS", "--openssl-legacy-provider", 1);
      execl(program_.c_str(), program_.c_str(), "--directory", dir_.c_str(), "--address", "127.0.0.1", "--port", "0",
            "--configure-bucket", bucket_.c_str(), "--silent", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    out_ = out[0];
    return wait_for_port(timeout);
  }

  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      for (int i = 0; i < 100 && waitpid(pid_, nullptr, WNOHANG) == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (waitpid(pid_, nullptr, WNOHANG) == 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
      pid_ = -1;
    }
    if (out_ >= 0) close(out_);
    out_ = -1;
  }

  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& bucket() const { return bucket_; }
  const std::string& output() const { return printed_; }

 private:
  std::string wait_for_port(std::chrono::milliseconds timeout) {
    const std::string marker = "listening on 127.0.0.1:";
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[512];
      const ssize_t n = read(out_, buf, sizeof buf);
      if (n <= 0) return "s3rver exited before it listened: " + printed_;
      printed_.append(buf, static_cast<size_t>(n));
      const size_t at = printed_.find(marker);
      if (at == std::string::npos) continue;
      const size_t end = printed_.find_first_not_of("0123456789", at + marker.size());
      if (end == std::string::npos) continue;  // the port's digits may still be coming
      port_ = std::stoi(printed_.substr(at + marker.size(), end - at - marker.size()));
      return "";
    }
    return "s3rver printed no port within the time limit: " + printed_;
  }

  std::string program_, dir_, bucket_;
  pid_t pid_ = -1;
  int out_ = -1;
  int port_ = 0;
  std::string printed_;
};

}  // namespace replog::testing
