/*
 * The bugs the runtime itself notices, in both variants: tasks pending at
 * exit, errors nobody read, coroutine objects never awaited.
 *
 * Each is printed once per object on stderr as a compiler-style line
 * ("file:line: warning: ... [kind]") and appended to the current thread's
 * list of findings, which uvt_run keeps after it returns so that the leak
 * assertions (testing.h) can read it.  The debug library also sends each
 * as a FINDING hook event (a recorder adds stacks).  Objects on the
 * uvt_leaks_ignore list are neither printed nor counted; their events say
 * so (`ignored`).
 */
#ifndef UVT_RUNTIME_FINDINGS_H
#define UVT_RUNTIME_FINDINGS_H

#include "internal.h"

typedef struct uvt__finding_s {
  uvt_finding_kind_t kind;
  const char *what;       /* "task", "coroutine", "future" */
  char *name;             /* owned copy */
  const char *file;       /* creation site (static strings) */
  int line;
  const char *func;
  const char *parked_what; /* pending tasks: the await they are parked in */
  const char *parked_file;
  int parked_line;
  uint8_t parked_wait;     /* uvt_wait_kind_t; 0: not known */
  char *waits_for;         /* owned: the awaited task's name, if a task */
  const char *waits_for_file; /* and its creation site */
  int waits_for_line;
  int status;              /* unretrieved errors */
  char *message;           /* owned copy, or NULL */
} uvt__finding_t;

/* No lines on stderr (uvt_hook_set_findings_log(0): a subscriber prints
 * them itself, or was told not to). */
extern int uvt__findings_quiet;

void uvt__finding_pending(uvt_task_t *t, const char *when);
/* Out of line and cold: reached from the await path (a task released
 * with an error nobody read), whose flatten would otherwise inline its
 * 3 KiB of text buffers into every await's frame, on the task's stack. */
void uvt__finding_unretrieved(uvt__obj_t *o, uvt__outcome_t *out)
    __attribute__((noinline, cold));
void uvt__finding_never_awaited(uvt_coro_t *c);
/* A stream or server still open at shutdown (asyncio's unclosed
 * transport); `what` is "stream" or "server". */
void uvt__finding_unclosed(uvt__obj_t *o, const char *what);

/* Whether an object named `name`, made in `func`, is on the
 * uvt_leaks_ignore list (leaks.c): its findings are not printed nor
 * counted, though subscribers still see them, marked ignored. */
bool uvt__leaks_ignored(const char *name, const char *func);

/* A task or future handle still held (references left) when uvt_run or
 * uvt_loop_close ends: neither awaited nor detached, a C memory leak. */
void uvt__finding_unreleased(uvt__obj_t *o, int refs);

/* A deadlock closed by `t` parking at `where` (waitfor.c prints its
 * lines): kept in the list with `summary` as its message. */
void uvt__finding_deadlock(uvt_task_t *t, const uvt__site_t *where,
                           const char *summary);
/* A stall (stall.c prints it): kept in the list, on the task `t`. */
void uvt__finding_stall(uvt_task_t *t, const char *summary);
/* `what` ("uvt_lock_acquire"), called at file:line inside the no-yield
 * section of `t`, may suspend.  Printed and sent to the hooks; not kept
 * in the thread's list, which the leak checks read: it is not a leak. */
void uvt__finding_yield_in_section(uvt_task_t *t, const char *what,
                                   const char *file, int line,
                                   const char *func);

/* The findings of this thread since uvt__findings_reset(). */
const uvt__finding_t *uvt__findings(size_t *n);
void uvt__findings_reset(void);

#endif
