// crash_writer: the child process of crash_test.
//
//   crash_writer DIR THREADS CHECKPOINT_INTERVAL UNDO_WINDOW SEED
//
// Opens a Node on DIR and makes calls from THREADS threads (so the writer
// groups them into shared commits) until it is killed. After each call is
// acknowledged (Node::call returned, so its transaction committed) it writes
// one line "ack <32-hex update id>\n" to stdout with a single write(2): the
// parent treats every complete line as a promise that the update is durable.
// It exits by itself after 60 s so that a lost parent never leaves it behind.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "node/engine/node.h"
#include "protocol/bytes.h"

namespace {

std::mutex out_mu;

void emit(const std::string& line) {
  std::lock_guard<std::mutex> l(out_mu);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(1, p, left);
    if (n <= 0) std::_Exit(3);  // the parent is gone
    p += n;
    left -= static_cast<size_t>(n);
  }
}

replog::Value arg_for(std::mt19937_64& rng, int thread, std::string& method) {
  using replog::Map;
  using replog::Value;
  switch (rng() % 5) {
    case 0:
      method = "inc";
      return Value(Map{{"path", Value("count.t" + std::to_string(thread))}, {"by", Value(int64_t{1})}});
    case 1:
      method = "set";
      return Value(Map{{"path", Value("k." + std::to_string(rng() % 20))},
                       {"value", Value(std::string(rng() % 200, 'x') + std::to_string(rng()))}});
    case 2:
      method = rng() % 3 ? "add" : "remove";
      return Value(Map{{"path", Value("members")}, {"value", Value(static_cast<int64_t>(rng() % 30))}});
    case 3: {
      // Unique names collide now and then: those calls are refused (not acked).
      method = "create";
      Map fields{{"name", Value("n" + std::to_string(rng() % 400))}, {"n", Value(static_cast<int64_t>(rng() % 100))}};
      return Value(Map{{"type", Value("Item")}, {"id", Value("i" + std::to_string(rng()))}, {"fields", Value(fields)}});
    }
    default:
      method = "set";
      return Value(Map{{"path", Value("t" + std::to_string(thread) + ".last")}, {"value", Value(static_cast<int64_t>(rng()))}});
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: crash_writer DIR THREADS CHECKPOINT_INTERVAL UNDO_WINDOW SEED\n");
    return 2;
  }
  replog::engine::NodeOptions options;
  options.dir = argv[1];
  const int threads = std::atoi(argv[2]);
  options.checkpoint_interval = std::strtoull(argv[3], nullptr, 10);
  options.undo_window = std::strtoull(argv[4], nullptr, 10);
  const uint64_t seed = std::strtoull(argv[5], nullptr, 10);

  auto node = replog::engine::Node::open(options);
  if (!node) {
    std::fprintf(stderr, "crash_writer: open %s: %s\n", argv[1], node.status().message().c_str());
    return 2;
  }
  emit("open " + replog::hex16((*node)->node_id()) + "\n");

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::atomic<bool> failed{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(seed * 1000003 + static_cast<uint64_t>(t));
      while (std::chrono::steady_clock::now() < deadline && !failed) {
        std::string method;
        replog::Value arg = arg_for(rng, t, method);
        auto id = (*node)->call(method, arg);
        if (id) {
          emit("ack " + id->to_string() + "\n");
        } else if (id.status().code() != replog::Status::Code::kInvalidArgument) {
          // A refusal of content (unique name taken) is expected; anything else is not.
          std::fprintf(stderr, "crash_writer: %s failed: %s\n", method.c_str(), id.status().message().c_str());
          failed = true;
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  (void)(*node)->close();
  return failed ? 1 : 0;
}
