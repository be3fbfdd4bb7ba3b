// Fault points: places in the store where a simulation may make an operation
// fail the way the world makes it fail — a full disk at commit, a full LMDB
// map at a put, a failed read — so that the recovery paths behind them run in
// every simulated seed instead of once a year in the field (FoundationDB calls
// this BUGGIFY).
//
// No real program installs an injector: then each point costs one relaxed
// atomic load and one branch that is always predicted. A simulation installs
// one (tests/sim/buggify.h) and decides, per store and per point, when each
// fires. Points sit only on a write transaction's path, which one writer
// thread per store walks in a fixed order, so the injector's choices can be
// made deterministic per store.
//
// Thread safety: install() may be called from any thread, but only while no
// store is in use; fires() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

namespace replog::fault {

enum class Point : uint8_t {
  kCommitNoSpace,  // LogTxn::commit finds the disk full: nothing of the transaction is stored
  kPutMapFull,     // a put in a write transaction finds the LMDB map full
  kReadFails,      // a read in a write transaction fails with an I/O error
};
inline constexpr int kPointCount = 3;

const char* point_name(Point point);

class Injector {
 public:
  virtual ~Injector() = default;
  // Whether `point` fires now in the store whose directory is `store_dir`.
  virtual bool fire(Point point, std::string_view store_dir) = 0;
};

// Installs `injector` for the whole process (nullptr removes it).
void install(Injector* injector);

namespace detail {
extern std::atomic<Injector*> g_injector;
}

inline bool fires(Point point, std::string_view store_dir) {
  Injector* injector = detail::g_injector.load(std::memory_order_relaxed);
  if (__builtin_expect(injector == nullptr, 1)) return false;
  return injector->fire(point, store_dir);
}

}  // namespace replog::fault
