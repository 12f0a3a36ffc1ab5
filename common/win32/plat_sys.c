/* plat_sys.c - placeholder until its module lands. */
