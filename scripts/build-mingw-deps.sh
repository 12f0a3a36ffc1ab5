#!/usr/bin/env bash
# build-mingw-deps.sh - the Windows (mingw-w64) dependencies and the civetweb source.
#
# Cross-builds OpenSSL 3, cJSON, libyaml and cmocka as static libraries with x86_64-w64-mingw32
# from Debian *source* packages (apt-get source + dpkg-source -x, so Debian's patches are
# applied), into a cache outside the checkout:
#     ${KASM_DEPS_CACHE:-$HOME/.cache/kasm-open-agent}/mingw-deps-<key>
# <key> is a hash of the pinned versions, the mingw gcc version and SCRIPT_REV, so a second run
# costs seconds and a change of any of them builds a fresh prefix next to the old one.
# It also provides the civetweb source (Debian patches applied), used by cmake/Civetweb.cmake
# for both the native and the mingw builds.
#
# Usage:
#   scripts/build-mingw-deps.sh                 build if needed; last stdout line = prefix dir
#   scripts/build-mingw-deps.sh --print-prefix  print the prefix dir (does not build)
#   scripts/build-mingw-deps.sh civetweb-src    fetch civetweb if needed; last line = its dir
#   scripts/build-mingw-deps.sh civetweb-src --print   print the civetweb dir (does not fetch)
# Environment: KASM_DEPS_CACHE (cache root), KASM_JOBS (parallel jobs, default: nproc).
# Needs the deb-src entry and packages from scripts/setup-debian.sh. Runs as any user.
set -euo pipefail

# Bump when the build recipe below changes in a way that changes the produced libraries.
SCRIPT_REV=1

# Pinned Debian source versions. OpenSSL: the first one that downloads wins (the newest
# security version's tarball is sometimes missing from the mirror).
OPENSSL_VERSIONS=("3.0.20-1~deb12u2" "3.0.17-1~deb12u2")
CJSON_VERSION="1.7.15-1+deb12u4"
LIBYAML_VERSION="0.2.5-1"
CMOCKA_VERSION="1.1.5-2.1"
CIVETWEB_VERSION="1.15+dfsg-4"

# OpenSSL for Windows: static, no config file auto-loading, and an OPENSSLDIR that only
# administrators can write (the default would be a user-writable path like C:/usr/local/ssl).
OPENSSL_DIR_WIN="C:/Program Files/Kasm/ssl"
OPENSSL_OPTS=(no-shared no-module no-legacy no-autoload-config no-tests no-ssl3
              no-comp no-weak-ssl-ciphers no-dso)

TRIPLE=x86_64-w64-mingw32
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
TOOLCHAIN="$ROOT/cmake/mingw-w64-x86_64.cmake"
CACHE="${KASM_DEPS_CACHE:-${HOME:-/root}/.cache/kasm-open-agent}"
JOBS="${KASM_JOBS:-$(nproc 2>/dev/null || echo 2)}"

say() { printf '%s\n' "build-mingw-deps: $*" >&2; }
die() { say "error: $*"; exit 1; }

need_tools() {
    local t missing=()
    for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
    if ((${#missing[@]})); then
        die "missing tools: ${missing[*]} - run scripts/setup-debian.sh as root first"
    fi
}

sha_short() { sha256sum | cut -c1-12; }

mingw_gcc_version() { "$TRIPLE-gcc" -dumpfullversion 2>/dev/null || echo unknown; }

prefix_key() {
    {
        echo "rev=$SCRIPT_REV"
        echo "openssl=${OPENSSL_VERSIONS[*]} opts=${OPENSSL_OPTS[*]} dir=$OPENSSL_DIR_WIN"
        echo "cjson=$CJSON_VERSION libyaml=$LIBYAML_VERSION cmocka=$CMOCKA_VERSION"
        echo "gcc=$(mingw_gcc_version)"
    } | sha_short
}

civetweb_dir() { echo "$CACHE/civetweb-src-$CIVETWEB_VERSION-r$SCRIPT_REV"; }

# Run "$@" with output to a log file; on failure show the tail and the log's path.
run_logged() {
    local log="$1"; shift
    if ! "$@" >>"$log" 2>&1; then
        say "FAILED: $*"
        tail -n 40 "$log" | sed 's/^/    | /' >&2
        die "full log: $log"
    fi
}

# Serialize everything that writes into the cache (two builds may start at once).
take_lock() {
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.lock"
    if ! flock -n 9; then
        say "another build-mingw-deps run holds $CACHE/.lock; waiting"
        flock 9
    fi
}

# fetch_source PKG VERSION DESTDIR: download the Debian source package (verified by apt
# against the signed Sources index) and unpack it with its patches applied into DESTDIR.
fetch_source() {
    local pkg="$1" ver="$2" dest="$3" dl="$CACHE/downloads/${1}_${2}" log="$4"
    mkdir -p "$dl"
    local dsc="$dl/${pkg}_${ver#*:}.dsc"
    if [[ ! -f "$dl/.complete" ]]; then
        rm -f "$dl"/*
        # apt-get as root warns that the download is not sandboxed; that is harmless.
        if ! (cd "$dl" && apt-get source --download-only -qq "$pkg=$ver") >>"$log" 2>&1; then
            return 1
        fi
        touch "$dl/.complete"
    fi
    [[ -f "$dsc" ]] || { say "no $dsc after download"; return 1; }
    rm -rf "$dest"
    run_logged "$log" dpkg-source --no-check --no-copy -x "$dsc" "$dest"
}

cmd_civetweb_src() {
    local dir; dir="$(civetweb_dir)"
    if [[ "${1:-}" == "--print" ]]; then echo "$dir"; return 0; fi
    if [[ ! -f "$dir/.kasm-complete" ]]; then
        need_tools apt-get dpkg-source flock
        take_lock
        if [[ ! -f "$dir/.kasm-complete" ]]; then
            mkdir -p "$CACHE/logs"
            local log="$CACHE/logs/civetweb-src.log"
            : >"$log"
            say "fetching civetweb $CIVETWEB_VERSION source"
            fetch_source civetweb "$CIVETWEB_VERSION" "$dir.tmp" "$log" ||
                die "apt-get source civetweb=$CIVETWEB_VERSION failed (deb-src entry missing? run scripts/setup-debian.sh); log: $log"
            rm -rf "$dir"
            mv "$dir.tmp" "$dir"
            echo "$CIVETWEB_VERSION" >"$dir/.kasm-complete"
        fi
    fi
    echo "$dir"
}

build_openssl() {
    local src="$1" prefix="$2" log="$3"
    (
        cd "$src"
        run_logged "$log" ./Configure mingw64 --cross-compile-prefix="$TRIPLE-" \
            --prefix="$prefix" --libdir=lib --openssldir="$OPENSSL_DIR_WIN" \
            "${OPENSSL_OPTS[@]}"
        # Configure treats "C:/..." as a relative path on the Linux build host and would prefix
        # it with --prefix, so the Windows paths compiled into libcrypto are set here.
        local dirs=(OPENSSLDIR="$OPENSSL_DIR_WIN" ENGINESDIR="$OPENSSL_DIR_WIN/engines-3"
                    MODULESDIR="$OPENSSL_DIR_WIN/ossl-modules")
        run_logged "$log" make -j"$JOBS" "${dirs[@]}" build_libs
        run_logged "$log" make "${dirs[@]}" install_dev
    )
}

# cmake_dep SRC BUILD PREFIX LOG [cmake args...]: configure, build and install a CMake project.
cmake_dep() {
    local src="$1" bld="$2" prefix="$3" log="$4"; shift 4
    run_logged "$log" cmake -S "$src" -B "$bld" -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
        -DCMAKE_INSTALL_LIBDIR=lib -DCMAKE_CROSSCOMPILING_EMULATOR= "$@"
    run_logged "$log" cmake --build "$bld" -j"$JOBS"
    run_logged "$log" cmake --install "$bld"
}

build_component() {
    local name="$1" prefix="$2" work="$3" logs="$4"
    local stamp="$prefix/.kasm-$name.ok" log="$logs/$name.log"
    [[ -f "$stamp" ]] && return 0
    : >"$log"
    local start=$SECONDS src="$work/$name-src" v
    rm -rf "$src" "$work/$name-build"
    case "$name" in
    openssl)
        local got=""
        for v in "${OPENSSL_VERSIONS[@]}"; do
            if fetch_source openssl "$v" "$src" "$log"; then got="$v"; break; fi
            say "openssl $v did not download; trying the next pinned version"
        done
        [[ -n "$got" ]] || die "no pinned OpenSSL source downloaded (deb-src entry? network?); log: $log"
        say "openssl $got: configure + build (2-4 minutes on 2 cores)"
        build_openssl "$src" "$prefix" "$log"
        echo "openssl $got" >>"$prefix/VERSIONS"
        ;;
    cjson)
        fetch_source cjson "$CJSON_VERSION" "$src" "$log" || die "apt-get source cjson failed; log: $log"
        say "cjson $CJSON_VERSION: build"
        cmake_dep "$src" "$work/$name-build" "$prefix" "$log" \
            -DBUILD_SHARED_LIBS=OFF -DENABLE_CJSON_TEST=OFF -DENABLE_CJSON_UTILS=OFF \
            -DENABLE_CUSTOM_COMPILER_FLAGS=OFF -DENABLE_TARGET_EXPORT=OFF \
            -DCMAKE_C_FLAGS="-DCJSON_HIDE_SYMBOLS"
        echo "cjson $CJSON_VERSION" >>"$prefix/VERSIONS"
        ;;
    libyaml)
        fetch_source libyaml "$LIBYAML_VERSION" "$src" "$log" || die "apt-get source libyaml failed; log: $log"
        say "libyaml $LIBYAML_VERSION: build"
        cmake_dep "$src" "$work/$name-build" "$prefix" "$log" \
            -DBUILD_SHARED_LIBS=OFF -DBUILD_TESTING=OFF -DINSTALL_LIB_DIR=lib \
            -DINSTALL_CMAKE_DIR=lib/cmake/yaml
        echo "libyaml $LIBYAML_VERSION" >>"$prefix/VERSIONS"
        ;;
    cmocka)
        fetch_source cmocka "$CMOCKA_VERSION" "$src" "$log" || die "apt-get source cmocka failed; log: $log"
        say "cmocka $CMOCKA_VERSION: build"
        cmake_dep "$src" "$work/$name-build" "$prefix" "$log" \
            -DWITH_STATIC_LIB=ON -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF -DPICKY_DEVELOPER=OFF
        # cmocka names its static library libcmocka-static.a; the project links libcmocka.a,
        # and the import library of the DLL it also builds is not wanted.
        cp "$prefix/lib/libcmocka-static.a" "$prefix/lib/libcmocka.a"
        rm -f "$prefix/lib/libcmocka.dll.a" "$prefix/bin/"*cmocka*.dll
        rmdir "$prefix/bin" 2>/dev/null || true
        echo "cmocka $CMOCKA_VERSION" >>"$prefix/VERSIONS"
        ;;
    *) die "unknown component $name" ;;
    esac
    rm -rf "$src" "$work/$name-build"
    touch "$stamp"
    say "$name done in $((SECONDS - start)) s"
}

cmd_build() {
    local key prefix
    key="$(prefix_key)"
    prefix="$CACHE/mingw-deps-$key"
    if [[ ! -f "$prefix/.kasm-complete" ]]; then
        need_tools "$TRIPLE-gcc" "$TRIPLE-ar" apt-get dpkg-source cmake make perl flock
        take_lock
        if [[ ! -f "$prefix/.kasm-complete" ]]; then
            local work="$CACHE/work-$key" logs="$CACHE/logs/mingw-deps-$key" c
            mkdir -p "$prefix" "$work" "$logs"
            say "building into $prefix (logs in $logs)"
            for c in openssl cjson libyaml cmocka; do
                build_component "$c" "$prefix" "$work" "$logs"
            done
            rm -rf "$work"
            touch "$prefix/.kasm-complete"
        fi
        # Release the lock before the civetweb step takes it again.
        exec 9>&-
    fi
    cmd_civetweb_src >/dev/null
    echo "$prefix"
}

case "${1:-build}" in
build) cmd_build ;;
--print-prefix) echo "$CACHE/mingw-deps-$(prefix_key)" ;;
civetweb-src) shift; cmd_civetweb_src "$@" ;;
-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
*) die "unknown argument '$1' (try --help)" ;;
esac
