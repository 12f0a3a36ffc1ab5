/* cfg.c - placeholder until its module lands. */
