/*
 * lock_scenario: small programs with one lock bug each (or none), for
 * tests/test_locks.c.  Built against the release library; the tests run
 * it with the debug library in front and ASYNCIODEBUG set, then read the
 * database.  The tests find each expected line by the marker comment on it.
 *
 * Usage: lock_scenario NAME
 *   not-released  a task returns on an error path holding a lock
 *   cancelled     a task is cancelled while holding a lock
 *   inversion     A then B in one task, later B then A in another: no
 *                 deadlock in this run (the tasks run one after the other)
 *   inversion3    A->B, B->C, then C->A (one after the other): a cycle
 *                 through three locks
 *   held-across   a holder sleeps with the lock while another task queues;
 *                 prints "parked" and then runs until killed
 *   clean         no bug: short awaits under contended locks, nested
 *                 locks always in one order, a short sleep under a lock
 */
#include <stdio.h>
#include <string.h>
#include <uvtask.h>

static uvt_lock_t a, b, c;

static int returns_holding(void *arg) {
  (void)arg;
  uvt_lock_acquire(&a); /* @not-released */
  if (uvt_sleep(1) == 0)
    return uvt_fail(-5, "the error path forgot the release");
  uvt_lock_release(&a);
  return 0;
}

static int waits_holding(void *arg) {
  (void)arg;
  uvt_lock_acquire(&b); /* @cancelled-holding */
  return uvt_sleep(60000);
}

static int a_then_b(void *arg) {
  (void)arg;
  uvt_lock_acquire(&a); /* @first-a */
  uvt_lock_acquire(&b); /* @first-b */
  uvt_sleep(1);
  uvt_lock_release(&b);
  uvt_lock_release(&a);
  return 0;
}

static int b_then_a(void *arg) {
  (void)arg;
  uvt_lock_acquire(&b); /* @second-b */
  uvt_lock_acquire(&a); /* @second-a */
  uvt_lock_release(&a);
  uvt_lock_release(&b);
  return 0;
}

static int b_then_c(void *arg) {
  (void)arg;
  uvt_lock_acquire(&b);
  uvt_lock_acquire(&c); /* @chain-c */
  uvt_lock_release(&c);
  uvt_lock_release(&b);
  return 0;
}

static int c_then_a(void *arg) {
  (void)arg;
  uvt_lock_acquire(&c);
  uvt_lock_acquire(&a); /* @cycle-a */
  uvt_lock_release(&a);
  uvt_lock_release(&c);
  return 0;
}

static int sleeps_holding(void *arg) {
  (void)arg;
  uvt_lock_acquire(&a); /* @held-acquire */
  uvt_sleep(600000); /* @held-park */
  uvt_lock_release(&a);
  return 0;
}

static int queues(void *arg) {
  (void)arg;
  if (uvt_lock_acquire(&a) == 0) uvt_lock_release(&a);
  return 0;
}

/* Contended, but the holder only parks briefly. */
static int short_awaits(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < 20; i++) {
    uvt_lock_acquire(&a);
    uvt_yield();
    uvt_sleep(1);
    uvt_lock_release(&a);
  }
  return 0;
}

static int nested_in_order(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < 20; i++) {
    uvt_lock_acquire(&b);
    uvt_lock_acquire(&c);
    uvt_yield();
    uvt_lock_release(&c);
    uvt_lock_release(&b);
  }
  return 0;
}

static int await_all(uvt_task_t **t, int n) {
  int i, st = 0;
  for (i = 0; i < n; i++) {
    int r = uvt_await(t[i]);
    if (st == 0 && r != 0 && r != UVT_ECANCELED && r != -5) st = r;
  }
  return st;
}

static int main_task(void *arg) {
  const char *name = arg;
  uvt_task_t *t[8];
  int i;
  if (strcmp(name, "not-released") == 0) {
    t[0] = uvt_spawn(returns_holding, NULL);
    return uvt_await(t[0]) == -5 ? 0 : 1;
  }
  if (strcmp(name, "cancelled") == 0) {
    t[0] = uvt_spawn(waits_holding, NULL);
    uvt_sleep(5);
    uvt_cancel(t[0]);
    return uvt_await(t[0]) == UVT_ECANCELED ? 0 : 1;
  }
  if (strcmp(name, "inversion") == 0) {
    t[0] = uvt_spawn(a_then_b, NULL);
    if (uvt_await(t[0]) != 0) return 1;
    t[1] = uvt_spawn(b_then_a, NULL);
    return uvt_await(t[1]);
  }
  if (strcmp(name, "inversion3") == 0) {
    if (uvt_await(uvt_spawn(a_then_b, NULL)) != 0) return 1;
    if (uvt_await(uvt_spawn(b_then_c, NULL)) != 0) return 1;
    return uvt_await(uvt_spawn(c_then_a, NULL));
  }
  if (strcmp(name, "held-across") == 0) {
    t[0] = uvt_spawn(sleeps_holding, NULL);
    uvt_yield();
    t[1] = uvt_spawn(queues, NULL);
    t[2] = uvt_spawn(queues, NULL);
    printf("parked\n");
    fflush(stdout);
    return await_all(t, 3);
  }
  if (strcmp(name, "clean") == 0) {
    for (i = 0; i < 3; i++) t[i] = uvt_spawn(short_awaits, NULL);
    for (i = 3; i < 6; i++) t[i] = uvt_spawn(nested_in_order, NULL);
    return await_all(t, 6);
  }
  fprintf(stderr, "lock_scenario: unknown scenario %s\n", name);
  return 2;
}

int main(int argc, char **argv) {
  int st;
  if (argc != 2) {
    fprintf(stderr, "usage: lock_scenario NAME\n");
    return 2;
  }
  uvt_lock_init(&a);
  uvt_lock_init(&b);
  uvt_lock_init(&c);
  st = uvt_run(NULL, main_task, argv[1]);
  uvt_lock_destroy(&a);
  uvt_lock_destroy(&b);
  uvt_lock_destroy(&c);
  return st == 0 ? 0 : 1;
}
