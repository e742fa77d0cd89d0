/*
 * fire_and_forget — a detached task whose error is lost.
 *
 * The bug: a task is spawned and its handle dropped ("fire and forget").
 * When it fails, nobody awaits it, so nobody sees the error: the program
 * goes on as if the write had happened.
 *
 * The asyncio original ("asyncio vs gevent", Common Bugs):
 *
 *     Task(redis.set('a', 'b'))
 *
 * and the talk's fix:
 *
 *     def task_wrapper():
 *         try:
 *             yield from redis.set('a', 'b')
 *         except Exception as e:
 *             log.exception("Task error")
 *
 *     Task(task_wrapper())
 *
 * The fix (--fixed): spawn_logged() spawns a small supervisor task that
 * awaits the worker, which retrieves its error, and logs it.
 *
 * Finding (debug variant): unretrieved-error, for the task 'redis_set'
 * spawned in save().  (uvt_detach already reports it on stderr.)
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uvtask.h>

typedef struct {
  const char *key, *value;
  bool server_up;
  const char *stored;    /* what a GET of `key` returns; NULL: nil */
  uvt_event_t answered;  /* the server has answered the SET (or refused it) */
} kv_t;

static int errors_logged;

/* A SET against a Redis that may not be there. */
static int redis_set(void *arg) {
  kv_t *kv = arg;
  int err = uvt_sleep(5); /* the round trip */
  if (err != 0) return err;
  uvt_event_set(&kv->answered);
  if (!kv->server_up)
    return uvt_fail(UV_ECONNREFUSED, "SET %s %s: connection refused by %s",
                    kv->key, kv->value, "127.0.0.1:6379");
  kv->stored = kv->value;
  return 0;
}

/* A GET on the same connection: Redis answers in order, so its reply
 * comes after the SET's, however late a loaded machine runs our timers.
 * The yield lets the tasks woken by the SET's end (the supervisor, when
 * there is one) run before we read. */
static int redis_get(kv_t *kv, const char **value) {
  int err = uvt_event_wait(&kv->answered);
  if (err == 0) err = uvt_yield();
  *value = kv->stored;
  return err;
}

/* ---- the fix: a supervisor that retrieves the error and logs it ---------- */

static int supervise(void *arg) {
  uvt_task_t *worker = arg;
  char name[64], *msg = NULL;
  int err;
  snprintf(name, sizeof(name), "%s", uvt_task_name(worker));
  /* Takes the handle over: the await gives it up. */
  err = uvt_await_result(worker, NULL, &msg);
  if (err < 0) {
    fprintf(stderr, "error: task '%s' failed: %s\n", name,
            msg != NULL ? msg : uvt_strerror(err));
    errors_logged++;
  }
  free(msg);
  return 0;
}

static void spawn_supervised(uvt_task_t *worker) {
  if (worker != NULL) uvt_detach(uvt_spawn(supervise, worker));
}

/* Spawn fn(arg) detached, with a supervisor that logs its error. */
#define spawn_logged(fn, arg) spawn_supervised(uvt_spawn(fn, arg))

/* ---- the program --------------------------------------------------------- */

static int save(void *arg) {
  bool fixed = *(bool *)arg;
  kv_t kv = {.key = "a", .value = "b", .server_up = false};
  const char *a = NULL;
  int err;

  uvt_event_init(&kv.answered);
  if (fixed) spawn_logged(redis_set, &kv);
  else uvt_detach(uvt_spawn(redis_set, &kv)); /* Task(redis.set('a', 'b')) */
  printf("main: SET a b sent in the background\n");

  err = uvt_sleep(50); /* other work */
  if (err == 0) err = redis_get(&kv, &a);
  uvt_event_destroy(&kv.answered);
  if (err != 0) return err;
  printf("main: GET a -> %s; errors logged: %d\n", a != NULL ? a : "(nil)",
         errors_logged);
  if (a == NULL && errors_logged == 0)
    printf("BUG: the SET failed and nobody saw its error\n");
  return 0;
}

int main(int argc, char **argv) {
  bool fixed = argc > 1 && strcmp(argv[1], "--fixed") == 0;
  /* Line-buffered, so our lines and uvt_run's warnings on stderr come
   * out in the order they happened. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  return uvt_run(NULL, save, &fixed) == 0 ? 0 : 1;
}
