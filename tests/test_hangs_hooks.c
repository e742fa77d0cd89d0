/*
 * The deadlock and stall findings as a hook subscriber sees them (the
 * tracer is one): a FINDING event of kind deadlock whose members are the
 * cycle's tasks in order, each with what it waits on and where it is
 * parked; a FINDING of kind stall whose members are the parked tasks.
 * Linked against the debug library (the release one has no hooks).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uvtask.h>
#include <uvtask/hooks.h>

#define MAX_MEMBERS 8

static struct {
  int findings;            /* deadlock or stall findings seen */
  uvt_finding_kind_t kind;
  uint64_t id;
  char name[32];
  int where_line;
  int nmembers;
  struct {
    uint64_t id;
    char name[32];
    uvt_wait_kind_t wait;
    const void *wait_on;
    int where_line;
    const void *object;
  } m[MAX_MEMBERS];
} seen;

static pthread_mutex_t seen_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t seen_cond = PTHREAD_COND_INITIALIZER;

static void subscriber(const uvt_hook_event_t *ev, void *data) {
  int i;
  (void)data;
  if (ev->kind != UVT_HOOK_FINDING || (ev->finding != UVT_FINDING_DEADLOCK &&
                                       ev->finding != UVT_FINDING_STALL))
    return;
  pthread_mutex_lock(&seen_mutex);
  seen.findings++;
  seen.kind = ev->finding;
  seen.id = ev->id;
  snprintf(seen.name, sizeof(seen.name), "%s", ev->name ? ev->name : "");
  seen.where_line = ev->where_line;
  seen.nmembers = ev->nmembers;
  for (i = 0; i < ev->nmembers && i < MAX_MEMBERS; i++) {
    seen.m[i].id = ev->members[i].id;
    snprintf(seen.m[i].name, sizeof(seen.m[i].name), "%s",
             ev->members[i].name ? ev->members[i].name : "");
    seen.m[i].wait = ev->members[i].wait;
    seen.m[i].wait_on = ev->members[i].wait_on;
    seen.m[i].where_line = ev->members[i].where_line;
    seen.m[i].object = ev->members[i].object;
  }
  pthread_cond_broadcast(&seen_cond);
  pthread_mutex_unlock(&seen_mutex);
}

static int findings_seen(void) {
  int n;
  pthread_mutex_lock(&seen_mutex);
  n = seen.findings;
  pthread_mutex_unlock(&seen_mutex);
  return n;
}

/* ---- a deadlock -------------------------------------------------------------- */

static uvt_lock_t locks[2];
static int second_line, first_line;
static uint64_t ids[2];
static const void *objects[2];

static int taker(void *arg) {
  int first = *(int *)arg, st;
  first_line = __LINE__; uvt_lock_acquire(&locks[first]);
  uvt_yield();
  second_line = __LINE__; st = uvt_lock_acquire(&locks[1 - first]);
  if (st == 0) uvt_lock_release(&locks[1 - first]);
  uvt_lock_release(&locks[first]);
  return 0;
}

static int deadlock_main(void *arg) {
  static int which[2] = {0, 1};
  uvt_task_t *t[2];
  int i;
  (void)arg;
  uvt_lock_init(&locks[0]);
  uvt_lock_init(&locks[1]);
  for (i = 0; i < 2; i++) {
    t[i] = uvt_spawn(taker, &which[i]);
    uvt_name(t[i], i == 0 ? "alice" : "bob");
    objects[i] = t[i];
  }
  /* Until the subscriber has seen it (the tasks park within a pass or
   * two); bounded. */
  for (i = 0; i < 10000 && findings_seen() == 0; i++) uvt_yield();
  uvt_cancel(t[0]);
  uvt_cancel(t[1]);
  uvt_gather(t, 2);
  uvt_detach(t[0]);
  uvt_detach(t[1]);
  return 0;
}

Test(hang_hooks, a_deadlock_is_one_finding_event_listing_the_cycle) {
  cr_assert_eq(uvt_hook_add(subscriber, NULL), 0);
  uvt_hook_set_findings_log(0);
  cr_assert_eq(uvt_run(NULL, deadlock_main, NULL), 0);
  cr_assert_eq(seen.findings, 1);
  cr_assert_eq(seen.kind, UVT_FINDING_DEADLOCK);
  /* bob's park closed it: bob waits for L1 (alice holds it), alice for
   * L2 (bob holds it). */
  cr_assert_str_eq(seen.name, "bob");
  cr_assert_eq(seen.where_line, second_line);
  cr_assert_eq(seen.nmembers, 2);
  cr_assert_str_eq(seen.m[0].name, "bob");
  cr_assert_str_eq(seen.m[1].name, "alice");
  cr_assert_eq(seen.m[0].object, objects[1]);
  cr_assert_eq(seen.m[1].object, objects[0]);
  cr_assert_eq(seen.m[0].wait, UVT_WAIT_LOCK);
  cr_assert_eq(seen.m[0].wait_on, &locks[0]);
  cr_assert_eq(seen.m[1].wait_on, &locks[1]);
  cr_assert_eq(seen.m[0].where_line, second_line);
  cr_assert_eq(seen.m[1].where_line, second_line);
  (void)ids, (void)first_line;
}

/* ---- a stall ---------------------------------------------------------------- */

static uvt_event_t never;
static uv_loop_t *stall_loop;

static int set_never(void *arg) {
  (void)arg;
  uvt_event_set(&never);
  return 0;
}

/* Another thread (invisible to the stall check, as the check must assume)
 * ends the stall once the subscriber has seen it. */
static void *rescuer(void *arg) {
  (void)arg;
  pthread_mutex_lock(&seen_mutex);
  while (seen.findings == 0) pthread_cond_wait(&seen_cond, &seen_mutex);
  pthread_mutex_unlock(&seen_mutex);
  uvt_call_threadsafe(stall_loop, set_never, NULL);
  return NULL;
}

static int stall_line;

static int waiter(void *arg) {
  (void)arg;
  stall_line = __LINE__; return uvt_event_wait(&never);
}

static int stall_main(void *arg) {
  pthread_t th;
  (void)arg;
  uvt_event_init(&never);
  stall_loop = uvt_loop();
  pthread_create(&th, NULL, rescuer, NULL);
  uvt_await(uvt_spawn(waiter, NULL));
  pthread_join(th, NULL);
  return 0;
}

Test(hang_hooks, a_stall_is_one_finding_event_listing_the_parked_tasks) {
  setenv("ASYNCIODEBUG_STALL_MS", "50", 1);
  cr_assert_eq(uvt_hook_add(subscriber, NULL), 0);
  uvt_hook_set_findings_log(0);
  cr_assert_eq(uvt_run(NULL, stall_main, NULL), 0);
  cr_assert_eq(seen.findings, 1);
  cr_assert_eq(seen.kind, UVT_FINDING_STALL);
  cr_assert_eq(seen.nmembers, 2);
  /* Both parked tasks: main in its await, the waiter on the event. */
  cr_assert(strcmp(seen.m[0].name, "waiter") == 0 || strcmp(seen.m[1].name, "waiter") == 0);
  cr_assert(strcmp(seen.m[0].name, "stall_main") == 0 ||
            strcmp(seen.m[1].name, "stall_main") == 0);
  {
    int w = strcmp(seen.m[0].name, "waiter") == 0 ? 0 : 1;
    cr_assert_eq(seen.m[w].wait, UVT_WAIT_EVENT);
    cr_assert_eq(seen.m[w].where_line, stall_line);
  }
}
