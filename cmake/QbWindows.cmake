# Dependencies of the Windows cross build (cmake/toolchain-mingw64.cmake): the same targets
# cmake/QbDependencies.cmake provides on Linux, made from
#   - Debian's header-only Boost, spdlog and fmt, seen through a directory of symlinks to only
#     /usr/include/{boost,spdlog,fmt,CLI} (/usr/include itself must never reach the mingw compiler);
#   - the Cap'n Proto runtime built for mingw by packaging/windows/build-capnp-mingw.sh, with
#     schemas compiled by the host's capnp of the same version;
#   - googletest built here from Debian's source (/usr/src/googletest) with the mingw compiler.
# packaging/windows/build.sh prepares QB_WIN_DEPS and configures with it.
set(QB_WIN_DEPS "/var/tmp/qb-win" CACHE PATH
    "Cache dir of the Windows build: capnp/ from build-capnp-mingw.sh, include/ symlinks")

# --- Header-only Debian libraries, through symlinks -----------------------------------------------
set(QB_WIN_HEADERS "${QB_WIN_DEPS}/include")
foreach(lib boost spdlog fmt CLI)
  if(NOT EXISTS "${QB_WIN_HEADERS}/${lib}")
    file(MAKE_DIRECTORY "${QB_WIN_HEADERS}")
    file(CREATE_LINK "/usr/include/${lib}" "${QB_WIN_HEADERS}/${lib}" SYMBOLIC)
  endif()
endforeach()

find_package(Threads REQUIRED)

add_library(Boost::headers INTERFACE IMPORTED)
target_include_directories(Boost::headers SYSTEM INTERFACE "${QB_WIN_HEADERS}")

add_library(qb_spdlog INTERFACE)
target_link_libraries(qb_spdlog INTERFACE Boost::headers)
# Debian's spdlog is configured for an external fmt (tweakme.h); both header-only here.
target_compile_definitions(qb_spdlog INTERFACE FMT_HEADER_ONLY SPDLOG_FMT_EXTERNAL)

add_library(qb_asio INTERFACE)
target_link_libraries(qb_asio INTERFACE Boost::headers Threads::Threads ws2_32 mswsock)
# Windows 10 / Server 2016 API level: AF_HYPERV, GetSystemTimePreciseAsFileTime, ...
target_compile_definitions(qb_asio INTERFACE BOOST_ASIO_NO_DEPRECATED _WIN32_WINNT=0x0A00
                                             WINVER=0x0A00 WIN32_LEAN_AND_MEAN NOMINMAX)

# --- Cap'n Proto -------------------------------------------------------------------------------------
set(QB_WIN_CAPNP "${QB_WIN_DEPS}/capnp")
if(NOT EXISTS "${QB_WIN_CAPNP}/lib/libcapnp.a")
  message(FATAL_ERROR "No mingw Cap'n Proto in ${QB_WIN_CAPNP}: "
                      "run packaging/windows/build-capnp-mingw.sh ${QB_WIN_DEPS}")
endif()
add_library(CapnProto::kj STATIC IMPORTED)
set_target_properties(CapnProto::kj PROPERTIES
  IMPORTED_LOCATION "${QB_WIN_CAPNP}/lib/libkj.a"
  INTERFACE_INCLUDE_DIRECTORIES "${QB_WIN_CAPNP}/include"
  INTERFACE_COMPILE_DEFINITIONS "CAPNP_LITE=1"
  INTERFACE_LINK_LIBRARIES "Threads::Threads;ws2_32")
add_library(CapnProto::capnp STATIC IMPORTED)
set_target_properties(CapnProto::capnp PROPERTIES
  IMPORTED_LOCATION "${QB_WIN_CAPNP}/lib/libcapnp.a"
  INTERFACE_LINK_LIBRARIES "CapnProto::kj")

# capnp_generate_cpp() from the host's Cap'n Proto (same version as the runtime above).
find_program(CAPNP_EXECUTABLE capnp REQUIRED NO_CMAKE_FIND_ROOT_PATH)
find_program(CAPNPC_CXX_EXECUTABLE capnpc-c++ REQUIRED NO_CMAKE_FIND_ROOT_PATH)
set(CAPNP_INCLUDE_DIRECTORY "${QB_WIN_CAPNP}/include")
include(/usr/lib/x86_64-linux-gnu/cmake/CapnProto/CapnProtoMacros.cmake)

# --- GoogleTest, built for mingw from Debian's source -----------------------------------------------
if(QB_BUILD_TESTS)
  set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
  set(BUILD_GMOCK ON CACHE BOOL "" FORCE)
  set(gtest_disable_pthreads OFF CACHE BOOL "" FORCE)
  add_subdirectory(/usr/src/googletest ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL SYSTEM)
  # googletest's own CMakeLists defines GTest::gtest, GTest::gtest_main, GTest::gmock, ...
  # Listing tests runs the exe under Wine: do it when ctest runs, not at build time.
  set(CMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE PRE_TEST)
endif()
