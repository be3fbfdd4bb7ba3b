// replog: one program, one subcommand per job (DESIGN.md §7).
//
// Options come from the command line, then REPLOG_* environment variables,
// then a --config file, through Boost.Program_options. Errors are one line on
// stderr and a non-zero exit.
#include <boost/program_options.hpp>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "protocol/json_codec.h"
#include "protocol/msgpack_codec.h"
#include "protocol/schema.h"

namespace po = boost::program_options;
using namespace replog;

namespace {

struct CommandError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CommandError("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string to_hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string from_hex(std::string_view text) {
  std::string out;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string clean;
  for (char c : text)
    if (!isspace(static_cast<unsigned char>(c))) clean += c;
  if (clean.size() % 2) throw CommandError("hex input has an odd number of digits");
  for (size_t i = 0; i < clean.size(); i += 2) {
    int hi = nibble(clean[i]), lo = nibble(clean[i + 1]);
    if (hi < 0 || lo < 0) throw CommandError("hex input has a non-hex character at " + std::to_string(i));
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

template <typename T>
T unwrap(Result<T> r) {
  if (!r) throw CommandError(r.status().message());
  return std::move(r).value();
}

void check(const Status& s) {
  if (!s) throw CommandError(s.message());
}

// Parses a subcommand's options; returns false when --help was printed.
bool parse_options(const std::string& name, const std::string& usage, po::options_description& opts,
                   po::positional_options_description& positional, const std::vector<std::string>& args,
                   po::variables_map& vm) {
  opts.add_options()("help,h", "show this help");
  opts.add_options()("config", po::value<std::string>(), "read options from this file (key = value lines)");
  po::store(po::command_line_parser(args).options(opts).positional(positional).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: replog " << name << " " << usage << "\n\n" << opts << "\n";
    return false;
  }
  po::store(po::parse_environment(opts,
                                  [&](const std::string& env) -> std::string {
                                    if (env.rfind("REPLOG_", 0) != 0) return "";
                                    std::string key = env.substr(7);
                                    for (auto& c : key) c = c == '_' ? '-' : static_cast<char>(tolower(c));
                                    return opts.find_nothrow(key, false) && key != "help" && key != "config" ? key : "";
                                  }),
            vm);
  if (vm.count("config")) {
    std::ifstream in(vm["config"].as<std::string>());
    if (!in) throw CommandError("cannot read config file " + vm["config"].as<std::string>());
    po::store(po::parse_config_file(in, opts, /*allow_unregistered=*/true), vm);
  }
  po::notify(vm);
  return true;
}

// replog value: converts a value between typed JSON, MessagePack and info JSON.
int cmd_value(const std::vector<std::string>& args) {
  po::options_description opts("value options");
  opts.add_options()
      ("schema", po::value<std::string>(), "resolve enums and records against this schema (JSON document)")
      ("from", po::value<std::string>()->default_value("json"), "input form: json (typed JSON), msgpack, hex")
      ("to", po::value<std::string>()->default_value("typed"), "output form: typed, info, msgpack, hex")
      ("input", po::value<std::string>(), "the value; read from stdin when absent");
  po::positional_options_description pos;
  pos.add("input", 1);
  po::variables_map vm;
  if (!parse_options("value", "[--from F] [--to F] [--schema FILE] [VALUE]", opts, pos, args, vm)) return 0;

  std::string input = vm.count("input") ? vm["input"].as<std::string>()
                                        : std::string(std::istreambuf_iterator<char>(std::cin), {});
  const std::string from = vm["from"].as<std::string>();
  Value value;
  if (from == "json") value = unwrap(parse_typed_json(input));
  else if (from == "msgpack") value = unwrap(decode_msgpack(input));
  else if (from == "hex") value = unwrap(decode_msgpack(from_hex(input)));
  else throw CommandError("--from must be json, msgpack or hex, not " + from);

  if (vm.count("schema")) {
    auto registry = unwrap(TypeRegistry::from_json_text(read_file(vm["schema"].as<std::string>())));
    check(registry.resolve(value));
  }

  const std::string to = vm["to"].as<std::string>();
  if (to == "typed") std::cout << to_typed_json(value) << "\n";
  else if (to == "info") std::cout << to_info_json(value) << "\n";
  else if (to == "msgpack") std::cout << encode_msgpack(value);
  else if (to == "hex") std::cout << to_hex(encode_msgpack(value)) << "\n";
  else throw CommandError("--to must be typed, info, msgpack or hex, not " + to);
  return 0;
}

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>&);
};

const Command kCommands[] = {
    {"value", "convert a value between typed JSON, MessagePack and info JSON", cmd_value},
};

void print_usage(std::ostream& out) {
  out << "usage: replog COMMAND [OPTIONS]   (replog COMMAND --help for its options)\n\ncommands:\n";
  for (const auto& c : kCommands) out << "  " << c.name << std::string(12 - std::string(c.name).size(), ' ') << c.summary << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage(args.empty() ? std::cerr : std::cout);
    return args.empty() ? 2 : 0;
  }
  std::string name = args[0];
  args.erase(args.begin());
  for (const auto& c : kCommands) {
    if (name != c.name) continue;
    try {
      return c.run(args);
    } catch (const CommandError& e) {
      std::cerr << "replog " << name << ": " << e.what() << "\n";
      return 1;
    } catch (const po::error& e) {
      std::cerr << "replog " << name << ": " << e.what() << " (see replog " << name << " --help)\n";
      return 2;
    } catch (const std::exception& e) {
      std::cerr << "replog " << name << ": " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << "replog: unknown command \"" << name << "\" (see replog --help)\n";
  return 2;
}
