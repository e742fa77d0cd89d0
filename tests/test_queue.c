/*
 * uvt_queue_t: FIFO items, backpressure of a bounded queue, growth of an
 * unbounded one, hand-off, cancellation of getters and putters (nothing
 * lost or duplicated), destroy, misuse.
 *
 * Checks inside task bodies use cr_expect (a failed cr_assert would
 * longjmp off the task's stack); cr_assert only after uvt_run returns.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "uvtask.h"

#define ITEM(i) ((void *)(intptr_t)(i))
#define NUM(p) ((int)(intptr_t)(p))

TestSuite(queue, .timeout = 20);

static void settle(void) {
  for (int i = 0; i < 4; i++) cr_expect_eq(uvt_yield(), 0);
}

static int ticker(void *arg) {
  (*(int *)arg)++;
  return 0;
}

/* ---- FIFO across a producer and a consumer ------------------------------- */

#define NPROD 200

struct pc {
  uvt_queue_t q;
  int got[NPROD];
  int ngot;
};

static int producer(void *arg) {
  struct pc *s = arg;
  for (int i = 1; i <= NPROD; i++) {
    cr_expect_eq(uvt_queue_put(&s->q, ITEM(i)), 0);
    if (i % 7 == 0) cr_expect_eq(uvt_yield(), 0);
  }
  return 0;
}

static int consumer(void *arg) {
  struct pc *s = arg;
  for (int i = 0; i < NPROD; i++) {
    void *item = NULL;
    cr_expect_eq(uvt_queue_get(&s->q, &item), 0);
    s->got[s->ngot++] = NUM(item);
    if (i % 5 == 0) cr_expect_eq(uvt_yield(), 0);
  }
  return 0;
}

static int pc_main(void *arg) {
  struct pc *s = arg;
  uvt_task_t *t[2];
  t[0] = uvt_spawn(consumer, s);
  t[1] = uvt_spawn(producer, s);
  cr_expect_eq(uvt_gather(t, 2), 0);
  cr_expect_eq(uvt_queue_size(&s->q), 0);
  return 0;
}

static void check_pc(size_t capacity) {
  struct pc s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_queue_init(&s.q, capacity), 0);
  cr_assert_eq(uvt_run(NULL, pc_main, &s), 0);
  cr_assert_eq(s.ngot, NPROD);
  for (int i = 0; i < NPROD; i++)
    cr_assert_eq(s.got[i], i + 1, "capacity %zu: got[%d]", capacity, i);
  uvt_queue_destroy(&s.q);
}

Test(queue, fifo_producer_consumer_bounded) { check_pc(3); }
Test(queue, fifo_producer_consumer_capacity_1) { check_pc(1); }
Test(queue, fifo_producer_consumer_unbounded) { check_pc(0); }

/* Several getters parked on an empty queue are served in arrival order. */
struct getters {
  uvt_queue_t q;
  int idx[3];
  int status[3];
  void *item[3];
};

static struct getters *getters_state;

static int getter(void *arg) {
  int i = *(int *)arg;
  struct getters *s = getters_state;
  s->status[i] = uvt_queue_get(&s->q, &s->item[i]);
  return s->status[i] < 0 ? s->status[i] : 0;
}

static void spawn_getters(struct getters *s, uvt_task_t **t, int n) {
  getters_state = s;
  for (int i = 0; i < n; i++) {
    s->idx[i] = i;
    s->status[i] = 1;
    s->item[i] = NULL;
    t[i] = uvt_spawn(getter, &s->idx[i]);
    settle();
  }
}

static int getters_fifo_main(void *arg) {
  struct getters *s = arg;
  uvt_task_t *t[3];
  cr_expect_eq(uvt_queue_init(&s->q, 2), 0);
  spawn_getters(s, t, 3);
  for (int i = 0; i < 3; i++) {
    cr_expect_eq(uvt_queue_put(&s->q, ITEM(10 + i)), 0);
    /* Handed to a getter, never in the ring. */
    cr_expect_eq(uvt_queue_size(&s->q), 0);
  }
  cr_expect_eq(uvt_gather(t, 3), 0);
  uvt_queue_destroy(&s->q);
  return 0;
}

Test(queue, getters_served_in_order) {
  struct getters s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, getters_fifo_main, &s), 0);
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(s.status[i], 0);
    cr_assert_eq(NUM(s.item[i]), 10 + i, "getter %d", i);
  }
}

/* ---- backpressure -------------------------------------------------------- */

/* Log codes: 100+i before put i, 200+i after it, 300+i when main got i. */
struct bp {
  uvt_queue_t q;
  int log[32];
  int nlog;
};

static int bp_producer(void *arg) {
  struct bp *s = arg;
  for (int i = 0; i < 5; i++) {
    s->log[s->nlog++] = 100 + i;
    cr_expect_eq(uvt_queue_put(&s->q, ITEM(i)), 0);
    s->log[s->nlog++] = 200 + i;
  }
  return 0;
}

static void bp_get(struct bp *s, int want) {
  void *item = NULL;
  cr_expect_eq(uvt_queue_get(&s->q, &item), 0);
  cr_expect_eq(NUM(item), want);
  s->log[s->nlog++] = 300 + NUM(item);
}

static int bp_main(void *arg) {
  struct bp *s = arg;
  uvt_task_t *t;
  cr_expect_eq(uvt_queue_init(&s->q, 2), 0);
  t = uvt_spawn(bp_producer, s);
  cr_expect_eq(uvt_yield(), 0);
  /* Two puts went through, the third is parked. */
  cr_expect_eq(uvt_queue_size(&s->q), 2);
  cr_expect_eq(s->nlog, 5);
  for (int i = 0; i < 3; i++) {
    bp_get(s, i);
    /* The parked putter's item moved into the freed slot at once. */
    cr_expect_eq(uvt_queue_size(&s->q), 2);
    cr_expect_eq(uvt_yield(), 0);
  }
  bp_get(s, 3);
  bp_get(s, 4);
  cr_expect_eq(uvt_queue_size(&s->q), 0);
  cr_expect_eq(uvt_await(t), 0);
  uvt_queue_destroy(&s->q);
  return 0;
}

Test(queue, bounded_backpressure_interleaving) {
  static const int want[] = {100, 200, 101, 201, 102, /* parked: full */
                             300, 202, 103,           /* one get, one put */
                             301, 203, 104,
                             302, 204,                /* producer done */
                             303, 304};
  struct bp s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, bp_main, &s), 0);
  cr_assert_eq(s.nlog, (int)(sizeof want / sizeof want[0]));
  for (int i = 0; i < s.nlog; i++)
    cr_assert_eq(s.log[i], want[i], "log[%d]", i);
}

/* ---- unbounded ----------------------------------------------------------- */

#define NBIG 10000

static int unbounded_main(void *arg) {
  int *ran = arg;
  uvt_queue_t q;
  uvt_task_t *t;
  int next_put = 0, next_get = 0, ok = 1;
  cr_expect_eq(uvt_queue_init(&q, 0), 0);
  t = uvt_spawn(ticker, ran);
  /* Wrap the ring before it has to grow: put 10, get 8, then many. */
  for (; next_put < 10; next_put++)
    cr_expect_eq(uvt_queue_put(&q, ITEM(next_put)), 0);
  for (; next_get < 8; next_get++) {
    void *item = NULL;
    cr_expect_eq(uvt_queue_get(&q, &item), 0);
    cr_expect_eq(NUM(item), next_get);
  }
  for (; next_put < NBIG + 8; next_put++)
    if (uvt_queue_put(&q, ITEM(next_put)) != 0) ok = 0;
  cr_expect(ok, "a put failed");
  cr_expect_eq(uvt_queue_size(&q), NBIG);
  cr_expect_eq(*ran, 0, "a put on an unbounded queue yielded");
  for (; next_get < NBIG + 8; next_get++) {
    void *item = NULL;
    if (uvt_queue_get(&q, &item) != 0 || NUM(item) != next_get) ok = 0;
  }
  cr_expect(ok, "items out of order");
  cr_expect_eq(uvt_queue_size(&q), 0);
  cr_expect_eq(*ran, 0, "a get on a non-empty queue yielded");
  cr_expect_eq(uvt_await(t), 0);
  uvt_queue_destroy(&q);
  return 0;
}

Test(queue, unbounded_ten_thousand_items) {
  int ran = 0;
  cr_assert_eq(uvt_run(NULL, unbounded_main, &ran), 0);
  cr_assert_eq(ran, 1);
}

/* ---- cancellation -------------------------------------------------------- */

static int get_cancel_main(void *arg) {
  struct getters *s = arg;
  uvt_task_t *t[3];
  void *item = NULL;
  cr_expect_eq(uvt_queue_init(&s->q, 0), 0);
  spawn_getters(s, t, 3);
  /* The cancelled getter is out of the line at once, before it has run
   * again: items go to the others. */
  cr_expect_eq(uvt_cancel(t[0]), 1);
  cr_expect_eq(uvt_queue_put(&s->q, ITEM(1)), 0);
  cr_expect_eq(uvt_queue_put(&s->q, ITEM(2)), 0);
  cr_expect_eq(uvt_queue_put(&s->q, ITEM(3)), 0);
  cr_expect_eq(uvt_await(t[0]), UVT_ECANCELED);
  cr_expect_eq(uvt_gather(t + 1, 2), 0);
  cr_expect_eq(uvt_queue_size(&s->q), 1);
  cr_expect_eq(uvt_queue_get(&s->q, &item), 0);
  cr_expect_eq(NUM(item), 3);
  uvt_queue_destroy(&s->q);
  return 0;
}

Test(queue, get_cancelled) {
  struct getters s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, get_cancel_main, &s), 0);
  cr_assert_eq(s.status[0], UVT_ECANCELED);
  cr_assert_null(s.item[0]);
  cr_assert_eq(s.status[1], 0);
  cr_assert_eq(NUM(s.item[1]), 1);
  cr_assert_eq(s.status[2], 0);
  cr_assert_eq(NUM(s.item[2]), 2);
}

/* CPython test_queues test_get_cancel_drop_many_pending_readers: three
 * getters wait, two items arrive (handed to the first two), the first
 * getter is cancelled before it runs: the cancel wins and its item goes
 * to the third getter.  (Before, the cancelled getter kept the item.) */
static int get_granted_cancel_main(void *arg) {
  struct getters *s = arg;
  uvt_task_t *t[3];
  cr_expect_eq(uvt_queue_init(&s->q, 0), 0);
  spawn_getters(s, t, 3);
  cr_expect_eq(uvt_queue_put(&s->q, ITEM(1)), 0);
  cr_expect_eq(uvt_queue_put(&s->q, ITEM(2)), 0);
  cr_expect_eq(uvt_cancel(t[0]), 1);
  cr_expect_eq(uvt_await(t[0]), UVT_ECANCELED);
  cr_expect_eq(uvt_await(t[1]), 0);
  cr_expect_eq(uvt_await(t[2]), 0);
  cr_expect_eq(uvt_queue_size(&s->q), 0);
  uvt_queue_destroy(&s->q);
  return 0;
}

Test(queue, get_cancelled_after_hand_off_passes_the_item_on) {
  struct getters s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, get_granted_cancel_main, &s), 0);
  cr_assert_eq(s.status[0], UVT_ECANCELED);
  cr_assert_null(s.item[0]);
  cr_assert_eq(s.status[1], 0);
  cr_assert_eq(s.status[2], 0);
  cr_assert_eq(NUM(s.item[1]) + NUM(s.item[2]), 3, "items %d and %d",
               NUM(s.item[1]), NUM(s.item[2]));
  cr_assert_neq(NUM(s.item[1]), NUM(s.item[2]));
}

/* With no other getter, the item goes back to the front of the queue. */
static int get_granted_alone_main(void *arg) {
  struct getters *s = arg;
  uvt_task_t *t[1];
  void *item = NULL;
  cr_expect_eq(uvt_queue_init(&s->q, 1), 0);
  spawn_getters(s, t, 1);
  cr_expect_eq(uvt_queue_put(&s->q, ITEM(7)), 0); /* handed to the getter */
  cr_expect_eq(uvt_queue_put(&s->q, ITEM(8)), 0); /* room: into the ring */
  cr_expect_eq(uvt_cancel(t[0]), 1);
  cr_expect_eq(uvt_await(t[0]), UVT_ECANCELED);
  /* 7 is back in front of 8: over capacity for a while, nothing lost. */
  cr_expect_eq(uvt_queue_size(&s->q), 2);
  cr_expect_eq(uvt_queue_get(&s->q, &item), 0);
  cr_expect_eq(NUM(item), 7);
  cr_expect_eq(uvt_queue_get(&s->q, &item), 0);
  cr_expect_eq(NUM(item), 8);
  uvt_queue_destroy(&s->q);
  return 0;
}

Test(queue, get_cancelled_after_hand_off_puts_the_item_back_in_front) {
  struct getters s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, get_granted_alone_main, &s), 0);
  cr_assert_eq(s.status[0], UVT_ECANCELED);
  cr_assert_null(s.item[0]);
}

struct putters {
  uvt_queue_t q;
  int idx[3];
  int status[3];
};

static struct putters *putters_state;

/* Putter i puts item 10 + i. */
static int putter(void *arg) {
  int i = *(int *)arg;
  struct putters *s = putters_state;
  s->status[i] = uvt_queue_put(&s->q, ITEM(10 + i));
  return s->status[i] < 0 ? s->status[i] : 0;
}

static void spawn_putters(struct putters *s, uvt_task_t **t, int n) {
  putters_state = s;
  for (int i = 0; i < n; i++) {
    s->idx[i] = i;
    s->status[i] = 1;
    t[i] = uvt_spawn(putter, &s->idx[i]);
    settle();
  }
}

static void expect_items(uvt_queue_t *q, const int *want, size_t n) {
  cr_expect_eq(uvt_queue_size(q), n);
  for (size_t i = 0; i < n; i++) {
    void *item = NULL;
    cr_expect_eq(uvt_queue_get(q, &item), 0);
    cr_expect_eq(NUM(item), want[i], "item %zu", i);
  }
  cr_expect_eq(uvt_queue_size(q), 0);
}

static int put_cancel_main(void *arg) {
  struct putters *s = arg;
  uvt_task_t *t[3];
  cr_expect_eq(uvt_queue_init(&s->q, 2), 0);
  cr_expect_eq(uvt_queue_put(&s->q, ITEM(1)), 0);
  cr_expect_eq(uvt_queue_put(&s->q, ITEM(2)), 0);
  spawn_putters(s, t, 1);
  cr_expect_eq(uvt_queue_size(&s->q), 2);
  cr_expect_eq(uvt_cancel(t[0]), 1);
  cr_expect_eq(uvt_await(t[0]), UVT_ECANCELED);
  /* Exactly as before: 1, 2 and nothing of the cancelled put. */
  expect_items(&s->q, (const int[]){1, 2}, 2);
  uvt_queue_destroy(&s->q);
  return 0;
}

Test(queue, put_cancelled_while_full_leaves_queue_unchanged) {
  struct putters s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, put_cancel_main, &s), 0);
  cr_assert_eq(s.status[0], UVT_ECANCELED);
}

static int put_cancel_middle_main(void *arg) {
  struct putters *s = arg;
  uvt_task_t *t[3];
  cr_expect_eq(uvt_queue_init(&s->q, 2), 0);
  cr_expect_eq(uvt_queue_put(&s->q, ITEM(1)), 0);
  cr_expect_eq(uvt_queue_put(&s->q, ITEM(2)), 0);
  spawn_putters(s, t, 3); /* items 10, 11, 12 parked */
  /* Each get frees a slot that the oldest parked put still waiting
   * fills; the cancelled one is skipped even before it has run again. */
  cr_expect_eq(uvt_cancel(t[1]), 1);
  void *item = NULL;
  cr_expect_eq(uvt_queue_get(&s->q, &item), 0);
  cr_expect_eq(NUM(item), 1);
  cr_expect_eq(uvt_queue_get(&s->q, &item), 0);
  cr_expect_eq(NUM(item), 2);
  cr_expect_eq(uvt_queue_size(&s->q), 2);
  cr_expect_eq(uvt_await(t[1]), UVT_ECANCELED);
  cr_expect_eq(uvt_await(t[0]), 0);
  cr_expect_eq(uvt_await(t[2]), 0);
  expect_items(&s->q, (const int[]){10, 12}, 2);
  uvt_queue_destroy(&s->q);
  return 0;
}

Test(queue, put_cancelled_among_putters) {
  struct putters s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, put_cancel_middle_main, &s), 0);
  cr_assert_eq(s.status[0], 0);
  cr_assert_eq(s.status[1], UVT_ECANCELED);
  cr_assert_eq(s.status[2], 0);
}

/* CPython test_queues test_cancelled_put_silence_value_error_exception:
 * a full queue, a putter parked; a get makes room (the parked item is
 * moved in), then the putter is cancelled before it runs.  Its put returns
 * UVT_ECANCELED and its item is taken back out; the room goes to the next
 * putter.  (Before, the put stood and returned 0.) */
static int put_granted_cancel_main(void *arg) {
  struct putters *s = arg;
  uvt_task_t *t[2];
  void *item = NULL;
  cr_expect_eq(uvt_queue_init(&s->q, 1), 0);
  cr_expect_eq(uvt_queue_put(&s->q, ITEM(1)), 0);
  spawn_putters(s, t, 2); /* items 10 and 11, both parked */
  cr_expect_eq(uvt_queue_get(&s->q, &item), 0);
  cr_expect_eq(NUM(item), 1);
  cr_expect_eq(uvt_cancel(t[0]), 1);
  cr_expect_eq(uvt_await(t[0]), UVT_ECANCELED);
  cr_expect_eq(uvt_await(t[1]), 0);
  expect_items(&s->q, (const int[]){11}, 1);
  uvt_queue_destroy(&s->q);
  return 0;
}

Test(queue, put_cancelled_after_hand_off_is_taken_back) {
  struct putters s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, put_granted_cancel_main, &s), 0);
  cr_assert_eq(s.status[0], UVT_ECANCELED);
  cr_assert_eq(s.status[1], 0);
}

/* A moved-in item a getter already took cannot be taken back: the put
 * stands (0) and the cancel goes to the putter's next await. */
static int put_taken_then_cancel_main(void *arg) {
  struct putters *s = arg;
  uvt_task_t *t[1];
  void *item = NULL;
  cr_expect_eq(uvt_queue_init(&s->q, 1), 0);
  cr_expect_eq(uvt_queue_put(&s->q, ITEM(1)), 0);
  spawn_putters(s, t, 1);
  cr_expect_eq(uvt_queue_get(&s->q, &item), 0); /* 10 moved in */
  cr_expect_eq(uvt_queue_get(&s->q, &item), 0); /* and taken */
  cr_expect_eq(NUM(item), 10);
  cr_expect_eq(uvt_cancel(t[0]), 1);
  cr_expect_eq(uvt_await(t[0]), UVT_ECANCELED); /* at its next await */
  cr_expect_eq(uvt_queue_size(&s->q), 0);
  uvt_queue_destroy(&s->q);
  return 0;
}

Test(queue, put_taken_by_a_getter_before_the_cancel_stands) {
  struct putters s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, put_taken_then_cancel_main, &s), 0);
  cr_assert_eq(s.status[0], 0);
}

/* A getter still parked when main returns is cancelled by uvt_run: the
 * queue must not hand a later item to it. */
static int at_exit_getter(void *arg) {
  struct getters *s = arg;
  s->status[0] = uvt_queue_get(&s->q, &s->item[0]);
  return s->status[0];
}

static int getter_at_exit_main(void *arg) {
  struct getters *s = arg;
  uvt_detach(uvt_spawn(at_exit_getter, s));
  settle();
  return 0;
}

static int put_one_main(void *arg) {
  struct getters *s = arg;
  void *item = NULL;
  cr_expect_eq(uvt_queue_put(&s->q, ITEM(5)), 0);
  cr_expect_eq(uvt_queue_size(&s->q), 1);
  cr_expect_eq(uvt_queue_get(&s->q, &item), 0);
  cr_expect_eq(NUM(item), 5);
  return 0;
}

Test(queue, getter_pending_at_exit_leaves_the_queue) {
  struct getters s;
  memset(&s, 0, sizeof s);
  s.status[0] = 1;
  cr_assert_eq(uvt_queue_init(&s.q, 0), 0);
  cr_assert_eq(uvt_run(NULL, getter_at_exit_main, &s), 0);
  cr_assert_eq(s.status[0], UVT_ECANCELED);
  cr_assert_null(s.item[0]);
  /* A second run on the same queue: the item stays for us. */
  cr_assert_eq(uvt_run(NULL, put_one_main, &s), 0);
  uvt_queue_destroy(&s.q);
}

/* ---- destroy and misuse -------------------------------------------------- */

static int destroy_getters_main(void *arg) {
  struct getters *s = arg;
  uvt_task_t *t[2];
  cr_expect_eq(uvt_queue_init(&s->q, 0), 0);
  spawn_getters(s, t, 2);
  uvt_queue_destroy(&s->q);
  cr_expect_eq(uvt_await(t[0]), UVT_ECLOSED);
  cr_expect_eq(uvt_await(t[1]), UVT_ECLOSED);
  return 0;
}

Test(queue, destroy_wakes_getters_with_eclosed) {
  struct getters s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, destroy_getters_main, &s), 0);
  cr_assert_eq(s.status[0], UVT_ECLOSED);
  cr_assert_eq(s.status[1], UVT_ECLOSED);
}

static int destroy_putters_main(void *arg) {
  struct putters *s = arg;
  uvt_task_t *t[2];
  cr_expect_eq(uvt_queue_init(&s->q, 1), 0);
  cr_expect_eq(uvt_queue_put(&s->q, ITEM(1)), 0);
  spawn_putters(s, t, 2);
  uvt_queue_destroy(&s->q);
  cr_expect_eq(uvt_queue_size(&s->q), 0);
  cr_expect_eq(uvt_await(t[0]), UVT_ECLOSED);
  cr_expect_eq(uvt_await(t[1]), UVT_ECLOSED);
  return 0;
}

Test(queue, destroy_wakes_putters_with_eclosed) {
  struct putters s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(uvt_run(NULL, destroy_putters_main, &s), 0);
  cr_assert_eq(s.status[0], UVT_ECLOSED);
  cr_assert_eq(s.status[1], UVT_ECLOSED);
}

Test(queue, outside_a_task) {
  uvt_queue_t q;
  void *item = NULL;
  cr_assert_eq(uvt_queue_init(&q, 0), 0);
  cr_assert_eq(uvt_queue_put(&q, ITEM(1)), UVT_ENOTASK);
  cr_assert_eq(uvt_queue_get(&q, &item), UVT_ENOTASK);
  cr_assert_eq(uvt_queue_size(&q), 0);
  uvt_queue_destroy(&q);
}

Test(queue, invalid_objects) {
  uvt_queue_t q;
  void *item = NULL;
  memset(&q, 0, sizeof q);
  cr_assert_eq(uvt_queue_init(NULL, 0), UVT_EINVAL);
  cr_assert_eq(uvt_queue_put(NULL, ITEM(1)), UVT_EINVAL);
  cr_assert_eq(uvt_queue_get(NULL, &item), UVT_EINVAL);
  cr_assert_eq(uvt_queue_size(NULL), 0);
  uvt_queue_destroy(NULL);
  cr_assert_eq(uvt_queue_put(&q, ITEM(1)), UVT_EINVAL);
  cr_assert_eq(uvt_queue_get(&q, &item), UVT_EINVAL);
  cr_assert_eq(uvt_queue_init(&q, 4), 0);
  cr_assert_eq(uvt_queue_get(&q, NULL), UVT_EINVAL);
  uvt_queue_destroy(&q);
  cr_assert_eq(uvt_queue_put(&q, ITEM(1)), UVT_EINVAL);
  cr_assert_eq(uvt_queue_get(&q, &item), UVT_EINVAL);
  cr_assert_eq(uvt_queue_size(&q), 0);
  uvt_queue_destroy(&q);
}

Test(queue, init_too_large_is_enomem) {
  uvt_queue_t q;
  cr_assert_eq(uvt_queue_init(&q, SIZE_MAX), UVT_ENOMEM);
  cr_assert_eq(uvt_queue_size(&q), 0);
  cr_assert_eq(uvt_queue_put(&q, ITEM(1)), UVT_EINVAL);
}

/* ---- asyncio.Queue's other verbs -------------------------------------------- */

/* put_nowait / get_nowait: QueueFull and QueueEmpty are UVT_EAGAIN. */
static int nowait_main(void *arg) {
  int *r = arg;
  uvt_queue_t q;
  void *item = NULL;
  cr_expect_eq(uvt_queue_init(&q, 2), 0);
  r[0] = uvt_queue_get_nowait(&q, &item);
  cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(1)), 0);
  cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(2)), 0);
  r[1] = uvt_queue_put_nowait(&q, ITEM(3));
  cr_expect_eq(uvt_queue_get_nowait(&q, &item), 0);
  r[2] = NUM(item);
  cr_expect_eq(uvt_queue_get_nowait(&q, &item), 0);
  r[3] = NUM(item);
  uvt_queue_destroy(&q);
  return 0;
}

Test(queue, nowait_variants_report_full_and_empty) {
  int r[4] = {0};
  cr_assert_eq(uvt_run(NULL, nowait_main, r), 0);
  cr_assert_eq(r[0], UVT_EAGAIN);
  cr_assert_eq(r[1], UVT_EAGAIN);
  cr_assert_eq(r[2], 1);
  cr_assert_eq(r[3], 2);
}

/* join waits until every item put was marked done (test_queues
 * QueueJoinTests test_task_done); task_done beyond that is refused. */
struct joining {
  uvt_queue_t q;
  int processed;
  int joined_at;
  int extra_done;
};

static int worker_done(void *arg) {
  struct joining *j = arg;
  void *item;
  while (uvt_queue_get(&j->q, &item) == 0) {
    cr_expect_eq(uvt_yield(), 0);
    j->processed++;
    cr_expect_eq(uvt_queue_task_done(&j->q), 0);
  }
  return 0;
}

static int join_main(void *arg) {
  struct joining *j = arg;
  uvt_task_t *w[2];
  cr_expect_eq(uvt_queue_init(&j->q, 0), 0);
  cr_expect_eq(uvt_queue_join(&j->q), 0); /* nothing put: at once */
  for (int i = 0; i < 2; i++) w[i] = uvt_spawn(worker_done, j);
  for (int i = 0; i < 10; i++) cr_expect_eq(uvt_queue_put(&j->q, ITEM(i)), 0);
  cr_expect_eq(uvt_queue_join(&j->q), 0);
  j->joined_at = j->processed;
  j->extra_done = uvt_queue_task_done(&j->q);
  uvt_queue_close(&j->q); /* the workers' gets end with UVT_ECLOSED */
  cr_expect_eq(uvt_gather(w, 2), 0);
  uvt_detach(w[0]);
  uvt_detach(w[1]);
  uvt_queue_destroy(&j->q);
  return 0;
}

Test(queue, join_waits_for_every_task_done) {
  struct joining j;
  memset(&j, 0, sizeof j);
  cr_assert_eq(uvt_run(NULL, join_main, &j), 0);
  cr_assert_eq(j.joined_at, 10, "join returned after %d of 10", j.joined_at);
  cr_assert_eq(j.extra_done, UVT_EINVAL);
}

/* close: waiting getters and putters wake with UVT_ECLOSED, later puts are
 * refused, gets drain what is left and then report UVT_ECLOSED. */
struct closing {
  uvt_queue_t q, full;
  int getter_rc, putter_rc, put_after, get1, get_after;
  void *item;
};

static int close_getter(void *arg) {
  struct closing *c = arg;
  void *item;
  c->getter_rc = uvt_queue_get(&c->q, &item);
  return 0;
}

static int close_putter(void *arg) {
  struct closing *c = arg;
  c->putter_rc = uvt_queue_put(&c->full, ITEM(2));
  return 0;
}

static int close_main(void *arg) {
  struct closing *c = arg;
  uvt_task_t *g, *p;
  cr_expect_eq(uvt_queue_init(&c->q, 0), 0);
  cr_expect_eq(uvt_queue_init(&c->full, 1), 0);
  cr_expect_eq(uvt_queue_put(&c->full, ITEM(1)), 0);
  g = uvt_spawn(close_getter, c);
  p = uvt_spawn(close_putter, c);
  settle();
  uvt_queue_close(&c->q);
  uvt_queue_close(&c->full);
  cr_expect_eq(uvt_await(g), 0);
  cr_expect_eq(uvt_await(p), 0);
  c->put_after = uvt_queue_put(&c->full, ITEM(3));
  c->get1 = uvt_queue_get(&c->full, &c->item);
  c->get_after = uvt_queue_get(&c->full, &c->item);
  uvt_queue_destroy(&c->q);
  uvt_queue_destroy(&c->full);
  return 0;
}

Test(queue, close_wakes_waiters_and_drains) {
  struct closing c;
  memset(&c, 0, sizeof c);
  cr_assert_eq(uvt_run(NULL, close_main, &c), 0);
  cr_assert_eq(c.getter_rc, UVT_ECLOSED);
  cr_assert_eq(c.putter_rc, UVT_ECLOSED);
  cr_assert_eq(c.put_after, UVT_ECLOSED);
  cr_assert_eq(c.get1, 0);
  cr_assert_eq(NUM(c.item), 1);
  cr_assert_eq(c.get_after, UVT_ECLOSED);
}

/* LifoQueue and PriorityQueue (test_queues LifoQueueTests,
 * PriorityQueueTests test_order). */
static int by_value(const void *a, const void *b) {
  return NUM(a) - NUM(b);
}

static int order_main(void *arg) {
  int *out = arg;
  uvt_queue_t lifo, prio;
  const int in[] = {1, 3, 2, 7, 0, 4};
  void *item;
  cr_expect_eq(uvt_queue_init_lifo(&lifo, 0), 0);
  cr_expect_eq(uvt_queue_init_priority(&prio, 4, by_value), 0);
  for (int i = 0; i < 6; i++) {
    cr_expect_eq(uvt_queue_put(&lifo, ITEM(in[i])), 0);
    if (i < 4) cr_expect_eq(uvt_queue_put(&prio, ITEM(in[i])), 0);
  }
  for (int i = 0; i < 6; i++) {
    cr_expect_eq(uvt_queue_get(&lifo, &item), 0);
    out[i] = NUM(item);
  }
  for (int i = 0; i < 2; i++) {
    cr_expect_eq(uvt_queue_get(&prio, &item), 0);
    out[6 + i] = NUM(item);
  }
  cr_expect_eq(uvt_queue_put(&prio, ITEM(0)), 0);
  cr_expect_eq(uvt_queue_put(&prio, ITEM(4)), 0);
  for (int i = 2; i < 6; i++) {
    cr_expect_eq(uvt_queue_get(&prio, &item), 0);
    out[6 + i] = NUM(item);
  }
  cr_expect_eq(uvt_queue_init_priority(&prio, 0, NULL), UVT_EINVAL);
  uvt_queue_destroy(&lifo);
  uvt_queue_destroy(&prio);
  return 0;
}

Test(queue, lifo_and_priority_order) {
  int out[12];
  const int want[12] = {4, 0, 7, 2, 3, 1, /* lifo */ 1, 2, 0, 3, 4, 7};
  cr_assert_eq(uvt_run(NULL, order_main, out), 0);
  for (int i = 0; i < 12; i++) cr_assert_eq(out[i], want[i], "at %d", i);
}
