/* log.c - placeholder until its module lands. */
