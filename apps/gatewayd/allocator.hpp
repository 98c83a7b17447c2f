#pragma once
// The allocator gatewayd was linked with (see CMakeLists.txt), and giving memory back to the system.

namespace gatewayd {

/// "tcmalloc" or "system".
const char* allocator_name() noexcept;

/// Returns the allocator's free pages to the system. gatewayd calls it every 10 s, the io threads' trim interval
/// for spare buffers: tcmalloc keeps freed spans mapped until asked (measured: 74 MB resident after a burst of
/// 500 connections pushing 100 KB, none of it returned), where glibc unmaps large blocks by itself. Done in bulk
/// from the main thread, it costs a request nothing, unlike tcmalloc's aggressive decommit, which would unmap
/// and fault in again every block above 256 KB (a signed 1 MB body) on every request.
void release_free_memory() noexcept;

}  // namespace gatewayd
