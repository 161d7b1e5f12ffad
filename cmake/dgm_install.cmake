# dgm_install.cmake - what `cmake --install` adds beyond the targets: the
# CMake package (dgm::dgm, dgm_add_plugin), dgm.pc and the out-of-tree
# plugin example (share/dgm/examples/plugin-example), for plugins built
# outside the tree. Included from the top-level CMakeLists.txt.
include(CMakePackageConfigHelpers)

set(DGM_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/dgm)
# Where plugins/CMakeLists.txt installs the plugins: always lib/dgm/plugins,
# the folder dgm_registry_add_default looks in (<exe dir>/../lib/dgm/plugins),
# whatever CMAKE_INSTALL_LIBDIR is.
set(DGM_PLUGIN_INSTALL_DIR lib/dgm/plugins)

# The installed dgm finds libdgm next to it without LD_LIBRARY_PATH.
set_target_properties(dgm_cli PROPERTIES
  INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")

install(EXPORT dgmTargets NAMESPACE dgm:: FILE dgmTargets.cmake
        DESTINATION ${DGM_CMAKE_INSTALL_DIR})
configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/dgmConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/dgmConfig.cmake
  INSTALL_DESTINATION ${DGM_CMAKE_INSTALL_DIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR DGM_PLUGIN_INSTALL_DIR)
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/cmake/dgmConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/dgmConfig.cmake
              ${PROJECT_BINARY_DIR}/cmake/dgmConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/dgm_add_plugin.cmake
        DESTINATION ${DGM_CMAKE_INSTALL_DIR})

file(RELATIVE_PATH DGM_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" DGM_PC_TO_PREFIX "${DGM_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/dgm.pc.in
               ${PROJECT_BINARY_DIR}/cmake/dgm.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/cmake/dgm.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# docs/writing-plugins.md sends readers to the example: an install has it
# too, buildable as it is against that install.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/plugin-example
        DESTINATION ${CMAKE_INSTALL_DATADIR}/dgm/examples)
