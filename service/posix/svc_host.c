/* svc_host.c - placeholder */
