/*
 * Looking inside a live recording process: `uvtask ps PID`.
 *
 * The command checks that PID is recording (its session in the file has
 * no end and its process is the one that began it), then sends it
 * UVT_PS_SIGNAL, which only a recording process handles (this file
 * installs the handler when a session begins; a process that is not
 * recording would die of it, hence the check).  The handler asks every
 * loop the recorder has seen for a snapshot (uvt_hook_request_snapshot:
 * an atomic store and a uv_async_send, both safe there); each loop's
 * thread then sends the snapshot events, which the recorder turns into
 * snapshots rows and commits at once.  The command reads them through the
 * WAL.  A loop stuck inside a task step cannot answer until the step ends:
 * the command says so after its wait.
 *
 * SIGQUIT (session.c's handler) takes its snapshot here too, without the
 * loops' help: a loop may be the very thread the signal stopped.  The
 * handler walks the tasks (uvt_hook_snapshot_now) into static memory,
 * unwinding each parked one from its saved registers; the writer thread,
 * which the handler then waits for, turns them into rows
 * (uvt__inspect_quit_rows) before the default action dumps core.
 *
 * Loops are kept in a fixed array written under a mutex by loop threads
 * and read without it by the handler (each slot is one atomic pointer).
 */
#define UNW_LOCAL_ONLY
#include "tracer.h"
#include "schema.h"
#include "uvtask/hooks.h"

#include <libunwind.h>

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_LOOPS 64

static uintptr_t self_lo, self_hi; /* uvtask's own code, skipped in stacks */

static uv_loop_t *loops[MAX_LOOPS];
static pthread_mutex_t loops_mutex = PTHREAD_MUTEX_INITIALIZER;

void uvt__inspect_loop_seen(uv_loop_t *loop) {
  int i, free_slot = -1;
  if (loop == NULL) return;
  /* On the loop's thread: a module loaded since start gets its name. */
  uvt__modtab_refresh();
  pthread_mutex_lock(&loops_mutex);
  for (i = 0; i < MAX_LOOPS; i++) {
    uv_loop_t *l = __atomic_load_n(&loops[i], __ATOMIC_RELAXED);
    if (l == loop) break;
    if (l == NULL && free_slot < 0) free_slot = i;
  }
  if (i == MAX_LOOPS && free_slot >= 0)
    __atomic_store_n(&loops[free_slot], loop, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&loops_mutex);
}

void uvt__inspect_loop_gone(uv_loop_t *loop) {
  int i;
  pthread_mutex_lock(&loops_mutex);
  for (i = 0; i < MAX_LOOPS; i++)
    if (__atomic_load_n(&loops[i], __ATOMIC_RELAXED) == loop)
      __atomic_store_n(&loops[i], NULL, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&loops_mutex);
}

int uvt__inspect_request_all(int reason) {
  int i, n = 0;
  for (i = 0; i < MAX_LOOPS; i++) {
    uv_loop_t *l = __atomic_load_n(&loops[i], __ATOMIC_ACQUIRE);
    if (l != NULL && uvt_hook_request_snapshot(l, reason) == 0) n++;
  }
  return n;
}

static void on_ps_signal(int sig, siginfo_t *info, void *uctx) {
  (void)sig, (void)info, (void)uctx;
  uvt__inspect_request_all(UVT_SNAPSHOT_PS);
}

void uvt__inspect_start(void) {
  struct sigaction sa, old;
  uvt__module_range((const void *)(uintptr_t)uvt__inspect_start, &self_lo, &self_hi);
  /* A program that uses this signal itself keeps it. */
  if (sigaction(UVT_PS_SIGNAL, NULL, &old) != 0 ||
      (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
    return;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = on_ps_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(UVT_PS_SIGNAL, &sa, NULL);
}

void uvt__inspect_forget(void) {
  memset(loops, 0, sizeof(loops));
  pthread_mutex_init(&loops_mutex, NULL);
}

/* ---- the SIGQUIT snapshot ------------------------------------------------ */

#define QUIT_TASKS 512
#define QUIT_AWAITERS 8

typedef struct {
  uint64_t id, parent_id, wait_on_id, parked_ns;
  const char *name, *file, *func, *where_file, *where_func, *what;
  int line, where_line, npcs, nawaiters;
  uvt_task_state_t state;
  uvt_wait_kind_t wait;
  uint64_t pcs[UVT_TRACE_MAX_PCS];
  uint64_t awaiters[QUIT_AWAITERS];
} quit_task_t;

static quit_task_t quit_tasks[QUIT_TASKS];
static bool quit_unwind_ready; /* uvt__inspect_quit_prepare made libunwind ready */
static int quit_n, quit_more;
static int64_t quit_ts;

static void quit_take(const uvt_hook_event_t *ev, void *data) {
  quit_task_t *q;
  uvt_task_frame_t f;
  int i;
  (void)data;
  if (ev->kind != UVT_HOOK_SNAPSHOT_TASK) return;
  if (quit_n == QUIT_TASKS) {
    quit_more++;
    return;
  }
  q = &quit_tasks[quit_n++];
  q->id = ev->id;
  q->parent_id = ev->parent_id;
  q->wait_on_id = ev->wait_on_id;
  q->parked_ns = ev->parked_ns;
  q->name = ev->name;
  q->file = ev->file;
  q->func = ev->func;
  q->line = ev->line;
  q->where_file = ev->where_file;
  q->where_func = ev->where_func;
  q->where_line = ev->where_line;
  q->what = ev->what;
  q->state = ev->state;
  q->wait = ev->wait;
  q->nawaiters = ev->nmembers < QUIT_AWAITERS ? ev->nmembers : QUIT_AWAITERS;
  for (i = 0; i < q->nawaiters; i++) q->awaiters[i] = ev->members[i].id;
  q->npcs = 0;
  /* The task that was running when the signal came has no saved frame:
   * the accessor refuses it. */
  if (__atomic_load_n(&quit_unwind_ready, __ATOMIC_ACQUIRE) &&
      uvt_hook_task_frame(ev->object, &f) == 0)
    q->npcs = uvt__stack_of_parked(&f, q->pcs, UVT_TRACE_MAX_PCS);
}

void uvt__inspect_quit_capture(void) {
  quit_n = quit_more = 0;
  quit_ts = uvt__now_ns();
  uvt_hook_snapshot_now(UVT_SNAPSHOT_SIGQUIT, quit_take, NULL);
}

static void append(rec_t **head, rec_t **last, rec_t *r) {
  if (r == NULL) return;
  if (*last != NULL) (*last)->next = r;
  else *head = r;
  *last = r;
}

rec_t *uvt__inspect_quit_rows(rec_t **tail) {
  static uint64_t snap_id = 1u << 30; /* apart from the loops' numbers */
  rec_t *head = NULL, *last = NULL, *r, *stk, *stk_tail;
  int i;
  for (i = 0; i < quit_n; i++) {
    quit_task_t *q = &quit_tasks[i];
    int k = 0, n = q->npcs;
    if ((r = uvt__rec_new(REC_SNAP_TASK)) == NULL) break;
    while (k < n && q->pcs[k] >= self_lo && q->pcs[k] < self_hi) k++;
    if (n - k > uvt__tcfg.depth) n = k + uvt__tcfg.depth;
    r->stack = k < n ? uvt__stack_intern(q->pcs + k, n - k) : 0;
    r->id = snap_id;
    r->object_id = q->id;
    r->parent_id = q->parent_id;
    r->name = q->name != NULL ? strdup(q->name) : NULL;
    r->okind = uvt_task_state_name(q->state);
    r->fkind = q->wait != UVT_WAIT_NONE ? uvt_wait_kind_name(q->wait) : NULL;
    r->where_what = q->what;
    r->wait_on_id = q->wait_on_id;
    r->where_file = q->where_file;
    r->where_line = q->where_line;
    r->where_func = q->where_func;
    r->file = q->file;
    r->line = q->line;
    r->func = q->func;
    if (q->parked_ns != 0) {
      uint64_t now = uvt__tclock();
      r->duration_ns = now > q->parked_ns ? (int64_t)(now - q->parked_ns) : 0;
    }
    if (q->nawaiters > 0 && (r->message = malloc((size_t)q->nawaiters * 21 + 1)) != NULL) {
      size_t len = 0;
      int a;
      r->message[0] = '\0';
      for (a = 0; a < q->nawaiters; a++)
        len += (size_t)snprintf(r->message + len, (size_t)q->nawaiters * 21 + 1 - len,
                                "%s%llu", a ? " " : "", (unsigned long long)q->awaiters[a]);
    }
    append(&head, &last, r);
  }
  if ((r = uvt__rec_new(REC_SNAPSHOT)) != NULL) {
    r->id = snap_id;
    r->fkind = uvt_snapshot_reason_name(UVT_SNAPSHOT_SIGQUIT);
    r->ts_ns = quit_ts;
    r->count = (uint64_t)i;
    append(&head, &last, r);
  }
  snap_id++;
  /* The stacks interned above are in this (the writer's) thread's batch. */
  stk = uvt__rec_take(uvt__rec_batch(), &stk_tail);
  if (stk != NULL) {
    stk_tail->next = head;
    head = stk;
    if (last == NULL) last = stk_tail;
  }
  *tail = last;
  return head;
}

/* ---- SIGQUIT's frames on stderr ------------------------------------------ */

/* A line assembled without stdio or malloc, written with one write(2). */
typedef struct {
  char buf[1024];
  size_t n;
} line_t;

static void line_put(line_t *l, const char *s) {
  for (; *s != '\0' && l->n < sizeof(l->buf) - 1; s++)
    l->buf[l->n++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
}

static void line_num(line_t *l, unsigned long long v, unsigned base) {
  char tmp[24];
  int k = 0;
  do tmp[k++] = "0123456789abcdef"[v % base]; while ((v /= base) != 0);
  while (k > 0 && l->n < sizeof(l->buf) - 1) l->buf[l->n++] = tmp[--k];
}

static void line_end(line_t *l, int fd) {
  size_t done = 0;
  l->buf[l->n++] = '\n';
  while (done < l->n) {
    ssize_t w = write(fd, l->buf + done, l->n - done);
    if (w <= 0) break;
    done += (size_t)w;
  }
  l->n = 0;
}

/* "    #3 /path/module+0x1a2b": `pc` is a return address (every frame of
 * a parked task, and the outer frames of a running thread), so the offset
 * printed is pc - 1, inside the call: addr2line then names the calling
 * line, not the next one. */
static void put_frame(int fd, int k, uint64_t pc, bool is_return) {
  line_t l;
  uintptr_t off;
  const char *mod;
  l.n = 0;
  if (is_return && pc > 0) pc--;
  line_put(&l, "    #");
  line_num(&l, (unsigned long long)k, 10);
  line_put(&l, " ");
  if ((mod = uvt__modtab_find((uintptr_t)pc, &off)) != NULL) {
    line_put(&l, mod);
    line_put(&l, "+0x");
    line_num(&l, off, 16);
  } else {
    line_put(&l, "0x");
    line_num(&l, pc, 16);
    line_put(&l, " (in no module known)");
  }
  line_end(&l, fd);
}

/* The module table, and libunwind past its first use (which takes locks
 * and reads /proc): neither can be done in the handler.  libunwind keeps
 * a pipe open from then on; under a limit of open files as low as the one
 * below which recording turns itself off, those two descriptors may be
 * the program's last ones, so the listing goes without frames there. */
#define QUIT_MIN_NOFILE 64

void uvt__inspect_quit_prepare(void) {
  void *warm[4];
  struct rlimit rl;
  uvt__modtab_refresh();
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur < QUIT_MIN_NOFILE)
    return;
  unw_backtrace(warm, 4);
  __atomic_store_n(&quit_unwind_ready, true, __ATOMIC_RELEASE);
}

void uvt__inspect_quit_print(int fd, void *uctx) {
  static uint64_t pcs[UVT_TRACE_MAX_PCS];
  uintptr_t off;
  /* Frames in uvtask itself (the switch, the parking call) come first in
   * every parked task: left out, they say nothing about the program. */
  const char *self = uvt__modtab_find((uintptr_t)uvt__inspect_quit_print, &off);
  line_t l;
  int i, k, n;
  l.n = 0;
  if (!__atomic_load_n(&quit_unwind_ready, __ATOMIC_ACQUIRE)) {
    line_put(&l, "SIGQUIT: no frames (the open-file limit was below 64 at start)");
    line_end(&l, fd);
    return;
  }
  line_put(&l, "SIGQUIT: frames as module+offset, innermost first "
               "(`addr2line -f -i -e MODULE OFFSET` names each):");
  line_end(&l, fd);
  for (i = 0; i < quit_n; i++) {
    const quit_task_t *q = &quit_tasks[i];
    char id[UVT_ID_FORMAT_MAX];
    line_put(&l, "task ");
    line_put(&l, uvt_id_format((unsigned long long)q->id, id));
    line_put(&l, " '");
    line_put(&l, q->name != NULL ? q->name : "?");
    line_put(&l, "'");
    if (q->npcs == 0) line_put(&l, ": no saved frames (running, or not started)");
    line_end(&l, fd);
    for (k = 0; k < q->npcs && self != NULL &&
                uvt__modtab_find((uintptr_t)q->pcs[k], &off) == self;
         k++)
      ;
    for (n = 0; k < q->npcs; k++, n++) put_frame(fd, n, q->pcs[k], true);
  }
  if (uctx != NULL && (n = uvt__unwind_signal(uctx, pcs, UVT_TRACE_MAX_PCS)) > 0) {
    line_put(&l, "the thread SIGQUIT stopped");
    line_end(&l, fd);
    for (k = 0; k < n; k++) put_frame(fd, k, pcs[k], k > 0);
  }
}
