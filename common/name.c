/* name.c - placeholder until its module lands. */
