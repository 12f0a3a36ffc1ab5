# Deps.cmake - imported targets for third-party libraries, the same names on every target:
#   dep::ssl dep::crypto dep::cjson dep::yaml dep::cmocka
#   (native only: dep::x11 dep::png, the screenshot module of the session helper)
# Native (Linux): Debian -dev packages through pkg-config.
# mingw: the static libraries cross-built by scripts/build-mingw-deps.sh into KASM_MINGW_DEPS.

function(kasm_import_lib name)
  cmake_parse_arguments(A "" "" "LIBS;INCLUDES;LINK" ${ARGN})
  add_library(${name} INTERFACE IMPORTED GLOBAL)
  target_include_directories(${name} INTERFACE ${A_INCLUDES})
  target_link_libraries(${name} INTERFACE ${A_LIBS} ${A_LINK})
endfunction()

option(KASM_AUTO_DEPS "Run scripts/build-mingw-deps.sh at configure time when deps are missing" ON)
set(KASM_DEPS_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/../scripts/build-mingw-deps.sh")
cmake_path(NORMAL_PATH KASM_DEPS_SCRIPT)

function(kasm_import_static name path)
  cmake_parse_arguments(A "" "" "INCLUDES;LINK;DEFINES" ${ARGN})
  add_library(${name} STATIC IMPORTED GLOBAL)
  set_target_properties(${name} PROPERTIES
    IMPORTED_LOCATION "${path}"
    INTERFACE_INCLUDE_DIRECTORIES "${A_INCLUDES}"
    INTERFACE_LINK_LIBRARIES "${A_LINK}"
    INTERFACE_COMPILE_DEFINITIONS "${A_DEFINES}")
endfunction()

if(CMAKE_CROSSCOMPILING AND WIN32)
  # Empty KASM_MINGW_DEPS (the mingw preset passes $env{KASM_MINGW_DEPS}) means the script's
  # cache dir; with KASM_AUTO_DEPS the script builds it there first (a few minutes, once).
  if(NOT KASM_MINGW_DEPS)
    if(KASM_AUTO_DEPS)
      message(STATUS "Windows dependencies: running scripts/build-mingw-deps.sh "
                     "(first run builds OpenSSL: a few minutes; later runs: instant)")
      set(_mode build)
    else()
      set(_mode --print-prefix)
    endif()
    execute_process(COMMAND bash "${KASM_DEPS_SCRIPT}" ${_mode}
                    OUTPUT_VARIABLE _out RESULT_VARIABLE _rc OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR "scripts/build-mingw-deps.sh failed (see its messages above).")
    endif()
    string(REGEX REPLACE ".*\n" "" KASM_MINGW_DEPS "${_out}")
  endif()
  message(STATUS "Windows dependencies: ${KASM_MINGW_DEPS}")
  if(NOT EXISTS "${KASM_MINGW_DEPS}/lib/libcrypto.a")
    message(FATAL_ERROR
      "Windows dependencies not found in '${KASM_MINGW_DEPS}'. Build them with "
      "scripts/build-mingw-deps.sh (it prints the directory) and pass -DKASM_MINGW_DEPS=<dir>; "
      "the mingw preset does this through the KASM_MINGW_DEPS environment variable.")
  endif()
  set(_inc "${KASM_MINGW_DEPS}/include")
  set(_lib "${KASM_MINGW_DEPS}/lib")
  # STATIC IMPORTED targets (not plain file paths) so CMake orders libssl.a before libcrypto.a.
  kasm_import_static(dep::crypto ${_lib}/libcrypto.a INCLUDES ${_inc}
                     LINK ws2_32 crypt32 bcrypt user32 advapi32)
  kasm_import_static(dep::ssl ${_lib}/libssl.a INCLUDES ${_inc} LINK dep::crypto)
  # Same include style as Debian's pkg-config (-I.../cjson); static, so no dllimport/export.
  kasm_import_static(dep::cjson ${_lib}/libcjson.a INCLUDES ${_inc} ${_inc}/cjson
                     DEFINES CJSON_HIDE_SYMBOLS)
  kasm_import_static(dep::yaml ${_lib}/libyaml.a INCLUDES ${_inc} DEFINES YAML_DECLARE_STATIC)
  kasm_import_static(dep::cmocka ${_lib}/libcmocka.a INCLUDES ${_inc})
  # Win32 threads come with the system libraries; the target exists so code can link it anywhere.
  kasm_import_lib(dep::threads)
else()
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(PC_SSL REQUIRED IMPORTED_TARGET libssl>=3.0)
  pkg_check_modules(PC_CRYPTO REQUIRED IMPORTED_TARGET libcrypto>=3.0)
  pkg_check_modules(PC_CJSON REQUIRED IMPORTED_TARGET libcjson)
  pkg_check_modules(PC_YAML REQUIRED IMPORTED_TARGET yaml-0.1)
  pkg_check_modules(PC_CMOCKA REQUIRED IMPORTED_TARGET cmocka)
  find_package(Threads REQUIRED)
  kasm_import_lib(dep::crypto LINK PkgConfig::PC_CRYPTO)
  kasm_import_lib(dep::ssl LINK PkgConfig::PC_SSL dep::crypto)
  kasm_import_lib(dep::cjson LINK PkgConfig::PC_CJSON)
  kasm_import_lib(dep::yaml LINK PkgConfig::PC_YAML)
  kasm_import_lib(dep::cmocka LINK PkgConfig::PC_CMOCKA)
  kasm_import_lib(dep::threads LINK Threads::Threads)
  # Screenshots (session_helper/posix/shot.c): X11 capture, libpng encoding.
  pkg_check_modules(PC_X11 REQUIRED IMPORTED_TARGET x11)
  pkg_check_modules(PC_PNG REQUIRED IMPORTED_TARGET libpng)
  kasm_import_lib(dep::x11 LINK PkgConfig::PC_X11)
  kasm_import_lib(dep::png LINK PkgConfig::PC_PNG)
  # cjose: tests only, an independent JOSE implementation that cross-checks the JWT verifier.
  # Debian's cjose.pc requires jansson.pc, which libcjose-dev does not pull in, so fall back
  # to the library and header themselves.
  option(KASM_CJOSE_ORACLE "Build the cjose cross-check of the JWT verifier (libcjose-dev)" ON)
  if(KASM_CJOSE_ORACLE)
    pkg_check_modules(PC_CJOSE QUIET IMPORTED_TARGET cjose)
    find_library(KASM_CJOSE_LIB cjose)
    find_path(KASM_CJOSE_INC cjose/cjose.h)
    if(PC_CJOSE_FOUND)
      kasm_import_lib(dep::cjose LINK PkgConfig::PC_CJOSE)
    elseif(KASM_CJOSE_LIB AND KASM_CJOSE_INC)
      kasm_import_lib(dep::cjose INCLUDES ${KASM_CJOSE_INC} LIBS ${KASM_CJOSE_LIB} LINK dep::crypto)
    else()
      message(FATAL_ERROR "cjose not found: apt-get install libcjose-dev, "
                          "or configure with -DKASM_CJOSE_ORACLE=OFF")
    endif()
  endif()
endif()
