/*
 * ctl_doctor.c - agentctl's output of `doctor` (ctl_doctor.h): the checks as a table with the
 * fix under each check that is not ok, or with --json the array of {check, verdict, detail,
 * fix}; and the exit code: CTL_DOCTOR_FAILED when a check failed (warnings alone exit 0).
 */
#include "ctl_doctor.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

static const char *ctl_doctor_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static const char *ctl_doctor_label(const char *verdict)
{
    if (strcmp(verdict, "warning") == 0)
        return "WARNING";
    if (strcmp(verdict, "fail") == 0)
        return "FAIL";
    return verdict;
}

int ctl_doctor_output(const cJSON *result, int json)
{
    const cJSON *checks = cJSON_GetObjectItemCaseSensitive(result, "checks");
    const cJSON *c;
    int failed = 0, warnings = 0, ok = 0, skipped = 0;

    if (!cJSON_IsArray(checks)) {
        fprintf(stderr, "agentctl: doctor: the agent's answer has no checks\n");
        return CTL_DOCTOR_BAD_ANSWER;
    }
    cJSON_ArrayForEach(c, checks)
    {
        const char *v = ctl_doctor_str(c, "verdict");
        failed += strcmp(v, "fail") == 0;
        warnings += strcmp(v, "warning") == 0;
        ok += strcmp(v, "ok") == 0;
        skipped += strcmp(v, "skipped") == 0;
    }
    if (json) {
        char *text = cJSON_Print(checks);
        if (text)
            printf("%s\n", text);
        cJSON_free(text);
    } else {
        printf("%-8s %-16s %s\n", "VERDICT", "CHECK", "DETAIL");
        cJSON_ArrayForEach(c, checks)
        {
            const char *fix = ctl_doctor_str(c, "fix");
            printf("%-8s %-16s %s\n", ctl_doctor_label(ctl_doctor_str(c, "verdict")),
                   ctl_doctor_str(c, "check"), ctl_doctor_str(c, "detail"));
            if (*fix)
                printf("%-8s %-16s fix: %s\n", "", "", fix);
        }
        printf("\n%d checks: %d ok, %d warning(s), %d failed, %d skipped\n",
               cJSON_GetArraySize(checks), ok, warnings, failed, skipped);
    }
    return failed ? CTL_DOCTOR_FAILED : 0;
}
