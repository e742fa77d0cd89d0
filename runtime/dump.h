/*
 * The task listing's writer (dump.c), shared by uvt_dump and the SIGQUIT
 * handler: a buffer flushed to a FILE or, with no FILE, to a descriptor
 * with write(2).
 */
#ifndef UVT_RUNTIME_DUMP_H
#define UVT_RUNTIME_DUMP_H

#include "internal.h"

typedef struct uvt__dump_sink_s {
  FILE *file; /* stdio, or NULL: write(2) to fd */
  int fd;
  char buf[512];
  size_t n;
} uvt__dump_sink_t;

/* List the tasks of `s` into `o` and flush it; returns how many.  Without
 * `may_allocate` (a signal handler) tasks are neither grouped nor drawn
 * as a tree, and nothing but write(2) is called.  On the loop's thread,
 * or with that thread stopped. */
size_t uvt__dump_sched(const uvt__sched_t *s, uvt__dump_sink_t *o,
                       bool may_allocate);

#endif
