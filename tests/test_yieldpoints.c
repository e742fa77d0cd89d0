/*
 * Checks made before a call does anything (issue 13, items 1 and 2):
 *
 *  - inside a no-yield section, every call that may suspend is a
 *    yield-in-critical-section finding, whether or not it suspends this
 *    time (debug library: read here as hook FINDING events);
 *  - a loop-only call made from another thread (a uvt_to_thread function)
 *    is refused: UVT_EWRONGTHREAD where the signature allows, nothing done
 *    for a void call, and (debug library) a WRONG_THREAD hook event at the
 *    call.
 *
 * Built twice: test_yieldpoints against the release library,
 * test_yieldpoints_debug against the debug one (UVT_TEST_DEBUG_LIB).
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <string.h>
#include <unistd.h>
#include <uvtask.h>
#include <uvtask/hooks.h>
#include <uvtask/stream.h>

#define MAX_SEEN 256

/* What the subscriber saw: findings and wrong-thread events. */
static struct {
  uvt_hook_kind_t kind;
  uvt_finding_kind_t finding;
  char what[48];
  int where_line;
} seen[MAX_SEEN];
static int nseen;
static uv_mutex_t seen_mutex;

static void record(const uvt_hook_event_t *ev, void *data) {
  (void)data;
  if (ev->kind != UVT_HOOK_FINDING && ev->kind != UVT_HOOK_WRONG_THREAD) return;
  /* WRONG_THREAD comes from the pool's threads. */
  uv_mutex_lock(&seen_mutex);
  if (nseen < MAX_SEEN) {
    seen[nseen].kind = ev->kind;
    seen[nseen].finding = ev->finding;
    snprintf(seen[nseen].what, sizeof(seen[nseen].what), "%s",
             ev->what ? ev->what : "");
    seen[nseen].where_line = ev->where_line;
    nseen++;
  }
  uv_mutex_unlock(&seen_mutex);
}

static void subscribe(void) {
  cr_assert_eq(uv_mutex_init(&seen_mutex), 0);
#ifdef UVT_TEST_DEBUG_LIB
  cr_assert_eq(uvt_hook_add(record, NULL), 0);
#else
  cr_assert_eq(uvt_hook_add(record, NULL), UV_ENOTSUP);
#endif
}

/* Index of the yield-in-critical-section finding at `line`, or -1. */
__attribute__((unused)) static int finding_at(int line) {
  int i;
  for (i = 0; i < nseen; i++)
    if (seen[i].kind == UVT_HOOK_FINDING &&
        seen[i].finding == UVT_FINDING_YIELD_IN_CRITICAL_SECTION &&
        seen[i].where_line == line)
      return i;
  return -1;
}

__attribute__((unused)) static int count(uvt_hook_kind_t kind) {
  int i, n = 0;
  for (i = 0; i < nseen; i++) n += seen[i].kind == kind;
  return n;
}

/* Index of the WRONG_THREAD event of call `what`, or -1. */
__attribute__((unused)) static int wrong_thread_of(const char *what) {
  int i;
  for (i = 0; i < nseen; i++)
    if (seen[i].kind == UVT_HOOK_WRONG_THREAD && strcmp(seen[i].what, what) == 0)
      return i;
  return -1;
}

/* Index of the WRONG_THREAD event of call `what` at `line`, or -1. */
__attribute__((unused)) static int wrong_thread_at(const char *what, int line) {
  int i;
  for (i = 0; i < nseen; i++)
    if (seen[i].kind == UVT_HOOK_WRONG_THREAD &&
        strcmp(seen[i].what, what) == 0 && seen[i].where_line == line)
      return i;
  return -1;
}

static int return_zero(void *arg) {
  (void)arg;
  return 0;
}

/* ---- yield points that did not suspend ------------------------------------
 * The release library does not flag them (see UVT_NO_YIELD_BEGIN). */
#ifdef UVT_TEST_DEBUG_LIB

struct yp {
  int lines[4];
  int st[4];
  int outside_st;
};

static int may_yield_main(void *arg) {
  struct yp *r = arg;
  uvt_lock_t lock;
  uvt_queue_t q;
  uvt_task_t *done = uvt_spawn(return_zero, NULL);
  uvt_task_t *done2 = uvt_spawn(return_zero, NULL);
  void *item;
  cr_expect_eq(uvt_lock_init(&lock), 0);
  cr_expect_eq(uvt_queue_init(&q, 4), 0);
  while (!uvt_done(done) || !uvt_done(done2)) (void)uvt_yield();

  UVT_NO_YIELD_BEGIN();
  r->lines[0] = __LINE__ + 1;
  r->st[0] = uvt_lock_acquire(&lock); /* free: does not suspend */
  UVT_NO_YIELD_END();
  (void)uvt_lock_release(&lock);

  UVT_NO_YIELD_BEGIN();
  r->lines[1] = __LINE__ + 1;
  r->st[1] = uvt_queue_put(&q, &q); /* room: does not suspend */
  UVT_NO_YIELD_END();

  UVT_NO_YIELD_BEGIN();
  r->lines[2] = __LINE__ + 1;
  r->st[2] = uvt_await(done); /* done: does not suspend */
  UVT_NO_YIELD_END();

  UVT_NO_YIELD_BEGIN();
  r->lines[3] = __LINE__ + 1;
  r->st[3] = uvt_sleep(0);
  UVT_NO_YIELD_END();

  /* The same calls outside a section: nothing. */
  r->outside_st = uvt_lock_acquire(&lock) | uvt_lock_release(&lock) |
                  uvt_queue_put(&q, &q) | uvt_queue_get(&q, &item) |
                  uvt_queue_get(&q, &item) | uvt_await(done2) | uvt_sleep(0);
  uvt_queue_destroy(&q);
  uvt_lock_destroy(&lock);
  return 0;
}

Test(yieldpoints, a_call_that_may_yield_in_a_section_is_a_finding_even_if_it_did_not) {
  struct yp r;
  int i, f;
  static const char *const what[] = {"uvt_lock_acquire", "uvt_queue_put",
                                     "uvt_await", "uvt_sleep"};
  memset(&r, 0, sizeof r);
  subscribe();
  cr_assert_eq(uvt_run(NULL, may_yield_main, &r), 0);
  uvt_hook_remove(record, NULL);
  cr_assert_eq(r.outside_st, 0);
  for (i = 0; i < 4; i++) {
    cr_expect_eq(r.st[i], 0, "%s", what[i]);
    f = finding_at(r.lines[i]);
    cr_expect_geq(f, 0, "no finding for %s at line %d", what[i], r.lines[i]);
    if (f >= 0) cr_expect_str_eq(seen[f].what, what[i]);
  }
  cr_expect_eq(count(UVT_HOOK_FINDING), 4, "the calls outside gave none");
}

/* One finding per section, at the first call; an inline coroutine's
 * awaits are blamed on the uvt_await_coro of the section's own code. */
static int acquires(void *arg) {
  uvt_lock_t *l = arg;
  int st = uvt_lock_acquire(l);
  return st != 0 ? st : uvt_lock_release(l);
}

static int once_main(void *arg) {
  int *lines = arg;
  uvt_lock_t lock;
  cr_expect_eq(uvt_lock_init(&lock), 0);
  UVT_NO_YIELD_BEGIN();
  lines[0] = __LINE__ + 1;
  cr_expect_eq(uvt_sleep(0), 0);
  cr_expect_eq(uvt_yield(), 0);
  cr_expect_eq(uvt_lock_acquire(&lock), 0);
  cr_expect_eq(uvt_lock_release(&lock), 0);
  UVT_NO_YIELD_END();

  UVT_NO_YIELD_BEGIN();
  lines[1] = __LINE__ + 1;
  cr_expect_eq(uvt_await_coro(uvt_coro(acquires, &lock)), 0);
  UVT_NO_YIELD_END();
  uvt_lock_destroy(&lock);
  return 0;
}

Test(yieldpoints, one_finding_per_section_at_the_outermost_call) {
  int lines[2] = {0, 0}, f;
  subscribe();
  cr_assert_eq(uvt_run(NULL, once_main, lines), 0);
  uvt_hook_remove(record, NULL);
  cr_expect_eq(count(UVT_HOOK_FINDING), 2);
  cr_expect_geq(finding_at(lines[0]), 0);
  f = finding_at(lines[1]);
  cr_assert_geq(f, 0);
  cr_expect_str_eq(seen[f].what, "uvt_await_coro");
}
#endif

/* ---- loop-only calls from a pool thread ------------------------------------- */

struct families {
  uvt_event_t event;
  uvt_lock_t lock;
  uvt_sem_t sem;
  uvt_queue_t queue;
  uvt_cond_t cond;
  uvt_lock_t cond_lock;
  uvt_barrier_t barrier;
  uvt_future_t *future;
  uvt_task_t *task;
  /* From the pool thread: */
  int lock_release, sem_release, put_nowait, get_nowait, task_done, put, get,
      acquire, join, notify, future_set, future_cancel, cancel, await, wait,
      sem_acquire, coro_close;
  int lines[4]; /* put, get, acquire, cancel */
  int at[32];   /* the line of each call in `located` below */
  int sleep, yield, to_thread, open_unix, open_tcp, start_server,
      future_error, cond_notify_all;
  uvt_task_t *spawned;
  uvt_future_t *future_new;
  uvt_coro_t *coro;
  void *item;
};

static int sleeper(void *arg) {
  (void)arg;
  return uvt_sleep(60000);
}

static int never_runs(uvt_stream_t *s, void *arg) {
  (void)s;
  (void)arg;
  return 0;
}

/* Runs on libuv's thread pool: every call here is misuse. */
static int from_pool(void *arg) {
  struct families *r = arg;
  uvt_server_t *srv = NULL;
  uvt_stream_t *s = NULL;
  /* MARK(i) and the call share a line: the finding must name it. */
#define MARK(i) r->at[i] = __LINE__
  MARK(0); uvt_event_set(&r->event);
  MARK(1); uvt_event_clear(&r->event);
  MARK(2); r->lock_release = uvt_lock_release(&r->lock);
  MARK(3); r->sem_release = uvt_sem_release(&r->sem);
  MARK(4); r->put_nowait = uvt_queue_put_nowait(&r->queue, r);
  MARK(5); r->get_nowait = uvt_queue_get_nowait(&r->queue, &r->item);
  MARK(6); r->task_done = uvt_queue_task_done(&r->queue);
  MARK(7); uvt_queue_close(&r->queue);
  MARK(8); r->cond_notify_all = uvt_cond_notify_all(&r->cond);
  MARK(9); uvt_barrier_reset(&r->barrier);
  MARK(10); r->future_error = uvt_future_set_error(r->future, -5, "e%d", 1);
  MARK(11); uvt_future_detach(r->future);
  MARK(12); r->sleep = uvt_sleep(1);
  MARK(13); r->yield = uvt_yield();
  MARK(14); r->to_thread = uvt_to_thread(return_zero, NULL);
  MARK(15); r->open_unix = uvt_open_unix("/nonexistent/uvt.sock", &s);
  MARK(16); r->open_tcp = uvt_open_connection("127.0.0.1", 9, &s);
  MARK(17); r->start_server = uvt_start_server("127.0.0.1", 0, never_runs, NULL, &srv);
  MARK(18); uvt_event_destroy(&r->event);
  MARK(19); uvt_lock_destroy(&r->lock);
  MARK(20); uvt_sem_destroy(&r->sem);
  MARK(21); uvt_queue_destroy(&r->queue);
  MARK(22); uvt_cond_destroy(&r->cond);
  MARK(23); uvt_barrier_destroy(&r->barrier);
#undef MARK
  r->lines[0] = __LINE__ + 1;
  r->put = uvt_queue_put(&r->queue, r);
  r->lines[1] = __LINE__ + 1;
  r->get = uvt_queue_get(&r->queue, &r->item);
  r->lines[2] = __LINE__ + 1;
  r->acquire = uvt_lock_acquire(&r->lock);
  r->sem_acquire = uvt_sem_acquire(&r->sem);
  r->join = uvt_queue_join(&r->queue);
  r->at[24] = __LINE__ + 1;
  r->notify = uvt_cond_notify(&r->cond, 1);
  r->at[25] = __LINE__ + 1;
  uvt_barrier_abort(&r->barrier);
  r->at[26] = __LINE__ + 1;
  r->future_set = uvt_future_set_result(r->future, r);
  r->at[27] = __LINE__ + 1;
  r->future_cancel = uvt_future_cancel(r->future);
  r->lines[3] = __LINE__ + 1;
  r->cancel = uvt_cancel(r->task);
  r->await = uvt_await(r->task);
  r->wait = uvt_wait_for(r->task, 1);
  r->at[28] = __LINE__ + 1;
  uvt_detach(r->task);
  r->spawned = uvt_spawn(return_zero, NULL);
  r->future_new = uvt_future_new();
  r->coro = uvt_coro(return_zero, NULL);
  return 0;
}

static int families_main(void *arg) {
  struct families *r = arg;
  uvt_coro_t *c;
  cr_expect_eq(uvt_event_init(&r->event), 0);
  cr_expect_eq(uvt_lock_init(&r->lock), 0);
  cr_expect_eq(uvt_sem_init(&r->sem, 0), 0);
  cr_expect_eq(uvt_queue_init(&r->queue, 2), 0);
  cr_expect_eq(uvt_lock_init(&r->cond_lock), 0);
  cr_expect_eq(uvt_cond_init(&r->cond, &r->cond_lock), 0);
  cr_expect_eq(uvt_barrier_init(&r->barrier, 2), 0);
  /* Bind each to this loop, as a first use does. */
  cr_expect_eq(uvt_lock_acquire(&r->lock), 0);
  cr_expect_eq(uvt_queue_put(&r->queue, r), 0);
  cr_expect_eq(uvt_lock_acquire(&r->cond_lock), 0);
  cr_expect_eq(uvt_cond_notify(&r->cond, 1), 0);
  cr_expect_eq(uvt_lock_release(&r->cond_lock), 0);
  uvt_event_clear(&r->event);
  cr_expect_eq(uvt_sem_release(&r->sem), 0);
  cr_expect_eq(uvt_sem_acquire(&r->sem), 0);
  uvt_barrier_reset(&r->barrier);
  r->future = uvt_future_new();
  r->task = uvt_spawn(sleeper, NULL);
  cr_expect_eq(uvt_yield(), 0); /* the sleeper parks */

  cr_expect_eq(uvt_to_thread(from_pool, r), 0);

  /* Nothing the pool thread asked for happened. */
  cr_expect_not(uvt_event_is_set(&r->event), "event set from the pool");
  cr_expect(uvt_lock_locked(&r->lock), "lock released from the pool");
  cr_expect_eq(uvt_queue_size(&r->queue), 1);
  cr_expect_eq(uvt_queue_put_nowait(&r->queue, r), 0, "queue closed from the pool");
  cr_expect_not(uvt_future_done(r->future));
  cr_expect_not(uvt_done(r->task));
  c = uvt_coro(return_zero, NULL); /* the loop's own calls still work */
  cr_expect_eq(uvt_coro_close(c), 0);

  cr_expect_eq(uvt_cancel(r->task), 1);
  cr_expect_eq(uvt_await(r->task), UVT_ECANCELED);
  cr_expect_eq(uvt_future_cancel(r->future), 1);
  uvt_future_detach(r->future);
  cr_expect_eq(uvt_lock_release(&r->lock), 0);
  uvt_event_destroy(&r->event);
  uvt_lock_destroy(&r->lock);
  uvt_sem_destroy(&r->sem);
  uvt_queue_destroy(&r->queue);
  uvt_cond_destroy(&r->cond);
  uvt_lock_destroy(&r->cond_lock);
  uvt_barrier_destroy(&r->barrier);
  return 0;
}

Test(yieldpoints, loop_only_calls_from_a_pool_thread_are_refused,
     .init = cr_redirect_stderr) {
  struct families r;
  memset(&r, 0, sizeof r);
  r.spawned = (uvt_task_t *)&r;
  r.future_new = (uvt_future_t *)&r;
  r.coro = (uvt_coro_t *)&r;
  subscribe();
  cr_assert_eq(uvt_run(NULL, families_main, &r), 0);
  uvt_hook_remove(record, NULL);
  cr_expect_eq(r.lock_release, UVT_EWRONGTHREAD);
  cr_expect_eq(r.sem_release, UVT_EWRONGTHREAD);
  cr_expect_eq(r.put_nowait, UVT_EWRONGTHREAD);
  cr_expect_eq(r.get_nowait, UVT_EWRONGTHREAD);
  cr_expect_eq(r.task_done, UVT_EWRONGTHREAD);
  cr_expect_eq(r.put, UVT_EWRONGTHREAD);
  cr_expect_eq(r.get, UVT_EWRONGTHREAD);
  cr_expect_eq(r.acquire, UVT_EWRONGTHREAD);
  cr_expect_eq(r.sem_acquire, UVT_EWRONGTHREAD);
  cr_expect_eq(r.join, UVT_EWRONGTHREAD);
  cr_expect_eq(r.notify, UVT_EWRONGTHREAD);
  cr_expect_eq(r.future_set, UVT_EWRONGTHREAD);
  cr_expect_eq(r.future_cancel, UVT_EWRONGTHREAD);
  cr_expect_eq(r.future_error, UVT_EWRONGTHREAD);
  cr_expect_eq(r.cond_notify_all, UVT_EWRONGTHREAD);
  /* Awaiting calls that take no object: refused as well (before, they
   * returned UVT_ENOTASK with nothing reported). */
  cr_expect_eq(r.sleep, UVT_EWRONGTHREAD);
  cr_expect_eq(r.yield, UVT_EWRONGTHREAD);
  cr_expect_eq(r.to_thread, UVT_EWRONGTHREAD);
  cr_expect_eq(r.open_unix, UVT_EWRONGTHREAD);
  cr_expect_eq(r.open_tcp, UVT_EWRONGTHREAD);
  cr_expect_eq(r.start_server, UVT_EWRONGTHREAD);
  cr_expect_eq(r.cancel, UVT_EWRONGTHREAD);
  cr_expect_eq(r.await, UVT_EWRONGTHREAD);
  cr_expect_eq(r.wait, UVT_EWRONGTHREAD);
  cr_expect_null(r.spawned);
  cr_expect_null(r.future_new);
  cr_expect_null(r.coro);
#ifdef UVT_TEST_DEBUG_LIB
  {
    static const char *const calls[] = {
        "uvt_event_set",     "uvt_event_clear",     "uvt_lock_release",
        "uvt_sem_release",   "uvt_queue_put_nowait", "uvt_queue_get_nowait",
        "uvt_queue_task_done", "uvt_queue_close",   "uvt_queue_put",
        "uvt_queue_get",     "uvt_lock_acquire",    "uvt_sem_acquire",
        "uvt_queue_join",    "uvt_cond_notify",     "uvt_barrier_abort",
        "uvt_future_set",    "uvt_cancel",          "uvt_await",
        "uvt_wait_for",      "uvt_detach",          "uvt_spawn",
        "uvt_future_new",    "uvt_coro"};
    static const char *const located[] = {
        "uvt_event_set",       "uvt_event_clear",      "uvt_lock_release",
        "uvt_sem_release",     "uvt_queue_put_nowait", "uvt_queue_get_nowait",
        "uvt_queue_task_done", "uvt_queue_close",      "uvt_cond_notify_all",
        "uvt_barrier_reset",   "uvt_future_set",       "uvt_future_detach",
        "uvt_sleep",           "uvt_yield",            "uvt_to_thread",
        "uvt_open_unix",       "uvt_open_connection",  "uvt_start_server",
        "uvt_event_destroy",   "uvt_lock_destroy",     "uvt_sem_destroy",
        "uvt_queue_destroy",   "uvt_cond_destroy",     "uvt_barrier_destroy",
        "uvt_cond_notify",     "uvt_barrier_abort",    "uvt_future_set",
        "uvt_future_set",      "uvt_detach"};
    size_t i;
    int at;
    for (i = 0; i < sizeof calls / sizeof calls[0]; i++)
      cr_expect_geq(wrong_thread_of(calls[i]), 0, "no wrong-thread for %s", calls[i]);
    /* Calls that pass their line say where they were made. */
    at = wrong_thread_of("uvt_queue_put");
    cr_expect(at >= 0 && seen[at].where_line == r.lines[0]);
    at = wrong_thread_of("uvt_queue_get");
    cr_expect(at >= 0 && seen[at].where_line == r.lines[1]);
    at = wrong_thread_of("uvt_lock_acquire");
    cr_expect(at >= 0 && seen[at].where_line == r.lines[2]);
    at = wrong_thread_of("uvt_cancel");
    cr_expect(at >= 0 && seen[at].where_line == r.lines[3]);
    /* Every call names the caller's line, the ones that never await too
     * (they pass it through their macros since issue 13's item 2). */
    for (i = 0; i < sizeof located / sizeof located[0]; i++)
      cr_expect_geq(wrong_thread_at(located[i], r.at[i]), 0,
                    "no wrong-thread for %s at line %d", located[i], r.at[i]);
  }
#endif
}

/* The checks refuse only other threads: a plain libuv callback on the loop
 * thread of a program that runs its own uv_run may still use the objects
 * its tasks use. */
static uvt_event_t cb_event;
static int cb_put;
static uvt_queue_t cb_queue;

static void on_timer(uv_timer_t *h) {
  uvt_event_set(&cb_event);
  cb_put = uvt_queue_put_nowait(&cb_queue, h);
}

static int waits_event(void *arg) {
  (void)arg;
  cr_expect_eq(uvt_queue_put_nowait(&cb_queue, &cb_queue), 0); /* binds it */
  return uvt_event_wait(&cb_event);
}

Test(yieldpoints, a_libuv_callback_on_the_loop_thread_is_not_refused) {
  uv_loop_t loop;
  uv_timer_t timer;
  uvt_task_t *t;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(uvt_event_init(&cb_event), 0);
  cr_assert_eq(uvt_queue_init(&cb_queue, 4), 0);
  t = uvt_spawn_on(&loop, waits_event, NULL);
  cr_assert_not_null(t);
  cr_assert_eq(uv_timer_init(&loop, &timer), 0);
  cr_assert_eq(uv_timer_start(&timer, on_timer, 1, 0), 0);
  while (!uvt_done(t)) uv_run(&loop, UV_RUN_ONCE);
  cr_expect_eq(cb_put, 0);
  cr_expect_eq(uvt_queue_size(&cb_queue), 2);
  uvt_detach(t);
  uv_close((uv_handle_t *)&timer, NULL);
  cr_assert_eq(uvt_loop_close(&loop), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
  uvt_event_destroy(&cb_event);
  uvt_queue_destroy(&cb_queue);
}

/* ---- streams and servers from a pool thread --------------------------------- */

struct stream_calls {
  uvt_stream_t *s;
  uvt_server_t *srv;
  int write, eof, hwm, limit, read, drain, close, srv_close;
  size_t cancelled;
  int lines[2]; /* read, close */
  int at[5];    /* write, write_eof, set_high_water, set_limit, cancel_connections */
};

static int drains_peer(uvt_stream_t *s, void *arg) {
  char buf[64];
  size_t n;
  (void)arg;
  while (uvt_read(s, buf, sizeof buf, &n) == 0 && n > 0) continue;
  return 0;
}

static int stream_from_pool(void *arg) {
  struct stream_calls *r = arg;
  char buf[8];
  size_t n;
  r->at[0] = __LINE__, r->write = uvt_write(r->s, "x", 1);
  r->at[1] = __LINE__, r->eof = uvt_write_eof(r->s);
  r->at[2] = __LINE__, r->hwm = uvt_stream_set_high_water(r->s, 1);
  r->at[3] = __LINE__, r->limit = uvt_stream_set_limit(r->s, 1024);
  r->lines[0] = __LINE__ + 1;
  r->read = uvt_read(r->s, buf, sizeof buf, &n);
  r->drain = uvt_drain(r->s);
  r->lines[1] = __LINE__ + 1;
  r->close = uvt_close(r->s);
  r->at[4] = __LINE__, r->cancelled = uvt_server_cancel_connections(r->srv);
  r->srv_close = uvt_server_close(r->srv);
  return 0;
}

static int stream_main(void *arg) {
  struct stream_calls *r = arg;
  char path[64];
  snprintf(path, sizeof path, "/tmp/uvt-yp-%d.sock", (int)getpid());
  unlink(path);
  cr_expect_eq(uvt_start_unix_server(path, drains_peer, NULL, &r->srv), 0);
  cr_expect_eq(uvt_open_unix(path, &r->s), 0);
  if (r->s == NULL || r->srv == NULL) return -1;
  while (uvt_server_connections(r->srv) == 0) (void)uvt_yield();
  cr_expect_eq(uvt_to_thread(stream_from_pool, r), 0);
  /* Still open and usable from the loop. */
  cr_expect_eq(uvt_write(r->s, "y", 1), 0);
  cr_expect_eq(uvt_drain(r->s), 0);
  cr_expect_eq(uvt_close(r->s), 0);
  cr_expect_eq(uvt_server_close(r->srv), 0);
  return 0;
}

Test(yieldpoints, stream_and_server_calls_from_a_pool_thread_are_refused,
     .init = cr_redirect_stderr) {
  struct stream_calls r;
  memset(&r, 0, sizeof r);
  r.cancelled = 99;
  subscribe();
  cr_assert_eq(uvt_run(NULL, stream_main, &r), 0);
  uvt_hook_remove(record, NULL);
  cr_expect_eq(r.write, UVT_EWRONGTHREAD);
  cr_expect_eq(r.eof, UVT_EWRONGTHREAD);
  cr_expect_eq(r.hwm, UVT_EWRONGTHREAD);
  cr_expect_eq(r.limit, UVT_EWRONGTHREAD);
  cr_expect_eq(r.read, UVT_EWRONGTHREAD);
  cr_expect_eq(r.drain, UVT_EWRONGTHREAD);
  cr_expect_eq(r.close, UVT_EWRONGTHREAD);
  cr_expect_eq(r.srv_close, UVT_EWRONGTHREAD);
  cr_expect_eq(r.cancelled, 0);
#ifdef UVT_TEST_DEBUG_LIB
  {
    static const char *const calls[] = {
        "uvt_write", "uvt_write_eof", "uvt_stream_set_high_water",
        "uvt_stream_set_limit", "uvt_read", "uvt_drain", "uvt_close",
        "uvt_server_cancel_connections", "uvt_server_close"};
    size_t i;
    int at;
    for (i = 0; i < sizeof calls / sizeof calls[0]; i++)
      cr_expect_geq(wrong_thread_of(calls[i]), 0, "no wrong-thread for %s", calls[i]);
    at = wrong_thread_of("uvt_read");
    cr_expect(at >= 0 && seen[at].where_line == r.lines[0]);
    at = wrong_thread_of("uvt_close");
    cr_expect(at >= 0 && seen[at].where_line == r.lines[1]);
    /* The calls that never await name the caller's line too. */
    for (i = 0; i < 4; i++)
      cr_expect_geq(wrong_thread_at(calls[i], r.at[i]), 0,
                    "no wrong-thread for %s at line %d", calls[i], r.at[i]);
    cr_expect_geq(wrong_thread_at("uvt_server_cancel_connections", r.at[4]), 0);
  }
#endif
}

/* ---- the plain symbols stay (ABI 0.2) --------------------------------------
 * Programs built before the location macros call the plain functions:
 * they still work on the loop thread and are still refused elsewhere. */

struct plain {
  uvt_event_t event;
  uvt_lock_t lock;
  uvt_queue_t queue;
  uvt_future_t *future;
  int pool_set; /* from the pool: a refused plain call */
};

static int plain_from_pool(void *arg) {
  struct plain *p = arg;
  (uvt_event_set)(&p->event);
  p->pool_set = (uvt_future_set_result)(p->future, p);
  return 0;
}

static int plain_main(void *arg) {
  struct plain *p = arg;
  void *item = NULL;
  cr_expect_eq(uvt_event_init(&p->event), 0);
  cr_expect_eq(uvt_lock_init(&p->lock), 0);
  cr_expect_eq(uvt_queue_init(&p->queue, 2), 0);
  cr_expect_eq(uvt_lock_acquire(&p->lock), 0);
  cr_expect_eq(uvt_queue_put(&p->queue, p), 0); /* binds it to this loop */
  p->future = uvt_future_new();
  (uvt_event_clear)(&p->event); /* binds the event */
  cr_expect_eq(uvt_to_thread(plain_from_pool, p), 0);
  cr_expect_not(uvt_event_is_set(&p->event));
  cr_expect_not(uvt_future_done(p->future));
  (uvt_event_set)(&p->event);
  cr_expect(uvt_event_is_set(&p->event));
  cr_expect_eq((uvt_lock_release)(&p->lock), 0);
  cr_expect_not(uvt_lock_locked(&p->lock));
  cr_expect_eq((uvt_queue_put_nowait)(&p->queue, &item), 0);
  cr_expect_eq((uvt_queue_get_nowait)(&p->queue, &item), 0);
  cr_expect_eq(item, p);
  cr_expect_eq((uvt_future_set_error)(p->future, -5, "plain %d", 5), 0);
  cr_expect_str_eq(uvt_future_error_message(p->future), "plain 5");
  (uvt_future_detach)(p->future);
  (uvt_queue_close)(&p->queue);
  (uvt_queue_destroy)(&p->queue);
  (uvt_lock_destroy)(&p->lock);
  (uvt_event_destroy)(&p->event);
  return 0;
}

Test(yieldpoints, the_plain_symbols_still_work, .init = cr_redirect_stderr) {
  struct plain p;
  memset(&p, 0, sizeof p);
  cr_assert_eq(uvt_run(NULL, plain_main, &p), 0);
  cr_expect_eq(p.pool_set, UVT_EWRONGTHREAD);
}
