// What the signed-origin node tests share: a writable node opened with the
// defaults (verification on), and a `set` argument.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "node/engine/node.h"

namespace replog::testing {

inline std::unique_ptr<engine::Node> open_signed_node(const std::string& dir) {
  engine::NodeOptions o;
  o.dir = dir;
  auto n = engine::Node::open(o);
  EXPECT_TRUE(n) << n.status().message();
  return n ? std::move(n).value() : nullptr;
}

inline Value set_string_arg(const std::string& key, const std::string& value) {
  return Value(Map{{"path", Value(key)}, {"value", Value(value)}});
}

}  // namespace replog::testing
