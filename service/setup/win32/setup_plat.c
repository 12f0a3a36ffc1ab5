/*
 * setup_plat.c (Win32) - the machine-wide part of the installer's custom actions (setup.h):
 * folder ACLs, the Event Log source, the inbound firewall rule (INetFwPolicy2) and the
 * service's recovery actions (ChangeServiceConfig2W). Runs as LocalSystem from the MSI.
 */
#define LOG_MODULE "setup"
#define COBJMACROS

#include <windows.h>
#include <aclapi.h>
#include <initguid.h> /* defines the firewall GUIDs of netfw.h here */
#include <netfw.h>
#include <oleauto.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "log.h"
#include "plat.h"
#include "setup.h"
#include "win32/wide.h"

#define SETUP_FW_RULE   L"Kasm Open Agent"
#define SETUP_EVLOG_KEY L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\"
/* Install dir: SYSTEM and Administrators full control, Users read and execute (session_helper.exe
 * runs as the logged-on user), protected from Program Files' inherited entries. */
#define SETUP_DIR_SDDL L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)"

static int restrict_install_dir(const char *dir, struct err *e)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    PACL dacl = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    wchar_t *w = NULL;
    DWORD rc;
    int ret = 0;

    if (!(w = plat_w_from_utf8(dir, e))) {
        ret = e ? e->code : ERR_INVALID;
        goto out;
    }
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(SETUP_DIR_SDDL, SDDL_REVISION_1, &sd,
                                                              NULL) ||
        !GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted) || !present) {
        ret = plat_win_fail(e, GetLastError(), "cannot build the ACL for", dir);
        goto out;
    }
    rc = SetNamedSecurityInfoW(w, SE_FILE_OBJECT,
                               DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                               NULL, NULL, dacl, NULL);
    if (rc != ERROR_SUCCESS) {
        ret = plat_win_fail(e, rc, "cannot set the ACL of", dir);
        goto out;
    }
out:
    if (sd)
        LocalFree(sd);
    free(w);
    return ret;
}

static void add_event_source(const char *service_name)
{
    wchar_t key[256];
    HKEY h = NULL;
    DWORD types = EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE;
    LSTATUS rc;

    _snwprintf(key, sizeof(key) / sizeof(key[0]), L"%ls%hs", SETUP_EVLOG_KEY, service_name);
    key[sizeof(key) / sizeof(key[0]) - 1] = L'\0';
    rc = RegCreateKeyExW(HKEY_LOCAL_MACHINE, key, 0, NULL, 0, KEY_SET_VALUE, NULL, &h, NULL);
    if (rc == ERROR_SUCCESS)
        rc =
            RegSetValueExW(h, L"TypesSupported", 0, REG_DWORD, (const BYTE *)&types, sizeof(types));
    if (rc != ERROR_SUCCESS)
        log_warning("cannot add the Event Log source %s (error %lu); the service's events "
                    "show without a registered source",
                    service_name, (unsigned long)rc);
    else
        log_info("Event Log source %s added", service_name);
    if (h)
        RegCloseKey(h);
}

static void remove_event_source(const char *service_name)
{
    wchar_t key[256];
    _snwprintf(key, sizeof(key) / sizeof(key[0]), L"%ls%hs", SETUP_EVLOG_KEY, service_name);
    key[sizeof(key) / sizeof(key[0]) - 1] = L'\0';
    RegDeleteKeyW(HKEY_LOCAL_MACHINE, key);
}

/* The firewall rules collection; *com_init says whether CoUninitialize is owed. */
static HRESULT fw_rules(INetFwPolicy2 **pol, INetFwRules **rules, int *com_init)
{
    HRESULT hr = CoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    *com_init = SUCCEEDED(hr);
    *pol = NULL;
    *rules = NULL;
    hr = CoCreateInstance(&CLSID_NetFwPolicy2, NULL, CLSCTX_INPROC_SERVER, &IID_INetFwPolicy2,
                          (void **)pol);
    if (SUCCEEDED(hr))
        hr = INetFwPolicy2_get_Rules(*pol, rules);
    return hr;
}

static void fw_done(INetFwPolicy2 *pol, INetFwRules *rules, int com_init)
{
    if (rules)
        INetFwRules_Release(rules);
    if (pol)
        INetFwPolicy2_Release(pol);
    if (com_init)
        CoUninitialize();
}

static void add_firewall_rule(int port)
{
    INetFwPolicy2 *pol = NULL;
    INetFwRules *rules = NULL;
    INetFwRule *rule = NULL;
    BSTR name = SysAllocString(SETUP_FW_RULE);
    BSTR desc = SysAllocString(L"Inbound HTTPS from the Kasm deployment to the Kasm service");
    BSTR ports = NULL;
    wchar_t pbuf[16];
    int com_init = 0;
    HRESULT hr;

    _snwprintf(pbuf, sizeof(pbuf) / sizeof(pbuf[0]), L"%d", port);
    pbuf[sizeof(pbuf) / sizeof(pbuf[0]) - 1] = L'\0';
    ports = SysAllocString(pbuf);
    if (!name || !desc || !ports) {
        hr = E_OUTOFMEMORY;
        goto out;
    }
    if (FAILED(hr = fw_rules(&pol, &rules, &com_init)))
        goto out;
    INetFwRules_Remove(rules, name); /* an older rule (another port) goes */
    if (FAILED(hr = CoCreateInstance(&CLSID_NetFwRule, NULL, CLSCTX_INPROC_SERVER, &IID_INetFwRule,
                                     (void **)&rule)))
        goto out;
    if (FAILED(hr = INetFwRule_put_Name(rule, name)) ||
        FAILED(hr = INetFwRule_put_Description(rule, desc)) ||
        FAILED(hr = INetFwRule_put_Protocol(rule, NET_FW_IP_PROTOCOL_TCP)) ||
        FAILED(hr = INetFwRule_put_LocalPorts(rule, ports)) ||
        FAILED(hr = INetFwRule_put_Direction(rule, NET_FW_RULE_DIR_IN)) ||
        FAILED(hr = INetFwRule_put_Action(rule, NET_FW_ACTION_ALLOW)) ||
        FAILED(hr = INetFwRule_put_Profiles(rule, NET_FW_PROFILE2_ALL)) ||
        FAILED(hr = INetFwRule_put_Enabled(rule, VARIANT_TRUE)) ||
        FAILED(hr = INetFwRules_Add(rules, rule)))
        goto out;
out:
    if (FAILED(hr))
        log_warning("cannot add the firewall rule '%ls' for inbound TCP %d (HRESULT 0x%08lx); "
                    "allow the port in the firewall by hand",
                    SETUP_FW_RULE, port, (unsigned long)hr);
    else
        log_info("firewall rule '%ls' allows inbound TCP %d", SETUP_FW_RULE, port);
    if (rule)
        INetFwRule_Release(rule);
    fw_done(pol, rules, com_init);
    SysFreeString(name);
    SysFreeString(desc);
    SysFreeString(ports);
}

static void remove_firewall_rule(void)
{
    INetFwPolicy2 *pol = NULL;
    INetFwRules *rules = NULL;
    BSTR name = SysAllocString(SETUP_FW_RULE);
    int com_init = 0;

    if (name && SUCCEEDED(fw_rules(&pol, &rules, &com_init)))
        INetFwRules_Remove(rules, name);
    fw_done(pol, rules, com_init);
    SysFreeString(name);
}

/* Restart after 5 s, 30 s, then every 60 s; the count resets after a day without failure. */
static void set_recovery(const char *service_name)
{
    SC_HANDLE scm = NULL, svc = NULL;
    SC_ACTION actions[3] = {
        {SC_ACTION_RESTART, 5000}, {SC_ACTION_RESTART, 30000}, {SC_ACTION_RESTART, 60000}};
    SERVICE_FAILURE_ACTIONSW fa;
    SERVICE_FAILURE_ACTIONS_FLAG flag;
    wchar_t *w = plat_w_from_utf8(service_name, NULL);
    DWORD err = 0;

    memset(&fa, 0, sizeof(fa));
    fa.dwResetPeriod = 86400;
    fa.cActions = 3;
    fa.lpsaActions = actions;
    flag.fFailureActionsOnNonCrashFailures = TRUE;
    if (!w || !(scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT)) ||
        !(svc = OpenServiceW(scm, w, SERVICE_CHANGE_CONFIG | SERVICE_START)) ||
        !ChangeServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS, &fa)) {
        err = GetLastError();
        log_warning("cannot set the recovery actions of the service %s (error %lu); set "
                    "'restart' on its Recovery tab by hand",
                    service_name, (unsigned long)err);
        goto out;
    }
    /* Also when the agent exits with an error rather than crashing (not in every Windows). */
    if (!ChangeServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, &flag))
        log_debug("the failure-actions flag was not set (error %lu)",
                  (unsigned long)GetLastError());
    /* Read back: what the service manager holds now. */
    {
        union {
            SERVICE_FAILURE_ACTIONSW fa;
            BYTE raw[512];
        } q;
        DWORD need = 0;
        memset(&q, 0, sizeof(q));
        if (!QueryServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS, q.raw, sizeof(q.raw),
                                  &need) ||
            q.fa.cActions != 3 || !q.fa.lpsaActions ||
            q.fa.lpsaActions[0].Type != SC_ACTION_RESTART) {
            log_warning("the recovery actions of the service %s did not stick (read back: %lu "
                        "actions); set 'restart' on its Recovery tab by hand",
                        service_name, (unsigned long)q.fa.cActions);
            goto out;
        }
    }
    log_info("service %s restarts on failure (after 5 s, 30 s, 60 s; read back)", service_name);
out:
    if (svc)
        CloseServiceHandle(svc);
    if (scm)
        CloseServiceHandle(scm);
    free(w);
}

int setup_plat_wait_stopped(const char *service_name, unsigned timeout_ms, struct err *e)
{
    SC_HANDLE scm = NULL, svc = NULL;
    SERVICE_STATUS_PROCESS st;
    SERVICE_STATUS ss;
    HANDLE proc = NULL;
    wchar_t *w = plat_w_from_utf8(service_name, e);
    ULONGLONG end = GetTickCount64() + timeout_ms;
    DWORD need = 0;
    int rc = 0;

    if (!w) {
        rc = e ? e->code : ERR_INVALID;
        goto out;
    }
    if (!(scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT))) {
        rc = plat_win_fail(e, GetLastError(), "cannot open the service manager", NULL);
        goto out;
    }
    if (!(svc = OpenServiceW(scm, w, SERVICE_QUERY_STATUS | SERVICE_STOP)))
        goto out; /* not installed: nothing runs */
    for (;;) {
        if (!QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)&st, sizeof(st), &need))
            goto out; /* deleted meanwhile */
        if (st.dwProcessId && !proc)
            proc = OpenProcess(SYNCHRONIZE, FALSE, st.dwProcessId);
        if (st.dwCurrentState == SERVICE_STOPPED)
            break;
        if (st.dwCurrentState == SERVICE_RUNNING)
            ControlService(svc, SERVICE_CONTROL_STOP, &ss); /* the installer asked already */
        if (GetTickCount64() >= end) {
            rc = err_set(e, ERR_TIMEOUT,
                         "the service %s did not stop within %u s; stop it (sc stop %s) and "
                         "run the uninstall again",
                         service_name, timeout_ms / 1000, service_name);
            goto out;
        }
        Sleep(200);
    }
    /* STOPPED is reported before the process ends; its files are free once it has. */
    if (proc) {
        ULONGLONG now = GetTickCount64();
        WaitForSingleObject(proc, now < end ? (DWORD)(end - now) : 0);
    }
    log_info("service %s is stopped", service_name);
out:
    if (proc)
        CloseHandle(proc);
    if (svc)
        CloseServiceHandle(svc);
    if (scm)
        CloseServiceHandle(scm);
    free(w);
    return rc;
}

int setup_plat_harden(const char *install_dir, const char *cfg_path, const char *service_name,
                      int port, struct err *e)
{
    static const char *const private_dirs[] = {"certs", "scripts"};
    char path[1024];
    int rc;

    if ((rc = restrict_install_dir(install_dir, e)) < 0)
        return rc;
    for (size_t k = 0; k < sizeof(private_dirs) / sizeof(private_dirs[0]); k++) {
        if ((rc = fs_join(install_dir, private_dirs[k], path, sizeof(path), e)) < 0 ||
            (rc = plat_path_restrict_to_admins(path, e)) < 0)
            return rc;
    }
    if ((rc = plat_path_restrict_to_admins(cfg_path, e)) < 0)
        return rc;
    log_info("%s: SYSTEM and Administrators (Users may run the programs); certs, scripts and "
             "the config: SYSTEM and Administrators only",
             install_dir);
    add_event_source(service_name);
    add_firewall_rule(port);
    set_recovery(service_name);
    return 0;
}

void setup_plat_unharden(const char *service_name)
{
    remove_firewall_rule();
    remove_event_source(service_name);
    log_info("firewall rule and Event Log source removed");
}
