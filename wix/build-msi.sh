#!/usr/bin/env bash
# build-msi.sh - builds the MSI from wix/kasm.wxs with wixl (msitools), then sets with msibuild
# what wixl 0.101 cannot express (the WiX toolset builds the same from kasm.wxs alone):
#   - RemoveExistingProducts right after InstallInitialize (wixl puts it before StartServices,
#     which would delete the service the new version just installed);
#   - HideTarget (+8192) on the registration custom actions (wixl reads the attribute but
#     does not set the bit): the formatted command line, with the token, stays out of the log;
#   - SecureCustomProperties also lists the public properties the deferred actions use;
#   - KasmUpgradeMark: before RemoveExistingProducts, the installed (old) agent.exe marks the
#     install folder (agent.exe --upgrade-mark), so that the old version's uninstall keeps the
#     data under Wine, whose RemoveExistingProducts does not set UPGRADINGPRODUCTCODE. Windows
#     sets it (the WiX toolset build needs no mark); there the mark is harmless (immediate,
#     impersonated, errors ignored, removed by --install-setup). It also stops the service
#     and waits for its process to end, as KasmPreStop (agent.exe --stop-service) does before
#     an uninstall: Wine's StopServices does not wait, and its RemoveFiles then fails on the
#     running agent.exe and InstallServices on the service still marked for deletion.
#
#   build-msi.sh WXS VERSION BINDIR OUTPUT.msi
# BINDIR holds agent.exe, session_helper.exe, agentctl.exe. VERSION is major.minor.patch.
set -euo pipefail

[[ $# -eq 4 ]] || { echo "usage: build-msi.sh WXS VERSION BINDIR OUTPUT.msi" >&2; exit 2; }
wxs="$(readlink -f "$1")"
version="$2"
bindir="$(readlink -f "$3")"
out="$4"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "build-msi: bad version '$version'" >&2; exit 2; }
for t in wixl msibuild msiinfo; do
    command -v "$t" >/dev/null || { echo "build-msi: $t not found (scripts/setup-debian.sh installs wixl and msitools)" >&2; exit 2; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
for f in agent.exe session_helper.exe agentctl.exe; do
    [[ -f "$bindir/$f" ]] || { echo "build-msi: $bindir/$f is missing" >&2; exit 2; }
    cp "$bindir/$f" "$work/bin/$f"
done
# The builtin hooks (hooks/builtin/, docs/scripts.md) go to scripts\builtin\.
mkdir "$work/hooks"
for f in load_persistent_profile.ps1 save_persistent_profile.ps1 map_storage.ps1 unmap_storage.ps1; do
    src="$(dirname -- "$(readlink -f -- "$0")")/../hooks/builtin/$f"
    [[ -f "$src" ]] || { echo "build-msi: $src is missing" >&2; exit 2; }
    cp "$src" "$work/hooks/$f"
done
# wixl wants File/@Source relative to its working folder; G_DEBUG makes its GLib warnings fatal.
(cd "$work" && G_DEBUG=fatal-warnings wixl -a x64 -D Version="$version" -D BinDir=bin/ -D HooksDir=hooks/ \
    -o "$work/out.msi" "$wxs")

secure="$(msiinfo export "$work/out.msi" Property | awk -F'\t' '$1 == "SecureCustomProperties" {print $2}' | tr -d '\r')"
secure="${secure:+$secure;}API_HOST;API_PORT;REGISTRATION_TOKEN;SERVER_ID;PORT;INSTALLDIR"
msibuild "$work/out.msi" -q "UPDATE InstallExecuteSequence SET Sequence = 1501 WHERE Action = 'RemoveExistingProducts'"
msibuild "$work/out.msi" -q "UPDATE CustomAction SET Type = 11282 WHERE Action = 'KasmRegister' OR Action = 'KasmRegisterWithId'"
msibuild "$work/out.msi" -q "UPDATE Property SET Value = '$secure' WHERE Property = 'SecureCustomProperties'"
msibuild "$work/out.msi" -q "INSERT INTO CustomAction (Action, Type, Source, Target) VALUES ('KasmUpgradeMark', 98, 'INSTALLDIR', '\"[INSTALLDIR]agent.exe\" --upgrade-mark --cfg \"[INSTALLDIR]config.yaml\"')"
msibuild "$work/out.msi" -q "INSERT INTO InstallExecuteSequence (Action, Condition, Sequence) VALUES ('KasmUpgradeMark', 'KASM_OLDER_FOUND AND NOT REMOVE', 1450)"
msibuild "$work/out.msi" -q "INSERT INTO CustomAction (Action, Type, Source, Target) VALUES ('KasmPreStop', 98, 'INSTALLDIR', '\"[INSTALLDIR]agent.exe\" --stop-service --cfg \"[INSTALLDIR]config.yaml\"')"
msibuild "$work/out.msi" -q "INSERT INTO InstallExecuteSequence (Action, Condition, Sequence) VALUES ('KasmPreStop', 'REMOVE~=\"ALL\"', 1451)"

# The fixes took (a newer wixl or a changed kasm.wxs must not slip past this).
# (Whole outputs first: grep -q would end the pipe early and pipefail would fail the build.)
seq_table="$(msiinfo export "$work/out.msi" InstallExecuteSequence)"
ca_table="$(msiinfo export "$work/out.msi" CustomAction)"
grep -qP '^RemoveExistingProducts\t\t1501\r?$' <<<"$seq_table" ||
    { echo "build-msi: RemoveExistingProducts was not moved" >&2; exit 1; }
[[ "$(grep -cP '^KasmRegister(WithId)?\t11282\t' <<<"$ca_table")" == 2 ]] ||
    { echo "build-msi: the registration actions are not hidden" >&2; exit 1; }
mv "$work/out.msi" "$out"
echo "build-msi: $out"
