// Child processes of the benchmark programs.
#pragma once

#include <string>
#include <vector>

namespace replog::bench {

// In a forked child: runs argv[0] with argv; if it cannot, prints why and exits 127.
[[noreturn]] void exec_or_exit(const std::vector<std::string>& argv);

}  // namespace replog::bench
