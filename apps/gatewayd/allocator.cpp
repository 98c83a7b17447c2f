#include "allocator.hpp"

#if OBSGW_GATEWAYD_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif

namespace gatewayd {

const char* allocator_name() noexcept { return OBSGW_GATEWAYD_TCMALLOC ? "tcmalloc" : "system"; }

void tune_allocator() noexcept {
#if OBSGW_GATEWAYD_TCMALLOC
  MallocExtension_SetNumericProperty("tcmalloc.aggressive_memory_decommit", 1);
#endif
}

}  // namespace gatewayd
