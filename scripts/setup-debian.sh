#!/usr/bin/env bash
# setup-debian.sh - install everything the project needs on Debian 12 (bookworm).
#
# Run as root (or through sudo). Idempotent: a second run checks and does nothing.
#  - adds a deb-src entry (scripts/build-mingw-deps.sh builds the Windows dependencies from
#    Debian source packages), derived from the configured Debian mirror;
#  - apt-get update when something changed or is missing;
#  - installs the compilers (gcc, clang, mingw-w64), CMake, the -dev libraries of the native
#    build, Wine, Xvfb, the MSI tools (wixl, msitools) and the Python test oracles.
# Needs network access to the Debian mirror only. Output is short; apt's output goes to a log
# whose tail is shown on failure. Environment: KASM_APT_UPDATE=1 forces apt-get update.
set -euo pipefail

PACKAGES=(
    # toolchains and build tools
    build-essential cmake ninja-build pkg-config git ca-certificates file xz-utils perl
    dpkg-dev clang llvm libclang-rt-14-dev clang-format
    gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64
    # native dependencies
    libssl-dev libcjson-dev libyaml-dev libcmocka-dev libcjose-dev libx11-dev libpng-dev
    # Windows tests: Wine (64-bit), a virtual X server for screenshots, the MSI tools
    wine wine64 fonts-wine xvfb xauth xfonts-base wixl msitools
    # test oracles, deployment simulator, HTTPS clients
    python3 python3-jwt python3-cryptography python3-yaml openssl curl nginx
    # benchmarks (bench/): a keep-alive HTTPS load generator
    wrk
)

LOG="${TMPDIR:-/tmp}/kasm-setup-debian.log"
say() { printf '%s\n' "setup-debian: $*"; }
die() { printf '%s\n' "setup-debian: error: $*" >&2; exit 1; }

run_logged() {
    if ! "$@" >>"$LOG" 2>&1; then
        tail -n 30 "$LOG" | sed 's/^/    | /' >&2
        die "'$*' failed (full log: $LOG)"
    fi
}

[[ -r /etc/os-release ]] && . /etc/os-release
if [[ "${ID:-}" != "debian" || "${VERSION_ID:-}" != "12" ]]; then
    say "warning: made for Debian 12, this is ${PRETTY_NAME:-an unknown system}; trying anyway"
fi

missing_packages() {
    local p status
    for p in "${PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)"
        [[ "$status" == ii* ]] || echo "$p"
    done
}

# The source index is usable (capture first: grep -q would SIGPIPE apt-cache under pipefail).
have_openssl_src() {
    local out
    out="$(apt-cache showsrc openssl 2>/dev/null || true)"
    [[ "$out" == *"Package: openssl"* ]]
}

have_deb_src() {
    grep -Eqs '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
}

# Write /etc/apt/sources.list.d/debian-src.sources (or .list) from the existing Debian "deb"
# entries, so the same mirror and keyring are used for sources.
add_deb_src() {
    local out
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        out=/etc/apt/sources.list.d/debian-src.sources
        awk '
            function flush() { if (keep && stanza != "") printf "%s\n", stanza; stanza = ""; keep = 0 }
            /^[[:space:]]*#/ { next }
            /^[[:space:]]*$/ { flush(); next }
            /^Types:/ { if ($0 ~ /[[:space:]]deb([[:space:]]|$)/) keep = 1; $0 = "Types: deb-src" }
            { stanza = stanza $0 "\n" }
            END { flush() }
        ' /etc/apt/sources.list.d/debian.sources >"$out.tmp"
    elif grep -Eqs '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
        out=/etc/apt/sources.list.d/debian-src.list
        sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list >"$out.tmp"
    else
        out=/etc/apt/sources.list.d/debian-src.sources
        cat >"$out.tmp" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    [[ -s "$out.tmp" ]] || { rm -f "$out.tmp"; die "could not derive a deb-src entry for $out"; }
    mv "$out.tmp" "$out"
    say "added deb-src entry: $out"
}

main() {
    local need_update="${KASM_APT_UPDATE:-0}" missing
    mapfile -t missing < <(missing_packages)

    if have_deb_src && ((${#missing[@]} == 0)) && [[ "$need_update" != 1 ]] && have_openssl_src; then
        say "all ${#PACKAGES[@]} packages present, deb-src configured - nothing to do"
        return 0
    fi
    if [[ "$(id -u)" != 0 ]]; then
        die "must run as root to install: ${missing[*]:-(deb-src entry / apt-get update)}"
    fi
    : >"$LOG"
    export DEBIAN_FRONTEND=noninteractive

    if ! have_deb_src; then
        add_deb_src
        need_update=1
    fi
    if ((${#missing[@]})) || ! have_openssl_src; then
        need_update=1
    fi
    if [[ "$need_update" == 1 ]]; then
        say "apt-get update"
        run_logged apt-get update -q
    fi
    if ((${#missing[@]})); then
        say "installing ${#missing[@]} packages: ${missing[*]}"
        # No recommends: they would add ~170 packages (systemd, desktop media stack) that the
        # build and the tests do not use; what is needed (fonts for Xvfb/Wine) is listed above.
        run_logged apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}"
    fi
    mapfile -t missing < <(missing_packages)
    ((${#missing[@]} == 0)) || die "still missing after install: ${missing[*]} (log: $LOG)"
    have_openssl_src || die "deb-src entry present but no source index for openssl (log: $LOG)"
    say "done (log: $LOG)"
}

main "$@"
