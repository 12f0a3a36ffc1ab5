/* fsutil.c - placeholder until its module lands. */
