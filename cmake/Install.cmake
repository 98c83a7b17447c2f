include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS obsgw obsgw_asio EXPORT obsgwTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/obsgw DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT obsgwTargets NAMESPACE obsgw:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/obsgw)
configure_package_config_file(cmake/obsgwConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/obsgwConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/obsgw)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/obsgwConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/obsgwConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/obsgwConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/obsgw)
if(OBSGW_BUILD_APPS)
  install(TARGETS gatewayd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
