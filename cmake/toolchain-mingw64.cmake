# Cross build for 64-bit Windows with Debian's mingw-w64 (posix threads variant: the -win32
# gcc 12 has no std::thread / std::mutex). Used by packaging/windows/build.sh.
#
#   cmake -S . -B build-win -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-mingw64.cmake \
#     -DQB_WIN_DEPS=/var/tmp/qb-win
#
# QB_WIN_DEPS holds what packaging/windows/build-capnp-mingw.sh built (the Cap'n Proto runtime
# for mingw) and a directory of symlinks to only /usr/include/{boost,spdlog,fmt}: /usr/include
# itself must never be on the mingw include path (its glibc headers would shadow mingw's).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(QB_MINGW_TRIPLE x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${QB_MINGW_TRIPLE}-gcc-posix)
set(CMAKE_CXX_COMPILER ${QB_MINGW_TRIPLE}-g++-posix)
set(CMAKE_RC_COMPILER ${QB_MINGW_TRIPLE}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${QB_MINGW_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# One self-contained exe / dll: no libstdc++ / libwinpthread DLLs to ship in the MSI.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-static")

# Tests run under Wine (Debian has no wine64 command; `wine` runs 64-bit binaries).
find_program(QB_WINE wine)
if(QB_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${QB_WINE})
endif()
