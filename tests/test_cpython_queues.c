/*
 * CPython 3.11 Lib/test/test_asyncio/test_queues.py, ported to uvtask's
 * queues (FIFO, LIFO, priority).  Each test names the Python test it
 * comes from and asserts the same behaviour; where uvtask differs on
 * purpose the comment says so (and include/uvtask.h does).
 *
 * Items are integers carried in the pointer.  `await asyncio.sleep(0)` is
 * uvt_yield().  Bodies run as uvt_run's main task (UVT_TEST): checks use
 * cr_expect, and anything left behind fails the test.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "uvtask.h"
#include "uvtask/testing.h"

TestSuite(cpython_queues, .timeout = 20);

#define ITEM(i) ((void *)(intptr_t)(i))
#define INT(p) ((int)(intptr_t)(p))

static uvt_queue_t q;

static int cmp_int(const void *a, const void *b) {
  intptr_t x = (intptr_t)a, y = (intptr_t)b;
  return (x > y) - (x < y);
}

/* Get one item and hand it back as the task's result. */
static int getter(void *arg) {
  void *item = NULL;
  int st;
  (void)arg;
  st = uvt_queue_get(&q, &item);
  if (st == 0) uvt_set_result(item);
  return st;
}

static int putter(void *arg) { return uvt_queue_put(&q, arg); }

static int get_int(void) {
  void *item = ITEM(-1);
  cr_expect_eq(uvt_queue_get(&q, &item), 0);
  return INT(item);
}

static int get_nowait_int(void) {
  void *item = ITEM(-1);
  cr_expect_eq(uvt_queue_get_nowait(&q, &item), 0);
  return INT(item);
}

/* ---- QueueBasicTests ----------------------------------------------------- */

/* test_queues.py::QueueBasicTests::test_empty */
UVT_TEST(cpython_queues, basic_test_empty) {
  cr_expect_eq(uvt_queue_init(&q, 0), 0);
  cr_expect_eq(uvt_queue_size(&q), 0u);
  cr_expect_eq(uvt_queue_put(&q, ITEM(1)), 0);
  cr_expect_neq(uvt_queue_size(&q), 0u);
  cr_expect_eq(get_int(), 1);
  cr_expect_eq(uvt_queue_size(&q), 0u);
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueueBasicTests::test_full: an unbounded queue is never
 * full; a queue of one is full after one put (full(): put_nowait refuses) */
UVT_TEST(cpython_queues, basic_test_full) {
  cr_expect_eq(uvt_queue_init(&q, 0), 0);
  for (int i = 0; i < 100; i++) cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(i)), 0);
  uvt_queue_destroy(&q);
  cr_expect_eq(uvt_queue_init(&q, 1), 0);
  cr_expect_eq(uvt_queue_put(&q, ITEM(1)), 0);
  cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(2)), UVT_EAGAIN);
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueueBasicTests::test_order */
UVT_TEST(cpython_queues, basic_test_order) {
  int in[] = {1, 3, 2};
  cr_expect_eq(uvt_queue_init(&q, 0), 0);
  for (int i = 0; i < 3; i++) cr_expect_eq(uvt_queue_put(&q, ITEM(in[i])), 0);
  for (int i = 0; i < 3; i++) cr_expect_eq(get_int(), in[i]);
  uvt_queue_destroy(&q);
}

static int have_been_put[4];
static int nput;

static int maxsize_putter(void *arg) {
  (void)arg;
  for (int i = 0; i < 3; i++) {
    int st = uvt_queue_put(&q, ITEM(i));
    if (st != 0) return st;
    have_been_put[nput++] = i;
  }
  return 0;
}

/* test_queues.py::QueueBasicTests::test_maxsize */
UVT_TEST(cpython_queues, basic_test_maxsize) {
  uvt_task_t *t;
  nput = 0;
  cr_expect_eq(uvt_queue_init(&q, 2), 0);
  t = uvt_spawn(maxsize_putter, NULL);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_yield(), 0);
  /* The putter is blocked after putting two items. */
  cr_expect_eq(nput, 2);
  cr_expect_eq(get_int(), 0);
  /* Let the putter resume and put the last item. */
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(nput, 3);
  cr_expect_eq(have_been_put[2], 2);
  cr_expect_eq(get_int(), 1);
  cr_expect_eq(get_int(), 2);
  cr_expect(uvt_done(t));
  cr_expect_eq(uvt_await(t), 0);
  uvt_queue_destroy(&q);
}

/* ---- QueueGetTests ------------------------------------------------------- */

/* test_queues.py::QueueGetTests::test_blocking_get */
UVT_TEST(cpython_queues, get_test_blocking_get) {
  cr_expect_eq(uvt_queue_init(&q, 0), 0);
  cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(1)), 0);
  cr_expect_eq(get_int(), 1);
  uvt_queue_destroy(&q);
}

static uvt_event_t started;
static int finished;

static int queue_get_task(void *arg) {
  void *item = NULL;
  int st;
  (void)arg;
  uvt_event_set(&started);
  st = uvt_queue_get(&q, &item);
  finished = 1;
  uvt_set_result(item);
  return st;
}

/* loop.call_later(0.01, q.put_nowait, 1) */
static int later_put(void *arg) {
  cr_expect_eq(uvt_sleep(10), 0);
  return uvt_queue_put_nowait(&q, arg);
}

/* test_queues.py::QueueGetTests::test_blocking_get_wait */
UVT_TEST(cpython_queues, get_test_blocking_get_wait) {
  uvt_task_t *t, *p;
  void *res = NULL;
  finished = 0;
  cr_expect_eq(uvt_queue_init(&q, 0), 0);
  cr_expect_eq(uvt_event_init(&started), 0);
  t = uvt_spawn(queue_get_task, NULL);
  cr_expect_eq(uvt_event_wait(&started), 0);
  cr_expect_not(finished);
  p = uvt_spawn(later_put, ITEM(1));
  cr_expect_eq(uvt_await_result(t, &res, NULL), 0);
  cr_expect(finished);
  cr_expect_eq(INT(res), 1);
  cr_expect_eq(uvt_await(p), 0);
  uvt_event_destroy(&started);
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueueGetTests::test_nonblocking_get */
UVT_TEST(cpython_queues, get_test_nonblocking_get) {
  cr_expect_eq(uvt_queue_init(&q, 0), 0);
  cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(1)), 0);
  cr_expect_eq(get_nowait_int(), 1);
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueueGetTests::test_nonblocking_get_exception (QueueEmpty) */
UVT_TEST(cpython_queues, get_test_nonblocking_get_exception) {
  void *item = NULL;
  cr_expect_eq(uvt_queue_init(&q, 0), 0);
  cr_expect_eq(uvt_queue_get_nowait(&q, &item), UVT_EAGAIN);
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueueGetTests::test_get_cancelled_race */
UVT_TEST(cpython_queues, get_test_get_cancelled_race) {
  uvt_task_t *t1, *t2;
  void *res = NULL;
  cr_expect_eq(uvt_queue_init(&q, 0), 0);
  t1 = uvt_spawn(getter, NULL);
  t2 = uvt_spawn(getter, NULL);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(t1), 1);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(uvt_done(t1));
  cr_expect_eq(uvt_queue_put(&q, ITEM('a')), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_await_result(t2, &res, NULL), 0);
  cr_expect_eq(INT(res), 'a');
  cr_expect_eq(uvt_await(t1), UVT_ECANCELED);
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueueGetTests::test_get_with_waiting_putters */
UVT_TEST(cpython_queues, get_test_get_with_waiting_putters) {
  uvt_task_t *a, *b;
  cr_expect_eq(uvt_queue_init(&q, 1), 0);
  a = uvt_spawn(putter, ITEM('a'));
  b = uvt_spawn(putter, ITEM('b'));
  cr_expect_eq(get_int(), 'a');
  cr_expect_eq(get_int(), 'b');
  cr_expect_eq(uvt_await(a), 0);
  cr_expect_eq(uvt_await(b), 0);
  uvt_queue_destroy(&q);
}

static int consumer(void *arg) {
  for (int i = 0; i < INT(arg); i++) {
    void *item;
    int st = uvt_queue_get(&q, &item);
    if (st != 0) return st;
  }
  return 0;
}

static int producer(void *arg) {
  for (int i = 0; i < INT(arg); i++) {
    int st = uvt_queue_put(&q, ITEM(i));
    if (st != 0) return st;
  }
  return 0;
}

/* test_queues.py::QueueGetTests::test_why_are_getters_waiting: producer
 * and consumer through a queue of one finish (no lost wake-up). */
UVT_TEST(cpython_queues, get_test_why_are_getters_waiting) {
  uvt_task_t *t[2];
  cr_expect_eq(uvt_queue_init(&q, 1), 0);
  t[0] = uvt_spawn(producer, ITEM(5));
  t[1] = uvt_spawn(consumer, ITEM(5));
  cr_expect_eq(uvt_gather(t, 2), 0);
  uvt_detach(t[0]);
  uvt_detach(t[1]);
  cr_expect_eq(uvt_queue_size(&q), 0u);
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueueGetTests::test_cancelled_getters_not_being_held_in_self_getters:
 * a get that timed out leaves no getter behind: the next put stays in the
 * queue instead of going to a dead getter. */
UVT_TEST(cpython_queues, get_test_cancelled_getters_not_held) {
  cr_expect_eq(uvt_queue_init(&q, 5), 0);
  cr_expect_eq(uvt_wait_for(uvt_spawn(getter, NULL), 100), UVT_ETIMEDOUT);
  cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(9)), 0);
  cr_expect_eq(uvt_queue_size(&q), 1u);
  cr_expect_eq(get_nowait_int(), 9);
  uvt_queue_destroy(&q);
}

/* ---- QueuePutTests ------------------------------------------------------- */

/* test_queues.py::QueuePutTests::test_blocking_put (unbounded: no block) */
UVT_TEST(cpython_queues, put_test_blocking_put) {
  cr_expect_eq(uvt_queue_init(&q, 0), 0);
  cr_expect_eq(uvt_queue_put(&q, ITEM(1)), 0);
  cr_expect_eq(get_int(), 1);
  uvt_queue_destroy(&q);
}

static int queue_put_two(void *arg) {
  (void)arg;
  uvt_event_set(&started);
  cr_expect_eq(uvt_queue_put(&q, ITEM(1)), 0);
  cr_expect_eq(uvt_queue_put(&q, ITEM(2)), 0);
  finished = 1;
  return 0;
}

/* loop.call_later(0.01, q.get_nowait) */
static int later_get(void *arg) {
  void *item;
  (void)arg;
  cr_expect_eq(uvt_sleep(10), 0);
  return uvt_queue_get_nowait(&q, &item);
}

/* test_queues.py::QueuePutTests::test_blocking_put_wait */
UVT_TEST(cpython_queues, put_test_blocking_put_wait) {
  uvt_task_t *g, *t;
  finished = 0;
  cr_expect_eq(uvt_queue_init(&q, 1), 0);
  cr_expect_eq(uvt_event_init(&started), 0);
  g = uvt_spawn(later_get, NULL);
  t = uvt_spawn(queue_put_two, NULL);
  cr_expect_eq(uvt_event_wait(&started), 0);
  cr_expect_not(finished);
  cr_expect_eq(uvt_await(t), 0);
  cr_expect(finished);
  cr_expect_eq(uvt_await(g), 0);
  uvt_event_destroy(&started);
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueuePutTests::test_nonblocking_put */
UVT_TEST(cpython_queues, put_test_nonblocking_put) {
  cr_expect_eq(uvt_queue_init(&q, 0), 0);
  cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(1)), 0);
  cr_expect_eq(get_nowait_int(), 1);
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueuePutTests::test_get_cancel_drop_one_pending_reader:
 * a reader cancelled just after two puts loses no item: either it got 1,
 * or a new reader gets 1 (getting 2 would mean 1 was dropped). */
UVT_TEST(cpython_queues, put_test_get_cancel_drop_one_pending_reader) {
  uvt_task_t *reader;
  void *res = NULL;
  int st;
  cr_expect_eq(uvt_queue_init(&q, 0), 0);
  reader = uvt_spawn(getter, NULL);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(1)), 0);
  cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(2)), 0);
  cr_expect_eq(uvt_cancel(reader), 1);
  st = uvt_await_result(reader, &res, NULL);
  if (st == UVT_ECANCELED) st = uvt_await_result(uvt_spawn(getter, NULL), &res, NULL);
  cr_expect_eq(st, 0);
  cr_expect_eq(INT(res), 1);
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueuePutTests::test_put_cancel_drop: a writer cancelled
 * just as room was made loses no item and duplicates none. */
UVT_TEST(cpython_queues, put_test_put_cancel_drop) {
  uvt_task_t *writer;
  int st;
  cr_expect_eq(uvt_queue_init(&q, 1), 0);
  cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(1)), 0);
  writer = uvt_spawn(putter, ITEM(2));
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(get_nowait_int(), 1);
  cr_expect_eq(uvt_cancel(writer), 1);
  st = uvt_await(writer);
  if (st == UVT_ECANCELED) st = uvt_await(uvt_spawn(putter, ITEM(2)));
  cr_expect_eq(st, 0);
  cr_expect_eq(get_nowait_int(), 2);
  cr_expect_eq(uvt_queue_size(&q), 0u);
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueuePutTests::test_nonblocking_put_exception (QueueFull) */
UVT_TEST(cpython_queues, put_test_nonblocking_put_exception) {
  cr_expect_eq(uvt_queue_init(&q, 1), 0);
  cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(1)), 0);
  cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(2)), UVT_EAGAIN);
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueuePutTests::test_put_cancelled (despite its name: a
 * put into an unbounded queue completes, and get receives it) */
UVT_TEST(cpython_queues, put_test_put_cancelled) {
  uvt_task_t *t;
  cr_expect_eq(uvt_queue_init(&q, 0), 0);
  t = uvt_spawn(putter, ITEM(1));
  cr_expect_eq(get_int(), 1);
  cr_expect(uvt_done(t));
  cr_expect_eq(uvt_await(t), 0);
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueuePutTests::test_put_cancelled_race */
UVT_TEST(cpython_queues, put_test_put_cancelled_race) {
  uvt_task_t *a, *b, *c;
  cr_expect_eq(uvt_queue_init(&q, 1), 0);
  a = uvt_spawn(putter, ITEM('a'));
  b = uvt_spawn(putter, ITEM('b'));
  c = uvt_spawn(putter, ITEM('X'));
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(uvt_done(a));
  cr_expect_not(uvt_done(b));
  cr_expect_eq(uvt_cancel(c), 1);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect(uvt_done(c));
  cr_expect_eq(get_nowait_int(), 'a');
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(get_nowait_int(), 'b');
  cr_expect_eq(uvt_await(b), 0);
  cr_expect_eq(uvt_await(a), 0);
  cr_expect_eq(uvt_await(c), UVT_ECANCELED);
  cr_expect_eq(uvt_queue_size(&q), 0u); /* 'X' never went in */
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueuePutTests::test_put_with_waiting_getters */
UVT_TEST(cpython_queues, put_test_put_with_waiting_getters) {
  uvt_task_t *t;
  void *res = NULL;
  cr_expect_eq(uvt_queue_init(&q, 0), 0);
  t = uvt_spawn(getter, NULL);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_queue_put(&q, ITEM('a')), 0);
  cr_expect_eq(uvt_await_result(t, &res, NULL), 0);
  cr_expect_eq(INT(res), 'a');
  uvt_queue_destroy(&q);
}

static int drain_getter(void *arg) {
  size_t num;
  (void)arg;
  cr_expect_eq(uvt_yield(), 0);
  num = uvt_queue_size(&q);
  for (size_t i = 0; i < num; i++) {
    void *item;
    cr_expect_eq(uvt_queue_get_nowait(&q, &item), 0);
  }
  return 0;
}

/* test_queues.py::QueuePutTests::test_why_are_putters_waiting: get_nowait
 * makes room for waiting putters; all four puts complete. */
UVT_TEST(cpython_queues, put_test_why_are_putters_waiting) {
  uvt_task_t *t[5];
  cr_expect_eq(uvt_queue_init(&q, 2), 0);
  t[0] = uvt_spawn(drain_getter, NULL);
  for (int i = 0; i < 4; i++) t[i + 1] = uvt_spawn(putter, ITEM(i));
  cr_expect_eq(uvt_gather(t, 5), 0);
  for (int i = 0; i < 5; i++) uvt_detach(t[i]);
  cr_expect_eq(uvt_queue_size(&q), 2u);
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueuePutTests::test_cancelled_puts_not_being_held_in_self_putters:
 * a cancelled putter leaves no putter behind: a get then makes room that
 * nobody fills. */
UVT_TEST(cpython_queues, put_test_cancelled_puts_not_held) {
  uvt_task_t *t;
  cr_expect_eq(uvt_queue_init(&q, 1), 0);
  cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(1)), 0);
  t = uvt_spawn(putter, ITEM(2));
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_cancel(t), 1);
  cr_expect_eq(uvt_await(t), UVT_ECANCELED);
  cr_expect_eq(get_nowait_int(), 1);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_queue_size(&q), 0u);
  uvt_queue_destroy(&q);
}

/* ---- LifoQueueTests, PriorityQueueTests ---------------------------------- */

/* test_queues.py::LifoQueueTests::test_order */
UVT_TEST(cpython_queues, lifo_test_order) {
  int in[] = {1, 3, 2}, out[] = {2, 3, 1};
  cr_expect_eq(uvt_queue_init_lifo(&q, 0), 0);
  for (int i = 0; i < 3; i++) cr_expect_eq(uvt_queue_put(&q, ITEM(in[i])), 0);
  for (int i = 0; i < 3; i++) cr_expect_eq(get_int(), out[i]);
  uvt_queue_destroy(&q);
}

/* test_queues.py::PriorityQueueTests::test_order */
UVT_TEST(cpython_queues, priority_test_order) {
  int in[] = {1, 3, 2}, out[] = {1, 2, 3};
  cr_expect_eq(uvt_queue_init_priority(&q, 0, cmp_int), 0);
  for (int i = 0; i < 3; i++) cr_expect_eq(uvt_queue_put(&q, ITEM(in[i])), 0);
  for (int i = 0; i < 3; i++) cr_expect_eq(get_int(), out[i]);
  uvt_queue_destroy(&q);
}

/* ---- _QueueJoinTestMixin, for each of the three kinds -------------------- */

enum { FIFO, LIFO, PRIO };

static void init_kind(int kind) {
  if (kind == FIFO) cr_expect_eq(uvt_queue_init(&q, 0), 0);
  if (kind == LIFO) cr_expect_eq(uvt_queue_init_lifo(&q, 0), 0);
  if (kind == PRIO) cr_expect_eq(uvt_queue_init_priority(&q, 0, cmp_int), 0);
}

/* test_task_done_underflow: task_done with nothing put is ValueError */
static void task_done_underflow(int kind) {
  init_kind(kind);
  cr_expect_eq(uvt_queue_task_done(&q), UVT_EINVAL);
  uvt_queue_destroy(&q);
}

static int accumulator;
static int running;

static int join_worker(void *arg) {
  (void)arg;
  while (running) {
    void *item;
    int st = uvt_queue_get(&q, &item);
    if (st != 0) return st;
    accumulator += INT(item);
    cr_expect_eq(uvt_queue_task_done(&q), 0);
  }
  return 0;
}

/* test_task_done: two workers, join returns once all 100 are done */
static void task_done(int kind) {
  uvt_task_t *t[2];
  accumulator = 0;
  running = 1;
  init_kind(kind);
  for (int i = 0; i < 100; i++) cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(i)), 0);
  for (int i = 0; i < 2; i++) t[i] = uvt_spawn(join_worker, NULL);
  cr_expect_eq(uvt_queue_join(&q), 0);
  cr_expect_eq(accumulator, 99 * 100 / 2);
  running = 0;
  for (int i = 0; i < 2; i++) cr_expect_eq(uvt_queue_put_nowait(&q, ITEM(0)), 0);
  cr_expect_eq(uvt_gather(t, 2), 0);
  for (int i = 0; i < 2; i++) uvt_detach(t[i]);
  uvt_queue_destroy(&q);
}

/* test_join_empty_queue: join on an empty queue returns at once, twice */
static void join_empty_queue(int kind) {
  init_kind(kind);
  cr_expect_eq(uvt_queue_join(&q), 0);
  cr_expect_eq(uvt_queue_join(&q), 0);
  uvt_queue_destroy(&q);
}

/* test_queues.py::QueueJoinTests::test_task_done_underflow */
UVT_TEST(cpython_queues, join_fifo_test_task_done_underflow) { task_done_underflow(FIFO); }
/* test_queues.py::QueueJoinTests::test_task_done */
UVT_TEST(cpython_queues, join_fifo_test_task_done) { task_done(FIFO); }
/* test_queues.py::QueueJoinTests::test_join_empty_queue */
UVT_TEST(cpython_queues, join_fifo_test_join_empty_queue) { join_empty_queue(FIFO); }
/* test_queues.py::LifoQueueJoinTests::test_task_done_underflow */
UVT_TEST(cpython_queues, join_lifo_test_task_done_underflow) { task_done_underflow(LIFO); }
/* test_queues.py::LifoQueueJoinTests::test_task_done */
UVT_TEST(cpython_queues, join_lifo_test_task_done) { task_done(LIFO); }
/* test_queues.py::LifoQueueJoinTests::test_join_empty_queue */
UVT_TEST(cpython_queues, join_lifo_test_join_empty_queue) { join_empty_queue(LIFO); }
/* test_queues.py::PriorityQueueJoinTests::test_task_done_underflow */
UVT_TEST(cpython_queues, join_prio_test_task_done_underflow) { task_done_underflow(PRIO); }
/* test_queues.py::PriorityQueueJoinTests::test_task_done */
UVT_TEST(cpython_queues, join_prio_test_task_done) { task_done(PRIO); }
/* test_queues.py::PriorityQueueJoinTests::test_join_empty_queue */
UVT_TEST(cpython_queues, join_prio_test_join_empty_queue) { join_empty_queue(PRIO); }
