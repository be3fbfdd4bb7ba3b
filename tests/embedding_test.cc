// An application that embeds replog with its own C++ types (include/replog/
// binding.h, node.h): typed methods, records read as structs, minimal writes.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bound_types.h"
#include "node/engine/node.h"
#include "protocol/json_codec.h"
#include "protocol/msgpack_codec.h"
#include "replog/replog.h"
#include "support/s3rver.h"
#include "temp_dir.h"
#include "todo_types.h"

namespace embedding_test {

// The to-do example's types, with a Task field ("note") that build of the app
// does not bind.
constexpr const char* kSchema = R"({
  "enums": {"Priority": ["Low", "High"]},
  "records": {
    "Task": {"fields": {"title": "string", "priority": "Priority", "due": "time", "done": "bool", "note": "string"},
             "required": ["title"], "unique": ["title"]},
    "RenameTask": {"fields": {"id": "string", "title": "string"}}
  }
})";

}  // namespace embedding_test

namespace replog {
namespace {

using bound_types::Everything;
using todo::Priority;
using todo::RenameTask;
using todo::Task;
using testing::TempDir;

NodeOptions open_at(const std::string& dir, std::shared_ptr<const MethodRegistry> methods) {
  NodeOptions o;
  o.dir = dir;
  o.methods = std::move(methods);
  return o;
}

void init_with_schema(const std::string& dir, const char* schema) {
  InitOptions init;
  init.dir = dir;
  auto doc = parse_typed_json(schema);
  ASSERT_TRUE(doc) << doc.status().message();
  init.schema = *doc;
  ASSERT_TRUE(Node::init(init));
}

std::shared_ptr<const MethodRegistry> task_methods() { return todo::methods(); }

// "keep" stores its argument under "kept" and remembers every object replay handed it.
struct KeepLog {
  std::mutex mu;
  std::vector<Everything> seen;
};

std::shared_ptr<MethodRegistry> keep_methods(std::shared_ptr<KeepLog> log) {
  auto methods = std::make_shared<MethodRegistry>(MethodRegistry::with_builtins());
  EXPECT_TRUE(methods->add_typed<Everything>(
      "keep", "1", [log](MethodContext& ctx, const Everything& arg) -> std::optional<MethodFailure> {
        {
          std::lock_guard<std::mutex> l(log->mu);
          log->seen.push_back(arg);
        }
        return ctx.set({"kept", ctx.id().to_string()}, to_value(arg));
      }));
  return methods;
}

TEST(Embedding, ATypedMethodGetsBackTheObjectTheCallerPassedForEveryValueKind) {
  TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(init_with_schema(tmp.path(), bound_types::kSchema));
  auto log = std::make_shared<KeepLog>();
  const Everything sent = bound_types::full();
  UpdateId id;
  {
    auto node = Node::open(open_at(tmp.path(), keep_methods(log)));
    ASSERT_TRUE(node) << node.status().message();
    auto called = node->call("keep", sent);
    ASSERT_TRUE(called) << called.status().message();
    id = *called;
    ASSERT_EQ(log->seen.size(), 1u);
    EXPECT_EQ(log->seen[0], sent);
    auto stored = node->read(Path{"kept", id.to_string()});
    ASSERT_TRUE(stored);
    EXPECT_EQ(from_value<Everything>(*stored).value(), sent);
  }
  // A fresh instance replays the log written above: the handler gets an equal object.
  auto fresh = Node::open_read_only(open_at(tmp.path(), keep_methods(log)));
  ASSERT_TRUE(fresh) << fresh.status().message();
  auto stored = fresh->read(Path{"kept", id.to_string()});
  ASSERT_TRUE(stored);
  EXPECT_EQ(from_value<Everything>(*stored).value(), sent);
}

TEST(Embedding, AnArgumentOfAnotherRecordTypeIsRefusedAsABadArgument) {
  TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(init_with_schema(tmp.path(), embedding_test::kSchema));
  auto node = Node::open(open_at(tmp.path(), task_methods()));
  ASSERT_TRUE(node);
  auto r = node->call("renameTask", Task{"not a rename", Priority::kLow, std::nullopt, false});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().message(), "expected record RenameTask, got record Task");
  EXPECT_TRUE(node->vector().empty() || node->vector().at(node->node_id()) == 1u) << "only the schema is stored";
}

TEST(Embedding, RecordsReadAsStructsWithEnumsAndTimePoints) {
  TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(init_with_schema(tmp.path(), embedding_test::kSchema));
  auto node = Node::open(open_at(tmp.path(), task_methods()));
  ASSERT_TRUE(node);
  using std::chrono::sys_days;
  const Task milk{"milk", Priority::kHigh, sys_days{std::chrono::year{2026} / 12 / 24}, false};
  ASSERT_TRUE(node->create("t1", milk));
  EXPECT_EQ(node->read("Task.t1.priority").value(), Value::enumeration("Priority", "High"));
  auto back = node->get<Task>("t1");
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_EQ(*back, milk);
  EXPECT_EQ(node->get<Task>("t2").status().code(), Status::Code::kNotFound);
  auto all = node->get_all<Task>();
  ASSERT_TRUE(all);
  EXPECT_EQ(*all, (std::map<std::string, Task>{{"t1", milk}}));

  ASSERT_TRUE(node->call("renameTask", RenameTask{"t1", "oat milk"}));
  EXPECT_EQ(node->get<Task>("t1")->title, "oat milk");
}

TEST(Embedding, WritingBackAnObjectKeepsUnboundFieldsAndOtherDevicesEdits) {
  TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(init_with_schema(tmp.path(), embedding_test::kSchema));
  auto node = Node::open(open_at(tmp.path(), task_methods()));
  ASSERT_TRUE(node);
  ASSERT_TRUE(node->create("t1", Task{"milk", Priority::kLow, std::nullopt, false}));
  ASSERT_TRUE(node->call("update", Map{{"type", "Task"}, {"id", "t1"}, {"fields", Map{{"note", "2 litres"}}}}));
  const Task as_read = node->get<Task>("t1").value();
  // Meanwhile another device marks it done.
  ASSERT_TRUE(node->call("update", Map{{"type", "Task"}, {"id", "t1"}, {"fields", Map{{"done", true}}}}));

  Task changed = as_read;
  changed.priority = Priority::kHigh;
  auto written = node->update("t1", as_read, changed);
  ASSERT_TRUE(written) << written.status().message();
  EXPECT_TRUE(written->has_value());
  EXPECT_EQ(node->read("Task.t1.note").value(), Value("2 litres")) << "a field this build does not bind";
  EXPECT_EQ(node->read("Task.t1.done").value(), Value(true)) << "the other device's edit";
  EXPECT_EQ(node->get<Task>("t1")->priority, Priority::kHigh);

  const auto before = node->vector();
  auto nothing = node->update("t1", changed, changed);
  ASSERT_TRUE(nothing);
  EXPECT_FALSE(nothing->has_value());
  EXPECT_EQ(node->vector(), before) << "no change, no update";
}

TEST(Embedding, AHandlerThrowingMethodFailureRefusesTheCallAndStoresNothing) {
  TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(init_with_schema(tmp.path(), embedding_test::kSchema));
  auto node = Node::open(open_at(tmp.path(), task_methods()));
  ASSERT_TRUE(node);
  const auto before = node->vector();
  auto r = node->call("renameTask", RenameTask{"t9", "x"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().message(), "no task t9");
  EXPECT_EQ(node->vector(), before);
  EXPECT_TRUE(node->fold_status());
}

TEST(Embedding, AnUnknownMethodFromANewerVersionIsKeptAndReplayedOnceRegistered) {
  TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(init_with_schema(tmp.path(), embedding_test::kSchema));
  {  // the newer version renames
    auto node = Node::open(open_at(tmp.path(), task_methods()));
    ASSERT_TRUE(node);
    ASSERT_TRUE(node->create("t1", Task{"milk", Priority::kLow, std::nullopt, false}));
    ASSERT_TRUE(node->call("renameTask", RenameTask{"t1", "oat milk"}));
  }
  {  // the older version does not know renameTask: kept, skipped; it writes on
    auto node = Node::open(open_at(tmp.path(), nullptr));
    ASSERT_TRUE(node);
    EXPECT_EQ(node->get<Task>("t1")->title, "milk");
    EXPECT_TRUE(node->conflicts().empty());
    Task t = node->get<Task>("t1").value();
    Task done = t;
    done.done = true;
    ASSERT_TRUE(node->update("t1", t, done));
  }
  auto node = Node::open(open_at(tmp.path(), task_methods()));  // upgraded again
  ASSERT_TRUE(node);
  auto t = node->get<Task>("t1");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->title, "oat milk");
  EXPECT_TRUE(t->done);
}

TEST(Embedding, ASubscriberHearsWhichRecordsEachCallChanged) {
  TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(init_with_schema(tmp.path(), embedding_test::kSchema));
  auto node = Node::open(open_at(tmp.path(), task_methods()));
  ASSERT_TRUE(node);
  auto feed = node->subscribe();
  auto created = node->create("t1", Task{"milk", Priority::kLow, std::nullopt, false});
  ASSERT_TRUE(created);
  auto renamed = node->call("renameTask", RenameTask{"t1", "oat milk"});
  ASSERT_TRUE(renamed);
  ASSERT_FALSE(node->call("renameTask", RenameTask{"t9", "x"})) << "refused: not heard";

  auto first = feed->next(std::chrono::seconds(5));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->kind, Change::Kind::kApplied);
  EXPECT_EQ(first->id, *created);
  EXPECT_EQ(first->method, "create");
  EXPECT_EQ(first->records, (std::vector<std::pair<std::string, std::string>>{{"Task", "t1"}}));
  auto second = feed->next(std::chrono::seconds(5));
  ASSERT_TRUE(second);
  EXPECT_EQ(second->id, *renamed);
  EXPECT_EQ(second->method, "renameTask");
  EXPECT_EQ(second->paths, (std::vector<Path>{{"Task", "t1", "title"}}));
  EXPECT_FALSE(feed->next(std::chrono::milliseconds(20)));

  ASSERT_TRUE(node->close());
  EXPECT_TRUE(feed->closed());
  EXPECT_FALSE(feed->next(std::chrono::seconds(5))) << "a closed, empty feed answers at once";
}

TEST(Embedding, AFeedThatFillsUpKeepsOneReloadInstead) {
  TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(init_with_schema(tmp.path(), embedding_test::kSchema));
  auto node = Node::open(open_at(tmp.path(), nullptr));
  ASSERT_TRUE(node);
  auto small = node->subscribe(/*capacity=*/2);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(node->call("set", Map{{"path", "n"}, {"value", i}}));
  ASSERT_TRUE(node->call("set", Map{{"path", "m"}, {"value", 1}}));
  auto kept = small->take_all();
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].kind, Change::Kind::kReloaded) << "the three it could not hold";
  EXPECT_EQ(kept[1].paths, (std::vector<Path>{{"m"}}));
}

TEST(Embedding, TheLogReadsFromAnyPositionAndAFollowerWaitsForTheNextCall) {
  TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(init_with_schema(tmp.path(), embedding_test::kSchema));
  auto node = Node::open(open_at(tmp.path(), task_methods()));
  ASSERT_TRUE(node);
  auto created = node->create("t1", Task{"milk", Priority::kLow, std::nullopt, false});
  ASSERT_TRUE(created);
  auto renamed = node->call("renameTask", RenameTask{"t1", "oat milk"});
  ASSERT_TRUE(renamed);

  LogSequence log(*node);
  auto all = log.read(std::nullopt, 10);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u) << "the schema, the create, the rename";
  EXPECT_EQ((*all)[0].method, "schema");
  auto after_create = log.read(*created, 10);
  ASSERT_TRUE(after_create);
  ASSERT_EQ(after_create->size(), 1u);
  EXPECT_EQ((*after_create)[0].id, *renamed);
  EXPECT_EQ(from_value<RenameTask>((*after_create)[0].arg)->title, "oat milk");

  auto history = log.follow(std::chrono::milliseconds(0));
  ASSERT_TRUE(history);
  EXPECT_EQ(history->size(), 3u);
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_TRUE(node->call("renameTask", RenameTask{"t1", "soy milk"}));
  });
  auto next = log.follow(std::chrono::seconds(10));
  writer.join();
  ASSERT_TRUE(next);
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].method, "renameTask");
  EXPECT_FALSE((*next)[0].late);
}

TEST(Embedding, AFollowerResumedAfterARestartGetsALateUpdateFlaggedLate) {
  TempDir tmp;
  ASSERT_NO_FATAL_FAILURE(init_with_schema(tmp.path(), embedding_test::kSchema));
  VersionVector followed;
  std::optional<UpdateId> newest;
  UpdateId first;
  {
    auto node = Node::open(open_at(tmp.path(), nullptr));
    ASSERT_TRUE(node);
    first = node->call("set", Map{{"path", "a"}, {"value", 1}}).value();
    ASSERT_TRUE(node->call("set", Map{{"path", "c"}, {"value", 3}}));
    LogSequence log(*node);
    ASSERT_EQ(log.follow(std::chrono::milliseconds(0))->size(), 3u);
    followed = log.followed();
    newest = log.newest_followed();
  }
  {  // a device that was offline: its update sorts between a and c
    engine::NodeOptions o;
    o.dir = tmp.path();
    o.verify_origins = false;  // a hand-made update: form and replay, not proof
    auto engine = engine::Node::open(o);
    ASSERT_TRUE(engine);
    Update late = Update::make(UpdateId{first.hlc + 1, 77}, 1, "set",
                               encode_msgpack(Value(Map{{"path", "b"}, {"value", 2}})));
    ASSERT_EQ((*engine)->ingest({late})->accepted, 1u);
  }
  auto node = Node::open(open_at(tmp.path(), nullptr));
  ASSERT_TRUE(node);
  LogSequence log(*node, followed, newest);
  auto got = log.follow(std::chrono::milliseconds(0));
  ASSERT_TRUE(got);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].id, (UpdateId{first.hlc + 1, 77}));
  EXPECT_TRUE((*got)[0].late);
  EXPECT_EQ((*got)[0].arg, Value(Map{{"path", "b"}, {"value", 2}}));
}

// A loopback port nothing listens on now.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(Embedding, TwoNetworkedNodesReplicateTypedRecordsAndTheAppsMethod) {
  TempDir tmp;
  const std::string a_dir = tmp.sub("a"), b_dir = tmp.sub("b");
  for (const std::string& dir : {a_dir, b_dir}) {
    InitOptions init;
    init.dir = dir;
    init.cluster = "e1";
    ASSERT_TRUE(Node::init(init));
  }
  const std::string a_at = "tcp://127.0.0.1:" + std::to_string(free_port());
  const std::string b_at = "tcp://127.0.0.1:" + std::to_string(free_port());
  auto networked = [&](const std::string& dir, const std::string& listen, const std::string& peer) {
    NodeOptions o = open_at(dir, task_methods());
    o.network.listen = listen;
    o.network.peers = {peer};
    o.network.insecure = true;  // loopback, no device keys to trust
    o.network.log_level = 0;
    return Node::open(o);
  };
  auto a = networked(a_dir, a_at, b_at);
  ASSERT_TRUE(a) << a.status().message();
  auto b = networked(b_dir, b_at, a_at);
  ASSERT_TRUE(b) << b.status().message();
  auto b_feed = b->subscribe();

  const Task milk{"milk", Priority::kHigh, std::nullopt, false};
  ASSERT_TRUE(a->call("schema", Map{{"document", *parse_typed_json(embedding_test::kSchema)}}));
  ASSERT_TRUE(a->create("t1", milk));
  ASSERT_TRUE(a->call("renameTask", RenameTask{"t1", "oat milk"}));
  Task expected = milk;
  expected.title = "oat milk";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!(b->get<Task>("t1").is_ok() && b->get<Task>("t1").value() == expected) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto seen = b->get<Task>("t1");
  ASSERT_TRUE(seen) << seen.status().message();
  EXPECT_EQ(*seen, expected);
  EXPECT_EQ(a->state_hash(), b->state_hash());
  bool heard = false;
  for (const Change& c : b_feed->take_all()) heard = heard || c.method == "renameTask" || c.kind == Change::Kind::kReloaded;
  EXPECT_TRUE(heard) << "B's subscriber heard the replicated rename";
  EXPECT_TRUE(a->close());
  EXPECT_TRUE(b->close());
}

TEST(Embedding, TwoEmbeddedNodesThatNeverMeetSyncThroughTheArchive) {
  TempDir tmp;
  testing::TestS3Server s3(REPLOG_S3RVER, tmp.sub("s3"), "replog-embed");
  std::filesystem::create_directories(tmp.sub("s3"));
  if (std::string why = s3.start(); !why.empty()) FAIL() << why;
  ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
  const std::string a_dir = tmp.sub("a"), b_dir = tmp.sub("b");
  for (const std::string& dir : {a_dir, b_dir}) {
    InitOptions init;
    init.dir = dir;
    init.cluster = "e2";
    ASSERT_TRUE(Node::init(init));
  }
  auto archived = [&](const std::string& dir) {
    NodeOptions o = open_at(dir, task_methods());
    o.network.listen = "tcp://127.0.0.1:" + std::to_string(free_port());  // no peers: they never meet
    o.network.insecure = true;
    o.network.discovery = false;
    o.network.log_level = 0;
    o.network.archive = "s3://replog-embed/team";
    o.network.s3_endpoint = s3.endpoint();
    o.network.archive_poll_ms = 200;
    return Node::open(o);
  };
  auto a = archived(a_dir);
  ASSERT_TRUE(a) << a.status().message();
  // Members share the cluster secret (join hands it over); the archive key comes from it.
  std::filesystem::copy_file(a_dir + "/cluster.key", b_dir + "/cluster.key",
                             std::filesystem::copy_options::overwrite_existing);
  auto b = archived(b_dir);
  ASSERT_TRUE(b) << b.status().message();
  ASSERT_TRUE(a->call("schema", Map{{"document", *parse_typed_json(embedding_test::kSchema)}}));
  ASSERT_TRUE(a->create("t1", Task{"milk", Priority::kHigh, std::nullopt, false}));
  ASSERT_TRUE(b->call("set", Map{{"path", Value("from-b")}, {"value", Value(1)}}));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (a->state_hash() != b->state_hash() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(a->state_hash(), b->state_hash()) << "one state through the archive alone";
  auto seen = b->get<Task>("t1");
  ASSERT_TRUE(seen) << seen.status().message();
  EXPECT_EQ(seen->title, "milk");
  EXPECT_TRUE(a->close());
  EXPECT_TRUE(b->close());
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
}

TEST(Embedding, ALogTheTodoAppWroteReplaysIntoAFreshDirectoryAsEqualObjects) {
  TempDir tmp;
  const std::string app_dir = tmp.sub("app"), fresh_dir = tmp.sub("fresh");
  std::map<std::string, Task> written;
  {
    auto schema = TypeRegistry::from_json_text(todo::kSchema);
    ASSERT_TRUE(schema);
    InitOptions init;
    init.dir = app_dir;
    init.schema = schema->to_document();
    ASSERT_TRUE(Node::init(init));
    auto app = Node::open(open_at(app_dir, todo::methods()));
    ASSERT_TRUE(app);
    ASSERT_TRUE(app->create("t1", Task{"milk", Priority::kHigh, std::chrono::sys_days{std::chrono::year{2026} / 12 / 24},
                                       false}));
    ASSERT_TRUE(app->create("t2", Task{"bread", Priority::kLow, std::nullopt, false}));
    ASSERT_TRUE(app->call("renameTask", RenameTask{"t2", "rye bread"}));
    const Task t1 = app->get<Task>("t1").value();
    Task done = t1;
    done.done = true;
    ASSERT_TRUE(app->update("t1", t1, done));
    written = app->get_all<Task>().value();
    ASSERT_EQ(written.size(), 2u);
  }
  std::vector<Update> log;
  {
    engine::NodeOptions o;
    o.dir = app_dir;
    auto reader = engine::Node::open_read_only(o);
    ASSERT_TRUE(reader);
    log = (*reader)->read_log(std::nullopt, 1000).value();
  }
  {
    InitOptions init;
    init.dir = fresh_dir;
    ASSERT_TRUE(Node::init(init));
    engine::NodeOptions o;
    o.dir = fresh_dir;
    o.verify_origins = false;  // the app's updates without their heads: judged for form, folded from scratch
    o.methods = todo::methods();
    auto fresh = engine::Node::open(o);
    ASSERT_TRUE(fresh);
    ASSERT_EQ((*fresh)->ingest(log)->accepted, log.size());
  }
  auto fresh = Node::open(open_at(fresh_dir, todo::methods()));
  ASSERT_TRUE(fresh);
  auto replayed = fresh->get_all<Task>();
  ASSERT_TRUE(replayed) << replayed.status().message();
  EXPECT_EQ(*replayed, written);
  EXPECT_EQ(replayed->at("t2").title, "rye bread");
}

}  // namespace
}  // namespace replog
