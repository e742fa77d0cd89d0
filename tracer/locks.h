/*
 * Lock findings of the tracer (locks.c, lockdep.c), from the hook events
 * LOCK_ACQUIRED / LOCK_RELEASED / AWAIT / RESUME / DONE / DESTROY:
 *
 *  - lock-not-released: a task ends holding a uvt_lock_t;
 *  - lock-held-across-await: a holder stays parked on something else for
 *    ASYNCIODEBUG_LOCK_MS while other tasks queue on its lock;
 *  - lock-order-inversion: two locks taken in both orders (lockdep.c).
 *
 * The recorder owns the per-task records and the finding rows; this part
 * owns per-task lock state (a word in the recorder's record, NULL for a
 * task that never touched a lock) and reports through the operations the
 * recorder registers, so the recorder calls in and never the reverse.
 */
#ifndef UVT_TRACER_LOCKS_H
#define UVT_TRACER_LOCKS_H

#include <stdint.h>
#include <uv.h>

#include "uvtask/hooks.h"

typedef struct uvt__lock_finding {
  uvt_finding_kind_t kind;
  void *owner;        /* the task's recorder record, or NULL */
  const char *file;   /* the site the diagnostic points at */
  int line;
  const char *func;
  const char *text;
  int64_t stack, stack2; /* stacks ids, 0: none */
  const char *where_file; /* the other site (await, other order) */
  int where_line;
  const char *where_what;
  int64_t duration_ns;
} uvt__lock_finding_t;

typedef struct uvt__lock_ops {
  /* Record and print a finding (on the loop thread). */
  void (*report)(const uvt__lock_finding_t *f);
  /* The calling task's stack without uvtask's frames, interned; 0: none. */
  int64_t (*capture)(void);
  /* A parked task's stack (its event's `object`), interned; 0: none. */
  int64_t (*parked_stack)(const void *object);
  /* The task's current name ("?" if none), and its object id. */
  const char *(*name)(void *owner);
  uint64_t (*id)(void *owner);
} uvt__lock_ops_t;

/* Before the first event: the recorder's operations (copied). */
void uvt__locks_start(const uvt__lock_ops_t *ops);

/* A lock event about the task whose recorder record is `owner`; `state`
 * is the record's lock word (NULL until the task's first lock event; the
 * DESTROY event frees it and sets it back to NULL).  The recorder calls
 * this for LOCK_ACQUIRED, LOCK_RELEASED and AWAIT on a lock always, and
 * for AWAIT, RESUME, DONE and DESTROY only when *state is not NULL: a task
 * that never touched a lock costs nothing here. */
void uvt__locks_event(const uvt_hook_event_t *ev, void *owner, void **state);

/* Who holds `lock` as the events tell it (this thread's loops): 1 and its
 * holder's object id and acquire site, or 0 if nobody is known to. */
int uvt__locks_holder(const void *lock, uint64_t *holder_id, const char **file,
                      int *line);

/* uvtask lets go of `loop`: close this part's timer on it. */
void uvt__locks_loop_close(uv_loop_t *loop);

/* ---- the lock-order graph (lockdep.c) ------------------------------------ */

/* A lock taken (or held), where and by which task. */
typedef struct uvt__lock_site {
  const void *lock;
  const char *file;
  int line;
  const char *func;
} uvt__lock_site_t;

/* Task `owner` takes `taken` while it holds held[0..nheld-1]: learn the
 * new orders and report an order that closes a cycle (once per order). */
void uvt__lockdep_acquire(void *owner, const uvt__lock_site_t *held, int nheld,
                          const uvt__lock_site_t *taken,
                          const uvt__lock_ops_t *ops);
/* The last component of a path (for sites inside a message); "?" for NULL. */
const char *uvt__base_name(const char *path);
/* In a forked child: the graph's mutex may have been held by a thread
 * that is gone. */
void uvt__lockdep_forget(void);

#endif
