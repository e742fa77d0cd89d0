/*
 * Leak assertions for test suites (include/uvtask/testing.h): the part
 * that needs no test framework.
 *
 * What is a leak.  At the end of a test, anything the test started that is
 * still alive: a task still pending, a coroutine object never consumed, a
 * task or future whose error nobody read, a stream or server still open.
 * Two sources say so:
 *
 *   - the scheduler's registry (internal.h), walked from inside a task by
 *     uvt_assert_no_leaks: every live object with its kind, name and
 *     creation site, and for tasks their state and where they are parked;
 *   - the thread's findings (findings.h), which uvt_run fills when it ends
 *     (and, during the run, when a released handle's error was never read),
 *     read by uvt_assert_no_leaks_after_run.
 *
 * Both produce the same texts, built by leak_text() from a leak_t, so that
 * a leak reads the same whichever check found it.
 *
 * Settling.  A task the test just woke may be one pass away from ending:
 * as goleak retries, the live check first yields (a few passes, which
 * finishes what is ready) and then sleeps in 1 ms steps until no other
 * task it would count is pending, for at most settle_ms.  It never cancels
 * anything.  Tasks waiting for the checking task (its waiters, and theirs)
 * and the loop's main task are not leaks: they are blocked on the check
 * itself, or uvt_run waits for them anyway.
 *
 * State.  The settle time and the test's name are process-wide, guarded
 * by one mutex; the ignore list is ignore.c's.  The result of the last check (the
 * report and one text per leak) is per thread and owned here until the
 * next check on that thread, so a caller never frees it.  Nothing touches
 * the disk: each Criterion job is its own process.
 */
#include "internal.h"
#include "findings.h"
#include "uvtask/testing.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SETTLE_MS 100
/* Passes given by plain yields before settling sleeps 1 ms at a time. */
#define SETTLE_YIELDS 16
#define TEST_NAME_MAX 256

/* ---- process-wide settings ------------------------------------------------ */

static uv_once_t settings_once = UV_ONCE_INIT;
static uv_mutex_t settings_mutex;
static int64_t settle_ms = DEFAULT_SETTLE_MS;
static char test_name[TEST_NAME_MAX];
static bool has_test_name;

static void settings_init(void) {
  if (uv_mutex_init(&settings_mutex) != 0)
    uvt__panic("cannot initialise the leak checks' mutex");
}

static void settings_lock(void) {
  uv_once(&settings_once, settings_init);
  uv_mutex_lock(&settings_mutex);
}

static void settings_unlock(void) { uv_mutex_unlock(&settings_mutex); }


int64_t uvt_leaks_set_settle_ms(int64_t ms) {
  int64_t prev;
  settings_lock();
  prev = settle_ms;
  if (ms >= 0) settle_ms = ms;
  settings_unlock();
  return prev;
}

static int64_t settle_limit_ms(void) { return uvt_leaks_set_settle_ms(-1); }

void uvt_testing_set_name(const char *name) {
  settings_lock();
  if (name == NULL) {
    has_test_name = false;
    test_name[0] = '\0';
  } else {
    snprintf(test_name, sizeof(test_name), "%s", name);
    has_test_name = true;
  }
  settings_unlock();
}

/* A copy for another thread (uvt_hook_test_name: a recorder keeps it
 * with its session); false when no name is set. */
bool uvt__testing_name_copy(char *buf, size_t size) {
  bool has;
  settings_lock();
  has = has_test_name;
  if (has) snprintf(buf, size, "%s", test_name);
  settings_unlock();
  return has;
}

const char *uvt_testing_name(void) {
  const char *name;
  settings_lock();
  name = has_test_name ? test_name : NULL;
  settings_unlock();
  return name;
}

/* ---- the last check's result (per thread) ---------------------------------- */

static _Thread_local char *last_report;
static _Thread_local char **last_items;
static _Thread_local size_t last_n, last_cap;

static void last_reset(void) {
  size_t i;
  for (i = 0; i < last_n; i++) free(last_items[i]);
  free(last_items);
  free(last_report);
  last_items = NULL;
  last_report = NULL;
  last_n = last_cap = 0;
}

/* Keep `text` (taken over) as the next leak.  Out of memory, the text is
 * lost but the leak still counts. */
static void last_add(char *text) {
  if (text == NULL) return;
  if (last_n == last_cap) {
    size_t cap = last_cap ? last_cap * 2 : 8;
    char **nv = realloc(last_items, cap * sizeof(*nv));
    if (nv == NULL) {
      free(text);
      return;
    }
    last_items = nv;
    last_cap = cap;
  }
  last_items[last_n++] = text;
}

const char *uvt_leak_text(size_t i) {
  return i < last_n ? last_items[i] : NULL;
}

/* Join the kept texts as "file:line: text\n" lines. */
static const char *last_finish(const char *file, int line) {
  size_t i, len = 0;
  char prefix[512];
  size_t plen;
  char *p;
  if (file != NULL) snprintf(prefix, sizeof(prefix), "%s:%d: ", file, line);
  else prefix[0] = '\0';
  plen = strlen(prefix);
  for (i = 0; i < last_n; i++) len += plen + strlen(last_items[i]) + 1;
  free(last_report);
  last_report = p = malloc(len + 1);
  if (p == NULL) return "";
  for (i = 0; i < last_n; i++) {
    size_t tl = strlen(last_items[i]);
    memcpy(p, prefix, plen);
    p += plen;
    memcpy(p, last_items[i], tl);
    p += tl;
    *p++ = '\n';
  }
  *p = '\0';
  return last_report;
}

/* ---- what a leak says ------------------------------------------------------ */

typedef enum {
  LEAK_PENDING = 1,     /* a task not done */
  LEAK_ERROR,           /* a failed task or future, error never read */
  LEAK_NEVER_AWAITED,   /* a coroutine object never consumed */
  LEAK_UNCLOSED,        /* a stream or server still open */
  LEAK_UNRELEASED,      /* a task or future handle never given up */
  LEAK_DEADLOCK,        /* tasks that wait on each other (waitfor.c) */
  LEAK_OTHER            /* a finding of a kind added later */
} leak_kind_t;

typedef struct {
  leak_kind_t kind;
  const char *what; /* "task", "future", "coroutine", "stream", "server" */
  const char *name;
  const char *file;
  int line;
  const char *func;
  /* LEAK_PENDING: where the task is parked; at_what NULL: never started. */
  const char *at_what;
  const char *at_file;
  int at_line;
  bool ready; /* woken, not yet run again */
  /* What it waits on (both libraries record it, for the deadlock
   * check), and the awaited task, if it awaits one. */
  uint8_t wait;
  const char *on_name, *on_file;
  int on_line;
  /* LEAK_ERROR */
  int status;
  const char *message;
  const char *finding; /* LEAK_OTHER: the finding's kind */
} leak_t;

static char *text_printf(const char *fmt, ...) UVT__PRINTF(1, 2);
static char *text_printf(const char *fmt, ...) {
  va_list ap;
  char *s = NULL;
  va_start(ap, fmt);
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  va_end(ap);
  return s;
}

static const char *or_q(const char *s) { return s != NULL ? s : "?"; }

/* The function a UVT_TEST body compiles to reads better as the test's
 * name: "(cache::refresh)" rather than "(uvt__test_body_cache_refresh)". */
static const char *display_func(const char *func) {
  static const char prefix[] = "uvt__test_body_";
  const char *test;
  if (func != NULL && strncmp(func, prefix, sizeof(prefix) - 1) == 0 &&
      (test = uvt_testing_name()) != NULL)
    return test;
  return or_q(func);
}

/* ", waiting for task 'b' created at f.c:12", ", waiting on a lock";
 * "" when the kind is not known or says nothing the await's name does not
 * (a sleep, a yield).  Tasks parked on each other name each other so. */
static const char *wait_text(const leak_t *k, char *buf, size_t size) {
  if (k->wait == UVT_WAIT_NONE || k->wait == UVT_WAIT_SLEEP || k->wait == UVT_WAIT_YIELD)
    return "";
  if (k->wait == UVT_WAIT_TASK && k->on_file != NULL)
    snprintf(buf, size, ", waiting for task '%s' created at %s:%d", or_q(k->on_name),
             k->on_file, k->on_line);
  else
    snprintf(buf, size, ", waiting on %s %s",
             k->wait == UVT_WAIT_EVENT ? "an" : "a",
             uvt_wait_kind_name((uvt_wait_kind_t)k->wait));
  return buf;
}

/* "leaked task 'refresher' created at src/cache.c:77 (cache_open), parked
 * in uvt_sleep at src/cache.c:93" and its siblings. */
static char *leak_text(const leak_t *k) {
  char made[768], waiting[512];
  snprintf(made, sizeof(made), "created at %s:%d (%s)", or_q(k->file), k->line,
           display_func(k->func));
  switch (k->kind) {
  case LEAK_PENDING:
    if (k->at_what == NULL)
      return text_printf("leaked task '%s' %s, never started", or_q(k->name),
                         made);
    return text_printf("leaked task '%s' %s, %s %s at %s:%d%s", or_q(k->name),
                       made, k->ready ? "ready to run after" : "parked in",
                       k->at_what, or_q(k->at_file), k->at_line,
                       k->ready ? "" : wait_text(k, waiting, sizeof(waiting)));
  case LEAK_ERROR: {
    char who[320];
    if (strcmp(k->what, "future") == 0 &&
        (k->name == NULL || strcmp(k->name, "future") == 0))
      snprintf(who, sizeof(who), "future");
    else
      snprintf(who, sizeof(who), "%s '%s'", k->what, or_q(k->name));
    return text_printf("leaked error of %s %s: failed with %d (%s)%s%s%s; "
                       "nobody read it",
                       who, made, k->status, uvt_strerror(k->status),
                       k->message ? " \"" : "", k->message ? k->message : "",
                       k->message ? "\"" : "");
  }
  case LEAK_NEVER_AWAITED:
    return text_printf("leaked coroutine '%s' %s, never awaited",
                       or_q(k->name), made);
  case LEAK_UNCLOSED:
    return text_printf("leaked %s '%s' %s, never closed", k->what,
                       or_q(k->name), made);
  case LEAK_UNRELEASED:
    return text_printf("leaked handle of %s '%s' %s, neither awaited nor "
                       "detached",
                       k->what, or_q(k->name), made);
  case LEAK_DEADLOCK:
    /* The cycle by name, where it closed, and who closed it. */
    return text_printf("deadlock: %s; closed by task '%s' %s, parked in %s "
                       "at %s:%d",
                       or_q(k->message), or_q(k->name), made, or_q(k->at_what),
                       or_q(k->at_file), k->at_line);
  default:
    return text_printf("leaked %s '%s' %s [%s]", or_q(k->what), or_q(k->name),
                       made, or_q(k->finding));
  }
}

/* Count the leak unless ignored; keep its text. */
static int leak_add(const leak_t *k) {
  if (uvt__leaks_ignored(k->name, k->func)) return 0;
  last_add(leak_text(k));
  return 1;
}

/* An error the runtime would report as unretrieved when released. */
static bool error_unread(const uvt__obj_t *o, const uvt__outcome_t *out) {
  return out->done && !out->retrieved && out->status < 0 &&
         out->status != UVT_ECANCELED &&
         !(o->reported & UVT__REPORTED_UNRETRIEVED);
}

/* ---- tasks blocked on the caller --------------------------------------------- */

typedef struct {
  uvt_task_t **v;
  size_t n, cap;
  uvt_task_t *local[32];
} taskset_t;

static bool taskset_has(const taskset_t *ts, const uvt_task_t *t) {
  size_t i;
  for (i = 0; i < ts->n; i++)
    if (ts->v[i] == t) return true;
  return false;
}

static void taskset_add(taskset_t *ts, uvt_task_t *t) {
  if (taskset_has(ts, t)) return;
  if (ts->n == ts->cap) {
    size_t cap = ts->cap * 2;
    uvt_task_t **nv = malloc(cap * sizeof(*nv));
    if (nv == NULL) return; /* it will just count as pending */
    memcpy(nv, ts->v, ts->n * sizeof(*nv));
    if (ts->v != ts->local) free(ts->v);
    ts->v = nv;
    ts->cap = cap;
  }
  ts->v[ts->n++] = t;
}

/* `self` and every task waiting for it, directly or through others. */
static void taskset_blocked_on(taskset_t *ts, uvt_task_t *self) {
  size_t i;
  ts->v = ts->local;
  ts->n = 0;
  ts->cap = sizeof(ts->local) / sizeof(ts->local[0]);
  taskset_add(ts, self);
  for (i = 0; i < ts->n; i++) {
    uvt__waiter_t *w;
    for (w = ts->v[i]->out.waiters.head; w != NULL; w = w->next)
      if (w->task != NULL) taskset_add(ts, w->task);
  }
}

static void taskset_free(taskset_t *ts) {
  if (ts->v != ts->local) free(ts->v);
}

/* A task the live check would count as pending (ignore list aside). */
static bool pending_other(const uvt_task_t *t, const uvt__sched_t *s,
                          const taskset_t *blocked) {
  return !t->out.done && t != s->main && !taskset_has(blocked, t);
}

static int count_pending(uvt_task_t *self) {
  uvt__sched_t *s = self->sched;
  taskset_t blocked;
  uvt__obj_t *o;
  int n = 0;
  taskset_blocked_on(&blocked, self);
  for (o = s->registry.next; o != &s->registry; o = o->next)
    if (o->kind == UVT_OBJECT_TASK &&
        pending_other((uvt_task_t *)o, s, &blocked) &&
        !uvt__leaks_ignored(o->name, o->func))
      n++;
  taskset_free(&blocked);
  return n;
}

/* Yield, then sleep 1 ms at a time, until no other counted task is pending
 * or the settle time has passed; the parks carry the caller's site. */
static int settle(uvt_task_t *self, const char *file, int line,
                  const char *what) {
  uint64_t deadline = uv_hrtime() + (uint64_t)settle_limit_ms() * 1000000u;
  int step, n, st;
  for (step = 0;; step++) {
    n = count_pending(self);
    if (n == 0 || uv_hrtime() >= deadline) return n;
    st = step < SETTLE_YIELDS ? uvt_yield_at(file, line, what)
                              : uvt_sleep_at(1, file, line, what);
    if (st == UVT_ECANCELED) {
      /* The cancel was meant for the test, not for us: deliver it again
       * at the task's next await. */
      uvt__task_cancel(self);
      return count_pending(self);
    }
  }
}

int uvt_leaks_settle(void) {
  uvt_task_t *self = uvt__task_current();
  if (self == NULL) return UVT_ENOTASK;
  return settle(self, __FILE__, __LINE__, "uvt_leaks_settle");
}

/* ---- the checks ------------------------------------------------------------------ */

static int check_registry(uvt_task_t *self) {
  uvt__sched_t *s = self->sched;
  taskset_t blocked;
  uvt__obj_t *o;
  int n = 0;
  taskset_blocked_on(&blocked, self);
  for (o = s->registry.next; o != &s->registry; o = o->next) {
    leak_t k;
    memset(&k, 0, sizeof(k));
    k.name = o->name;
    k.file = o->file;
    k.line = o->line;
    k.func = o->func;
    switch (o->kind) {
    case UVT_OBJECT_TASK: {
      uvt_task_t *t = (uvt_task_t *)o;
      k.what = "task";
      if (pending_other(t, s, &blocked)) {
        k.kind = LEAK_PENDING;
        if (t->state != UVT_TASK_CREATED) {
          k.at_what = or_q(t->parked_at.what);
          k.at_file = t->parked_at.file;
          k.at_line = t->parked_at.line;
          k.ready = t->state == UVT_TASK_READY;
          k.wait = t->parked_at.wait;
          if (k.wait == UVT_WAIT_TASK && t->parked_at.on != NULL) {
            const uvt__obj_t *w = t->parked_at.on;
            k.on_name = w->name;
            k.on_file = w->file;
            k.on_line = w->line;
          }
        }
        n += leak_add(&k);
      } else if (error_unread(o, &t->out)) {
        k.kind = LEAK_ERROR;
        k.status = t->out.status;
        k.message = t->out.message;
        n += leak_add(&k);
      }
      break;
    }
    case UVT_OBJECT_FUTURE: {
      uvt_future_t *f = (uvt_future_t *)o;
      if (error_unread(o, &f->out)) {
        k.kind = LEAK_ERROR;
        k.what = "future";
        k.status = f->out.status;
        k.message = f->out.message;
        n += leak_add(&k);
      }
      break;
    }
    case UVT_OBJECT_CORO:
      k.kind = LEAK_NEVER_AWAITED;
      k.what = "coroutine";
      n += leak_add(&k);
      break;
    case UVT_OBJECT_STREAM:
    case UVT_OBJECT_SERVER:
      k.kind = LEAK_UNCLOSED;
      k.what = o->kind == UVT_OBJECT_STREAM ? "stream" : "server";
      n += leak_add(&k);
      break;
    default:
      break;
    }
  }
  taskset_free(&blocked);
  return n;
}

/* The thread's findings as leaks; `only_kind` NULL takes every kind. */
static int check_findings(uvt_finding_kind_t only_kind) {
  size_t nf, i;
  const uvt__finding_t *f = uvt__findings(&nf);
  int n = 0;
  for (i = 0; i < nf; i++) {
    leak_t k;
    if (only_kind != UVT_FINDING_NONE && f[i].kind != only_kind) continue;
    memset(&k, 0, sizeof(k));
    k.what = f[i].what;
    k.name = f[i].name;
    k.file = f[i].file;
    k.line = f[i].line;
    k.func = f[i].func;
    switch (f[i].kind) {
    case UVT_FINDING_PENDING_AT_EXIT:
      k.kind = LEAK_PENDING;
      k.at_what = f[i].parked_what;
      k.at_file = f[i].parked_file;
      k.at_line = f[i].parked_line;
      k.wait = f[i].parked_wait;
      k.on_name = f[i].waits_for;
      k.on_file = f[i].waits_for_file;
      k.on_line = f[i].waits_for_line;
      break;
    case UVT_FINDING_UNRETRIEVED_ERROR:
      k.kind = LEAK_ERROR;
      k.status = f[i].status;
      k.message = f[i].message;
      break;
    case UVT_FINDING_NEVER_AWAITED:
      k.kind = LEAK_NEVER_AWAITED;
      break;
    case UVT_FINDING_UNCLOSED_STREAM:
      k.kind = LEAK_UNCLOSED;
      break;
    case UVT_FINDING_UNRELEASED_HANDLE:
      k.kind = LEAK_UNRELEASED;
      break;
    case UVT_FINDING_DEADLOCK:
      k.kind = LEAK_DEADLOCK;
      k.message = f[i].message;
      k.at_what = f[i].parked_what;
      k.at_file = f[i].parked_file;
      k.at_line = f[i].parked_line;
      break;
    default:
      k.kind = LEAK_OTHER;
      k.finding = uvt_finding_kind_name(f[i].kind);
      break;
    }
    n += leak_add(&k);
  }
  return n;
}

int uvt_assert_no_leaks_at(const char **report, const char *file, int line) {
  uvt_task_t *self = uvt__task_current();
  int n;
  last_reset();
  if (self == NULL) {
    if (report != NULL) *report = "";
    return UVT_ENOTASK;
  }
  settle(self, file, line, "uvt_assert_no_leaks");
  /* Errors of handles already released were reported, not kept: count
   * them from the findings; no await may come between the two reads. */
  n = check_findings(UVT_FINDING_UNRETRIEVED_ERROR);
  /* A cycle first: the pending tasks listed next are its members. */
  n += check_findings(UVT_FINDING_DEADLOCK);
  n += check_registry(self);
  if (report != NULL) *report = last_finish(file, line);
  else last_finish(file, line);
  return n;
}

int uvt_assert_no_leaks_after_run_at(const char **report, const char *file,
                                     int line) {
  int n;
  last_reset();
  n = check_findings(UVT_FINDING_NONE);
  if (report != NULL) *report = last_finish(file, line);
  else last_finish(file, line);
  return n;
}
