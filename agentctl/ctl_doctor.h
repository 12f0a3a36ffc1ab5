/*
 * ctl_doctor.h - agentctl's side of `doctor` (ctl_doctor.c): printing the checks the agent
 * ran (service/admin/adm_doctor.h) and the exit code they mean.
 */
#ifndef KASM_CTL_DOCTOR_H
#define KASM_CTL_DOCTOR_H

struct cJSON;

#define CTL_DOCTOR_BAD_ANSWER 5 /* CTL_FAILED: the answer cannot be read */
#define CTL_DOCTOR_FAILED     6 /* at least one check failed */

/* Prints result's checks (a table, or with json the array) and returns the exit code:
 * 0 when no check failed (warnings alone are 0), CTL_DOCTOR_FAILED otherwise. */
int ctl_doctor_output(const struct cJSON *result, int json);

#endif
