// hold_lock DIR COMMAND MS: takes DIR's writer lock as command COMMAND would
// (DataDir::lock_for_command), prints "locked" once it holds it, holds it for
// MS milliseconds and exits 0. A stand-in for a long `replog call` in tests.
// Exits 1 with one line when it cannot take the lock, 3 when a node is starting.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "storage/data_dir.h"

// NOLINTNEXTLINE(bugprone-exception-escape): lock-> follows the check of lock; it cannot throw
int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: hold_lock DIR COMMAND MS\n";
    return 2;
  }
  auto lock = replog::DataDir(argv[1]).lock_for_command(argv[2]);
  if (!lock) {
    std::cerr << "hold_lock: " << lock.status().message() << "\n";
    return 1;
  }
  if (lock->outcome == replog::CommandLock::Outcome::kNodeStarting) return 3;
  std::cout << "locked" << std::endl;
  std::this_thread::sleep_for(std::chrono::milliseconds(std::atol(argv[3])));
  return 0;
}
