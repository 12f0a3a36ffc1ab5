/* plat_file.c - placeholder until its module lands. */
