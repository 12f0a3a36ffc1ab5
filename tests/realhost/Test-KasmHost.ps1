<#
.SYNOPSIS
    Test-KasmHost.ps1 - checks on a real Windows host what Wine cannot show (docs/realhost.md).

.DESCRIPTION
    Run from an elevated Windows PowerShell 5.1 (or PowerShell 7) on a TEST machine where the
    Kasm open agent is installed from its MSI. Each check prints PASS, FAIL or SKIP with what
    it saw; the exit code is the number of failed checks (0: all passed).

    -Stage installed  (default) the service, its recovery actions, firewall rule, Event Log
                      source, the access lists of the install folder, certs\, scripts\,
                      config.yaml and the TLS key, one session helper per logged-on user
                      running as that user, agentctl status/doctor; with -StandardUser, the
                      same access lists and the admin pipe ENFORCED against a standard user;
                      with -TestDir, the mingw unit tests that call the real Win32 APIs.
    -Stage started    after a Kasm session for -User started (Kasm UI): the local account,
                      its "Remote Desktop Users" membership and profile, the file mapping at
                      -MappingPath (owner and access list per -MappingAccess), the storage
                      mapping -StorageTarget mounted in the user's own logon session, and the
                      agent's log of the session start and its "running" report.
    -Stage ended      after that session ended: the user logged off (when the agent has
                      logoff_on_session_end), the file mapping and the storage mount gone, and
                      the agent's log of the session end and its "destroyed" report.

.EXAMPLE
    .\Test-KasmHost.ps1 -StandardUser (Get-Credential kasmstd) -TestDir C:\kasm-tests
    .\Test-KasmHost.ps1 -Stage started -User kasmtest01 `
        -MappingPath 'C:\Users\kasmtest01\Desktop\kasm-test.txt' -MappingAccess 'r--' `
        -StorageTarget 'S3 Storage'
    .\Test-KasmHost.ps1 -Stage ended -User kasmtest01 `
        -MappingPath 'C:\Users\kasmtest01\Desktop\kasm-test.txt' -StorageTarget 'S3 Storage'
#>
[CmdletBinding()]
param(
    [ValidateSet('installed', 'started', 'ended')]
    [string]$Stage = 'installed',
    [string]$InstallDir = (Join-Path $env:ProgramFiles 'Kasm'),
    [string]$ServiceName = 'Kasm',
    [string]$User,
    [string]$MappingPath,
    [ValidatePattern('^[r-][w-][x-]$')]
    [string]$MappingAccess = 'rw-',
    [string]$StorageTarget,
    [System.Management.Automation.PSCredential]$StandardUser,
    [string]$TestDir
)

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'
$script:Failed = 0

function Report([string]$Verdict, [string]$What, [string]$Seen) {
    if ($Verdict -eq 'FAIL') { $script:Failed++ }
    $line = '{0,-4} {1}' -f $Verdict, $What
    if ($Seen) { $line += " -- $Seen" }
    Write-Output $line
}

function Check([string]$What, [scriptblock]$Test) {
    # $Test returns $true/$false, or a string (SKIP:reason / FAIL:reason / anything = PASS detail)
    try {
        $r = & $Test
        if ($r -is [string] -and $r.StartsWith('SKIP:')) { Report 'SKIP' $What $r.Substring(5) }
        elseif ($r -is [string] -and $r.StartsWith('FAIL:')) { Report 'FAIL' $What $r.Substring(5) }
        elseif ($r -is [string]) { Report 'PASS' $What $r }
        elseif ($r) { Report 'PASS' $What '' }
        else { Report 'FAIL' $What '' }
    } catch {
        Report 'FAIL' $What ("error: " + $_.Exception.Message)
    }
}

$SidSystem = 'S-1-5-18'
$SidAdmins = 'S-1-5-32-544'
$SidRdpUsers = 'S-1-5-32-555'
$TrustedInstaller = 'S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464'
$AdminSids = @($SidSystem, $SidAdmins, $TrustedInstaller)
$WriteRights = [System.Security.AccessControl.FileSystemRights]'WriteData, AppendData, WriteExtendedAttributes, WriteAttributes, Delete, DeleteSubdirectoriesAndFiles, ChangePermissions, TakeOwnership'
$ReadRights = [System.Security.AccessControl.FileSystemRights]'ReadData'

function Sid-Of($Identity) {
    try { return $Identity.Translate([System.Security.Principal.SecurityIdentifier]).Value }
    catch { return $Identity.Value }
}

# Allow entries of $Path granting any of $Rights to someone other than SYSTEM/Administrators/TI.
function Foreign-Grants([string]$Path, [System.Security.AccessControl.FileSystemRights]$Rights) {
    $acl = Get-Acl -LiteralPath $Path
    $bad = @()
    foreach ($ace in $acl.Access) {
        if ($ace.AccessControlType -ne 'Allow') { continue }
        $sid = Sid-Of $ace.IdentityReference
        if ($AdminSids -contains $sid) { continue }
        if (($ace.FileSystemRights -band $Rights) -ne 0) {
            $bad += ('{0}:{1}' -f $ace.IdentityReference.Value, $ace.FileSystemRights)
        }
    }
    return $bad
}

function Agentctl([string[]]$Arguments) {
    $exe = Join-Path $InstallDir 'agentctl.exe'
    $out = & $exe @Arguments 2>&1 | Out-String
    return @{ Code = $LASTEXITCODE; Text = $out }
}

function Config-Value([string]$Key) {
    $cfg = Join-Path $InstallDir 'config.yaml'
    $m = Select-String -LiteralPath $cfg -Pattern ('^\s*' + [regex]::Escape($Key) + '\s*:\s*(.*?)\s*$') |
        Select-Object -First 1
    if (-not $m) { return $null }
    return $m.Matches[0].Groups[1].Value.Trim('"', "'")
}

# Logged-on sessions (id, user) from the WTS through `query session`-independent CIM.
function User-Sessions([string]$Name) {
    $procs = Get-Process -IncludeUserName -Name explorer -ErrorAction SilentlyContinue
    $ids = @()
    foreach ($p in $procs) {
        if ($p.UserName -and $p.UserName.Split('\')[-1] -ieq $Name) { $ids += $p.SessionId }
    }
    return $ids | Sort-Object -Unique
}

function Profile-Of([string]$Name) {
    $sid = (Get-LocalUser -Name $Name).SID.Value
    $key = "HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\$sid"
    return (Get-ItemProperty -LiteralPath $key).ProfileImagePath
}

# SIDs of a local group's members (Get-LocalGroupMember fails on groups holding orphaned or
# Azure AD SIDs; ADSI then lists them, by the group's localised name).
function Group-Member-Sids([string]$GroupSid) {
    try {
        return @(Get-LocalGroupMember -SID $GroupSid -ErrorAction Stop | ForEach-Object { $_.SID.Value })
    } catch {
        $sid = New-Object System.Security.Principal.SecurityIdentifier($GroupSid)
        $name = $sid.Translate([System.Security.Principal.NTAccount]).Value.Split('\')[-1]
        $group = [ADSI]"WinNT://./$name,group"
        $sids = @()
        foreach ($m in @($group.psbase.Invoke('Members'))) {
            $bytes = $m.GetType().InvokeMember('objectSid', 'GetProperty', $null, $m, $null)
            $sids += (New-Object System.Security.Principal.SecurityIdentifier($bytes, 0)).Value
        }
        return $sids
    }
}

function Run-As-Standard([string]$Command) {
    $out = [System.IO.Path]::GetTempFileName()
    $err = [System.IO.Path]::GetTempFileName()
    try {
        $p = Start-Process -FilePath "$env:SystemRoot\System32\cmd.exe" -ArgumentList '/c', $Command `
            -Credential $StandardUser -NoNewWindow -Wait -PassThru `
            -RedirectStandardOutput $out -RedirectStandardError $err -WorkingDirectory $env:SystemRoot
        return @{ Code = $p.ExitCode; Text = (Get-Content -Raw $out) + (Get-Content -Raw $err) }
    } finally {
        Remove-Item -Force $out, $err -ErrorAction SilentlyContinue
    }
}

function Agent-Log-Has([string]$Pattern) {
    $r = Agentctl @('logs', '--lines', '1000')
    if ($r.Code -ne 0) { return "FAIL:agentctl logs exited $($r.Code): $($r.Text)" }
    $m = [regex]::Matches($r.Text, $Pattern)
    if ($m.Count -eq 0) { return "FAIL:no log line matches /$Pattern/" }
    return $m[$m.Count - 1].Value
}

Write-Output "Kasm open agent host checks, stage '$Stage', install folder $InstallDir"
$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Write-Output 'FAIL run this script from an elevated PowerShell'
    exit 1
}

if ($Stage -eq 'installed') {
    Check "service $ServiceName runs as LocalSystem with automatic start" {
        $s = Get-CimInstance Win32_Service -Filter "Name='$ServiceName'"
        if (-not $s) { return 'FAIL:no such service' }
        if ($s.State -ne 'Running' -or $s.StartMode -ne 'Auto' -or $s.StartName -ne 'LocalSystem') {
            return "FAIL:state $($s.State), start $($s.StartMode), account $($s.StartName)"
        }
        return $s.PathName
    }
    Check 'recovery actions restart the service on failure' {
        $q = & "$env:SystemRoot\System32\sc.exe" qfailure $ServiceName | Out-String
        if ($q -match 'RESTART') { return ($q -replace '\s+', ' ').Trim() }
        return "FAIL:$q"
    }
    Check 'firewall rule allows inbound TCP on the agent port' {
        $port = Config-Value 'port'
        if (-not $port) { $port = '4902' }
        $rule = Get-NetFirewallRule -DisplayName 'Kasm Open Agent' -ErrorAction SilentlyContinue
        if (-not $rule) { return 'FAIL:no rule named Kasm Open Agent' }
        $pf = $rule | Get-NetFirewallPortFilter
        if ($rule.Direction -ne 'Inbound' -or $rule.Action -ne 'Allow' -or $pf.Protocol -ne 'TCP' -or
            @($pf.LocalPort) -notcontains $port) {
            return "FAIL:$($rule.Direction) $($rule.Action) $($pf.Protocol) $($pf.LocalPort), want port $port"
        }
        return "TCP $port"
    }
    Check "Event Log source $ServiceName" {
        [System.Diagnostics.EventLog]::SourceExists($ServiceName)
    }
    foreach ($p in @($InstallDir, (Join-Path $InstallDir 'certs'), (Join-Path $InstallDir 'scripts'),
                     (Join-Path $InstallDir 'config.yaml'))) {
        Check "nobody but SYSTEM/Administrators may change $p" {
            $bad = Foreign-Grants $p $WriteRights
            if ($bad) { return 'FAIL:' + ($bad -join ', ') }
            return $true
        }
    }
    foreach ($p in @((Join-Path $InstallDir 'config.yaml'), (Join-Path $InstallDir 'certs\key.pem'))) {
        Check "nobody but SYSTEM/Administrators may read $p" {
            if (-not (Test-Path -LiteralPath $p)) { return 'SKIP:not there (not registered yet?)' }
            $bad = Foreign-Grants $p $ReadRights
            if ($bad) { return 'FAIL:' + ($bad -join ', ') }
            return $true
        }
    }
    Check 'one session helper per logged-on user, running as that user in that session' {
        $helpers = @(Get-Process -IncludeUserName -Name session_helper -ErrorAction SilentlyContinue)
        $users = @(Get-Process -IncludeUserName -Name explorer -ErrorAction SilentlyContinue |
                   Where-Object { $_.UserName })
        if ($users.Count -eq 0) { return 'SKIP:nobody is logged on' }
        $problems = @()
        foreach ($u in $users) {
            $h = @($helpers | Where-Object { $_.SessionId -eq $u.SessionId })
            if ($h.Count -ne 1) { $problems += "session $($u.SessionId): $($h.Count) helpers"; continue }
            if ($h[0].UserName -ne $u.UserName) {
                $problems += "session $($u.SessionId): helper runs as $($h[0].UserName), user $($u.UserName)"
            }
        }
        if ($helpers | Where-Object { $_.UserName -match 'SYSTEM$' }) { $problems += 'a helper runs as SYSTEM' }
        if ($problems) { return 'FAIL:' + ($problems -join '; ') }
        return "$($helpers.Count) helper(s)"
    }
    Check 'agentctl status answers' {
        $r = Agentctl @('status')
        if ($r.Code -ne 0) { return "FAIL:exit $($r.Code): $($r.Text)" }
        return $true
    }
    Check 'agentctl doctor finds no failed check' {
        $r = Agentctl @('doctor')
        if ($r.Code -ne 0) { return "FAIL:exit $($r.Code): $($r.Text)" }
        return $true
    }
    if ($StandardUser) {
        Check 'a standard user cannot read the TLS key' {
            $r = Run-As-Standard ('type "' + (Join-Path $InstallDir 'certs\key.pem') + '"')
            if ($r.Text -match 'PRIVATE KEY') { return 'FAIL:the key was printed' }
            if ($r.Code -eq 0) { return 'FAIL:type exited 0' }
            return ($r.Text -replace '\s+', ' ').Trim()
        }
        Check 'a standard user cannot write into scripts\session_start' {
            $r = Run-As-Standard ('echo x> "' + (Join-Path $InstallDir 'scripts\session_start\zz_std.cmd') + '"')
            if (Test-Path -LiteralPath (Join-Path $InstallDir 'scripts\session_start\zz_std.cmd')) {
                Remove-Item -Force -LiteralPath (Join-Path $InstallDir 'scripts\session_start\zz_std.cmd')
                return 'FAIL:the file was created'
            }
            return $true
        }
        Check 'a standard user is refused by the admin pipe (agentctl exit 4)' {
            $r = Run-As-Standard ('"' + (Join-Path $InstallDir 'agentctl.exe') + '" status')
            if ($r.Code -ne 4) { return "FAIL:exit $($r.Code): $($r.Text)" }
            return ($r.Text -replace '\s+', ' ').Trim()
        }
    } else {
        Report 'SKIP' 'enforcement against a standard user' 'give -StandardUser (Get-Credential <a non-admin account>)'
    }
    if ($TestDir) {
        foreach ($t in @('test_acct.exe', 'test_plat.exe', 'test_scr_run.exe', 'test_adm_doctor.exe')) {
            Check "unit tests $t (real Win32 APIs)" {
                $exe = Join-Path $TestDir $t
                if (-not (Test-Path -LiteralPath $exe)) { return "SKIP:$exe not there" }
                $out = & $exe 2>&1 | Out-String
                if ($LASTEXITCODE -ne 0) { return "FAIL:exit $LASTEXITCODE`n$out" }
                return (($out -split "`n") | Select-String 'PASSED|FAILED' | Out-String).Trim()
            }
        }
    }
}

if ($Stage -eq 'started' -or $Stage -eq 'ended') {
    if (-not $User) { Write-Output 'FAIL -User is required for this stage'; exit 1 }
}

if ($Stage -eq 'started') {
    Check "local account $User is enabled and in Remote Desktop Users" {
        $u = Get-LocalUser -Name $User
        if (-not $u.Enabled) { return 'FAIL:disabled' }
        $members = @(Group-Member-Sids $SidRdpUsers)
        if ($members -notcontains $u.SID.Value) { return 'FAIL:not a member of S-1-5-32-555' }
        return "$($u.SID.Value), password last set $($u.PasswordLastSet)"
    }
    Check "profile of $User exists" {
        $p = Profile-Of $User
        if (-not (Test-Path -LiteralPath (Join-Path $p 'NTUSER.DAT'))) { return "FAIL:no NTUSER.DAT in $p" }
        return $p
    }
    if ($MappingPath) {
        Check "file mapping $MappingPath: owner $User, access list per '$MappingAccess'" {
            $acl = Get-Acl -LiteralPath $MappingPath
            if ($acl.Owner.Split('\')[-1] -ine $User) { return "FAIL:owner $($acl.Owner)" }
            if (-not $acl.AreAccessRulesProtected) { return 'FAIL:the access list inherits entries' }
            $want = [System.Security.AccessControl.FileSystemRights]0
            if ($MappingAccess[0] -eq 'r') { $want = $want -bor [System.Security.AccessControl.FileSystemRights]'Read, Synchronize' }
            if ($MappingAccess[1] -eq 'w') { $want = $want -bor [System.Security.AccessControl.FileSystemRights]'Write, Delete, Synchronize' }
            if ($MappingAccess[2] -eq 'x') { $want = $want -bor [System.Security.AccessControl.FileSystemRights]'ExecuteFile, ReadAttributes, ReadPermissions, Synchronize' }
            $usid = (Get-LocalUser -Name $User).SID.Value
            $seen = @()
            foreach ($ace in $acl.Access) {
                $sid = Sid-Of $ace.IdentityReference
                $seen += "$($ace.IdentityReference.Value):$($ace.FileSystemRights)"
                if ($ace.AccessControlType -ne 'Allow') { return "FAIL:a deny entry: $($seen -join ', ')" }
                if ($AdminSids -contains $sid) { continue }
                if ($sid -ne $usid) { return "FAIL:an entry for someone else: $($seen -join ', ')" }
                if ((($ace.FileSystemRights -band $want) -ne $want) -or
                    ($MappingAccess[1] -eq '-' -and ($ace.FileSystemRights -band [System.Security.AccessControl.FileSystemRights]'WriteData') -ne 0) -or
                    ($MappingAccess[2] -eq '-' -and ($ace.FileSystemRights -band [System.Security.AccessControl.FileSystemRights]'ExecuteFile') -ne 0)) {
                    return "FAIL:the user's rights $($ace.FileSystemRights), want $want"
                }
            }
            return ($seen -join ', ')
        }
    }
    if ($StorageTarget) {
        Check "storage mapping '$StorageTarget' is mounted in $User's own logon session" {
            $ids = @(User-Sessions $User)
            if ($ids.Count -eq 0) { return "SKIP:$User is not logged on yet (the mount waits for the logon)" }
            $mount = Join-Path (Join-Path (Profile-Of $User) 'Desktop') $StorageTarget
            if (-not (Test-Path -LiteralPath $mount)) { return "FAIL:$mount does not exist" }
            $rc = @(Get-Process -IncludeUserName -Name rclone -ErrorAction SilentlyContinue |
                    Where-Object { $ids -contains $_.SessionId })
            if ($rc.Count -eq 0) { return "FAIL:no rclone process in session(s) $($ids -join ',')" }
            if ($rc | Where-Object { $_.UserName.Split('\')[-1] -ine $User }) {
                return "FAIL:rclone runs as $(($rc | ForEach-Object { $_.UserName }) -join ',')"
            }
            return "$mount, rclone pid(s) $(($rc | ForEach-Object { $_.Id }) -join ',') as $User"
        }
    }
    Check 'the agent logged the session start without a failed step' {
        Agent-Log-Has 'session_start for kasm_id \S+ done \(0 step\(s\) failed\)'
    }
    Check "the agent reported 'running' to the deployment" {
        Agent-Log-Has 'kasm_id \S+: reported running[^\r\n]*'
    }
}

if ($Stage -eq 'ended') {
    Check "$User is logged off (when logoff_on_session_end is true)" {
        if ((Config-Value 'logoff_on_session_end') -ne 'true') { return 'SKIP:logoff_on_session_end is not true' }
        $ids = @(User-Sessions $User)
        if ($ids.Count) { return "FAIL:still in session(s) $($ids -join ',')" }
        return $true
    }
    if ($MappingPath) {
        Check "file mapping $MappingPath removed" { -not (Test-Path -LiteralPath $MappingPath) }
    }
    if ($StorageTarget) {
        Check "storage mapping '$StorageTarget' unmounted" {
            $mount = Join-Path (Join-Path (Profile-Of $User) 'Desktop') $StorageTarget
            if (Test-Path -LiteralPath $mount) { return "FAIL:$mount still exists" }
            return $true
        }
    }
    Check 'the agent logged the session end' {
        Agent-Log-Has 'session_end for kasm_id \S+ done \(\d+ step\(s\) failed\)'
    }
    Check "the agent reported 'destroyed' to the deployment" {
        Agent-Log-Has 'kasm_id \S+: reported destroyed[^\r\n]*'
    }
}

Write-Output ("{0} check(s) failed" -f $script:Failed)
exit $script:Failed
