# Debian's packages of the dependencies, each found the way its package supports.
find_package(Threads REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(fmt CONFIG REQUIRED)
find_package(simdjson CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)

# Standalone Asio is header-only and ships no CMake or pkg-config file.
find_path(ASIO_INCLUDE_DIR asio.hpp REQUIRED)
if(NOT TARGET obsgw_asio)
  add_library(obsgw_asio INTERFACE)
  if(NOT ASIO_INCLUDE_DIR STREQUAL "/usr/include")
    target_include_directories(obsgw_asio SYSTEM INTERFACE ${ASIO_INCLUDE_DIR})
  endif()
  # Asio's implementation is compiled once, in lib/asio_impl.cpp, not in every translation unit.
  # Asio 1.22 decides whether to use aligned_alloc from a libstdc++ macro that is only defined once some standard
  # header was included, so two translation units can disagree and free with the wrong function (ASan's
  # alloc-dealloc-mismatch). Disabling it makes every unit use operator new/delete.
  target_compile_definitions(obsgw_asio INTERFACE ASIO_SEPARATE_COMPILATION ASIO_NO_DEPRECATED
                             ASIO_DISABLE_STD_ALIGNED_ALLOC
                             # A request nests several coroutine frames; recycle more of them per thread.
                             ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE=8)
  target_link_libraries(obsgw_asio INTERFACE Threads::Threads OpenSSL::SSL OpenSSL::Crypto)
endif()

# hiredis parses Redis's replies for the shared rate-limit store (its I/O is ours, on Asio). Debian's CMake
# version file for it is broken, so it is found through pkg-config.
find_package(PkgConfig REQUIRED)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
