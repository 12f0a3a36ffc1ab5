# map_storage.ps1 - builtin hook of the Kasm open agent: mounts one storage mapping of a
# session (a cloud drive configured in Kasm) onto <profile>\Desktop\<target> with rclone and
# WinFsp. Run once per storage mapping at session start (KASM_INTERFACE.md section 5, step 3)
# as the user, in the user's logon session (the agent starts it with the user's token, at once
# or when the user logs on; docs/sessions.md), so that the mount is visible in the user's
# Explorer; as SYSTEM only when the agent has no session manager. From a private temporary
# copy that begins with the session's variables
# ($username, $kasm_id, $jwt_token - a secret, $storage_mapping, ...; also the KASM_*
# environment variables; docs/scripts.md).
#
# $storage_mapping is the JSON of one mapping: its target name ("target") and the rclone-style
# configuration Kasm sends:
#   { "target": "Google Drive",
#     "volume_config": { "driver": "rclone",
#                        "driver_opts": { "type": "drive", "path": "Kasm",
#                                         "drive-client-id": "...", "drive-token": "...",
#                                         "vfs-cache-mode": "writes" } },
#     "mount_config": { "read_only": false } }
# driver_opts: "type" is the rclone backend, "path" the folder on the remote, "<type>-<option>"
# a backend option (drive-token -> the drive backend's "token"), and a short list of mount
# options is passed on (see $MountFlags); anything else is ignored with a line on stderr.
#
# What it does:
#  1. finds rclone.exe (the machine-wide RCLONE_EXE environment variable, then
#     "%ProgramFiles%\rclone\rclone.exe", then the system PATH) and WinFsp (its registry key);
#  2. finds the user's profile folder from the account's SID (ProfileList), and checks that
#     the target is one safe folder name and that <profile>\Desktop\<target> does not exist
#     yet (WinFsp creates the mount point itself; an empty leftover folder is removed);
#  3. defines the remote only in the environment of the rclone process
#     (RCLONE_CONFIG_KASMSTORAGE_*): the credentials never touch a file or a command line;
#  4. starts "rclone mount" in the background (Windows has no --daemon), the mount's file
#     security giving full control to SYSTEM and to the user only, and records its process id
#     for unmap_storage.ps1 in <state>\<target>.pid: as the user <state> is
#     %LOCALAPPDATA%\Kasm\mounts\<kasm_id> (SYSTEM and the user only), as SYSTEM
#     %ProgramData%\Kasm\mounts\<kasm_id> (admin-only);
#  5. waits up to 30 s for the mount point to appear, and fails (rclone stopped) otherwise.
#
# Exit codes: 0 mounted; 2 bad input; 3 rclone or WinFsp missing; 4 the user's profile not
# found; 5 the mount point is taken; 6 rclone did not mount in time. The agent logs the output
# of a failed run (secrets redacted) and goes on with the session.
#
# What cannot be checked without Windows: this file is only checked for its structure in this
# project's CI (tests/integration/test_builtin_hooks.py); mounting needs a real Windows host
# with rclone and WinFsp installed (docs/scripts.md, "Checking the storage hooks").

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'

$RemoteName = 'KASMSTORAGE'
$MountWaitSeconds = 30
# mount options passed on from driver_opts (rclone flag name -> allowed value pattern)
$MountFlags = @{
    'vfs-cache-mode'     = '^(off|minimal|writes|full)$'
    'vfs-cache-max-age'  = '^[0-9]+(ms|s|m|h|d)?$'
    'vfs-cache-max-size' = '^[0-9]+[KMGT]?$'
    'dir-cache-time'     = '^[0-9]+(ms|s|m|h|d)?$'
    'poll-interval'      = '^[0-9]+(ms|s|m|h|d)?$'
    'buffer-size'        = '^[0-9]+[KMGT]?$'
}

function Fail([string]$Message, [int]$Code) {
    [Console]::Error.WriteLine("map_storage: $Message")
    exit $Code
}

# A variable from the agent's prologue, else from the KASM_* environment, else ''.
function Get-KasmVar([string]$Name) {
    $v = Get-Variable -Name $Name -Scope Script -ValueOnly -ErrorAction SilentlyContinue
    if ($null -ne $v -and [string]$v -ne '') { return [string]$v }
    $e = [Environment]::GetEnvironmentVariable('KASM_' + $Name.ToUpperInvariant())
    if ($null -ne $e) { return $e }
    return ''
}

# A property of a JSON object, or $null (Set-StrictMode refuses missing properties).
function Get-Prop($Object, [string]$Name) {
    if ($null -eq $Object) { return $null }
    $p = $Object.PSObject.Properties[$Name]
    if ($null -eq $p) { return $null }
    return $p.Value
}

# One argument quoted for CreateProcess (the CommandLineToArgvW rules).
function ConvertTo-Arg([string]$Arg) {
    if ($Arg -ne '' -and $Arg -notmatch '[\s"]') { return $Arg }
    $sb = New-Object System.Text.StringBuilder
    [void]$sb.Append('"')
    $slashes = 0
    foreach ($c in $Arg.ToCharArray()) {
        if ($c -eq '\') { $slashes++; continue }
        if ($c -eq '"') { [void]$sb.Append([char]'\', 2 * $slashes + 1) }
        elseif ($slashes) { [void]$sb.Append([char]'\', $slashes) }
        $slashes = 0
        [void]$sb.Append($c)
    }
    if ($slashes) { [void]$sb.Append([char]'\', 2 * $slashes) }
    [void]$sb.Append('"')
    return $sb.ToString()
}

function Test-SafeName([string]$Name) {
    if ($Name.Length -lt 1 -or $Name.Length -gt 128) { return $false }
    if ($Name -eq '.' -or $Name -eq '..') { return $false }
    if ($Name -match '[\\/:*?"<>|\x00-\x1f]') { return $false }
    if ($Name -match '[. ]$' -or $Name -match '^ ') { return $false }
    if ($Name -match '^(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?$') { return $false }
    return $true
}

# ---- input ----
$json = Get-KasmVar 'storage_mapping'
$user = Get-KasmVar 'username'
$kasmId = Get-KasmVar 'kasm_id'
if ($json -eq '') { Fail 'no storage_mapping was given' 2 }
if ($user -eq '') { Fail 'no username was given' 2 }
if ($kasmId -notmatch '^[A-Za-z0-9-]{1,64}$') { Fail 'the kasm_id is missing or not an id' 2 }
try { $mapping = $json | ConvertFrom-Json } catch { Fail 'storage_mapping is not valid JSON' 2 }
$target = [string](Get-Prop $mapping 'target')
if (-not (Test-SafeName $target)) { Fail 'the target is missing or not a safe folder name' 2 }
$opts = Get-Prop (Get-Prop $mapping 'volume_config') 'driver_opts'
if ($null -eq $opts) { Fail "storage mapping '$target' has no volume_config.driver_opts" 2 }
$type = [string](Get-Prop $opts 'type')
if ($type -notmatch '^[a-z0-9]+$') { Fail "storage mapping '$target' has no valid rclone type" 2 }
$remotePath = [string](Get-Prop $opts 'path')
$ro = Get-Prop (Get-Prop $mapping 'mount_config') 'read_only'
$readOnly = ($ro -eq $true) -or ([string]$ro -eq 'true')

# ---- rclone and WinFsp ----
$rclone = [Environment]::GetEnvironmentVariable('RCLONE_EXE', 'Machine')
if (-not $rclone -or -not (Test-Path -LiteralPath $rclone -PathType Leaf)) {
    $rclone = Join-Path $env:ProgramFiles 'rclone\rclone.exe'
}
if (-not (Test-Path -LiteralPath $rclone -PathType Leaf)) {
    $cmd = Get-Command 'rclone.exe' -CommandType Application -ErrorAction SilentlyContinue |
        Select-Object -First 1
    if ($null -eq $cmd) { Fail 'rclone.exe was not found (install it to %ProgramFiles%\rclone)' 3 }
    $rclone = $cmd.Source
}
$winfsp = $null
foreach ($k in 'HKLM:\SOFTWARE\WOW6432Node\WinFsp', 'HKLM:\SOFTWARE\WinFsp') {
    $item = Get-ItemProperty -LiteralPath $k -ErrorAction SilentlyContinue
    if ($null -ne $item -and $null -ne (Get-Prop $item 'InstallDir')) { $winfsp = $item.InstallDir }
}
if ($null -eq $winfsp) { Fail 'WinFsp is not installed (https://winfsp.dev)' 3 }

# ---- the user's profile ----
$account = $user
if ($account.Contains('@')) { $account = $account.Substring(0, $account.IndexOf('@')) }
try {
    $sid = (New-Object System.Security.Principal.NTAccount($account)).Translate(
        [System.Security.Principal.SecurityIdentifier]).Value
} catch { Fail "the account '$account' does not exist" 4 }
$plist = "HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\$sid"
$profileDir = (Get-ItemProperty -LiteralPath $plist -ErrorAction SilentlyContinue |
    ForEach-Object { Get-Prop $_ 'ProfileImagePath' })
if (-not $profileDir -or -not (Test-Path -LiteralPath $profileDir -PathType Container)) {
    Fail "the profile of '$account' was not found" 4
}
$desktop = Join-Path $profileDir 'Desktop'
if (-not (Test-Path -LiteralPath $desktop -PathType Container)) {
    Fail "the Desktop folder of '$account' does not exist" 4
}
$mountPoint = Join-Path $desktop $target
if (Test-Path -LiteralPath $mountPoint) {
    $item = Get-Item -LiteralPath $mountPoint -Force
    $empty = $item.PSIsContainer -and -not ($item.Attributes -band [IO.FileAttributes]::ReparsePoint) -and
        -not (Get-ChildItem -LiteralPath $mountPoint -Force | Select-Object -First 1)
    if (-not $empty) { Fail "$mountPoint exists already" 5 }
    Remove-Item -LiteralPath $mountPoint -Force
}

# ---- state folder: private to whoever runs the hook ----
$me = [System.Security.Principal.WindowsIdentity]::GetCurrent()
if ($me.IsSystem) {
    $stateDir = Join-Path $env:ProgramData "Kasm\mounts\$kasmId"
    $stateSddl = 'D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)'
} else {
    $stateDir = Join-Path $env:LOCALAPPDATA "Kasm\mounts\$kasmId"
    $stateSddl = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;$($me.User.Value))"
}
New-Item -ItemType Directory -Force -Path $stateDir | Out-Null
$acl = New-Object System.Security.AccessControl.DirectorySecurity
$acl.SetSecurityDescriptorSddlForm($stateSddl)
Set-Acl -LiteralPath $stateDir -AclObject $acl
$pidFile = Join-Path $stateDir "$target.pid"
$logFile = Join-Path $stateDir "$target.log"

# ---- the remote, in rclone's environment only ----
$prefix = "RCLONE_CONFIG_${RemoteName}_"
[Environment]::SetEnvironmentVariable($prefix + 'TYPE', $type, 'Process')
$flags = New-Object System.Collections.Generic.List[string]
foreach ($p in $opts.PSObject.Properties) {
    $name = [string]$p.Name
    $value = [string]$p.Value
    if ($name -eq 'type' -or $name -eq 'path') { continue }
    if ($name.StartsWith("$type-")) {
        $opt = $name.Substring($type.Length + 1)
        if ($opt -notmatch '^[a-z0-9][a-z0-9-]*$') { continue }
        $envName = $prefix + $opt.ToUpperInvariant().Replace('-', '_')
        [Environment]::SetEnvironmentVariable($envName, $value, 'Process')
    } elseif ($MountFlags.ContainsKey($name) -and $value -match $MountFlags[$name]) {
        $flags.Add("--$name=$value")
    } else {
        [Console]::Error.WriteLine("map_storage: option '$name' ignored")
    }
}
# the session token does not belong in a long-lived process
foreach ($v in 'KASM_JWT_TOKEN', 'KASM_JWT', 'KASM_STORAGE_MAPPING') {
    [Environment]::SetEnvironmentVariable($v, $null, 'Process')
}

$argv = New-Object System.Collections.Generic.List[string]
$argv.Add('mount')
$argv.Add("${RemoteName}:$remotePath")
$argv.Add($mountPoint)
$argv.Add("--volname=$target")
$argv.Add("-o")
$argv.Add("FileSecurity=D:P(A;;FA;;;SY)(A;;FA;;;$sid)")
if ($readOnly) { $argv.Add('--read-only') }
if (-not ($flags | Where-Object { $_ -like '--vfs-cache-mode=*' })) { $argv.Add('--vfs-cache-mode=writes') }
$argv.AddRange($flags)
$argv.Add("--log-file=$logFile")
$argv.Add('--log-level=INFO')
$argLine = ($argv | ForEach-Object { ConvertTo-Arg $_ }) -join ' '

$proc = Start-Process -FilePath $rclone -ArgumentList $argLine -WindowStyle Hidden -PassThru
Set-Content -LiteralPath $pidFile -Value $proc.Id -Encoding ASCII

$deadline = (Get-Date).AddSeconds($MountWaitSeconds)
while ((Get-Date) -lt $deadline) {
    if ($proc.HasExited) { break }
    if (Test-Path -LiteralPath $mountPoint) {
        Write-Output "map_storage: '$target' mounted at $mountPoint (rclone pid $($proc.Id))"
        exit 0
    }
    Start-Sleep -Milliseconds 500
}
if (-not $proc.HasExited) { Stop-Process -Id $proc.Id -Force -ErrorAction SilentlyContinue }
Remove-Item -LiteralPath $pidFile -Force -ErrorAction SilentlyContinue
Fail "rclone did not mount '$target' within $MountWaitSeconds s; see $logFile" 6
