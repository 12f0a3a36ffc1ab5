/* wide.c - placeholder until its module lands. */
