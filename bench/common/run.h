// What a benchmark program's main does around its figures: read the command
// line, make the run's temp dir, and at the end print the rows.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace replog::bench {

// The replog program built beside the benchmarks ("" when not known).
std::string replog_cli_path();

// The options every benchmark program takes (its own sizes are its own).
struct RunOptions {
  bool quick = false;
  bool json = false;
  bool keep = false;
  std::string dir;             // parent of the temp dir
  std::set<std::string> only;  // empty: all
  std::string cli = replog_cli_path();  // the replog program, for the memory figures

  bool wanted(const std::string& figure) const { return only.empty() || only.count(figure) > 0; }
};

// A program's own options: those that take a positive count (option -> where
// it goes), and any other through take(option, next), which reads it (next()
// is its value, and dies when there is none) and returns false for an option
// it does not know.
using Counts = std::map<std::string, std::optional<uint64_t>*>;
using NextValue = std::function<std::string()>;
using TakeOption = std::function<bool(const std::string& option, const NextValue& next)>;

// Reads the command line: --quick, --json, --keep, --dir DIR, --cli PATH and
// --only A[,B] (each name one of `figures`), and the program's own options.
// Returns false after printing the usage for --help or -h; prints the usage
// and dies on an unknown option.
bool parse_command_line(const std::vector<std::string>& args, RunOptions& opt, const std::set<std::string>& figures,
                        void (*usage)(), const Counts& counts, const TakeOption& take = nullptr);

// Makes the run's temp dir, PARENT/PREFIX-XXXXXX (PARENT: --dir, or /tmp), as
// g_root; returns the 1-minute load average at the start.
std::string start_run(const RunOptions& opt, const std::string& prefix);

// Removes the temp dir (unless --keep) and prints the rows in figure order:
// with --json, {"options":{options_json},...,"figures":[...]}; otherwise the
// table (and the rows' notes if `notes`) and a line on the run.
void finish_run(const RunOptions& opt, const std::string& load_start, const std::string& options_json, bool notes);

}  // namespace replog::bench
