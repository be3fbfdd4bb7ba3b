// todo: a to-do list that embeds replog. Each device keeps its own data
// directory; every change is a call of one of the app's methods, stored as
// an update, so two devices that exchange updates arrive at the same list.
//
// Usage: todo DIR COMMAND ...   (todo with no arguments lists the commands)
#include <replog/replog.h>

#include <chrono>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "todo_types.h"

namespace todo {
namespace {

int fail(const std::string& what) {
  std::cerr << "todo: " << what << "\n";
  return 1;
}

std::string describe(const std::string& id, const Task& t) {
  std::string line = id + "  " + (t.done ? "[x] " : "[ ] ") + t.title;
  line += t.priority == Priority::kHigh ? "  !high" : "";
  if (t.due) line += "  due " + replog::format_iso8601(replog::to_value(*t.due).as_time()).substr(0, 10);
  return line;
}

int init(const std::string& dir, const std::vector<std::string>& args) {
  replog::InitOptions o;
  o.dir = dir;
  if (args.size() == 2 && args[0] == "--cluster") o.cluster = args[1];
  auto schema = replog::TypeRegistry::from_json_text(kSchema);
  if (!schema) return fail(schema.status().message());
  o.schema = schema->to_document();
  if (auto s = replog::Node::init(o); !s) return fail(s.message());
  return 0;
}

int add(replog::Node& node, const std::vector<std::string>& args) {
  if (args.size() < 2) return fail("usage: todo DIR add ID TITLE [--due YYYY-MM-DD] [--high]");
  Task t;
  t.title = args[1];
  for (size_t i = 2; i < args.size(); ++i) {
    if (args[i] == "--high") {
      t.priority = Priority::kHigh;
    } else if (args[i] == "--due" && i + 1 < args.size()) {
      auto when = replog::parse_iso8601(args[++i]);
      if (!when) return fail(when.status().message());
      auto day = replog::from_value<std::chrono::sys_days>(replog::Value(*when), "--due");
      if (!day) return fail(day.status().message());
      t.due = *day;
    } else {
      return fail("unknown option " + args[i]);
    }
  }
  auto id = node.create(args[0], t);
  return id ? 0 : fail(id.status().message());
}

int mark_done(replog::Node& node, const std::string& id) {
  auto as_read = node.get<Task>(id);
  if (!as_read) return fail(as_read.status().message());
  Task changed = *as_read;
  changed.done = true;
  auto written = node.update(id, *as_read, changed);  // only "done" is sent
  return written ? 0 : fail(written.status().message());
}

int list(replog::Node& node) {
  auto tasks = node.get_all<Task>();
  if (!tasks) return fail(tasks.status().message());
  for (const auto& [id, t] : *tasks) std::cout << describe(id, t) << "\n";
  for (const auto& c : node.conflicts())
    std::cout << "conflict " << c.skipped.to_string() << ": " << replog::conflict_kind_name(c.kind) << " at "
              << replog::path_to_string(c.path) << "\n";
  return 0;
}

// The skipped update, read back from the log.
std::optional<replog::LogEntry> find_update(const replog::Node& node, const replog::UpdateId& id) {
  replog::LogSequence log(node);
  std::optional<replog::UpdateId> after;
  for (;;) {
    auto page = log.read(after, 256);
    if (!page || page->empty()) return std::nullopt;
    for (auto& e : *page)
      if (e.id == id) return e;
    after = page->back().id;
  }
}

// Resolves a conflicting "create" by making the task again under a new title,
// then closing the conflict: the follow-up call the conflict asks for.
int resolve(replog::Node& node, const std::vector<std::string>& args) {
  if (args.size() != 2) return fail("usage: todo DIR resolve UPDATE_ID NEW_TITLE");
  auto id = replog::UpdateId::parse(args[0]);
  if (!id) return fail(id.status().message());
  auto skipped = find_update(node, *id);
  if (!skipped || skipped->method != "create") return fail("no create " + args[0] + " in the log");
  const replog::Value* task_id = skipped->arg.find("id");
  const replog::Value* stored = skipped->arg.find("fields");
  if (!task_id || !task_id->is_string() || !stored || !stored->is_map()) return fail("the skipped create holds no task");
  auto fields = replog::from_value<Task>(replog::Value::record("Task", stored->as_map()));
  if (!fields) return fail(fields.status().message());
  fields->title = args[1];
  if (auto made = node.create(task_id->as_string(), *fields); !made) return fail(made.status().message());
  auto closed = node.call("resolve", replog::Map{{"update", args[0]}});
  return closed ? 0 : fail(closed.status().message());
}

// Replicates with one peer for a while, printing what each update received
// changed, as a UI would refresh it.
int sync(replog::Node& node, int seconds) {
  auto feed = node.subscribe();
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    auto change = feed->next(std::chrono::milliseconds(100));
    if (!change) continue;
    std::cout << "heard " << replog::change_kind_name(change->kind) << " " << change->method;
    for (const auto& [type, id] : change->records) std::cout << " " << type << "." << id;
    std::cout << "\n";
  }
  return 0;
}

int run(const std::string& dir, const std::string& command, const std::vector<std::string>& args) {
  if (command == "init") return init(dir, args);
  replog::NodeOptions o;
  o.dir = dir;
  o.methods = methods();
  if (command == "sync") {
    if (args.size() < 3) return fail("usage: todo DIR sync LISTEN PEER SECONDS [--insecure]");
    o.network.listen = args[0];
    o.network.peers = {args[1]};
    o.network.insecure = args.size() > 3 && args[3] == "--insecure";
    o.network.log_level = 0;
  }
  auto node = replog::Node::open(o);
  if (!node) return fail(node.status().message());
  // A binding that does not match the schema in force is a mistake of this build: say so at once.
  if (auto schema = node->schema(); !schema) return fail(schema.status().message());
  else if (auto s = replog::Bind<Task>::binding().check(*schema); !s) return fail(s.message());
  if (command == "add") return add(*node, args);
  if (command == "rename" && args.size() == 2) {
    auto r = node->call("renameTask", RenameTask{args[0], args[1]});
    return r ? 0 : fail(r.status().message());
  }
  if (command == "done" && args.size() == 1) return mark_done(*node, args[0]);
  if (command == "list") return list(*node);
  if (command == "resolve") return resolve(*node, args);
  if (command == "sync") return sync(*node, std::stoi(args[2]));
  if (command == "hash") {
    std::cout << node->state_hash() << "\n";
    return 0;
  }
  return fail("unknown command " + command + " (todo with no arguments lists them)");
}

}  // namespace
}  // namespace todo

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: todo DIR init [--cluster ID] | add ID TITLE [--due YYYY-MM-DD] [--high] | rename ID TITLE\n"
                 "                | done ID | list | resolve UPDATE_ID NEW_TITLE | hash\n"
                 "                | sync LISTEN PEER SECONDS [--insecure]   (replicate with a peer for a while)\n";
    return 2;
  }
  return todo::run(argv[1], argv[2], std::vector<std::string>(argv + 3, argv + argc));
}
