#include "storage/fault_point.h"

namespace replog::fault {

namespace detail {
std::atomic<Injector*> g_injector{nullptr};
}

const char* point_name(Point point) {
  switch (point) {
    case Point::kCommitNoSpace: return "commit finds the disk full";
    case Point::kPutMapFull: return "put finds the map full";
    case Point::kReadFails: return "read fails";
  }
  return "?";
}

void install(Injector* injector) { detail::g_injector.store(injector, std::memory_order_release); }

}  // namespace replog::fault
