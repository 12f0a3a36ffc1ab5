# Deps.cmake - imported targets for third-party libraries, the same names on every target:
#   dep::ssl dep::crypto dep::cjson dep::yaml dep::cmocka
# Native (Linux): Debian -dev packages through pkg-config.
# mingw: the static libraries cross-built by scripts/build-mingw-deps.sh into KASM_MINGW_DEPS.

function(kasm_import_lib name)
  cmake_parse_arguments(A "" "" "LIBS;INCLUDES;LINK" ${ARGN})
  add_library(${name} INTERFACE IMPORTED GLOBAL)
  target_include_directories(${name} INTERFACE ${A_INCLUDES})
  target_link_libraries(${name} INTERFACE ${A_LIBS} ${A_LINK})
endfunction()

if(CMAKE_CROSSCOMPILING AND WIN32)
  if(NOT KASM_MINGW_DEPS OR NOT EXISTS "${KASM_MINGW_DEPS}/lib/libcrypto.a")
    message(FATAL_ERROR
      "Windows dependencies not found in '${KASM_MINGW_DEPS}'. Build them with "
      "scripts/build-mingw-deps.sh (it prints the directory) and pass -DKASM_MINGW_DEPS=<dir>; "
      "the mingw preset does this through the KASM_MINGW_DEPS environment variable.")
  endif()
  set(_inc "${KASM_MINGW_DEPS}/include")
  set(_lib "${KASM_MINGW_DEPS}/lib")
  kasm_import_lib(dep::crypto INCLUDES ${_inc} LIBS ${_lib}/libcrypto.a LINK ws2_32 crypt32 bcrypt user32 advapi32)
  kasm_import_lib(dep::ssl INCLUDES ${_inc} LIBS ${_lib}/libssl.a LINK dep::crypto)
  kasm_import_lib(dep::cjson INCLUDES ${_inc} LIBS ${_lib}/libcjson.a)
  kasm_import_lib(dep::yaml INCLUDES ${_inc} LIBS ${_lib}/libyaml.a)
  target_compile_definitions(dep::yaml INTERFACE YAML_DECLARE_STATIC)
  kasm_import_lib(dep::cmocka INCLUDES ${_inc} LIBS ${_lib}/libcmocka.a)
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
endif()
