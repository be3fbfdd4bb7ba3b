#include "tools/cli_common.h"

#include <fstream>
#include <iterator>

#include "storage/data_dir.h"

namespace replog::cli {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw CommandError("cannot read " + path);
  std::string data(static_cast<size_t>(in.tellg()), '\0');
  in.seekg(0);
  if (!in.read(data.data(), static_cast<std::streamsize>(data.size()))) throw CommandError("cannot read " + path);
  return data;
}

std::string read_stdin() { return std::string(std::istreambuf_iterator<char>(std::cin), {}); }

Options::Options(std::string command, std::string usage, bool with_data)
    : command_(std::move(command)), usage_(std::move(usage)), desc_(command_ + " options") {
  desc_.add_options()("help,h", "show this help")("config", po::value<std::string>(),
                                                  "read options from this file (key = value lines)")(
      "json", "print JSON for scripts");
  if (with_data) {
    desc_.add_options()("data,d", po::value<std::string>(), "the node's data directory (REPLOG_DATA)")(
        "max-clock-skew", po::value<int64_t>()->default_value(3'600'000),
        "refuse received timestamps further ahead of this clock (ms)")(
        "checkpoint-interval", po::value<uint64_t>()->default_value(50'000), "updates between checkpoints")(
        "undo-window", po::value<size_t>()->default_value(1024), "recent updates kept undoable in memory");
  }
}

void Options::add_lock_wait(int64_t default_ms) {
  desc_.add_options()("lock-wait", po::value<double>()->default_value(static_cast<double>(default_ms) / 1000),
                      "wait at most this many seconds for the data directory's lock");
}

bool Options::parse(const std::vector<std::string>& args) {
  po::store(po::command_line_parser(args).options(desc_).positional(pos_).run(), vm_);
  if (vm_.count("help")) {
    std::cout << "usage: replog " << command_ << " " << usage_ << "\n\n" << desc_ << "\n";
    return false;
  }
  po::store(po::parse_environment(desc_,
                                  [&](const std::string& env) -> std::string {
                                    if (env.rfind("REPLOG_", 0) != 0) return "";
                                    std::string key = env.substr(7);
                                    for (auto& c : key) c = c == '_' ? '-' : static_cast<char>(tolower(c));
                                    if (key == "help" || key == "config" || key == "seed") return "";
                                    return desc_.find_nothrow(key, false) ? key : "";
                                  }),
            vm_);
  if (vm_.count("config")) {
    std::ifstream in(vm_["config"].as<std::string>());
    if (!in) throw CommandError("cannot read config file " + vm_["config"].as<std::string>());
    po::store(po::parse_config_file(in, desc_, /*allow_unregistered=*/true), vm_);
  }
  po::notify(vm_);
  return true;
}

engine::NodeOptions Options::node_options() const {
  if (!has("data")) throw CommandError("no data directory: give --data DIR (or REPLOG_DATA)");
  engine::NodeOptions o;
  o.dir = get<std::string>("data");
  o.max_clock_skew_ms = get<int64_t>("max-clock-skew");
  o.checkpoint_interval = get<uint64_t>("checkpoint-interval");
  o.undo_window = get<size_t>("undo-window");
  if (has("lock-wait")) {
    double seconds = get<double>("lock-wait");
    if (!(seconds >= 0 && seconds <= 86'400)) throw CommandError("--lock-wait must be 0 to 86400 seconds");
    o.lock_wait_ms = static_cast<int64_t>(seconds * 1000);
  }
  return o;
}

std::unique_ptr<engine::Node> open_writer_offline(const Options& o, const std::string& command,
                                                  std::optional<engine::NodeOptions> options) {
  engine::NodeOptions no = options ? std::move(*options) : o.node_options();
  DataDir dir(no.dir);
  if (unwrap(dir.node_running()).running)
    throw CommandError(no.dir + " is in use by a running node (" + dir.lock_holder().describe() + "); " + command +
                       " works while no node runs");
  CommandLock lock = unwrap(dir.lock_for_command(command, no.lock_wait_ms));
  if (lock.outcome == CommandLock::Outcome::kNodeStarting)
    throw CommandError(no.dir + ": a node is starting (pid " + std::to_string(lock.node_pid) + "); " + command +
                       " works while no node runs");
  return unwrap(engine::Node::open(no, std::move(lock.lock)));
}

std::unique_ptr<engine::Node> open_reader(const Options& o, std::optional<int64_t> at) {
  return unwrap(engine::Node::open_read_only(o.node_options(), at));
}

}  // namespace replog::cli
