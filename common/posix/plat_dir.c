/* plat_dir.c - placeholder until its module lands. */
