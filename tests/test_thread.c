/*
 * uvt_to_thread: the function runs on a pool thread, its status comes
 * back, several run at once, and the loop keeps running tasks meanwhile.
 *
 * Checks inside task bodies use cr_expect (a failed cr_assert would
 * longjmp off the task's stack); cr_assert only after uvt_run returns.
 * Functions run on pool threads touch only their own argument (and
 * atomics), never uvtask or Criterion.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "uvtask.h"

/* ---- another thread, and the status ---------------------------------------- */

struct where {
  pthread_t loop_thread;
  pthread_t work_thread;
  int ret;          /* what the function returns */
  int rc;           /* what uvt_to_thread returned */
};

static int record_thread(void *arg) {
  struct where *w = arg;
  w->work_thread = pthread_self();
  return w->ret;
}

static int where_main(void *arg) {
  struct where *w = arg;
  w->loop_thread = pthread_self();
  w->rc = uvt_to_thread(record_thread, w);
  return 0;
}

Test(thread, runs_on_another_thread_and_returns_its_status) {
  static const int rets[] = {0, 7, -17};
  for (size_t i = 0; i < sizeof rets / sizeof rets[0]; i++) {
    struct where w;
    memset(&w, 0, sizeof w);
    w.ret = rets[i];
    cr_assert_eq(uvt_run(NULL, where_main, &w), 0);
    cr_assert(pthread_equal(w.loop_thread, pthread_self()),
              "uvt_run ran main on another thread");
    cr_assert_not(pthread_equal(w.work_thread, w.loop_thread),
                  "the function ran on the loop thread");
    cr_assert_eq(w.rc, rets[i]);
  }
}

static int outside_main(void *arg) {
  (void)arg;
  return uvt_to_thread(NULL, NULL);
}

Test(thread, bad_arguments) {
  cr_assert_eq(uvt_to_thread(record_thread, NULL), UVT_ENOTASK);
  cr_assert_eq(uvt_run(NULL, outside_main, NULL), UVT_EINVAL);
}

/* ---- eight at once ----------------------------------------------------------- */

#define NCONC 8

struct square {
  int in;
  long out;
  pthread_t thread;
};

static int compute_square(void *arg) {
  struct square *sq = arg;
  usleep(20000); /* long enough that they overlap */
  sq->out = (long)sq->in * sq->in;
  sq->thread = pthread_self();
  return sq->in + 1;
}

struct conc {
  struct square sq[NCONC];
  int rc[NCONC];
  pthread_t loop_thread;
};

struct slot {
  struct conc *c;
  int i;
};

static int offload(void *arg) {
  struct slot *s = arg;
  s->c->rc[s->i] = uvt_to_thread(compute_square, &s->c->sq[s->i]);
  return 0;
}

static int conc_main(void *arg) {
  struct conc *c = arg;
  struct slot slots[NCONC];
  uvt_task_t *t[NCONC];
  c->loop_thread = pthread_self();
  for (int i = 0; i < NCONC; i++) {
    slots[i].c = c;
    slots[i].i = i;
    c->sq[i].in = i + 3;
    t[i] = uvt_spawn(offload, &slots[i]);
  }
  cr_expect_eq(uvt_gather(t, NCONC), 0);
  return 0;
}

Test(thread, eight_concurrent_calls) {
  struct conc c;
  memset(&c, 0, sizeof c);
  cr_assert_eq(uvt_run(NULL, conc_main, &c), 0);
  for (int i = 0; i < NCONC; i++) {
    cr_assert_eq(c.rc[i], i + 4, "call %d", i);
    cr_assert_eq(c.sq[i].out, (long)(i + 3) * (i + 3), "call %d", i);
    cr_assert_not(pthread_equal(c.sq[i].thread, c.loop_thread));
  }
}

/* ---- the loop keeps going ------------------------------------------------------ */

struct progress {
  atomic_int blocking;  /* set by the function while it blocks */
  atomic_int stop;
  atomic_int ticks_while_blocked;
  int ticks;
  int rc;
};

/* Blocks its pool thread until the loop has ticked three times meanwhile,
 * or 10 s have passed (a loop blocked by the call never ticks). */
static int block_until_ticks(void *arg) {
  struct progress *p = arg;
  atomic_store(&p->blocking, 1);
  for (int i = 0; i < 10000 && atomic_load(&p->ticks_while_blocked) < 3; i++)
    usleep(1000);
  atomic_store(&p->blocking, 0);
  return 0;
}

static int tick(void *arg) {
  struct progress *p = arg;
  while (!atomic_load(&p->stop)) {
    p->ticks++;
    if (atomic_load(&p->blocking)) atomic_fetch_add(&p->ticks_while_blocked, 1);
    if (uvt_sleep(2) != 0) return -1;
  }
  return 0;
}

static int progress_main(void *arg) {
  struct progress *p = arg;
  uvt_task_t *t = uvt_spawn(tick, p);
  p->rc = uvt_to_thread(block_until_ticks, p);
  atomic_store(&p->stop, 1);
  cr_expect_eq(uvt_await(t), 0);
  return 0;
}

Test(thread, loop_runs_other_tasks_while_a_call_blocks) {
  struct progress p;
  memset(&p, 0, sizeof p);
  cr_assert_eq(uvt_run(NULL, progress_main, &p), 0);
  cr_assert_eq(p.rc, 0);
  /* A few ticks prove the loop was not blocked. */
  cr_assert_geq(atomic_load(&p.ticks_while_blocked), 3,
                "%d ticks while blocked (%d in all)",
                atomic_load(&p.ticks_while_blocked), p.ticks);
}
