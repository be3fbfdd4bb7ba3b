#include "common/run.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>

#include "common/bench_common.h"
#include "common/report.h"
#include "storage/env.h"

#ifndef REPLOG_CLI_PATH
#define REPLOG_CLI_PATH ""
#endif

namespace replog::bench {

std::string replog_cli_path() { return REPLOG_CLI_PATH; }

bool parse_command_line(const std::vector<std::string>& args, RunOptions& opt, const std::set<std::string>& figures,
                        void (*usage)(), const Counts& counts, const TakeOption& take) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    NextValue next = [&]() -> std::string {
      if (i + 1 >= args.size()) die(a + " needs a value");
      return args[++i];
    };
    if (a == "--quick") opt.quick = true;
    else if (a == "--json") opt.json = true;
    else if (a == "--keep") opt.keep = true;
    else if (a == "--dir") opt.dir = next();
    else if (a == "--cli") opt.cli = next();
    else if (a == "--only") opt.only = parse_only(next(), figures);
    else if (auto c = counts.find(a); c != counts.end()) *c->second = parse_count(next(), a.c_str());
    else if (a == "--help" || a == "-h") {
      usage();
      return false;
    } else if (!take || !take(a, next)) {
      usage();
      die("unknown option " + a);
    }
  }
  return true;
}

std::string start_run(const RunOptions& opt, const std::string& prefix) {
  std::string parent = opt.dir.empty() ? "/tmp" : opt.dir;
  std::filesystem::create_directories(parent);
  std::string tmpl = parent + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) die("mkdtemp " + tmpl + ": " + errno_text(errno));
  g_root = buf.data();
  progress("working in " + g_root);
  return loadavg();
}

void finish_run(const RunOptions& opt, const std::string& load_start, const std::string& options_json, bool notes) {
  if (!opt.keep) std::filesystem::remove_all(g_root);
  const std::string load_end = loadavg();
  progress("done; load average " + load_start + " at start, " + load_end + " at end");
  sort_rows();
  if (opt.json) {
    std::cout << "{\"options\":{" << options_json << "},\"seconds\":" << seconds_since(g_start)
              << ",\"loadavg_start\":\"" << load_start << "\",\"loadavg_end\":\"" << load_end
              << "\",\"cpus\":" << std::thread::hardware_concurrency() << ",\"figures\":";
    print_rows_json();
    std::cout << "}\n";
  } else {
    print_rows_table(notes);
    std::cout << "\n" << fmt("%.1f", seconds_since(g_start)) << " s; 1-minute load average " << load_start
              << " at start, " << load_end << " at end (" << std::thread::hardware_concurrency() << " CPUs)\n";
  }
}

}  // namespace replog::bench
