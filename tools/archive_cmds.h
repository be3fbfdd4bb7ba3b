// The archive's commands (tools/archive_cmds.cc): `replog archive ...` and `replog restore`.
#pragma once

#include <string>
#include <vector>

#include "tools/cli_common.h"

namespace replog::cli {

int cmd_archive(const std::vector<std::string>& args);
int cmd_restore(const std::vector<std::string>& args);

}  // namespace replog::cli
