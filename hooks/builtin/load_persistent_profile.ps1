# load_persistent_profile.ps1 - builtin hook of the Kasm open agent, run at session start
# (KASM_INTERFACE.md section 5, step 2) after the local account exists and before the file and
# storage mappings, the session_start scripts and the "running" report.
#
# Shipped empty: it does nothing and exits 0. An administrator who keeps users' profiles
# elsewhere (a file share, S3 through rclone, FSLogix, a roaming profile server) can put the
# restore step here. The agent runs it as SYSTEM through
#   powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File <copy>
# from a private temporary copy that begins with these variables (docs/scripts.md):
#   $username, $user_id, $kasm_id, $jwt_token (the session token: a secret, never print it),
#   $api_host, $api_port, $ts_session_id, $is_remote_app, $is_web_native, $auto_logout_user,
#   $user_groups; the same values are in the environment as KASM_USERNAME, KASM_KASM_ID, ...
# The session payload's persistent_profile value (for example "s3") tells whether the
# deployment asked for a persistent profile at all.
#
# Rules the agent enforces: the file must stay writable by administrators only (it is refused
# otherwise), it is killed with its child processes after script_timeout seconds (default
# 300), a non-zero exit code is logged with the full output (secrets redacted) and reported
# as a failed step, and the session start goes on.
#
# Example (not active): copy a profile archive from a share before the user logs on.
#   $profileDir = (Get-ItemProperty "HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList\$sid").ProfileImagePath
#   robocopy "\\fileserver\profiles\$username" $profileDir /MIR /COPY:DAT /R:2 /W:5

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'
exit 0
