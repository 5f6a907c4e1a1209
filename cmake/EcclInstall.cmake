include(CMakePackageConfigHelpers)
set(ECCL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/eccl)

install(EXPORT ecclTargets NAMESPACE eccl:: DESTINATION ${ECCL_CMAKE_DIR})
configure_package_config_file(cmake/ecclConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/ecclConfig.cmake INSTALL_DESTINATION ${ECCL_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ecclConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ecclConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/ecclConfigVersion.cmake
        DESTINATION ${ECCL_CMAKE_DIR})

file(RELATIVE_PATH ECCL_PC_TO_PREFIX "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
configure_file(cmake/eccl.pc.in ${CMAKE_CURRENT_BINARY_DIR}/eccl.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/eccl.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
