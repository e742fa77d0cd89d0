/*
 * asyncio.Barrier (uvt_barrier_t): every party is released together with
 * its arrival index, the barrier cycles, a waiter cancelled while it
 * fills leaves it, abort breaks it until reset.  Cases after CPython
 * 3.11's test_locks BarrierTests (test_barrier, test_barrier_parties,
 * test_wait_again, test_abort_barrier, test_reset_barrier), written for
 * uvtask.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "uvtask.h"

#define PARTIES 3

struct party {
  uvt_barrier_t *b;
  int st[2];
  unsigned index[2];
  int released_before_last;
};

static int arrive_twice(void *arg) {
  struct party *p = arg;
  for (int k = 0; k < 2; k++) p->st[k] = uvt_barrier_wait(p->b, &p->index[k]);
  return 0;
}

static int cycles_main(void *arg) {
  struct party *p = arg;
  uvt_barrier_t b;
  uvt_task_t *t[PARTIES];
  cr_expect_eq(uvt_barrier_init(&b, PARTIES), 0);
  for (int i = 0; i < PARTIES; i++) {
    p[i].b = &b;
    p[i].st[0] = p[i].st[1] = 1;
    t[i] = uvt_spawn(arrive_twice, &p[i]);
  }
  cr_expect_eq(uvt_gather(t, PARTIES), 0);
  for (int i = 0; i < PARTIES; i++) uvt_detach(t[i]);
  cr_expect_eq(b.count, 0);
  uvt_barrier_destroy(&b);
  return 0;
}

Test(barrier, releases_all_parties_each_cycle_with_their_index) {
  struct party p[PARTIES];
  memset(p, 0, sizeof p);
  cr_assert_eq(uvt_run(NULL, cycles_main, p), 0);
  for (int k = 0; k < 2; k++) {
    unsigned seen = 0;
    for (int i = 0; i < PARTIES; i++) {
      cr_assert_eq(p[i].st[k], 0, "party %d cycle %d", i, k);
      cr_assert_lt(p[i].index[k], PARTIES);
      seen |= 1u << p[i].index[k];
    }
    cr_assert_eq(seen, (1u << PARTIES) - 1, "indices of cycle %d repeat", k);
  }
}

struct broken {
  uvt_barrier_t b;
  int st_aborted, st_waiter, st_after_abort, st_after_reset, st_cancelled;
  unsigned count_after_cancel;
};

static int wait_once(void *arg) {
  struct broken *s = arg;
  s->st_waiter = uvt_barrier_wait(&s->b, NULL);
  return 0;
}

static int aborted_wait(void *arg) {
  struct broken *s = arg;
  s->st_aborted = uvt_barrier_wait(&s->b, NULL);
  return 0;
}

static int cancelled_wait(void *arg) {
  struct broken *s = arg;
  s->st_cancelled = uvt_barrier_wait(&s->b, NULL);
  return 0;
}

static int abort_main(void *arg) {
  struct broken *s = arg;
  uvt_task_t *t, *c;
  cr_expect_eq(uvt_barrier_init(&s->b, 2), 0);
  cr_expect_eq(uvt_barrier_init(&s->b, 0), UVT_EINVAL);
  cr_expect_eq(uvt_barrier_init(&s->b, 2), 0);
  /* Cancelled while it fills: it leaves the cycle. */
  c = uvt_spawn(cancelled_wait, s);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(c), 1);
  cr_expect_eq(uvt_await(c), 0);
  s->count_after_cancel = s->b.count;
  t = uvt_spawn(aborted_wait, s);
  cr_expect_eq(uvt_yield(), 0);
  uvt_barrier_abort(&s->b);
  cr_expect_eq(uvt_await(t), 0);
  s->st_after_abort = uvt_barrier_wait(&s->b, NULL);
  uvt_barrier_reset(&s->b);
  t = uvt_spawn(wait_once, s);
  s->st_after_reset = uvt_barrier_wait(&s->b, NULL);
  cr_expect_eq(uvt_await(t), 0);
  uvt_barrier_destroy(&s->b);
  return 0;
}

Test(barrier, cancel_leaves_abort_breaks_reset_restores) {
  struct broken s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, abort_main, &s), 0);
  cr_assert_eq(s.st_cancelled, UVT_ECANCELED);
  cr_assert_eq(s.count_after_cancel, 0);
  cr_assert_eq(s.st_aborted, UVT_EBROKEN);
  cr_assert_eq(s.st_after_abort, UVT_EBROKEN);
  cr_assert_eq(s.st_after_reset, 0);
  cr_assert_eq(s.st_waiter, 0);
}
