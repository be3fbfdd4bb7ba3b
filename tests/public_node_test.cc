// The public facade (include/replog/node.h) as an embedding application uses it.
#include <gtest/gtest.h>

#include "node/engine/node.h"
#include "replog/replog.h"
#include "temp_dir.h"

namespace replog {
namespace {

using testing::TempDir;

// (Designated initializers would do; GCC 12 warns about the fields they omit.)
InitOptions init_at(const std::string& dir) {
  InitOptions o;
  o.dir = dir;
  return o;
}

NodeOptions open_at(const std::string& dir, std::shared_ptr<const MethodRegistry> methods = nullptr) {
  NodeOptions o;
  o.dir = dir;
  o.methods = std::move(methods);
  return o;
}

Map set_arg(const std::string& path, Value value) { return Map{{"path", path}, {"value", std::move(value)}}; }

TEST(PublicNode, OptionsDefaultToTheEnginesDefaults) {
  NodeOptions pub;
  engine::NodeOptions eng;
  EXPECT_EQ(pub.max_clock_skew_ms, eng.max_clock_skew_ms);
  EXPECT_EQ(pub.undo_window, eng.undo_window);
  EXPECT_EQ(pub.checkpoint_interval, eng.checkpoint_interval);
  EXPECT_EQ(pub.checkpoints_kept, eng.checkpoints_kept);
  EXPECT_EQ(pub.initial_map_bytes, eng.initial_map_bytes);
}

TEST(PublicNode, ATypedValueSetIsReadBackTyped) {
  TempDir tmp;
  ASSERT_TRUE(Node::init(init_at(tmp.path())));
  auto node = Node::open(open_at(tmp.path()));
  ASSERT_TRUE(node) << node.status().message();
  const Time due = Time::from_millis(1'767'323'045'000);
  auto id = node->call("set", set_arg("tasks.t1.due", due));
  ASSERT_TRUE(id) << id.status().message();
  EXPECT_EQ(id->origin, node->node_id());
  auto back = node->read("tasks.t1.due");
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_EQ(*back, Value(due));
  EXPECT_EQ(node->read(Path{"tasks", "t1", "due"}).value(), Value(due));
  EXPECT_TRUE(node->read().value().is_map());
  EXPECT_EQ(node->read("tasks.t2").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(node->vector().at(node->node_id()), 1u);
  EXPECT_EQ(node->state_hash().size(), 64u);
  EXPECT_TRUE(node->conflicts().empty());
}

// An application's method sees state only through MethodContext, and its
// local check only through StateView.
TEST(PublicNode, AnApplicationMethodAndItsLocalCheckUseOnlyThePublicContext) {
  auto methods = std::make_shared<MethodRegistry>(MethodRegistry::with_builtins());
  auto twice = [](MethodContext& ctx, const Value& arg) -> std::optional<MethodFailure> {
    Path p{arg.as_string()};
    const Value* cur = ctx.get(p);
    if (!cur || !cur->is_int()) return MethodFailure{ConflictKind::kMissing, "no int at " + arg.as_string(), p, {}};
    return ctx.set(p, Value(cur->as_int() * 2));
  };
  auto only_known = [](const StateView& state, const Value& arg) -> std::optional<std::string> {
    if (!arg.is_string() || !state.get({arg.as_string()})) return "nothing to double";
    return std::nullopt;
  };
  ASSERT_TRUE(methods->add("double", "1", twice, only_known));
  TempDir tmp;
  ASSERT_TRUE(Node::init(init_at(tmp.path())));
  auto node = Node::open(open_at(tmp.path(), methods));
  ASSERT_TRUE(node) << node.status().message();
  ASSERT_TRUE(node->call("set", set_arg("n", 21)));
  ASSERT_TRUE(node->call("double", "n"));
  EXPECT_EQ(node->read("n").value(), Value(42));
  auto refused = node->call("double", "m");
  EXPECT_FALSE(refused);
  EXPECT_NE(refused.status().message().find("nothing to double"), std::string::npos) << refused.status().message();
}

TEST(PublicNode, CloseReleasesTheDirectoryAndAReadOnlyNodeSeesTheState) {
  TempDir tmp;
  ASSERT_TRUE(Node::init(init_at(tmp.path())));
  auto node = Node::open(open_at(tmp.path()));
  ASSERT_TRUE(node) << node.status().message();
  ASSERT_TRUE(node->call("set", set_arg("a", "x")));
  const std::string hash = node->state_hash();
  ASSERT_TRUE(node->close());
  EXPECT_FALSE(node->call("set", set_arg("a", "y")));
  EXPECT_FALSE(node->read("a"));

  auto again = Node::open(open_at(tmp.path()));
  ASSERT_TRUE(again) << again.status().message();
  EXPECT_EQ(again->state_hash(), hash);
  ASSERT_TRUE(again->close());

  auto reader = Node::open_read_only(open_at(tmp.path()));
  ASSERT_TRUE(reader) << reader.status().message();
  EXPECT_EQ(reader->read("a").value(), Value("x"));
  EXPECT_FALSE(reader->call("set", set_arg("a", "y")));
}

}  // namespace
}  // namespace replog
