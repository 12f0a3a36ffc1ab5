/*
 * win32/adm_doctor_plat.c - the Windows parts of `agentctl doctor` (adm_doctor_plat.h): who
 * may read or change a file, from its owner and DACL (GetNamedSecurityInfoW), and whether the
 * Windows Firewall lets inbound TCP reach the agent's port (INetFwPolicy2 over COM; reported
 * as skipped, with the reason, where the policy cannot be read - e.g. under Wine).
 */
#include "adm_doctor_plat.h"

#define COBJMACROS
#include <windows.h>

#include <initguid.h>

#include <aclapi.h>
#include <netfw.h>
#include <oleauto.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plat.h"
#include "win32/wide.h"

#define ADMD_SID_TRUSTED_INSTALLER "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464"
#define ADMD_FW_PROTO_ANY          256 /* NET_FW_IP_PROTOCOL_ANY, missing from mingw-w64 */
#define ADMD_FIX_GRANT             "/inheritance:r /grant:r *S-1-5-18:F *S-1-5-32-544:F"

/* Rights that let a principal change a file or a folder's contents or its permissions. */
#define ADMD_WRITE_RIGHTS                                                                          \
    (FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_DELETE_CHILD | DELETE | WRITE_DAC | WRITE_OWNER |   \
     GENERIC_WRITE | GENERIC_ALL)

/* SYSTEM, Administrators, (write checks) TrustedInstaller, or the agent's own account. */
static int admd_trusted_sid(PSID sid, int allow_installer)
{
    LPSTR s = NULL;
    int ok = 0;
    HANDLE tok = NULL;

    if (IsWellKnownSid(sid, WinLocalSystemSid) || IsWellKnownSid(sid, WinBuiltinAdministratorsSid))
        return 1;
    if (ConvertSidToStringSidA(sid, &s)) {
        ok = allow_installer && strcmp(s, ADMD_SID_TRUSTED_INSTALLER) == 0;
        LocalFree(s);
    }
    if (!ok && OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok)) {
        union {
            TOKEN_USER tu;
            unsigned char buf[256];
        } u;
        DWORD got = 0;
        if (GetTokenInformation(tok, TokenUser, &u, sizeof(u), &got))
            ok = EqualSid(sid, u.tu.User.Sid) != 0;
        CloseHandle(tok);
    }
    return ok;
}

/* "NAME (S-1-...)" or just the SID, into out; sid_out (may be NULL) gets the SID text. */
static void admd_sid_name(PSID sid, char *out, size_t cap, char *sid_out, size_t sid_cap)
{
    wchar_t name[128], dom[128];
    DWORD nn = 128, dn = 128;
    SID_NAME_USE use;
    LPSTR s = NULL;
    char n8[300] = "";

    if (!ConvertSidToStringSidA(sid, &s))
        s = NULL;
    if (LookupAccountSidW(NULL, sid, name, &nn, dom, &dn, &use)) {
        char d8[130] = "", u8[130] = "";
        plat_utf8_from_w_buf(dom, d8, sizeof(d8), NULL);
        plat_utf8_from_w_buf(name, u8, sizeof(u8), NULL);
        snprintf(n8, sizeof(n8), "%s%s%s", d8, d8[0] ? "\\" : "", u8);
    }
    if (n8[0])
        snprintf(out, cap, "%s (%s)", n8, s ? s : "?");
    else
        snprintf(out, cap, "%s", s ? s : "an unknown account");
    if (sid_out)
        snprintf(sid_out, sid_cap, "%s", s ? s : "");
    if (s)
        LocalFree(s);
}

/*
 * The common walk: reads path's owner and DACL; write_only 0 looks at every right granted,
 * 1 only at the rights that change it. 0 fine; 1 not (why, fix); <0 error.
 */
static int admd_check_acl(const char *path, int write_only, char *why, size_t why_cap, char *fix,
                          size_t fix_cap, struct err *e)
{
    wchar_t *w = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    PSID owner = NULL;
    PACL dacl = NULL;
    DWORD attrs, rc_w;
    char bad[256] = "", remove[256] = "";
    int rc = 0, nbad = 0;

    why[0] = fix[0] = '\0';
    if (!(w = plat_w_path(path, e))) {
        rc = e ? e->code : ERR_INVALID;
        goto out;
    }
    attrs = GetFileAttributesW(w);
    if (attrs == INVALID_FILE_ATTRIBUTES) {
        rc = plat_win_fail(e, GetLastError(), "cannot read", path);
        goto out;
    }
    if (attrs & FILE_ATTRIBUTE_REPARSE_POINT) {
        snprintf(why, why_cap, "it is a link (whoever controls its target controls it)");
        snprintf(fix, fix_cap, "replace the link %s by the file or folder itself", path);
        rc = 1;
        goto out;
    }
    rc_w = GetNamedSecurityInfoW(w, SE_FILE_OBJECT,
                                 OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner,
                                 NULL, &dacl, NULL, &sd);
    if (rc_w != ERROR_SUCCESS) {
        rc = plat_win_fail(e, rc_w, "cannot read the security descriptor of", path);
        goto out;
    }
    if (!dacl) {
        snprintf(why, why_cap, "it has no DACL: everyone has full access");
        snprintf(fix, fix_cap, "icacls \"%s\" " ADMD_FIX_GRANT, path);
        rc = 1;
        goto out;
    }
    for (DWORD i = 0; i < dacl->AceCount; i++) {
        ACE_HEADER *h = NULL;
        ACCESS_ALLOWED_ACE *a;
        char name[200], sid[100];
        size_t l;

        if (!GetAce(dacl, i, (void **)&h) || (h->AceFlags & INHERIT_ONLY_ACE))
            continue;
        if (h->AceType != ACCESS_ALLOWED_ACE_TYPE && h->AceType != ACCESS_ALLOWED_CALLBACK_ACE_TYPE)
            continue;
        a = (ACCESS_ALLOWED_ACE *)h;
        if (write_only && !(a->Mask & ADMD_WRITE_RIGHTS))
            continue;
        if (!write_only && !a->Mask)
            continue;
        if (admd_trusted_sid((PSID)&a->SidStart, write_only))
            continue;
        if (IsWellKnownSid((PSID)&a->SidStart, WinCreatorOwnerSid))
            continue; /* applies to nobody on the object itself */
        admd_sid_name((PSID)&a->SidStart, name, sizeof(name), sid, sizeof(sid));
        if (nbad++ < 3) {
            l = strlen(bad);
            snprintf(bad + l, sizeof(bad) - l, "%s%s", l ? ", " : "", name);
            l = strlen(remove);
            snprintf(remove + l, sizeof(remove) - l, " *%s", sid);
        }
    }
    if (nbad) {
        snprintf(why, why_cap, "its DACL lets %s %s it%s", bad, write_only ? "change" : "read",
                 nbad > 3 ? " (and more)" : "");
        snprintf(fix, fix_cap, "icacls \"%s\" " ADMD_FIX_GRANT " && icacls \"%s\" /remove:g%s",
                 path, path, remove);
        rc = 1;
        goto out;
    }
    if (owner && !admd_trusted_sid(owner, write_only)) {
        char name[200];
        admd_sid_name(owner, name, sizeof(name), NULL, 0);
        snprintf(why, why_cap, "it is owned by %s, who can change its permissions", name);
        snprintf(fix, fix_cap, "icacls \"%s\" /setowner *S-1-5-32-544", path);
        rc = 1;
        goto out;
    }
    snprintf(why, why_cap, "%s",
             write_only ? "DACL: writable by administrators only"
                        : "DACL: SYSTEM and Administrators only");
out:
    if (sd)
        LocalFree(sd);
    free(w);
    return rc;
}

int admd_plat_private(const char *path, char *why, size_t why_cap, char *fix, size_t fix_cap,
                      struct err *e)
{
    return admd_check_acl(path, 0, why, why_cap, fix, fix_cap, e);
}

int admd_plat_admin_write_only(const char *path, char *why, size_t why_cap, char *fix,
                               size_t fix_cap, struct err *e)
{
    return admd_check_acl(path, 1, why, why_cap, fix, fix_cap, e);
}

/* ---- the firewall ---- */

static void admd_fw_skip(struct admd_check *c, const char *what, HRESULT hr)
{
    c->verdict = ADMD_SKIPPED;
    snprintf(c->detail, sizeof(c->detail),
             "the Windows Firewall policy cannot be read (%s: HRESULT 0x%08lx): the firewall "
             "service (MpsSvc) is not running or not available here (Wine has none)",
             what, (unsigned long)hr);
    c->fix[0] = '\0';
}

/* 1 when rule is enabled, inbound, allows TCP on port in one of profiles; name filled. */
static int admd_fw_rule_allows(INetFwRule *rule, int port, long profiles, char *name, size_t cap)
{
    VARIANT_BOOL enabled = VARIANT_FALSE;
    NET_FW_RULE_DIRECTION dir = NET_FW_RULE_DIR_OUT;
    NET_FW_ACTION action = NET_FW_ACTION_BLOCK;
    LONG proto = 0, prof = 0;
    BSTR ports = NULL, bname = NULL;
    char p8[512] = "";
    int ok = 0;

    if (FAILED(INetFwRule_get_Enabled(rule, &enabled)) || enabled != VARIANT_TRUE ||
        FAILED(INetFwRule_get_Direction(rule, &dir)) || dir != NET_FW_RULE_DIR_IN ||
        FAILED(INetFwRule_get_Action(rule, &action)) || action != NET_FW_ACTION_ALLOW ||
        FAILED(INetFwRule_get_Protocol(rule, &proto)) ||
        (proto != NET_FW_IP_PROTOCOL_TCP && proto != ADMD_FW_PROTO_ANY) ||
        FAILED(INetFwRule_get_Profiles(rule, &prof)) || !(prof & profiles))
        return 0;
    if (FAILED(INetFwRule_get_LocalPorts(rule, &ports)))
        return 0;
    if (!ports)
        ok = 1; /* no port restriction */
    else if (plat_utf8_from_w_buf(ports, p8, sizeof(p8), NULL) == 0)
        ok = admd_port_in_list(p8, port);
    SysFreeString(ports);
    if (ok && SUCCEEDED(INetFwRule_get_Name(rule, &bname)) && bname) {
        plat_utf8_from_w_buf(bname, name, cap, NULL);
        SysFreeString(bname);
    }
    return ok;
}

void admd_plat_firewall(int port, struct admd_check *c)
{
    static const NET_FW_PROFILE_TYPE2 kinds[] = {NET_FW_PROFILE2_DOMAIN, NET_FW_PROFILE2_PRIVATE,
                                                 NET_FW_PROFILE2_PUBLIC};
    HRESULT init, hr;
    INetFwPolicy2 *pol = NULL;
    INetFwRules *rules = NULL;
    IUnknown *unk = NULL;
    IEnumVARIANT *en = NULL;
    long profiles = 0;
    int enabled = 0, found = 0;
    char name[256] = "";

    c->fix[0] = '\0';
    init = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    hr = CoCreateInstance(&CLSID_NetFwPolicy2, NULL, CLSCTX_INPROC_SERVER, &IID_INetFwPolicy2,
                          (void **)&pol);
    if (FAILED(hr)) {
        admd_fw_skip(c, "CoCreateInstance(NetFwPolicy2)", hr);
        goto out;
    }
    if (FAILED(hr = INetFwPolicy2_get_CurrentProfileTypes(pol, &profiles))) {
        admd_fw_skip(c, "CurrentProfileTypes", hr);
        goto out;
    }
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        VARIANT_BOOL on = VARIANT_FALSE;
        if (!(profiles & kinds[i]))
            continue;
        if (FAILED(hr = INetFwPolicy2_get_FirewallEnabled(pol, kinds[i], &on))) {
            admd_fw_skip(c, "FirewallEnabled", hr);
            goto out;
        }
        enabled |= on == VARIANT_TRUE;
    }
    if (!enabled) {
        c->verdict = ADMD_OK;
        snprintf(c->detail, sizeof(c->detail),
                 "the Windows Firewall is off for the current network profile: inbound TCP %d "
                 "is not blocked by it",
                 port);
        goto out;
    }
    if (FAILED(hr = INetFwPolicy2_get_Rules(pol, &rules)) || !rules) {
        admd_fw_skip(c, "Rules", hr);
        goto out;
    }
    if (FAILED(hr = INetFwRules_get__NewEnum(rules, &unk)) || !unk) {
        admd_fw_skip(c, "Rules._NewEnum", hr);
        goto out;
    }
    if (FAILED(hr = IUnknown_QueryInterface(unk, &IID_IEnumVARIANT, (void **)&en))) {
        admd_fw_skip(c, "IEnumVARIANT", hr);
        goto out;
    }
    for (;;) {
        VARIANT v;
        ULONG got = 0;
        INetFwRule *rule = NULL;

        VariantInit(&v);
        if (IEnumVARIANT_Next(en, 1, &v, &got) != S_OK || got == 0)
            break;
        if (V_VT(&v) == VT_DISPATCH && V_DISPATCH(&v) &&
            SUCCEEDED(IDispatch_QueryInterface(V_DISPATCH(&v), &IID_INetFwRule, (void **)&rule))) {
            found = admd_fw_rule_allows(rule, port, profiles, name, sizeof(name));
            INetFwRule_Release(rule);
        }
        VariantClear(&v);
        if (found)
            break;
    }
    if (found) {
        c->verdict = ADMD_OK;
        snprintf(c->detail, sizeof(c->detail),
                 "the firewall rule '%s' allows inbound TCP %d in the current profile", name, port);
    } else {
        c->verdict = ADMD_FAIL;
        snprintf(c->detail, sizeof(c->detail),
                 "the Windows Firewall is on and no enabled inbound rule allows TCP %d in the "
                 "current profile: the deployment cannot reach the agent",
                 port);
        snprintf(c->fix, sizeof(c->fix),
                 "netsh advfirewall firewall add rule name=\"Kasm Desktop Service\" dir=in "
                 "action=allow protocol=TCP localport=%d (or the same rule in the firewall's group "
                 "policy, where a policy manages the firewall)",
                 port);
    }
out:
    if (en)
        IEnumVARIANT_Release(en);
    if (unk)
        IUnknown_Release(unk);
    if (rules)
        INetFwRules_Release(rules);
    if (pol)
        INetFwPolicy2_Release(pol);
    if (SUCCEEDED(init))
        CoUninitialize();
}
