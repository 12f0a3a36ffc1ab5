/* jwt.c - placeholder until its module lands. */
