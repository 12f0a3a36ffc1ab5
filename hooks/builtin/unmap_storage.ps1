# unmap_storage.ps1 - builtin hook of the Kasm open agent: removes one storage mapping that
# map_storage.ps1 mounted. Run once per storage mapping at session end (KASM_INTERFACE.md
# section 5), after the user has been logged off (when configured), with the same variables
# as map_storage.ps1 ($username, $kasm_id, $storage_mapping with its "target"; also the KASM_*
# environment variables; docs/scripts.md): as the user in the user's session when it still
# exists, else as SYSTEM (so that the state is cleaned up).
#
# What it does: reads the rclone process id that map_storage.ps1 recorded in
# <state>\<target>.pid - %LOCALAPPDATA%\Kasm\mounts\<kasm_id> of the user (as SYSTEM: found
# through the account's profile), else %ProgramData%\Kasm\mounts\<kasm_id> -, checks that this
# process still is rclone.exe (a recycled id is never killed) and, as SYSTEM with an id read
# from the user's profile, that it belongs to that user, stops it (which removes the WinFsp
# mount point), removes the .pid file, the log and, when empty, the session's state folder.
# A mapping that is not mounted is no error (exit 0): session_end may run after a failed start.
#
# Exit codes: 0 unmounted or nothing to do; 2 bad input; 7 the mount could not be removed.
# Only a real Windows host with rclone and WinFsp can show it working (docs/scripts.md).

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'

function Fail([string]$Message, [int]$Code) {
    [Console]::Error.WriteLine("unmap_storage: $Message")
    exit $Code
}

function Get-KasmVar([string]$Name) {
    $v = Get-Variable -Name $Name -Scope Script -ValueOnly -ErrorAction SilentlyContinue
    if ($null -ne $v -and [string]$v -ne '') { return [string]$v }
    $e = [Environment]::GetEnvironmentVariable('KASM_' + $Name.ToUpperInvariant())
    if ($null -ne $e) { return $e }
    return ''
}

function Get-Prop($Object, [string]$Name) {
    if ($null -eq $Object) { return $null }
    $p = $Object.PSObject.Properties[$Name]
    if ($null -eq $p) { return $null }
    return $p.Value
}

function Test-SafeName([string]$Name) {
    if ($Name.Length -lt 1 -or $Name.Length -gt 128) { return $false }
    if ($Name -eq '.' -or $Name -eq '..') { return $false }
    if ($Name -match '[\\/:*?"<>|\x00-\x1f]') { return $false }
    if ($Name -match '[. ]$' -or $Name -match '^ ') { return $false }
    if ($Name -match '^(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?$') { return $false }
    return $true
}

$json = Get-KasmVar 'storage_mapping'
$kasmId = Get-KasmVar 'kasm_id'
if ($json -eq '') { Fail 'no storage_mapping was given' 2 }
if ($kasmId -notmatch '^[A-Za-z0-9-]{1,64}$') { Fail 'the kasm_id is missing or not an id' 2 }
try { $mapping = $json | ConvertFrom-Json } catch { Fail 'storage_mapping is not valid JSON' 2 }
$target = [string](Get-Prop $mapping 'target')
if (-not (Test-SafeName $target)) { Fail 'the target is missing or not a safe folder name' 2 }

# where map_storage.ps1 kept its state: the user's own folder when it ran as the user
$me = [System.Security.Principal.WindowsIdentity]::GetCurrent()
$userSid = $null
$stateDirs = New-Object System.Collections.Generic.List[string]
if ($me.IsSystem) {
    $account = Get-KasmVar 'username'
    if ($account.Contains('@')) { $account = $account.Substring(0, $account.IndexOf('@')) }
    try {
        $userSid = (New-Object System.Security.Principal.NTAccount($account)).Translate(
            [System.Security.Principal.SecurityIdentifier]).Value
        $plist = "HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\$userSid"
        $profileDir = (Get-ItemProperty -LiteralPath $plist -ErrorAction SilentlyContinue |
            ForEach-Object { Get-Prop $_ 'ProfileImagePath' })
        if ($profileDir) { $stateDirs.Add((Join-Path $profileDir "AppData\Local\Kasm\mounts\$kasmId")) }
    } catch { $userSid = $null }
} else {
    $stateDirs.Add((Join-Path $env:LOCALAPPDATA "Kasm\mounts\$kasmId"))
}
$stateDirs.Add((Join-Path $env:ProgramData "Kasm\mounts\$kasmId"))
$stateDir = $null
foreach ($d in $stateDirs) {
    if ($null -eq $stateDir -and (Test-Path -LiteralPath (Join-Path $d "$target.pid") -PathType Leaf)) {
        $stateDir = $d
    }
}
if ($null -eq $stateDir) {
    Write-Output "unmap_storage: '$target' is not mounted for session $kasmId; nothing to do"
    exit 0
}
$pidFile = Join-Path $stateDir "$target.pid"
# as SYSTEM, an id read from the user's own folder only ever stops that user's process
$mustOwn = $me.IsSystem -and -not $stateDir.StartsWith($env:ProgramData, [StringComparison]::OrdinalIgnoreCase)
$procId = 0
if (-not [int]::TryParse((Get-Content -LiteralPath $pidFile -TotalCount 1), [ref]$procId)) {
    Fail "$pidFile does not hold a process id" 7
}
$proc = Get-Process -Id $procId -ErrorAction SilentlyContinue
if ($null -ne $proc -and $mustOwn) {
    $owner = $null
    $cim = Get-CimInstance Win32_Process -Filter "ProcessId = $procId" -ErrorAction SilentlyContinue
    if ($null -ne $cim) { $owner = (Invoke-CimMethod -InputObject $cim -MethodName GetOwnerSid).Sid }
    if ($null -eq $userSid -or $owner -ne $userSid) { $proc = $null }
}
if ($null -ne $proc -and $proc.ProcessName -eq 'rclone') {
    Stop-Process -Id $procId -Force
    try { $proc.WaitForExit(15000) | Out-Null } catch { }
    if (-not $proc.HasExited) { Fail "rclone (pid $procId) did not stop" 7 }
    Write-Output "unmap_storage: '$target' unmounted (rclone pid $procId stopped)"
} else {
    Write-Output "unmap_storage: rclone for '$target' was no longer running"
}
Remove-Item -LiteralPath $pidFile -Force
Remove-Item -LiteralPath (Join-Path $stateDir "$target.log") -Force -ErrorAction SilentlyContinue
if (-not (Get-ChildItem -LiteralPath $stateDir -Force | Select-Object -First 1)) {
    Remove-Item -LiteralPath $stateDir -Force
}
exit 0
