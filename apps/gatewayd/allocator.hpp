#pragma once
// The allocator gatewayd was linked with (see CMakeLists.txt), and its settings.

namespace gatewayd {

/// "tcmalloc" or "system".
const char* allocator_name() noexcept;

/// Call once at start. With tcmalloc: freed spans go back to the system at once, as glibc's large blocks do.
/// Without it the buffers of a burst, which the io threads free after a quiet trim interval, would stay mapped
/// in tcmalloc's page heap for good (measured: 74 MB resident after a 500-connection burst of 100 KB POSTs, none
/// of it returned; with this, 40 MB at the peak and 20 MB once trimmed, as with glibc). A request's own
/// allocations come from thread caches, so this costs nothing per request (same instruction count and no
/// madvise calls under steady load).
void tune_allocator() noexcept;

}  // namespace gatewayd
