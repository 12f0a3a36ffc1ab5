# Toolchain file: cross-compile for Windows x86_64 with Debian's mingw-w64 (gcc-mingw-w64-x86-64).
# Used by the `mingw` preset and by scripts/build-mingw-deps.sh for the CMake-based dependencies.
# Unit tests run under Wine through cmake/wine-run.sh (CMAKE_CROSSCOMPILING_EMULATOR).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(KASM_MINGW_TRIPLE x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${KASM_MINGW_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${KASM_MINGW_TRIPLE}-g++)
set(CMAKE_RC_COMPILER ${KASM_MINGW_TRIPLE}-windres)
set(CMAKE_AR ${KASM_MINGW_TRIPLE}-ar CACHE FILEPATH "mingw ar")
set(CMAKE_RANLIB ${KASM_MINGW_TRIPLE}-ranlib CACHE FILEPATH "mingw ranlib")

# Look for headers and libraries only in the mingw sysroot (and in the prefixes the project
# adds explicitly); look for build tools on the host.
set(CMAKE_FIND_ROOT_PATH /usr/${KASM_MINGW_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Cross-built test executables run under Wine. The preset sets this too; the default here
# keeps a plain `-DCMAKE_TOOLCHAIN_FILE=...` configure working the same way.
if(NOT DEFINED CMAKE_CROSSCOMPILING_EMULATOR)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${CMAKE_CURRENT_LIST_DIR}/wine-run.sh")
endif()
