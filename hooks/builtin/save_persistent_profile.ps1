# save_persistent_profile.ps1 - builtin hook of the Kasm open agent, run at session end
# (KASM_INTERFACE.md section 5) after the user has been logged off (when configured) and the
# storage mappings removed, before the session_end scripts and the "destroyed" report.
#
# Shipped empty: it does nothing and exits 0. It is the counterpart of
# load_persistent_profile.ps1: an administrator who restores profiles there saves them here
# (back to the share, S3 bucket or profile server). The variables are the same
# ($username, $user_id, $kasm_id, $jwt_token - a secret, never print it - $api_host,
# $api_port, ... and the KASM_* environment variables; docs/scripts.md).
#
# Keep it short: the deployment waits for the "destroyed" report, and the agent kills the
# hook after script_timeout seconds (default 300). A non-zero exit code is logged with the
# output (secrets redacted); the session end goes on either way.
#
# Example (not active): copy the profile back to a share once the user is logged off.
#   robocopy $profileDir "\\fileserver\profiles\$username" /MIR /COPY:DAT /R:2 /W:5
#   if ($LASTEXITCODE -ge 8) { exit $LASTEXITCODE }   # robocopy: 8 and above are failures

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'
exit 0
