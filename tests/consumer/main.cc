// An embedding application that includes only <replog/replog.h>: it makes a
// data directory, stores a time, reads it back typed and prints one line.
// Usage: consumer DIR
#include <replog/replog.h>

#include <iostream>

namespace {

int fail(const std::string& what, const replog::Status& s) {
  std::cerr << "consumer: " << what << ": " << s.message() << "\n";
  return 1;
}

bool is_hex64(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  replog::InitOptions init;
  init.dir = argv[1];
  if (auto s = replog::Node::init(init); !s) return fail("init", s);
  replog::NodeOptions options;
  options.dir = argv[1];
  auto node = replog::Node::open(options);
  if (!node) return fail("open", node.status());

  auto due = replog::parse_iso8601("2026-01-02T03:04:05Z");
  if (!due) return fail("time", due.status());
  auto id = node->call("set", replog::Map{{"path", "tasks.t1.due"}, {"value", *due}});
  if (!id) return fail("call", id.status());
  auto back = node->read("tasks.t1.due");
  if (!back) return fail("read", back.status());
  if (back->kind() != replog::Value::Kind::kTime) return fail("read", replog::Status::corruption("not a time"));

  const std::string hash = node->state_hash();
  if (!is_hex64(hash)) return fail("state_hash", replog::Status::corruption(hash));
  if (auto s = node->close(); !s) return fail("close", s);
  std::cout << "due " << replog::format_iso8601(back->as_time()) << " by " << id->to_string().size()
            << "-hex update, state hash of " << hash.size() << " hex digits\n";
  return 0;
}
