/*
 * lock_release — releasing a lock by spawning a task.
 *
 * The bug: a lock kept on a lock server is released by a coroutine (the
 * release request is a round trip), and the context manager's __exit__,
 * which cannot await, spawns that coroutine as a task.  The release then
 * runs later, concurrently with whatever follows the `with` block: that
 * code runs while the lock is still held, and the next waiter gets the
 * lock only a round trip later — if the release task runs at all.
 *
 * The asyncio original ("asyncio vs gevent", locks in asyncio):
 *
 *     @coroutine
 *     def something(self):
 *         with (yield from self.lock()):
 *             yield from self.do_work_during_lock()
 *         # The following is executed concurrently with self.release()
 *         yield from self.do_work_after_lock()
 *
 *     def __exit__(self, et, ev, tb):   # not-a-coroutine
 *         Task(self.release())
 *
 *     @coroutine
 *     def release(self):                # the bad release()
 *         yield from self.release_request()
 *
 * The fix (--fixed): the talk's good release(), not a coroutine: it sends
 * the request without awaiting the answer and frees the lock at once
 * (uvt_lock_release never yields), so the lock passes to the next waiter
 * before the releasing task goes on.
 *
 * Finding: none of its own; the interleaving printed is the evidence.  (A
 * release task that failed or never ended would be unretrieved-error or
 * pending-at-exit.)
 */

#include <stdio.h>
#include <string.h>
#include <uvtask.h>

#define WORK_MS 30 /* do_work_during_lock(), do_work_after_lock() */
#define RTT_MS 10  /* a round trip to the lock server */

typedef struct {
  uvt_lock_t lock;
  const char *holder; /* who the lock server thinks holds it; NULL: nobody */
  uint64_t start, freed_at, handoff_ns;
  bool fixed;
  bool held_after_exit; /* someone's after-lock code ran holding it */
} remote_lock_t;

static void show(const remote_lock_t *rl, const char *who, const char *what) {
  printf("%4.0f ms  %-12s %-34s lock held by: %s\n",
         (uv_hrtime() - rl->start) / 1e6, who, what,
         rl->holder != NULL ? rl->holder : "nobody");
}

static int lock_enter(remote_lock_t *rl, const char *who) {
  int err = uvt_lock_acquire(&rl->lock);
  if (err != 0) return err;
  if (rl->freed_at != 0) rl->handoff_ns = uv_hrtime() - rl->freed_at;
  rl->holder = who;
  return 0;
}

/* The bad release(): a coroutine, since it awaits the server's answer. */
static int release_request(void *arg) {
  remote_lock_t *rl = arg;
  int err = uvt_sleep(RTT_MS);
  if (err != 0) return err;
  rl->holder = NULL;
  show(rl, "release task", "lock released");
  return uvt_lock_release(&rl->lock);
}

/* __exit__: it cannot await. */
static void lock_exit(remote_lock_t *rl) {
  rl->freed_at = uv_hrtime();
  if (rl->fixed) {
    rl->holder = NULL; /* the good release(): send and forget, no yield */
    uvt_lock_release(&rl->lock);
  } else {
    uvt_detach(uvt_spawn(release_request, rl)); /* Task(self.release()) */
  }
}

typedef struct {
  remote_lock_t *rl;
  const char *name;
} worker_t;

static int something(void *arg) {
  worker_t *w = arg;
  int err;
  show(w->rl, w->name, "wants the lock");
  if ((err = lock_enter(w->rl, w->name)) != 0) return err;
  show(w->rl, w->name, "got it; works during the lock");
  err = uvt_sleep(WORK_MS);
  lock_exit(w->rl);
  show(w->rl, w->name, "left the with-block");
  if (w->rl->holder == w->name) w->rl->held_after_exit = true;
  if (err == 0) {
    show(w->rl, w->name, "works after the lock");
    err = uvt_sleep(WORK_MS);
  }
  return err;
}

static int run_workers(void *arg) {
  remote_lock_t *rl = arg;
  worker_t w[2] = {{rl, "A"}, {rl, "B"}};
  uvt_task_t *t[2];
  int err;

  rl->start = uv_hrtime();
  uvt_lock_init(&rl->lock);
  t[0] = uvt_spawn(something, &w[0]);
  t[1] = uvt_spawn(something, &w[1]);
  err = uvt_gather(t, 2);
  uvt_detach(t[0]);
  uvt_detach(t[1]);
  /* Wait for B's release task too: it must not outlive the lock. */
  if (err == 0 && (err = uvt_lock_acquire(&rl->lock)) == 0)
    uvt_lock_release(&rl->lock);
  uvt_lock_destroy(&rl->lock);
  printf("B got the lock %.1f ms after A left its with-block\n",
         rl->handoff_ns / 1e6);
  if (rl->held_after_exit)
    printf("BUG: each worker ran its after-lock code still holding the "
           "lock, and B waited a round trip for a lock nobody used\n");
  return err;
}

int main(int argc, char **argv) {
  remote_lock_t rl = {.fixed = argc > 1 && strcmp(argv[1], "--fixed") == 0};
  /* Line-buffered, so our lines and uvt_run's warnings on stderr come
   * out in the order they happened. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  return uvt_run(NULL, run_workers, &rl) == 0 ? 0 : 1;
}
