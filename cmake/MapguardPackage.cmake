# Generates mapguard.pc and mapguardConfig.cmake twice: for the build tree
# (absolute paths into build/) and for `cmake --install` (the prefix).
set(MG_BUILD_LIBDIR ${PROJECT_BINARY_DIR}/lib)
set(MG_BUILD_INCLUDEDIR ${PROJECT_SOURCE_DIR}/runtime/include)
# Installed files find the prefix from their own location, so an install tree
# can be moved: mapguardConfig.cmake sits in <prefix>/<libdir>/cmake/mapguard,
# mapguard.pc in <prefix>/<libdir>/pkgconfig.
set(MG_INSTALL_LIBDIR "\${_mapguard_prefix}/${CMAKE_INSTALL_LIBDIR}")
set(MG_INSTALL_INCLUDEDIR "\${_mapguard_prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
set(MG_BUILD_PREFIX_CMAKE "")
set(MG_INSTALL_PREFIX_CMAKE "get_filename_component(_mapguard_prefix \"\${CMAKE_CURRENT_LIST_DIR}/../../..\" ABSOLUTE)")
set(MG_BUILD_PC_PREFIX "")
set(MG_INSTALL_PC_PREFIX "prefix=\${pcfiledir}/../..")

foreach(flavor BUILD INSTALL)
  set(MG_LIBDIR ${MG_${flavor}_LIBDIR})
  set(MG_INCLUDEDIR ${MG_${flavor}_INCLUDEDIR})
  set(MG_PREFIX_CMAKE ${MG_${flavor}_PREFIX_CMAKE})
  set(MG_PC_PREFIX ${MG_${flavor}_PC_PREFIX})
  set(MG_PLUGIN ${MG_LIBDIR}/mapguard.so)
  set(MG_RUNTIME ${MG_LIBDIR}/libmapguard_rt.so)
  string(TOLOWER ${flavor} dir)
  foreach(pc mapguard mapguard-static)
    configure_file(${PROJECT_SOURCE_DIR}/cmake/${pc}.pc.in
                   ${PROJECT_BINARY_DIR}/package-${dir}/${pc}.pc.tmp @ONLY)
    # pkg-config spells the prefix variable ${prefix}.
    file(READ ${PROJECT_BINARY_DIR}/package-${dir}/${pc}.pc.tmp _pc)
    string(REPLACE "\${_mapguard_prefix}" "\${prefix}" _pc "${_pc}")
    file(WRITE ${PROJECT_BINARY_DIR}/package-${dir}/${pc}.pc "${_pc}")
  endforeach()
  configure_file(${PROJECT_SOURCE_DIR}/cmake/mapguardConfig.cmake.in
                 ${PROJECT_BINARY_DIR}/package-${dir}/mapguardConfig.cmake @ONLY)
endforeach()
# find_package(mapguard 0.1): the version is the project's (one place: the
# project() call in the top-level CMakeLists.txt).
include(CMakePackageConfigHelpers)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/package-build/mapguardConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
# PKG_CONFIG_PATH=$PWD/build and find_package(mapguard PATHS build) both work.
file(COPY ${PROJECT_BINARY_DIR}/package-build/mapguard.pc
          ${PROJECT_BINARY_DIR}/package-build/mapguard-static.pc
          ${PROJECT_BINARY_DIR}/package-build/mapguardConfig.cmake
          ${PROJECT_BINARY_DIR}/package-build/mapguardConfigVersion.cmake
     DESTINATION ${PROJECT_BINARY_DIR})
install(FILES ${PROJECT_BINARY_DIR}/package-install/mapguard.pc
              ${PROJECT_BINARY_DIR}/package-install/mapguard-static.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
install(FILES ${PROJECT_BINARY_DIR}/package-install/mapguardConfig.cmake
              ${PROJECT_BINARY_DIR}/package-build/mapguardConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/mapguard)
