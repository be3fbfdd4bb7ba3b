// Helpers shared by the replog subcommands: option parsing (command line,
// REPLOG_* environment, --config file), errors, output.
#pragma once

#include <boost/program_options.hpp>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "node/engine/node.h"
#include "replog/status.h"

namespace replog::cli {

namespace po = boost::program_options;

// Thrown by a subcommand to end with a one-line error and exit code 1.
struct CommandError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename T>
T unwrap(Result<T> r) {
  if (!r) throw CommandError(r.status().message());
  return std::move(r).value();
}

inline void check(const Status& s) {
  if (!s) throw CommandError(s.message());
}

std::string read_file(const std::string& path);
std::string read_stdin();

// One subcommand's options. Adds --help, --config, --json and (when
// `with_data`) --data and the node tuning options.
class Options {
 public:
  Options(std::string command, std::string usage, bool with_data = true);
  po::options_description_easy_init add() { return desc_.add_options(); }
  void positional(const char* name, int count) { pos_.add(name, count); }
  // Adds --lock-wait SECONDS for a command that writes: how long it waits for
  // the data directory's lock (storage/data_dir.h). node_options() carries it.
  void add_lock_wait(int64_t default_ms);
  // Parses; returns false when --help was printed.
  bool parse(const std::vector<std::string>& args);

  bool has(const char* name) const { return vm_.count(name) > 0; }
  template <typename T>
  const T& get(const char* name) const { return vm_[name].as<T>(); }
  bool json() const { return has("json"); }
  engine::NodeOptions node_options() const;

 private:
  std::string command_, usage_;
  po::options_description desc_;
  po::positional_options_description pos_;
  po::variables_map vm_;
};

// A writable node for a command that works while no node runs (`command`
// names it in the errors): the data directory's lock is taken, waiting up to
// --lock-wait.
// `options`: the node's options when not o.node_options() as they stand.
std::unique_ptr<engine::Node> open_writer_offline(const Options& o, const std::string& command,
                                                  std::optional<engine::NodeOptions> options = std::nullopt);
// A read-only node (no lock); `at` folds only updates up to that time.
std::unique_ptr<engine::Node> open_reader(const Options& o, std::optional<int64_t> at = std::nullopt);

}  // namespace replog::cli
