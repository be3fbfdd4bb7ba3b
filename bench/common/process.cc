#include "common/process.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "storage/env.h"

namespace replog::bench {

void exec_or_exit(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  std::fprintf(stderr, "exec %s: %s\n", args[0], errno_text(errno).c_str());
  ::_exit(127);
}

}  // namespace replog::bench
