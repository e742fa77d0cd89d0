/*
 * The recorder: the hook subscriber that turns runtime events into rows.
 *
 * Per object it keeps a small record (tobj_t, in the object's subscriber
 * word, which this subscriber claims: uvt_hook_add_slot):
 * creation site and stack, parent, timings, outcome.  Objects start on
 * their thread's `young` list.  At each flush (every FLUSH_MS, on events
 * or from a per-loop timer) the young objects move to `mid`: they were
 * alive at a flush, so they keep a row of their own.  That row is written
 * when they end, or at the next flush if they are still alive then (and
 * they move to `old`).  So an object alive at one flush that ends before
 * the next gets one row, not two.  An object that ends while still young
 * and healthy is only counted in its creation site's statistics; one
 * involved in a finding gets its row at once.
 *
 * Findings the runtime decides (pending-at-exit, unretrieved-error,
 * never-awaited, unclosed-stream) arrive as UVT_HOOK_FINDING; this file
 * adds their stacks.  Findings it decides itself: slow-callback (a step or
 * runtime callback over ASYNCIODEBUG_SLOW_MS), yield-in-critical-section
 * (the first await inside each no-yield section) and wrong-thread; the
 * lock findings are locks.c's, reported through lock_report below.
 *
 * All of this runs on the loop thread that raised the event; the state is
 * per thread, so several loops on several threads need no locks here.
 */
#define UNW_LOCAL_ONLY
#include "tracer.h"
#include "uvtask/hooks.h"
#include "fpknown.h"
#include "intern.h"
#include "locks.h"
#include "watchdog.h"

#include <libunwind.h>

#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLUSH_MS 25
#define STEP_BUDGET 200000 /* timeline steps written per process */
/* Steps shorter than this are counted in the object's totals but get no
 * timeline row of their own: too short to see on a timeline, and most
 * steps are.  Slow steps always get one. */
#define STEP_MIN_NS 20000u
#define STATS_SLOTS 1024

typedef struct tobj_s {
  struct tobj_s *prev, *next;
  uint64_t id, parent_id;
  uint8_t kind;
  bool emitted, involved, ended, has_status, retrieved;
  bool survived; /* alive at a flush: it keeps a row */
  const char *file, *func;
  int line;
  int64_t create_stack, fail_stack;
  int64_t created_ns, ended_ns, retrieved_ns;
  int status;
  const char *name;  /* the creation name (static), or name_owned */
  char *name_owned;  /* copy of a name given by uvt_name (RENAME) */
  char *message;
  const char *fail_file;
  int fail_line;
  uint64_t steps, busy_ns, max_step_ns, step_start;
  int64_t section_stack;
  const char *section_file;
  int section_line;
  bool section_reported;
  /* Set by a finding raised on another thread (wrong-thread), which may
   * touch nothing else here: the object then keeps a row, so the report
   * can name where it was created. */
  uint8_t remote_involved;
  void *locks; /* locks.c's state for a task that touched a lock */

  /* The creating task's record, kept while this one lives: a row of ours
   * needs rows for our ancestors (the report walks parent_id), and an
   * ancestor that ended young and healthy would have none.  A record
   * whose object is gone stays allocated, off the lists, while records
   * of live descendants point at it (`children`: how many). */
  struct tobj_s *parent;
  uint32_t children;
  bool destroyed;
} tobj_t;

typedef struct {
  const char *file;
  int line;
  uint8_t kind;
  const char *name;
  uint64_t count, steps, busy_ns, max_step_ns;
} stat_t;

/* A timer per loop flushes young objects even when the loop has nothing
 * else to do (a program parked in a long sleep still gets its live tasks
 * written, so a SIGKILL loses at most FLUSH_MS plus a commit).  It runs
 * only while there are young objects, and is unref'd: it never keeps a
 * loop alive. */
typedef struct ltimer_s {
  struct ltimer_s *next;
  uv_loop_t *loop;
  uv_timer_t timer;
} ltimer_t;

typedef struct tstate_s {
  ltimer_t *timers;
  uint64_t now_hr; /* uvt__tclock() at the current step's start; 0: none */
  tobj_t *running; /* the record of the task whose step runs, or NULL */
  uint64_t snap_id, snap_tasks; /* the snapshot being sent, if any */
  rec_batch_t *batch; /* this thread's records not handed over yet */
  tobj_t young, mid, old; /* sentinels */
  uint64_t last_flush_ns;
  uint64_t live_tasks;
  /* Objects created since the count was last added to the session's
   * (uvt__stat_objects): at each flush, not per object, since a locked
   * add costs the loop thread as much as a task switch. */
  uint64_t new_objects;
  uint64_t cb_start;
  stat_t stats[STATS_SLOTS];
  size_t nstats;
  /* Records of destroyed objects, for the next ones: calloc bypasses
   * glibc's per-thread cache, and a spawn+await makes and drops one. */
  tobj_t *spare;
  size_t nspare;
} tstate_t;

/* Up to this many: a program that had 100k tasks at once will likely
 * again, and malloc and free of each record was a quarter of the loop
 * thread's recording cost per gathered task (callgrind; glibc
 * consolidates 100k frees).  At most ~30 MB, next to the 100k task
 * stacks such a program had. */
#define SPARE_KEEP 131072

static void spares_free(tstate_t *s) {
  while (s->spare != NULL) {
    tobj_t *o = s->spare;
    s->spare = o->next;
    free(o);
  }
  s->nspare = 0;
}

static _Thread_local tstate_t *ts __attribute__((tls_model("initial-exec")));

/* Add the objects `s` counted to the session's count. */
static void count_objects(tstate_t *s) {
  if (s->new_objects == 0) return;
  __atomic_add_fetch(&uvt__stat_objects, s->new_objects, __ATOMIC_RELAXED);
  s->new_objects = 0;
}

/* Wall-clock time without a clock read: object timestamps use the time of
 * the step (or callback) they happen in, which the recorder read anyway to
 * time the step.  On these virtual machines a clock read costs as much as
 * a task switch; a timestamp a step early is fine for a timeline. */
static int64_t wall_offset;
/* ASYNCIODEBUG_SLOW_MS in ns, set at start. */
static uint64_t slow_ns;

static int64_t step_wall(tstate_t *s) {
  if (s->now_hr == 0) s->now_hr = uvt__tclock();
  return (int64_t)s->now_hr + wall_offset;
}
static uint64_t steps_written;
static uintptr_t lib_lo, lib_hi; /* our own code: skipped in stacks */

/* In [lib_lo, lib_hi): one unsigned compare per frame, for the frames of
 * ours on top of every captured stack (~8 of them at a spawn). */
static inline bool ours(uintptr_t pc) { return pc - lib_lo < lib_hi - lib_lo; }


static pthread_key_t state_key;

/* A thread that exits hands over what it recorded; its state goes with it
 * unless objects it recorded are still alive (they point at it). */
static void state_release(void *p) {
  tstate_t *s = p;
  rec_t *tail, *head = uvt__rec_take(s->batch, &tail);
  if (head != NULL) {
    uvt__writer_enqueue(head, tail);
    uvt__writer_wake();
  }
  count_objects(s);
  uvt__rec_thread_exit();
  spares_free(s);
  if (s->young.next == &s->young && s->mid.next == &s->mid &&
      s->old.next == &s->old && s->timers == NULL) {
    if (ts == s) ts = NULL;
    free(s);
  }
}

static __attribute__((noinline)) tstate_t *state_new(void) {
  ts = calloc(1, sizeof(*ts));
  if (ts == NULL) return NULL;
  ts->young.next = ts->young.prev = &ts->young;
  ts->mid.next = ts->mid.prev = &ts->mid;
  ts->old.next = ts->old.prev = &ts->old;
  ts->batch = uvt__rec_batch();
  pthread_setspecific(state_key, ts);
  return ts;
}

/* Every event asks: the first one on a thread makes the state. */
static inline tstate_t *state(void) { return ts != NULL ? ts : state_new(); }

static void list_add(tobj_t *head, tobj_t *o) {
  o->next = head;
  o->prev = head->prev;
  head->prev->next = o;
  head->prev = o;
}

static void list_del(tobj_t *o) {
  o->prev->next = o->next;
  o->next->prev = o->prev;
  o->next = o->prev = o;
}

/* ---- batches --------------------------------------------------------------- */

/* Hand the calling thread's batch to the writer and wake it. */
void uvt__rec_submit(void) {
  rec_t *tail, *head = uvt__rec_take(uvt__rec_batch(), &tail);
  if (head == NULL) return;
  uvt__writer_enqueue(head, tail);
  uvt__writer_wake();
}

/* ---- stacks ------------------------------------------------------------------ */

static int find_self(struct dl_phdr_info *info, size_t size, void *arg) {
  uintptr_t me = (uintptr_t)arg, lo = UINTPTR_MAX, hi = 0;
  int i;
  (void)size;
  for (i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t a, b;
    if (ph->p_type != PT_LOAD) continue;
    a = info->dlpi_addr + ph->p_vaddr;
    b = a + ph->p_memsz;
    if (a < lo) lo = a;
    if (b > hi) hi = b;
  }
  if (me >= lo && me < hi) {
    lib_lo = lo;
    lib_hi = hi;
    return 1;
  }
  return 0;
}

/* The frames libunwind finds, as they are stored: uvtask's own dropped
 * from the top, so that the first frame is the user's call (the spawn,
 * the await); with `trim_bottom`, also from the bottom of a whole stack
 * (a task's entry and the context trampoline, under every task's stack,
 * which the report trims anyway), as the frame-pointer walk leaves them
 * out; at most the configured depth.  *complete: libunwind reached the
 * end of the stack. */
static inline __attribute__((always_inline)) int
unwind_user_stack(uint64_t *pcs, int want, bool trim_bottom, bool *complete) {
  void *buf[UVT_TRACE_MAX_PCS];
  int n, i = 0, m;
  wd_slot_t *slot = uvt__wd_slot_peek();
  if (slot != NULL) __atomic_store_n(&slot->in_capture, 1, __ATOMIC_RELEASE);
  n = unw_backtrace(buf, want);
  if (slot != NULL) __atomic_store_n(&slot->in_capture, 0, __ATOMIC_RELEASE);
  while (i < n && ours((uintptr_t)buf[i])) i++;
  /* All frames are ours when the user's frame was a tail call into
   * uvtask (`return uvt_fail(...)`): keep the stack below the tracer. */
  if (i >= n) {
    i = n > 3 ? 3 : n - 1;
    if (i < 0) return 0;
  } else if (trim_bottom && n < want && n - i <= uvt__tcfg.depth) {
    while (n - i > 1 && ours((uintptr_t)buf[n - 1])) n--;
  }
  m = n - i > uvt__tcfg.depth ? uvt__tcfg.depth : n - i;
  _Static_assert(sizeof(void *) == sizeof(uint64_t), "a return address is 64 bits");
  memcpy(pcs, buf + i, (size_t)m * sizeof(*pcs));
  *complete = n < want;
  return m;
}

/* The caller's stack without uvtask's own frames (unwind_user_stack), by
 * frame pointers where that gives the same frames (fpstack.c). */
static inline __attribute__((always_inline)) int64_t capture_user_stack_here(void) {
  uint64_t pcs[UVT_TRACE_MAX_PCS];
  int n, i = 0, want = uvt__tcfg.depth + 12;
  bool complete;
  if (want > UVT_TRACE_MAX_PCS) want = UVT_TRACE_MAX_PCS;
  if (uvt__tcfg.stacks == UVT__STACKS_AUTO && uvt__fpknown_table() != NULL) {
    uint64_t fp[UVT_TRACE_MAX_DEPTH];
    uvt__fp_bottom_t bottom;
    int upto = 0, k;
    n = uvt__fp_backtrace_known(fp, uvt__tcfg.depth, lib_lo, lib_hi, uvt__fpknown_table(),
                                &bottom, &upto);
    if (n > 0) return uvt__stack_intern_fast(fp, n);
    n = unwind_user_stack(pcs, want, true, &complete);
    /* A task's bottom the walk met for the first time: confirmed when
     * libunwind found the same frames up to it and nothing after it but
     * the library's (dropped), to the end. */
    if (bottom.ret != 0 && complete && n == upto) {
      for (k = 0; k < n && pcs[k] == fp[k]; k++)
        ;
      if (k == n) uvt__fp_bottom_learn(bottom);
    }
    return uvt__stack_intern_fast(pcs, n);
  }
  if (uvt__tcfg.stacks == UVT__STACKS_FP &&
      (n = uvt__fp_backtrace(pcs, want, lib_lo, lib_hi)) >= 0) {
    /* No lock, no signal-unsafe call: the watchdog may sample it. */
    while (i < n && ours(pcs[i])) i++;
    if (i >= n) i = n > 3 ? 3 : n - 1;
    if (i < 0) return 0;
    if (n - i > uvt__tcfg.depth) n = i + uvt__tcfg.depth;
    return uvt__stack_intern_fast(pcs + i, n - i);
  }
  return uvt__stack_intern_fast(pcs, unwind_user_stack(pcs, want, false, &complete));
}

/* Out of line for the rare captures; inlined into the creation event's
 * handler, where a frame less is one frame less for libunwind to step
 * over (~75 instructions). */
static __attribute__((noinline)) int64_t capture_user_stack(void) {
  return capture_user_stack_here();
}

/* ---- rows ------------------------------------------------------------------- */

static rec_t *object_rec(const tobj_t *o) {
  rec_t *r = uvt__rec_new(REC_OBJECT);
  if (r == NULL) return NULL;
  r->id = o->id;
  r->parent_id = o->parent_id;
  r->okind = uvt_object_kind_name((uvt_object_kind_t)o->kind);
  /* A creation name is static (on_create): no copy for the writer; a
   * name given by uvt_name dies with the object, which may be before
   * the writer gets to the row. */
  if (o->name_owned != NULL) r->name = strdup(o->name_owned);
  else r->name_static = o->name;
  r->file = o->file;
  r->line = o->line;
  r->func = o->func;
  r->create_stack = o->create_stack;
  r->created_ns = o->created_ns;
  r->ended = o->ended;
  r->ended_ns = o->ended_ns;
  r->has_status = o->has_status;
  r->status = o->status;
  r->message = o->message != NULL ? strdup(o->message) : NULL;
  r->fail_file = o->fail_file;
  r->fail_line = o->fail_line;
  r->fail_stack = o->fail_stack;
  r->retrieved = o->retrieved;
  r->retrieved_ns = o->retrieved_ns;
  r->steps = o->steps;
  r->busy_ns = o->busy_ns;
  r->max_step_ns = o->max_step_ns;
  return r;
}

static void emit_object(tobj_t *o) {
  rec_t *r = object_rec(o);
  tobj_t *p;
  if (r == NULL) return;
  uvt__rec_push(r);
  o->emitted = true;
  /* Ancestors without a row get one now (they are kept until then). */
  for (p = o->parent; p != NULL && !p->emitted; p = p->parent) {
    if ((r = object_rec(p)) == NULL) return;
    uvt__rec_push(r);
    p->emitted = true;
  }
}

void *uvt__recorder_state(void) { return ts; }

/* The record of object `id` on the lists of `s`, or NULL. */
static tobj_t *tobj_find(tstate_t *s, uint64_t id) {
  tobj_t *const lists[] = {&s->young, &s->mid, &s->old};
  size_t k;
  tobj_t *o;
  for (k = 0; k < 3; k++)
    for (o = lists[k]->next; o != lists[k]; o = o->next)
      if (o->id == id) return o;
  return NULL;
}

static void rows_append(rec_t **head, rec_t **last, rec_t *r, rec_t *r_tail) {
  if (r == NULL) return;
  if (*last != NULL) (*last)->next = r;
  else *head = r;
  *last = r_tail != NULL ? r_tail : r;
}

static const char *signal_words(int sig) {
  switch (sig) {
  case SIGSEGV: return "SIGSEGV (invalid memory access)";
  case SIGBUS: return "SIGBUS (bad memory access)";
  case SIGILL: return "SIGILL (illegal instruction)";
  case SIGFPE: return "SIGFPE (arithmetic error)";
  case SIGABRT: return "SIGABRT (abort)";
  default: return "a fatal signal";
  }
}

/* The `crash` finding of `end`, with its stack, and fresh rows for the
 * crashed task (its name now, not the one of its last row) and its
 * ancestors (a chain of parents must not end in "not recorded"). */
static void crash_finding(tstate_t *s, const session_end_t *end, rec_t **head,
                          rec_t **last) {
  char text[768], addr[48] = "";
  tobj_t *o = s != NULL && end->crash_task_id != 0
                  ? tobj_find(s, end->crash_task_id) : NULL;
  int n = end->crash_npcs < uvt__tcfg.depth ? end->crash_npcs : uvt__tcfg.depth;
  int64_t stack = n > 0 ? uvt__stack_intern(end->crash_pcs, n) : 0;
  rec_t *r, *t, *tail;
  if (end->has_addr)
    snprintf(addr, sizeof(addr), " at address 0x%llx",
             (unsigned long long)end->fault_addr);
  if (end->overflow_task_id != 0) {
    tobj_t *v = s != NULL ? tobj_find(s, end->overflow_task_id) : NULL;
    /* The canary is checked as a task switches away: the running task
     * may already be the next one; the finding is about the overrun. */
    if (v != NULL) o = v;
    snprintf(text, sizeof(text), "task '%s' overflowed its stack: %s%s",
             o != NULL && o->name ? o->name : "?", signal_words(end->signal), addr);
  } else if (o != NULL)
    snprintf(text, sizeof(text), "task '%s' crashed: %s%s", o->name ? o->name : "?",
             signal_words(end->signal), addr);
  else
    snprintf(text, sizeof(text), "the process crashed outside any task: %s%s",
             signal_words(end->signal), addr);
  __atomic_add_fetch(&uvt__stat_findings, 1, __ATOMIC_RELAXED);
  if (uvt__tcfg.log)
    fprintf(stderr, "asynciodebug: %s [crash]; see: uvtask report %s\n", text,
            uvt__tcfg.path);
  /* The interned stack's record is in this (the writer's) thread's batch. */
  t = uvt__rec_take(uvt__rec_batch(), &tail);
  rows_append(head, last, t, tail);
  for (; o != NULL; o = o->parent) rows_append(head, last, object_rec(o), NULL);
  if ((r = uvt__rec_new(REC_FINDING)) == NULL) return;
  r->fkind = uvt_finding_kind_name(UVT_FINDING_CRASH);
  r->object_id = o != NULL ? o->id : end->crash_task_id;
  r->message = strdup(text);
  r->stack = stack;
  r->where_what = end->signal == SIGSEGV ? "SIGSEGV" : end->signal == SIGBUS ? "SIGBUS"
                : end->signal == SIGILL ? "SIGILL" : end->signal == SIGFPE ? "SIGFPE"
                : end->signal == SIGABRT ? "SIGABRT" : NULL;
  r->ts_ns = uvt__now_ns();
  rows_append(head, last, r, NULL);
}

/* Called by the writer thread while the thread that owns `state` is
 * stopped in the crash handler: rows for the objects it had not written
 * yet (created since the last flush), plus the records it had not handed
 * over, plus the crash finding.  Best effort: if the crash hit inside the
 * recorder itself, the lists may be half updated, which is why the
 * handler's wait is bounded. */
static rec_t *crash_rows(void *state, const session_end_t *end, rec_t **tail) {
  tstate_t *s = state;
  rec_t *head = NULL, *last = NULL;
  tobj_t *o;
  *tail = NULL;
  if (s != NULL) {
    count_objects(s);
    head = uvt__rec_take(s->batch, &last);
    /* Both lists hold objects without a written row. */
    tobj_t *const lists[] = {&s->young, &s->mid};
    size_t k;
    for (k = 0; k < 2; k++)
      for (o = lists[k]->next; o != lists[k]; o = o->next)
        rows_append(&head, &last, object_rec(o), NULL);
  }
  if (end != NULL && end->crash) crash_finding(s, end, &head, &last);
  if (end != NULL && end->quit_snapshot) {
    rec_t *qt, *q = uvt__inspect_quit_rows(&qt);
    rows_append(&head, &last, q, qt);
  }
  *tail = last;
  return head;
}

static void stats_add(tstate_t *s, tobj_t *o) {
  size_t h = ((uintptr_t)o->file * 31u + (size_t)o->line * 7u + o->kind) % STATS_SLOTS;
  size_t i;
  for (i = 0; i < STATS_SLOTS; i++, h = (h + 1) % STATS_SLOTS) {
    stat_t *st = &s->stats[h];
    if (st->count == 0) {
      st->file = o->file;
      st->line = o->line;
      st->kind = o->kind;
      s->nstats++;
    } else if (st->file != o->file || st->line != o->line || st->kind != o->kind) {
      continue;
    }
    st->count++;
    st->steps += o->steps;
    st->busy_ns += o->busy_ns;
    if (o->max_step_ns > st->max_step_ns) st->max_step_ns = o->max_step_ns;
    return;
  }
  /* Table full: write the object's row instead; nothing is lost. */
  emit_object(o);
}

static void stats_flush(tstate_t *s) {
  size_t i;
  if (s->nstats == 0) return;
  for (i = 0; i < STATS_SLOTS; i++) {
    stat_t *st = &s->stats[i];
    rec_t *r;
    if (st->count == 0) continue;
    r = uvt__rec_new(REC_SITE_STAT);
    if (r != NULL) {
      r->okind = uvt_object_kind_name((uvt_object_kind_t)st->kind);
      r->file = st->file;
      r->line = st->line;
      r->count = st->count;
      r->steps = st->steps;
      r->busy_ns = st->busy_ns;
      r->max_step_ns = st->max_step_ns;
      uvt__rec_push(r);
    }
    memset(st, 0, sizeof(*st));
  }
  s->nstats = 0;
}

/* `all`: write every live object's row now (exit, loop close). */
static void flush_lists(tstate_t *s, uint64_t now, bool all) {
  tobj_t *o;
  s->last_flush_ns = now;
  while ((o = s->mid.next) != &s->mid) {
    list_del(o);
    emit_object(o);
    list_add(&s->old, o);
  }
  while ((o = s->young.next) != &s->young) {
    list_del(o);
    o->survived = true;
    if (all) {
      emit_object(o);
      list_add(&s->old, o);
    } else {
      list_add(&s->mid, o);
    }
  }
  stats_flush(s);
  count_objects(s);
  uvt__rec_submit();
}

static void flush(tstate_t *s, uint64_t now) { flush_lists(s, now, false); }

static void flush_timer_cb(uv_timer_t *h) {
  tstate_t *s = ts;
  if (s != NULL) flush(s, uvt__tclock());
  /* Objects moved to `mid` are written at the next flush. */
  if (s != NULL && s->mid.next != &s->mid)
    uv_timer_start(h, flush_timer_cb, FLUSH_MS, 0);
  else
    uv_timer_stop(h);
}

static void arm_flush_timer(tstate_t *s, uv_loop_t *loop) {
  ltimer_t *lt;
  if (loop == NULL) return;
  for (lt = s->timers; lt != NULL; lt = lt->next)
    if (lt->loop == loop) break;
  if (lt == NULL) {
    lt = calloc(1, sizeof(*lt));
    if (lt == NULL) return;
    lt->loop = loop;
    uvt__inspect_loop_seen(loop);
    /* Modules loaded since start (dlopen) are read too. */
    if (uvt__tcfg.stacks == UVT__STACKS_AUTO) uvt__fpknown_refresh(lib_lo, lib_hi);
    uv_timer_init(loop, &lt->timer);
    uv_unref((uv_handle_t *)&lt->timer);
    lt->next = s->timers;
    s->timers = lt;
  }
  if (!uv_is_active((uv_handle_t *)&lt->timer))
    uv_timer_start(&lt->timer, flush_timer_cb, FLUSH_MS, 0);
}

static void ltimer_closed(uv_handle_t *h) {
  free((ltimer_t *)((char *)h - offsetof(ltimer_t, timer)));
}

static void close_flush_timer(tstate_t *s, uv_loop_t *loop) {
  ltimer_t **pp;
  for (pp = &s->timers; *pp != NULL; pp = &(*pp)->next) {
    if ((*pp)->loop == loop) {
      ltimer_t *lt = *pp;
      *pp = lt->next;
      uv_close((uv_handle_t *)&lt->timer, ltimer_closed);
      return;
    }
  }
}

/* Flush if FLUSH_MS have passed; true if it did.  Called between steps
 * and before a callback's clock starts, never inside one: writing rows
 * for 100k live objects takes tens of milliseconds, which is the
 * recorder's time, not the next task's (it once made a task that only
 * sleeps a slow-callback finding, with flush_lists as its stack). */
static bool maybe_flush(tstate_t *s, uint64_t now) {
  if (now - s->last_flush_ns < (uint64_t)FLUSH_MS * 1000000u) return false;
  flush(s, now);
  return true;
}

void uvt__recorder_flush_all(void) {
  if (ts != NULL) flush_lists(ts, uvt__tclock(), true);
}

void uvt__tracer_print(const char *file, int line, const char *text,
                       uvt_finding_kind_t kind) {
  __atomic_add_fetch(&uvt__stat_findings, 1, __ATOMIC_RELAXED);
  if (uvt__tcfg.log)
    uvt__tracer_line("%s:%d: warning: %s [%s]", file ? file : "?", line, text,
                     uvt_finding_kind_name(kind));
}

/* The finding's row, in this thread's batch (not handed over yet). */
static void finding_push(tobj_t *o, uvt_finding_kind_t kind, const char *file,
                         int line, const char *func, const char *text,
                         int64_t stack, int64_t stack2, const char *where_file,
                         int where_line, const char *where_what, bool has_status,
                         int status, int64_t duration_ns, bool ignored) {
  rec_t *r = uvt__rec_new(REC_FINDING);
  if (o != NULL) {
    o->involved = true;
    emit_object(o);
  }
  if (r == NULL) return;
  r->fkind = uvt_finding_kind_name(kind);
  r->object_id = o != NULL ? o->id : 0;
  r->file = file;
  r->line = line;
  r->func = func;
  r->message = text != NULL ? strdup(text) : NULL;
  r->stack = stack;
  r->stack2 = stack2;
  r->where_file = where_file;
  r->where_line = where_line;
  r->where_what = where_what;
  r->has_status = has_status;
  r->status = status;
  r->duration_ns = duration_ns;
  r->ignored = ignored;
  r->ts_ns = uvt__now_ns();
  uvt__rec_push(r);
}

static void finding(tstate_t *s, tobj_t *o, uvt_finding_kind_t kind, const char *file,
                    int line, const char *func, const char *text,
                    int64_t stack, int64_t stack2, const char *where_file,
                    int where_line, const char *where_what, bool has_status,
                    int status, int64_t duration_ns, bool ignored) {
  finding_push(o, kind, file, line, func, text, stack, stack2, where_file,
               where_line, where_what, has_status, status, duration_ns, ignored);
  /* A finding goes to the writer now, not at the next flush. */
  (void)s;
  uvt__rec_submit();
}

/* ---- the hook ----------------------------------------------------------------- */

static tobj_t *tobj_of(const uvt_hook_event_t *ev) {
  return ev->slot != NULL ? *ev->slot : NULL;
}

static tobj_t *next_of(const uvt_hook_event_t *ev) {
  return ev->next_slot != NULL ? *ev->next_slot : NULL;
}

/* memset, but with 16-byte stores rather than the `rep stos` that x86-64
 * GCC's generic tuning picks for this size (UVT__TRACER_TUNE). */
static __attribute__((noinline)) UVT__TRACER_TUNE void tobj_clear(tobj_t *o) {
  memset(o, 0, sizeof(*o));
}

static void on_create(tstate_t *s, const uvt_hook_event_t *ev) {
  tobj_t *o;
  if (ev->slot == NULL) return;
  if (s->spare != NULL) {
    o = s->spare;
    s->spare = o->next;
    s->nspare--;
    tobj_clear(o);
  } else if ((o = calloc(1, sizeof(*o))) == NULL) {
    return;
  }
  o->id = ev->id;
  o->parent_id = ev->parent_id;
  if (s->running != NULL && ev->parent_id != 0 && s->running->id == ev->parent_id) {
    o->parent = s->running;
    o->parent->children++;
  }
  o->kind = (uint8_t)ev->object_kind;
  o->file = ev->file;
  o->line = ev->line;
  o->func = ev->func;
  /* A creation name is the spawned function's or a literal: it lives as
   * long as the program.  Names set later arrive as RENAME, copied. */
  o->name = ev->name;
  o->created_ns = step_wall(s);
  o->create_stack = capture_user_stack_here();
  *ev->slot = o;
  list_add(&s->young, o);
  arm_flush_timer(s, ev->loop);
  s->new_objects++;
  if (o->kind == UVT_OBJECT_TASK) {
    uint64_t live = ++s->live_tasks, peak;
    peak = __atomic_load_n(&uvt__stat_peak_tasks, __ATOMIC_RELAXED);
    while (live > peak && !__atomic_compare_exchange_n(
                              &uvt__stat_peak_tasks, &peak, live, true,
                              __ATOMIC_RELAXED, __ATOMIC_RELAXED))
      ;
  }
}

/* Free the record of a destroyed object unless records of live
 * descendants still point at it; then its parent may go too.  One that
 * never got a row is counted in its site's statistics. */
static void tobj_release(tstate_t *s, tobj_t *o) {
  while (o != NULL && o->destroyed && o->children == 0) {
    tobj_t *p = o->parent;
    if (!o->emitted) stats_add(s, o);
    /* Most have neither: no call into free for them. */
    if (o->name_owned != NULL) free(o->name_owned);
    if (o->message != NULL) free(o->message);
    if (s->nspare < SPARE_KEEP) {
      o->next = s->spare;
      s->spare = o;
      s->nspare++;
    } else {
      free(o);
    }
    if (p != NULL) p->children--;
    o = p;
  }
}

/* uvt_name's string belongs to the object and goes with it: copy it. */
static void on_rename(tobj_t *o, const char *name) {
  char *copy;
  if (name == NULL || (copy = strdup(name)) == NULL) return;
  free(o->name_owned);
  o->name_owned = copy;
  o->name = copy;
}

/* The step of `o` (the RESUME's object, or a combined SUSPEND's `next`)
 * begins at `now`. */
static void step_begins(tstate_t *s, tobj_t *o, const uvt_hook_event_t *ev,
                        uint64_t now) {
  /* Before the step's clock starts (and before the watchdog sees a
   * step): the flush is billed to no task. */
  if (maybe_flush(s, now)) now = uvt__tclock();
  if (o != NULL) {
    wd_slot_t *slot = uvt__wd_slot();
    o->step_start = now;
    s->now_hr = now;
    if (o->kind == UVT_OBJECT_TASK) s->running = o;
    if (slot != NULL) {
      __atomic_store_n(&slot->step_seq, slot->step_seq + 1, __ATOMIC_RELEASE);
      __atomic_store_n(&slot->step_start, now, __ATOMIC_RELEASE);
    }
    if (o->locks != NULL) {
      if (ev->kind == UVT_HOOK_RESUME) {
        uvt__locks_event(ev, o, &o->locks);
      } else {
        /* The combined switch's RESUME, as its own event for locks.c. */
        uvt_hook_event_t r = {.kind = UVT_HOOK_RESUME,
                              .object_kind = UVT_OBJECT_TASK,
                              .id = ev->next_id, .task_id = ev->next_id,
                              .name = ev->next_name, .loop = ev->loop,
                              .object = ev->next, .slot = ev->next_slot};
        uvt__locks_event(&r, o, &o->locks);
      }
    }
  }
}

/* Ends the step of `o` at `now`; true if it wrote a row or a finding
 * (the recorder's own time, after `now`). */
/* A step over the slow threshold: its finding, with the watchdog's sample
 * of where the loop was stuck.  Out of line: it is rare, and its buffer
 * and calls would weigh on every event's hook(). */
static __attribute__((noinline, cold)) void slow_step(tstate_t *s, tobj_t *o,
                                                      const uvt_hook_event_t *ev,
                                                      uint64_t dur) {
  char text[768];
  int64_t blocked = 0;
  wd_slot_t *slot = uvt__wd_slot_peek();
  /* The watchdog's sample of this very step: where the loop was stuck. */
  if (slot != NULL &&
      __atomic_load_n(&slot->sample_done, __ATOMIC_ACQUIRE) == slot->step_seq &&
      slot->npcs > 0) {
    int i = 0, n = slot->npcs;
    while (i < n && ours(slot->pcs[i])) i++;
    if (n - i > uvt__tcfg.depth) n = i + uvt__tcfg.depth;
    if (i < n) blocked = uvt__stack_intern(slot->pcs + i, n - i);
  }
  snprintf(text, sizeof(text), "task '%s' blocked the loop for %llu ms%s%s%s",
           o->name ? o->name : "?", (unsigned long long)(dur / 1000000),
           ev->what ? " before " : "", ev->what ? ev->what : "",
           ev->what ? "" : " (until it ended)");
  uvt__tracer_print(o->file, o->line, text, UVT_FINDING_SLOW_CALLBACK);
  finding(s, o, UVT_FINDING_SLOW_CALLBACK, o->file, o->line, o->func, text, blocked,
          0, ev->where_file, ev->where_line, ev->what, false, 0,
          (int64_t)dur, false);
}

static bool on_suspend(tstate_t *s, tobj_t *o, const uvt_hook_event_t *ev,
                       uint64_t now) {
  uint64_t dur = now - o->step_start;
  bool slow = dur >= (uint64_t)uvt__tcfg.slow_ms * 1000000u;
  o->steps++;
  o->busy_ns += dur;
  if (dur > o->max_step_ns) o->max_step_ns = dur;
  if (slow) slow_step(s, o, ev, dur);
  if ((o->emitted && dur >= STEP_MIN_NS) || slow) {
    if (slow || __atomic_add_fetch(&steps_written, 1, __ATOMIC_RELAXED) <= STEP_BUDGET) {
      rec_t *r = uvt__rec_new(REC_STEP);
      if (r != NULL) {
        r->object_id = o->id;
        r->ts_ns = (int64_t)o->step_start + wall_offset;
        r->duration_ns = (int64_t)dur;
        r->slow = slow;
        uvt__rec_push(r);
      }
    } else {
      __atomic_add_fetch(&uvt__stat_shed, 1, __ATOMIC_RELAXED);
    }
    return true;
  }
  return false;
}

/* Where a suspended task is parked (its event's object), 0 if unknown. */
static int64_t parked_stack(const void *object) {
  uvt_task_frame_t frame;
  uint64_t pcs[UVT_TRACE_MAX_PCS];
  int n, i = 0, want = uvt__tcfg.depth + 8;
  if (object == NULL || uvt_hook_task_frame(object, &frame) != 0) return 0;
  if (want > UVT_TRACE_MAX_PCS) want = UVT_TRACE_MAX_PCS;
  n = uvt__stack_of_parked(&frame, pcs, want);
  /* Drop the runtime's own frames: the first frame shown is the await. */
  while (i < n && ours(pcs[i])) i++;
  if (n - i > uvt__tcfg.depth) n = i + uvt__tcfg.depth;
  return i < n ? uvt__stack_intern(pcs + i, n - i) : 0;
}

/* The finding_members rows of a FINDING event (a deadlock's tasks), right
 * after its finding row in the batch.  Each member keeps an objects row. */
static void push_members(const uvt_hook_event_t *ev) {
  int i, k;
  for (i = 0; i < ev->nmembers; i++) {
    const uvt_hook_member_t *m = &ev->members[i];
    tobj_t *mo = m->slot != NULL ? *m->slot : NULL;
    uint64_t holder = 0;
    const char *afile = NULL;
    int aline = 0;
    rec_t *r;
    if (mo != NULL) {
      mo->involved = true;
      emit_object(mo);
    }
    if ((r = uvt__rec_new(REC_MEMBER)) == NULL) return;
    r->count = (uint64_t)i;
    r->object_id = m->id;
    r->name = m->name != NULL ? strdup(m->name) : NULL;
    r->where_what = uvt_wait_kind_name(m->wait);
    r->where_file = m->where_file;
    r->where_line = m->where_line;
    /* What it waits for: a task of the group, or a lock and its holder. */
    /* A deadlock's member i waits on member i + 1 (or a lock it holds):
     * tried first, so that a cycle of thousands costs no square. */
    k = (i + 1) % ev->nmembers;
    if (m->wait_on != NULL && ev->members[k].object == m->wait_on)
      r->id = ev->members[k].id;
    for (k = 0; r->id == 0 && m->wait_on != NULL && m->wait != UVT_WAIT_LOCK &&
                k < ev->nmembers; k++)
      if (ev->members[k].object == m->wait_on) r->id = ev->members[k].id;
    if (m->wait == UVT_WAIT_LOCK &&
        uvt__locks_holder(m->wait_on, &holder, &afile, &aline)) {
      r->parent_id = holder;
      r->file = afile;
      r->line = aline;
    }
    r->stack = parked_stack(m->object);
    /* The task whose park closed the cycle sends the event just before it
     * parks, so it has no parked frame yet: it is running here, inside
     * the very await it is about to park in.  Its stack now, without
     * uvtask's frames, is that parked stack. */
    if (r->stack == 0 && m->object != NULL && m->object == ev->object)
      r->stack = capture_user_stack();
    uvt__rec_push(r);
  }
}

static __attribute__((noinline)) void on_await(tstate_t *s, tobj_t *o,
                                                const uvt_hook_event_t *ev);

static __attribute__((noinline)) void on_finding(tstate_t *s, tobj_t *o, const uvt_hook_event_t *ev) {
  int64_t stack = 0;
  /* The runtime flags a call that may yield, with the call's site; the
   * section's site and stack are kept here (NO_YIELD_BEGIN). */
  if (ev->finding == UVT_FINDING_YIELD_IN_CRITICAL_SECTION && o != NULL) {
    on_await(s, o, ev);
    return;
  }
  if (ev->finding == UVT_FINDING_PENDING_AT_EXIT &&
      ev->object_kind == UVT_OBJECT_TASK) {
    stack = parked_stack(ev->object);
  } else if (ev->finding == UVT_FINDING_UNRETRIEVED_ERROR && o != NULL) {
    stack = o->fail_stack;
  }
  /* An ignored object's finding is recorded, marked, but not counted. */
  if (!ev->ignored)
    __atomic_add_fetch(&uvt__stat_findings, 1, __ATOMIC_RELAXED);
  finding_push(o, ev->finding, ev->file, ev->line, ev->func, ev->message, stack,
               0, ev->where_file, ev->where_line, ev->what, ev->status != 0,
               ev->status, 0, ev->ignored != 0);
  push_members(ev);
  (void)s;
  uvt__rec_submit();
}

static __attribute__((noinline)) void on_await(tstate_t *s, tobj_t *o, const uvt_hook_event_t *ev) {
  char text[768];
  if (ev->no_yield_depth <= 0 || o->section_reported) return;
  o->section_reported = true;
  if (ev->kind == UVT_HOOK_FINDING && ev->message != NULL) {
    /* The runtime printed it already (unless told not to). */
    snprintf(text, sizeof(text), "%s", ev->message);
    __atomic_add_fetch(&uvt__stat_findings, 1, __ATOMIC_RELAXED);
  } else {
    snprintf(text, sizeof(text),
             "task '%s' awaits (%s) inside a no-yield section begun at %s:%d",
             o->name ? o->name : "?", ev->what ? ev->what : "?",
             o->section_file ? o->section_file : "?", o->section_line);
    uvt__tracer_print(ev->where_file, ev->where_line, text,
                      UVT_FINDING_YIELD_IN_CRITICAL_SECTION);
  }
  finding(s, o, UVT_FINDING_YIELD_IN_CRITICAL_SECTION, ev->where_file, ev->where_line,
          ev->where_func, text, capture_user_stack(), o->section_stack,
          o->section_file, o->section_line, ev->what, false, 0, 0, false);
}

static __attribute__((noinline)) void on_wrong_thread(tstate_t *s, tobj_t *o, const uvt_hook_event_t *ev) {
  char text[768];
  const char *file = ev->where_file ? ev->where_file : ev->file;
  int line = ev->where_file ? ev->where_line : ev->line;
  snprintf(text, sizeof(text),
           "%s called from a thread that does not run the loop%s%s%s",
           ev->what ? ev->what : "a uvtask call", ev->name ? " (object '" : "",
           ev->name ? ev->name : "", ev->name ? "')" : "");
  rec_t *r;
  /* This runs on the wrong thread: the object's record belongs to the
   * loop thread, so only the event's own facts are used here, and one
   * flag is set for the loop thread to read. */
  if (o != NULL) __atomic_store_n(&o->remote_involved, 1, __ATOMIC_RELEASE);
  uvt__tracer_print(file, line, text, UVT_FINDING_WRONG_THREAD);
  r = uvt__rec_new(REC_FINDING);
  if (r == NULL) return;
  r->fkind = uvt_finding_kind_name(UVT_FINDING_WRONG_THREAD);
  r->object_id = ev->id;
  r->file = file;
  r->line = line;
  r->func = ev->where_func;
  r->message = strdup(text);
#if defined(__SANITIZE_THREAD__)
  /* Under TSan, libunwind's per-thread cache destructor crashes the
   * foreign thread when it exits (inside TSan's mutex interceptor), so
   * the stack of the wrong thread is left out of TSan builds only. */
  r->stack = 0;
#else
  r->stack = capture_user_stack();
#endif
  /* The call itself, as an await site is for the other kinds; where the
   * object was made comes from its own row. */
  r->where_file = file;
  r->where_line = line;
  r->where_what = ev->what;
  r->ts_ns = uvt__now_ns();
  uvt__rec_push(r);
  (void)s;
  uvt__rec_submit();
}

/* ---- lock findings (locks.c decides them) --------------------------------- */

static void lock_report(const uvt__lock_finding_t *f) {
  tstate_t *s = state();
  if (s == NULL) return;
  uvt__tracer_print(f->file, f->line, f->text, f->kind);
  finding(s, f->owner, f->kind, f->file, f->line, f->func, f->text, f->stack,
          f->stack2, f->where_file, f->where_line, f->where_what, false, 0,
          f->duration_ns, false);
}

static const char *lock_owner_name(void *owner) {
  const tobj_t *o = owner;
  return o != NULL && o->name != NULL ? o->name : "?";
}

static uint64_t lock_owner_id(void *owner) {
  const tobj_t *o = owner;
  return o != NULL ? o->id : 0;
}

static const uvt__lock_ops_t lock_ops = {lock_report, capture_user_stack,
                                         parked_stack, lock_owner_name,
                                         lock_owner_id};

/* ---- snapshots ----------------------------------------------------------- */

static uint64_t snapshot_seq; /* snapshot numbers, per process (session) */

/* "id id id": the tasks awaiting this one, for the await tree. */
static char *awaiter_ids(const uvt_hook_event_t *ev) {
  char *out;
  size_t cap, len = 0;
  int i;
  if (ev->nmembers <= 0) return NULL;
  cap = (size_t)ev->nmembers * 21 + 1;
  if ((out = malloc(cap)) == NULL) return NULL;
  out[0] = '\0';
  for (i = 0; i < ev->nmembers; i++)
    len += (size_t)snprintf(out + len, cap - len, "%s%llu", i ? " " : "",
                            (unsigned long long)ev->members[i].id);
  return out;
}

static __attribute__((noinline)) void on_snapshot(tstate_t *s, tobj_t *o, const uvt_hook_event_t *ev) {
  rec_t *r;
  if (ev->kind == UVT_HOOK_SNAPSHOT_BEGIN) {
    s->snap_id = __atomic_add_fetch(&snapshot_seq, 1, __ATOMIC_RELAXED);
    s->snap_tasks = 0;
    return;
  }
  if (s->snap_id == 0) return;
  if (ev->kind == UVT_HOOK_SNAPSHOT_END) {
    if ((r = uvt__rec_new(REC_SNAPSHOT)) != NULL) {
      r->id = s->snap_id;
      r->fkind = uvt_snapshot_reason_name(ev->status);
      r->ts_ns = uvt__now_ns();
      r->count = s->snap_tasks;
      uvt__rec_push(r);
    }
    s->snap_id = 0;
    /* Whoever asked is polling the file: write it now. */
    uvt__rec_submit();
    return;
  }
  /* A task in a snapshot keeps a row: the report and `uvtask ps` name
   * its ancestors from there. */
  if (o != NULL && !o->emitted) emit_object(o);
  if ((r = uvt__rec_new(REC_SNAP_TASK)) == NULL) return;
  s->snap_tasks++;
  r->id = s->snap_id;
  r->object_id = ev->id;
  r->parent_id = ev->parent_id;
  r->name = ev->name != NULL ? strdup(ev->name) : NULL;
  r->okind = uvt_task_state_name(ev->state);
  r->fkind = ev->wait != UVT_WAIT_NONE ? uvt_wait_kind_name(ev->wait) : NULL;
  r->where_what = ev->what;
  r->wait_on_id = ev->wait_on_id;
  r->where_file = ev->where_file;
  r->where_line = ev->where_line;
  r->where_func = ev->where_func;
  r->file = ev->file;
  r->line = ev->line;
  r->func = ev->func;
  if (ev->parked_ns != 0) {
    uint64_t now = uv_hrtime();
    r->duration_ns = now > ev->parked_ns ? (int64_t)(now - ev->parked_ns) : 0;
  }
  if (ev->state == UVT_TASK_PARKED || ev->state == UVT_TASK_READY)
    r->stack = parked_stack(ev->object);
  r->message = awaiter_ids(ev);
  uvt__rec_push(r);
}

/* What DONE, RETRIEVED and DESTROY do to a record `o`, after its locks'
 * events: shared by hook() and life_event(). */
static inline void record_done(tstate_t *s, tobj_t *o, int status) {
  o->ended = true;
  o->ended_ns = step_wall(s);
  o->has_status = true;
  o->status = status;
  if (o->kind == UVT_OBJECT_TASK && s->live_tasks > 0) s->live_tasks--;
}

static inline void record_retrieved(tstate_t *s, tobj_t *o) {
  if (o->retrieved) return;
  o->retrieved = true;
  o->retrieved_ns = step_wall(s);
}

static inline void record_destroyed(tstate_t *s, tobj_t *o, void **slot) {
  if (!o->ended) {
    o->ended = true;
    o->ended_ns = step_wall(s);
  }
  if (o == s->running) s->running = NULL;
  if (o->emitted || o->involved || o->survived ||
      __atomic_load_n(&o->remote_involved, __ATOMIC_ACQUIRE))
    emit_object(o);
  list_del(o);
  *slot = NULL;
  o->destroyed = true;
  tobj_release(s, o);
}

static void hook(const uvt_hook_event_t *ev, void *data) {
  tstate_t *s = state();
  tobj_t *o;
  uint64_t now;
  (void)data;
  if (s == NULL) return;
  o = tobj_of(ev);
  switch (ev->kind) {
  case UVT_HOOK_CREATE:
    on_create(s, ev);
    break;
  case UVT_HOOK_RESUME:
    step_begins(s, o, ev, uvt__tclock());
    break;
  case UVT_HOOK_SUSPEND: {
    wd_slot_t *slot = uvt__wd_slot_peek();
    if (slot != NULL) __atomic_store_n(&slot->step_start, 0, __ATOMIC_RELEASE);
    now = uvt__tclock();
    s->running = NULL;
    /* A step that wrote a row or a finding took the recorder's time
     * after `now`: the next step's clock starts after it. */
    if (o != NULL && on_suspend(s, o, ev, now)) now = uvt__tclock();
    s->now_hr = now; /* what follows happens between steps */
    /* A direct switch (uvt_hook_combine_switches): the next task's step
     * begins at the same instant, without a RESUME of its own. */
    if (ev->next != NULL) step_begins(s, next_of(ev), ev, now);
    break;
  }
  case UVT_HOOK_DONE:
    if (o == NULL) break;
    if (o->locks != NULL) uvt__locks_event(ev, o, &o->locks);
    record_done(s, o, ev->status);
    if (ev->message != NULL) {
      free(o->message);
      o->message = strdup(ev->message);
    }
    /* A future's error is set by a call on the setter's stack (a task's
     * DONE comes at its end, where only uvtask's frames are left; its
     * stack was taken at uvt_fail). */
    if (o->kind == UVT_OBJECT_FUTURE && ev->status < 0 && o->fail_stack == 0)
      o->fail_stack = capture_user_stack();
    break;
  case UVT_HOOK_RETRIEVED:
    if (o != NULL) record_retrieved(s, o);
    break;
  case UVT_HOOK_RENAME:
    if (o != NULL) on_rename(o, ev->name);
    break;
  case UVT_HOOK_FAIL:
    if (o != NULL) {
      o->fail_file = ev->where_file;
      o->fail_line = ev->where_line;
      o->fail_stack = capture_user_stack();
    }
    break;
  case UVT_HOOK_DESTROY:
    if (o == NULL) break;
    if (o->locks != NULL) uvt__locks_event(ev, o, &o->locks);
    record_destroyed(s, o, ev->slot);
    break;
  case UVT_HOOK_NO_YIELD_BEGIN:
    if (o != NULL && ev->no_yield_depth == 1) {
      o->section_reported = false;
      o->section_file = ev->where_file;
      o->section_line = ev->where_line;
      o->section_stack = capture_user_stack();
    }
    break;
  case UVT_HOOK_AWAIT:
    if (o == NULL) break;
    on_await(s, o, ev);
    if (o->locks != NULL || ev->wait == UVT_WAIT_LOCK)
      uvt__locks_event(ev, o, &o->locks);
    break;
  case UVT_HOOK_LOCK_ACQUIRED:
  case UVT_HOOK_LOCK_RELEASED:
    if (o != NULL) uvt__locks_event(ev, o, &o->locks);
    break;
  case UVT_HOOK_FINDING:
    on_finding(s, o, ev);
    break;
  case UVT_HOOK_WRONG_THREAD:
    on_wrong_thread(s, o, ev);
    break;
  case UVT_HOOK_CALLBACK_BEGIN:
    now = uvt__tclock();
    if (maybe_flush(s, now)) now = uvt__tclock();
    s->cb_start = s->now_hr = now;
    break;
  case UVT_HOOK_CALLBACK_END:
    now = uvt__tclock();
    if (s->cb_start != 0 &&
        now - s->cb_start >= (uint64_t)uvt__tcfg.slow_ms * 1000000u) {
      char text[256];
      snprintf(text, sizeof(text), "uvtask's %s callback blocked the loop for %llu ms",
               ev->what ? ev->what : "?",
               (unsigned long long)((now - s->cb_start) / 1000000));
      uvt__tracer_print(__FILE__, __LINE__, text, UVT_FINDING_SLOW_CALLBACK);
      finding(s, NULL, UVT_FINDING_SLOW_CALLBACK, NULL, 0, NULL, text, 0, 0, NULL, 0,
              ev->what, false, 0, (int64_t)(now - s->cb_start), false);
    }
    s->cb_start = 0;
    break;
  case UVT_HOOK_SNAPSHOT_BEGIN:
  case UVT_HOOK_SNAPSHOT_TASK:
  case UVT_HOOK_SNAPSHOT_END:
    on_snapshot(s, o, ev);
    break;
  case UVT_HOOK_LOOP_CLOSE:
    uvt__inspect_loop_gone(ev->loop);
    flush_lists(s, uvt__tclock(), true);
    close_flush_timer(s, ev->loop);
    uvt__locks_loop_close(ev->loop);
    break;
  default:
    break;
  }
}

/* A direct switch from `prev` to `next` without an event
 * (uvt_hook_switch_callback): the usual case, a short step of a task
 * that holds no lock, with no flush due.  Anything else (a slow step, a
 * timeline row, locks to track, a flush, a record missing) is declined
 * to the combined SUSPEND event, before anything here changed. */
static int fast_switch(const void *prev, void **prev_slot, const void *next,
                       void **next_slot, void *data) {
  tstate_t *s = ts;
  tobj_t *o, *n;
  wd_slot_t *slot;
  uint64_t now, dur;
  (void)prev, (void)next, (void)data;
  if (s == NULL || (o = *prev_slot) == NULL || (n = *next_slot) == NULL ||
      o->locks != NULL || n->locks != NULL)
    return 1;
  now = uvt__tclock();
  dur = now - o->step_start;
  if (dur >= slow_ns || (o->emitted && dur >= STEP_MIN_NS) ||
      now - s->last_flush_ns >= (uint64_t)FLUSH_MS * 1000000u)
    return 1;
  o->steps++;
  o->busy_ns += dur;
  if (dur > o->max_step_ns) o->max_step_ns = dur;
  n->step_start = now;
  s->now_hr = now;
  s->running = n;
  if ((slot = uvt__wd_slot_peek()) != NULL) {
    __atomic_store_n(&slot->step_seq, slot->step_seq + 1, __ATOMIC_RELEASE);
    __atomic_store_n(&slot->step_start, now, __ATOMIC_RELEASE);
  }
  return 0;
}

/* DONE, RETRIEVED, DESTROY without an event (uvt_hook_life_callback):
 * the usual case, a record without locks, and a task's DONE without a
 * message.  Anything else is declined to the event, before anything here
 * changed. */
static int life_event(uvt_hook_kind_t kind, const void *object, void **slot,
                      int status, const char *message, void *data) {
  tstate_t *s = ts;
  tobj_t *o;
  (void)object, (void)data;
  if (s == NULL || (o = *slot) == NULL || o->locks != NULL) return 1;
  switch (kind) {
  case UVT_HOOK_DONE:
    if (message != NULL || o->kind != UVT_OBJECT_TASK) return 1;
    record_done(s, o, status);
    return 0;
  case UVT_HOOK_RETRIEVED:
    record_retrieved(s, o);
    return 0;
  case UVT_HOOK_DESTROY:
    record_destroyed(s, o, slot);
    return 0;
  default:
    return 1;
  }
}

/* A forked child's session counts its own objects (session.c zeroes the
 * count): not those its parent's thread had not added yet. */
static void forget_counts_in_child(void) {
  if (ts != NULL) ts->new_objects = 0;
}

void uvt__recorder_start(void) {
  pthread_key_create(&state_key, state_release);
  pthread_atfork(NULL, NULL, forget_counts_in_child);
  uvt__tclock_init();
  slow_ns = (uint64_t)uvt__tcfg.slow_ms * 1000000u;
  wall_offset = uvt__now_ns() - (int64_t)uvt__tclock();
  dl_iterate_phdr(find_self, (void *)(uintptr_t)uvt__recorder_start);
  if (uvt__tcfg.stacks == UVT__STACKS_AUTO) uvt__fpknown_refresh(lib_lo, lib_hi);
  uvt__writer_set_crash_rows(crash_rows);
  uvt_hook_set_findings_log(uvt__tcfg.log);
  uvt__locks_start(&lock_ops);
  if (uvt_hook_add_slot(hook, NULL) != 0)
    fprintf(stderr, "asynciodebug: another subscriber holds the objects' "
                    "hook slot; not recording objects\n");
  /* AWAIT serves the no-yield check and the lock tracker only (on_await,
   * locks.c): those are the awaits the runtime still sends. */
  (void)uvt_hook_filter_awaits(hook, NULL);
  /* A direct switch as one event: one clock read and dispatch less. */
  (void)uvt_hook_combine_switches(hook, NULL);
  (void)uvt_hook_switch_callback(hook, NULL, fast_switch);
  /* And the end of an object's life without events. */
  (void)uvt_hook_life_callback(hook, NULL, life_event);
}
