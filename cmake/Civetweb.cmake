# Civetweb.cmake - dep::civetweb, a static civetweb built from Debian's source package (with
# Debian's patches applied) for every target, so its compile-time features are ours:
#   TLS through OpenSSL 3, linked in (NO_SSL_DL, OPENSSL_API_3_0) - the only TLS library;
#   NO_CGI, NO_FILES, NO_CACHING; no Lua, Duktape, WebSocket, HTTP/2 or zlib (never enabled);
#   IPv6 listening ports available (USE_IPV6).
# NO_FILES: the agent never lets civetweb map URLs to the file system. Every byte of an upload
# or a download goes through our own handlers (name validation, the helper running as the
# user), so civetweb's static file serving, directory listing and PUT/DELETE/WebDAV code is
# compiled out - less code reachable from the network. mg_send_file() is not used.
#
# The source comes from scripts/build-mingw-deps.sh (subcommand civetweb-src), cached outside
# the checkout. KASM_CIVETWEB_SRC overrides the location. When it is empty and
# KASM_AUTO_DEPS is ON (the default), configure runs the script to fetch it (about 1 MB from the
# Debian mirror, needs the deb-src entry added by scripts/setup-debian.sh). KASM_AUTO_DEPS and
# KASM_DEPS_SCRIPT come from Deps.cmake, included first.

set(KASM_CIVETWEB_SRC "" CACHE PATH
    "civetweb source tree (default: the cache dir of scripts/build-mingw-deps.sh civetweb-src)")

set(_cw_src "${KASM_CIVETWEB_SRC}")
if(NOT _cw_src)
  if(KASM_AUTO_DEPS)
    set(_cw_mode civetweb-src)
  else()
    set(_cw_mode civetweb-src --print)
  endif()
  execute_process(COMMAND bash "${KASM_DEPS_SCRIPT}" ${_cw_mode}
                  OUTPUT_VARIABLE _cw_out RESULT_VARIABLE _cw_rc
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _cw_rc EQUAL 0)
    message(FATAL_ERROR "Fetching the civetweb source failed (see above). Run "
      "`scripts/setup-debian.sh` as root once (adds the deb-src entry), then "
      "`scripts/build-mingw-deps.sh civetweb-src`, or set -DKASM_CIVETWEB_SRC=<dir>.")
  endif()
  string(REGEX REPLACE ".*\n" "" _cw_src "${_cw_out}")
endif()

if(NOT EXISTS "${_cw_src}/src/civetweb.c" OR NOT EXISTS "${_cw_src}/include/civetweb.h")
  message(FATAL_ERROR "civetweb source not found in '${_cw_src}'. Run "
    "`scripts/build-mingw-deps.sh civetweb-src` (it prints the directory) or set "
    "-DKASM_CIVETWEB_SRC=<dir> to a civetweb 1.15 source tree.")
endif()
message(STATUS "civetweb source: ${_cw_src}")

add_library(kasm_civetweb STATIC "${_cw_src}/src/civetweb.c")
target_include_directories(kasm_civetweb SYSTEM PUBLIC "${_cw_src}/include")
target_compile_definitions(kasm_civetweb PRIVATE
  NO_SSL_DL OPENSSL_API_3_0 NO_CGI NO_FILES NO_CACHING USE_IPV6)
# Third-party code: no warnings for this target only (ours keep the full warning set).
target_compile_options(kasm_civetweb PRIVATE -w)
set_target_properties(kasm_civetweb PROPERTIES C_EXTENSIONS ON)
target_link_libraries(kasm_civetweb PUBLIC dep::ssl)
if(WIN32)
  # mingw's <time.h> declares clock_gettime (winpthreads), so civetweb uses it instead of its
  # own; link it statically (-static is a global link option on Windows).
  target_link_libraries(kasm_civetweb PUBLIC ws2_32 winpthread)
else()
  target_link_libraries(kasm_civetweb PUBLIC dep::threads)
endif()
add_library(dep::civetweb ALIAS kasm_civetweb)
