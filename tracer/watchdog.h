/*
 * The watchdog that samples a blocked loop thread (see watchdog.c).
 */
#ifndef UVT_TRACER_WATCHDOG_H
#define UVT_TRACER_WATCHDOG_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "tracer.h"

#define WD_MAX_PCS UVT_TRACE_MAX_PCS

/* One per loop thread.  step_start/step_seq are written by the loop
 * thread; sample_seq by the watchdog; pcs/npcs by whoever samples, before
 * sample_done is stored (release). */
typedef struct wd_slot_s {
  int ready;
  pid_t tid;
  pthread_t thread;
  uint64_t step_start;  /* uv_hrtime() of the running step, 0 when idle */
  uint64_t step_seq;    /* number of the running step */
  uint64_t sample_seq;  /* last step the watchdog chose to sample */
  uint64_t sample_done; /* last step whose sample is in pcs */
  int in_capture;       /* the tracer is unwinding: do not interrupt */
  int npcs;
  uint64_t pcs[WD_MAX_PCS];
} wd_slot_t;

/* The calling thread's slot (registered on first use: call it only from a
 * loop thread's task step); NULL when the watchdog is not running or no
 * slot is left.  _peek never registers. */
wd_slot_t *uvt__wd_slot(void);
wd_slot_t *uvt__wd_slot_peek(void);
void uvt__watchdog_start(void);
void uvt__watchdog_stop(void);
void uvt__watchdog_forget(void);

#endif
