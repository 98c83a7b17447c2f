#include "allocator.hpp"

#if OBSGW_GATEWAYD_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif

namespace gatewayd {

const char* allocator_name() noexcept { return OBSGW_GATEWAYD_TCMALLOC ? "tcmalloc" : "system"; }

void release_free_memory() noexcept {
#if OBSGW_GATEWAYD_TCMALLOC
  MallocExtension_ReleaseFreeMemory();
#endif
}

}  // namespace gatewayd
