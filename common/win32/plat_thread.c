/* plat_thread.c - placeholder until its module lands. */
