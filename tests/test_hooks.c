/*
 * The hook points (include/uvtask/hooks.h), seen by a subscriber of our
 * own: the debug library calls it at each point, in order, with the facts
 * the tracer records.  Linked against the debug library; the release one
 * refuses subscribers.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <uvtask.h>
#include <uvtask/hooks.h>

#define MAX_EVENTS 256

static struct {
  uvt_hook_kind_t kind;
  uvt_object_kind_t object_kind;
  uint64_t id, parent_id;
  char name[32];
  char what[32];
  int status;
  int line, where_line, depth;
} events[MAX_EVENTS];
static int nevents;

static void record(const uvt_hook_event_t *ev, void *data) {
  (void)data;
  if (nevents == MAX_EVENTS) return;
  events[nevents].kind = ev->kind;
  events[nevents].object_kind = ev->object_kind;
  events[nevents].id = ev->id;
  events[nevents].parent_id = ev->parent_id;
  snprintf(events[nevents].name, sizeof(events[nevents].name), "%s",
           ev->name ? ev->name : "");
  snprintf(events[nevents].what, sizeof(events[nevents].what), "%s",
           ev->what ? ev->what : "");
  events[nevents].status = ev->status;
  events[nevents].line = ev->line;
  events[nevents].where_line = ev->where_line;
  events[nevents].depth = ev->no_yield_depth;
  nevents++;
}

/* Index of the first event of `kind` for object `id` at or after `from`. */
static int find(int from, uvt_hook_kind_t kind, uint64_t id) {
  int i;
  for (i = from; i < nevents; i++)
    if (events[i].kind == kind && (id == 0 || events[i].id == id)) return i;
  return -1;
}

static int child_line;

static int child(void *arg) {
  (void)arg;
  if (uvt_sleep(5) != 0) return -1;
  return uvt_fail(-5, "child failed");
}

static int main_task(void *arg) {
  uvt_task_t *t;
  (void)arg;
  child_line = __LINE__ + 1;
  t = uvt_spawn(child, NULL);
  (void)!uvt_task_ref(t); /* given up by uvt_detach below: its event */
  cr_expect_eq(uvt_await(t), -5);
  uvt_detach(t);
  UVT_NO_YIELD_BEGIN();
  UVT_NO_YIELD_END();
  return 0;
}

Test(hooks, debug_library_accepts_a_subscriber) {
  cr_assert_eq(uvt_debug_build(), 1);
  cr_assert_eq(uvt_hook_add(record, NULL), 0);
  cr_assert_eq(uvt_hook_remove(record, NULL), 0);
  cr_assert_eq(uvt_hook_remove(record, NULL), UVT_EINVAL);
  cr_assert_eq(uvt_hook_add(NULL, NULL), UVT_EINVAL);
}

Test(hooks, a_task_life_in_order) {
  int create_main, create_child, resume, sleep_suspend, done, retrieved,
      detach, destroy, nyb, nye, timer_begin, timer_end;
  uint64_t main_id, child_id;
  cr_assert_eq(uvt_hook_add(record, NULL), 0);
  cr_assert_eq(uvt_run(NULL, main_task, NULL), 0);
  uvt_hook_remove(record, NULL);

  create_main = find(0, UVT_HOOK_CREATE, 0);
  cr_assert_geq(create_main, 0);
  main_id = events[create_main].id;
  cr_expect_str_eq(events[create_main].name, "main_task");
  create_child = find(create_main + 1, UVT_HOOK_CREATE, 0);
  cr_assert_geq(create_child, 0);
  child_id = events[create_child].id;
  cr_expect_eq(events[create_child].object_kind, UVT_OBJECT_TASK);
  cr_expect_str_eq(events[create_child].name, "child");
  cr_expect_eq(events[create_child].parent_id, main_id);
  cr_expect_eq(events[create_child].line, child_line);

  resume = find(create_child, UVT_HOOK_RESUME, child_id);
  sleep_suspend = find(resume, UVT_HOOK_SUSPEND, child_id);
  cr_assert_geq(sleep_suspend, 0);
  cr_expect_str_eq(events[sleep_suspend].what, "uvt_sleep");
  timer_begin = find(sleep_suspend, UVT_HOOK_CALLBACK_BEGIN, 0);
  timer_end = find(timer_begin, UVT_HOOK_CALLBACK_END, 0);
  cr_expect_geq(timer_begin, 0);
  cr_expect_str_eq(events[timer_begin].what, "timer");
  cr_expect_gt(timer_end, timer_begin);
  done = find(sleep_suspend, UVT_HOOK_DONE, child_id);
  cr_assert_geq(done, 0);
  cr_expect_eq(events[done].status, -5);
  retrieved = find(done, UVT_HOOK_RETRIEVED, child_id);
  detach = find(retrieved, UVT_HOOK_DETACH, child_id);
  destroy = find(detach, UVT_HOOK_DESTROY, child_id);
  cr_expect_gt(retrieved, done);
  cr_expect_gt(detach, retrieved);
  cr_expect_gt(destroy, detach);
  nyb = find(destroy, UVT_HOOK_NO_YIELD_BEGIN, main_id);
  nye = find(nyb, UVT_HOOK_NO_YIELD_END, main_id);
  cr_expect_geq(nyb, 0);
  cr_expect_eq(events[nyb].depth, 1);
  cr_expect_eq(events[nye].depth, 0);
  cr_expect_geq(find(nye, UVT_HOOK_DONE, main_id), 0);
  cr_expect_geq(find(0, UVT_HOOK_LOOP_CLOSE, 0), 0);
}

static int awaits_in_section(void *arg) {
  (void)arg;
  UVT_NO_YIELD_BEGIN();
  uvt_sleep(1);
  UVT_NO_YIELD_END();
  return 0;
}

Test(hooks, an_await_reports_the_no_yield_depth) {
  int i, await, findings;
  cr_assert_eq(uvt_hook_add(record, NULL), 0);
  cr_assert_eq(uvt_run(NULL, awaits_in_section, NULL), 0);
  uvt_hook_remove(record, NULL);
  await = find(0, UVT_HOOK_AWAIT, 0);
  cr_assert_geq(await, 0);
  cr_expect_eq(events[await].depth, 1);
  cr_expect_str_eq(events[await].what, "uvt_sleep");
  /* The runtime flags the call itself (yield-in-critical-section), once. */
  for (i = 0, findings = 0; i < nevents; i++)
    if (events[i].kind == UVT_HOOK_FINDING) {
      findings++;
      cr_expect_str_eq(events[i].what, "uvt_sleep");
      cr_expect_eq(events[i].where_line, events[await].where_line);
    }
  cr_expect_eq(findings, 1);
}

/* A subscriber that comes and goes while tasks run (and hand the CPU
 * straight to each other) must still see each step whole: no suspend
 * without the resume that began it. */
static int pinger(void *arg) {
  int i;
  for (i = 0; i < 50; i++) {
    if (i == 10 && arg != NULL) uvt_hook_add(record, NULL);
    if (i == 30 && arg != NULL) uvt_hook_remove(record, NULL);
    if (uvt_yield() != 0) return -1;
  }
  return 0;
}

static int toggles_main(void *arg) {
  uvt_task_t *t[3];
  (void)arg;
  t[0] = uvt_spawn(pinger, &t); /* the one that subscribes */
  t[1] = uvt_spawn(pinger, NULL);
  t[2] = uvt_spawn(pinger, NULL);
  return uvt_gather(t, 3);
}

Test(hooks, a_subscriber_added_while_tasks_run_sees_whole_steps) {
  int i, j, resumes = 0;
  nevents = 0;
  cr_assert_eq(uvt_run(NULL, toggles_main, NULL), 0);
  uvt_hook_remove(record, NULL);
  for (i = 0; i < nevents; i++) {
    if (events[i].kind == UVT_HOOK_RESUME) resumes++;
    if (events[i].kind != UVT_HOOK_SUSPEND) continue;
    /* The last step event of this task before its suspend is a resume. */
    for (j = i - 1; j >= 0; j--)
      if (events[j].id == events[i].id &&
          (events[j].kind == UVT_HOOK_RESUME || events[j].kind == UVT_HOOK_SUSPEND))
        break;
    cr_assert(j >= 0 && events[j].kind == UVT_HOOK_RESUME,
              "event %d: a suspend of task %llu with no resume before it", i,
              (unsigned long long)events[i].id);
  }
  cr_expect_gt(resumes, 10, "the subscriber saw the steps while subscribed");
}

/* ---- the subscriber word ------------------------------------------------ */

static int slot_events, slot_bad, other_saw_slot;
static long slot_marks;

/* Claims the word: a mark set at CREATE must come back on every later
 * event of the same object, and be gone (reset) by the next CREATE. */
static void slot_owner(const uvt_hook_event_t *ev, void *data) {
  (void)data;
  if (ev->object == NULL) return;
  if (ev->slot == NULL) {
    slot_bad++;
    return;
  }
  slot_events++;
  if (ev->kind == UVT_HOOK_CREATE) {
    if (*ev->slot != NULL) slot_bad++;
    *ev->slot = (void *)(uintptr_t)ev->id;
    slot_marks++;
  } else if (*ev->slot != (void *)(uintptr_t)ev->id) {
    slot_bad++;
  }
}

static void slot_other(const uvt_hook_event_t *ev, void *data) {
  (void)data;
  if (ev->slot != NULL) other_saw_slot++;
}

Test(hooks, the_object_word_belongs_to_its_one_claimer) {
  cr_assert_eq(uvt_hook_add(slot_other, NULL), 0);
  cr_assert_eq(uvt_hook_add_slot(slot_owner, NULL), 0);
  cr_assert_eq(uvt_hook_add_slot(record, NULL), UV_EBUSY);
  cr_assert_eq(uvt_run(NULL, main_task, NULL), 0);
  uvt_hook_remove(slot_owner, NULL);
  uvt_hook_remove(slot_other, NULL);
  cr_expect_eq(slot_marks, 2, "main and its child were created");
  cr_expect_gt(slot_events, 8);
  cr_expect_eq(slot_bad, 0, "the claimer's word came back unchanged");
  cr_expect_eq(other_saw_slot, 0, "another subscriber never sees the word");
}

/* ---- a suspended task's frame --------------------------------------------- */

static int frame_result = 1, frame_self = 1;
static uvt_task_frame_t frame;
static const void *sleeper_object;
static char *sleeper_lo, *sleeper_hi;

static void grab_sleeper(const uvt_hook_event_t *ev, void *data) {
  (void)data;
  if (ev->kind == UVT_HOOK_CREATE && ev->name != NULL &&
      strcmp(ev->name, "sleeper") == 0)
    sleeper_object = ev->object;
}

static int sleeper(void *arg) {
  char here;
  (void)arg;
  sleeper_lo = sleeper_hi = &here;
  /* Running: no saved frame to read. */
  frame_self = uvt_hook_task_frame(sleeper_object, &frame);
  return uvt_sleep(20);
}

static int frame_main(void *arg) {
  uvt_task_t *t = uvt_spawn(sleeper, NULL);
  int err;
  (void)arg;
  if (uvt_hook_task_frame(sleeper_object, &frame) != UVT_EINVAL) return -100;
  if ((err = uvt_sleep(1)) != 0) return err; /* the sleeper parks */
  frame_result = uvt_hook_task_frame(sleeper_object, &frame);
  return uvt_await(t);
}

Test(hooks, a_parked_task_frame_lies_on_its_own_stack) {
  cr_assert_eq(uvt_hook_add(grab_sleeper, NULL), 0);
  cr_assert_eq(uvt_run(NULL, frame_main, NULL), 0);
  uvt_hook_remove(grab_sleeper, NULL);
  cr_assert_eq(frame_self, UVT_EINVAL, "a running task has no saved frame");
  cr_assert_eq(frame_result, 0);
  cr_expect((char *)frame.stack_lo < sleeper_lo &&
            sleeper_hi < (char *)frame.stack_hi,
            "the stack bounds hold the task's own locals");
  cr_expect(frame.sp > (uintptr_t)frame.stack_lo &&
            frame.sp <= (uintptr_t)sleeper_lo,
            "sp is on the task's stack, below its first frame's locals");
  cr_expect_neq(frame.pc, 0);
  cr_expect_gt(frame.nregs, 0);
  cr_expect_eq(uvt_hook_task_frame(NULL, &frame), UVT_EINVAL);
}

/* ---- rename ------------------------------------------------------------------ */

static int renamer(void *arg) {
  (void)arg;
  uvt_name(NULL, "worker-%d", 7);
  return 0;
}

Test(hooks, uvt_name_sends_the_new_name) {
  int create, rename;
  nevents = 0;
  cr_assert_eq(uvt_hook_add(record, NULL), 0);
  cr_assert_eq(uvt_run(NULL, renamer, NULL), 0);
  uvt_hook_remove(record, NULL);
  create = find(0, UVT_HOOK_CREATE, 0);
  cr_assert_geq(create, 0);
  rename = find(create, UVT_HOOK_RENAME, events[create].id);
  cr_assert_geq(rename, 0, "a RENAME for the task");
  cr_expect_str_eq(events[rename].name, "worker-7");
}

/* ---- what a task waits on; locks; snapshots ---------------------------------- */

#include <pthread.h>
#include <signal.h>

static uvt_lock_t lk;
static int acquire_line, snap_begin, snap_end, snap_reason, snap_tasks;
static int lock_acq, lock_rel, await_on_lock;
static uint64_t holder_id, locker_id, awaiter_id;
static struct {
  uvt_task_state_t state;
  uvt_wait_kind_t wait;
  const void *wait_on;
  int where_line, nmembers;
  uint64_t member0, parent_id;
  int parked_ns_set;
} snap_locker;
static uvt_hook_kind_t lock_order[4];

static void watcher(const uvt_hook_event_t *ev, void *data) {
  (void)data;
  switch (ev->kind) {
  case UVT_HOOK_AWAIT:
    if (ev->id == locker_id && ev->wait == UVT_WAIT_LOCK && ev->wait_on == &lk &&
        ev->where_line == acquire_line && !ev->wait_timeout)
      await_on_lock++;
    break;
  case UVT_HOOK_LOCK_ACQUIRED:
  case UVT_HOOK_LOCK_RELEASED:
    if (ev->wait_on != &lk) break;
    if (lock_acq + lock_rel < 4) lock_order[lock_acq + lock_rel] = ev->kind;
    if (ev->kind == UVT_HOOK_LOCK_ACQUIRED) lock_acq++;
    else lock_rel++;
    if (ev->kind == UVT_HOOK_LOCK_ACQUIRED && lock_acq == 1) holder_id = ev->task_id;
    break;
  case UVT_HOOK_SNAPSHOT_BEGIN:
    snap_begin++;
    snap_reason = ev->status;
    break;
  case UVT_HOOK_SNAPSHOT_TASK:
    snap_tasks++;
    if (ev->id == locker_id) {
      snap_locker.state = ev->state;
      snap_locker.wait = ev->wait;
      snap_locker.wait_on = ev->wait_on;
      snap_locker.where_line = ev->where_line;
      snap_locker.nmembers = ev->nmembers;
      snap_locker.member0 = ev->nmembers > 0 ? ev->members[0].id : 0;
      snap_locker.parent_id = ev->parent_id;
      snap_locker.parked_ns_set = ev->parked_ns > 0;
    }
    break;
  case UVT_HOOK_SNAPSHOT_END:
    snap_end++;
    break;
  default:
    break;
  }
}

static int locker(void *arg) {
  int err;
  (void)arg;
  locker_id = uvt_hook_current_task();
  acquire_line = __LINE__ + 1;
  if ((err = uvt_lock_acquire(&lk)) != 0) return err;
  return uvt_lock_release(&lk);
}

static int awaiter(void *arg) {
  awaiter_id = uvt_hook_current_task();
  return uvt_await(arg);
}

static void *ask_from_thread(void *loop) {
  uvt_hook_request_snapshot(loop, 7);
  return NULL;
}

static void on_usr1(int sig) {
  (void)sig;
  uvt_hook_request_snapshot(uv_default_loop(), 9);
}

/* Main holds the lock; the locker parks on it and the awaiter on the
 * locker; a snapshot asked for from another thread (then from a signal
 * handler) shows who waits on what. */
static int snapshot_main(void *loop) {
  uvt_task_t *l, *a;
  pthread_t th;
  int i, err;
  if ((err = uvt_lock_acquire(&lk)) != 0) return err;
  l = uvt_spawn(locker, NULL);
  a = uvt_spawn(awaiter, uvt_task_ref(l)); /* its await gives this up */
  for (i = 0; i < 1000 && await_on_lock == 0; i++) uvt_sleep(1);
  if (pthread_create(&th, NULL, ask_from_thread, loop) != 0) return -1;
  for (i = 0; i < 5000 && snap_end == 0; i++) uvt_sleep(1);
  pthread_join(th, NULL);
  if (snap_end != 1) return -2;
  raise(SIGUSR1);
  for (i = 0; i < 5000 && snap_end == 1; i++) uvt_sleep(1);
  uvt_lock_release(&lk);
  if ((err = uvt_await(a)) != 0) return err;
  return uvt_await(l);
}

Test(hooks, a_snapshot_shows_what_each_task_waits_on) {
  uv_loop_t *loop = uv_default_loop();
  cr_assert_eq(uvt_hook_request_snapshot(loop, 1), UVT_ENOLOOP);
  cr_assert_eq(uvt_lock_init(&lk), 0);
  signal(SIGUSR1, on_usr1);
  cr_assert_eq(uvt_hook_add(watcher, NULL), 0);
  cr_assert_eq(uvt_run(loop, snapshot_main, loop), 0);
  uvt_hook_remove(watcher, NULL);
  cr_assert_eq(uvt_hook_request_snapshot(loop, 0), UVT_EINVAL);
  cr_expect_eq(await_on_lock, 1, "AWAIT names the lock and the acquire line");
  cr_assert_eq(snap_begin, 2);
  cr_assert_eq(snap_end, 2, "one from a thread, one from a signal handler");
  cr_expect_eq(snap_reason, 9);
  cr_expect_geq(snap_tasks, 6, "main, locker, awaiter, twice");
  cr_expect_eq(snap_locker.state, UVT_TASK_PARKED);
  cr_expect_eq(snap_locker.wait, UVT_WAIT_LOCK);
  cr_expect_eq(snap_locker.wait_on, &lk);
  cr_expect_eq(snap_locker.where_line, acquire_line);
  cr_expect_eq(snap_locker.nmembers, 1);
  cr_expect_eq(snap_locker.member0, awaiter_id, "its awaiter is listed");
  cr_expect_neq(snap_locker.parent_id, 0);
  cr_expect(snap_locker.parked_ns_set);
  cr_expect_eq(lock_acq, 2);
  cr_expect_eq(lock_rel, 2);
  cr_expect_eq(lock_order[0], UVT_HOOK_LOCK_ACQUIRED);
  cr_expect_eq(lock_order[1], UVT_HOOK_LOCK_RELEASED);
  cr_expect_eq(lock_order[2], UVT_HOOK_LOCK_ACQUIRED);
  cr_expect_eq(lock_order[3], UVT_HOOK_LOCK_RELEASED);
  cr_expect_eq(holder_id, snap_locker.parent_id, "main took it first");
}

/* ---- task groups in parent chains ------------------------------------------- */

static int group_leaf(void *arg) {
  (void)arg;
  return 0;
}

static int group_spawner(void *arg) {
  /* A task outside the group adds a child to it. */
  return uvt_group_spawn((uvt_group_t *)arg, group_leaf, NULL) != NULL ? 0 : -1;
}

static int group_owner(void *arg) {
  uvt_group_t g;
  (void)arg;
  cr_expect_eq(uvt_group_init(&g), 0);
  cr_expect_eq(uvt_await(uvt_spawn(group_spawner, &g)), 0);
  cr_expect_eq(uvt_group_leave(&g, 0), 0);
  uvt_group_destroy(&g);
  return 0;
}

/* The recorder's parent chain goes through the group: a group child's
 * parent is the group's owner, whichever task spawned it. */
Test(hooks, group_child_parent_is_group_owner) {
  int owner_ev, spawner_ev, leaf_ev;
  cr_assert_eq(uvt_hook_add(record, NULL), 0);
  cr_assert_eq(uvt_run(NULL, group_owner, NULL), 0);
  uvt_hook_remove(record, NULL);
  owner_ev = find(0, UVT_HOOK_CREATE, 0);
  spawner_ev = find(owner_ev + 1, UVT_HOOK_CREATE, 0);
  leaf_ev = find(spawner_ev + 1, UVT_HOOK_CREATE, 0);
  cr_assert_geq(leaf_ev, 0);
  cr_assert_str_eq(events[spawner_ev].name, "group_spawner");
  cr_assert_str_eq(events[leaf_ev].name, "group_leaf");
  cr_assert_eq(events[spawner_ev].parent_id, events[owner_ev].id);
  cr_assert_eq(events[leaf_ev].parent_id, events[owner_ev].id,
               "the group child's parent is its spawner, not the group owner");
}

/* uvt_hook_filter_awaits: a subscriber that asked gets AWAIT only where a
 * misuse checker needs it (a lock wait, a park while holding a lock, a
 * no-yield section); one that did not gets every AWAIT. */
static uvt_lock_t filter_lock;
static int filter_lines[4];

static int filter_holder(void *arg) {
  (void)arg;
  if (uvt_lock_acquire(&filter_lock) != 0) return -1;
  filter_lines[1] = __LINE__ + 1;
  if (uvt_sleep(1) != 0) return -1; /* parked holding the lock */
  return uvt_lock_release(&filter_lock);
}

static int filter_main(void *arg) {
  uvt_task_t *h;
  (void)arg;
  if (uvt_lock_init(&filter_lock) != 0) return -1;
  filter_lines[0] = __LINE__ + 1;
  if (uvt_sleep(1) != 0) return -1; /* a plain park */
  h = uvt_spawn(filter_holder, NULL);
  if (uvt_yield() != 0) return -1; /* the holder takes the lock */
  filter_lines[2] = __LINE__ + 1;
  if (uvt_lock_acquire(&filter_lock) != 0) return -1; /* a lock wait */
  (void)uvt_lock_release(&filter_lock);
  UVT_NO_YIELD_BEGIN();
  filter_lines[3] = __LINE__ + 1;
  (void)uvt_sleep(0); /* inside a no-yield section */
  UVT_NO_YIELD_END();
  return uvt_await(h);
}

static bool await_at(int line) {
  int i;
  for (i = 0; i < nevents; i++)
    if (events[i].kind == UVT_HOOK_AWAIT && events[i].where_line == line) return true;
  return false;
}

Test(hooks, filtered_awaits_are_the_ones_a_misuse_checker_needs) {
  nevents = 0;
  cr_assert_eq(uvt_hook_filter_awaits(record, NULL), UVT_EINVAL, "not subscribed");
  cr_assert_eq(uvt_hook_add(record, NULL), 0);
  cr_assert_eq(uvt_hook_filter_awaits(record, NULL), 0);
  cr_assert_eq(uvt_run(NULL, filter_main, NULL), 0);
  uvt_hook_remove(record, NULL);
  cr_expect(!await_at(filter_lines[0]), "a plain sleep sent AWAIT");
  cr_expect(await_at(filter_lines[1]), "no AWAIT for a park holding a lock");
  cr_expect(await_at(filter_lines[2]), "no AWAIT for a lock wait");
  cr_expect(await_at(filter_lines[3]), "no AWAIT inside a no-yield section");
  cr_expect_neq(find(0, UVT_HOOK_SUSPEND, 0), -1, "SUSPEND still sent");
}

Test(hooks, an_unfiltered_subscriber_still_gets_every_await) {
  nevents = 0;
  cr_assert_eq(uvt_hook_add(record, NULL), 0);
  cr_assert_eq(uvt_run(NULL, filter_main, NULL), 0);
  uvt_hook_remove(record, NULL);
  for (int i = 0; i < 4; i++) cr_expect(await_at(filter_lines[i]), "line %d", filter_lines[i]);
}

/* ---- where the program entered the library (uvt_hook_entry_point) ------- */

static int entry_events, entry_seen, entry_outside;

/* A subscriber of the program's own is itself a caller of the library:
 * the entry of the event under way is not shown to it. */
static void entry_probe(const uvt_hook_event_t *ev, void *data) {
  uintptr_t ra = 1, cfa = 1;
  (void)data;
  if (ev->kind != UVT_HOOK_CREATE) return;
  entry_events++;
  if (uvt_hook_entry_point(&ra, &cfa) != UVT_EINVAL || ra != 0) entry_seen++;
}

static int entry_child(void *arg) {
  (void)arg;
  return 0;
}

static int entry_main(void *arg) {
  uintptr_t ra = 1, cfa = 1;
  (void)arg;
  uvt_detach(uvt_spawn(entry_child, NULL));
  /* Between events the entry is cleared, whatever events came before. */
  if (uvt_hook_entry_point(&ra, &cfa) != UVT_EINVAL || ra != 0) entry_outside++;
  return 0;
}

Test(hooks, the_entry_point_is_hidden_from_a_program_subscriber_and_cleared_after) {
  cr_assert_eq(uvt_hook_add(entry_probe, NULL), 0);
  cr_assert_eq(uvt_run(NULL, entry_main, NULL), 0);
  uvt_hook_remove(entry_probe, NULL);
  cr_expect_geq(entry_events, 2, "CREATE for the main task and the child");
  cr_expect_eq(entry_seen, 0, "%d events showed their entry to the program",
               entry_seen);
  cr_expect_eq(entry_outside, 0, "an entry was left set after its event");
}

/* uvt_hook_combine_switches: a direct switch between two tasks is one
 * SUSPEND naming the next task, which then gets no RESUME of its own;
 * every step still begins once and ends once.  A subscriber that did not
 * ask keeps SUSPEND and RESUME apart (and so does everyone while it
 * subscribes). */
#define SW_MAX 512
static struct {
  uvt_hook_kind_t kind;
  uint64_t id, next_id;
  const void *object, *next;
  bool next_slot;
} sw[SW_MAX];
static int nsw;

static void record_switch(const uvt_hook_event_t *ev, void *data) {
  (void)data;
  if ((ev->kind != UVT_HOOK_RESUME && ev->kind != UVT_HOOK_SUSPEND) || nsw == SW_MAX)
    return;
  sw[nsw].kind = ev->kind;
  sw[nsw].id = ev->id;
  sw[nsw].object = ev->object;
  sw[nsw].next = ev->kind == UVT_HOOK_SUSPEND ? ev->next : NULL;
  sw[nsw].next_id = ev->kind == UVT_HOOK_SUSPEND ? ev->next_id : 0;
  sw[nsw].next_slot = ev->kind == UVT_HOOK_SUSPEND && ev->next_slot != NULL;
  nsw++;
}

static void ignore_events(const uvt_hook_event_t *ev, void *data) {
  (void)ev, (void)data;
}

static int sw_yielder(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < 5; i++)
    if (uvt_yield() != 0) return -1;
  return 0;
}

static int sw_main(void *arg) {
  uvt_task_t *t[2];
  int err;
  (void)arg;
  t[0] = uvt_spawn(sw_yielder, NULL);
  t[1] = uvt_spawn(sw_yielder, NULL);
  err = uvt_gather(t, 2);
  uvt_detach(t[0]);
  uvt_detach(t[1]);
  return err;
}

/* Per task: steps begun (RESUME, or a SUSPEND naming it next) and ended
 * (SUSPEND of it); they must match, and in order: never two begins or
 * two ends in a row. */
static void check_steps(int *combined) {
  int i, j;
  *combined = 0;
  for (i = 0; i < nsw; i++)
    if (sw[i].kind == UVT_HOOK_SUSPEND && sw[i].next != NULL) (*combined)++;
  for (i = 0; i < nsw; i++) {
    uint64_t id = sw[i].id;
    int running = 0, begun = 0, ended = 0;
    bool seen = false;
    for (j = 0; j < i; j++) seen = seen || sw[j].id == id || sw[j].next_id == id;
    if (seen || id == 0) continue;
    for (j = 0; j < nsw; j++) {
      if (sw[j].id == id && sw[j].kind == UVT_HOOK_SUSPEND) {
        cr_expect_eq(running, 1, "task %llu ended a step it had not begun",
                     (unsigned long long)id);
        running = 0;
        ended++;
      }
      if ((sw[j].id == id && sw[j].kind == UVT_HOOK_RESUME) ||
          (sw[j].kind == UVT_HOOK_SUSPEND && sw[j].next_id == id)) {
        cr_expect_eq(running, 0, "task %llu began a step twice",
                     (unsigned long long)id);
        running = 1;
        begun++;
      }
    }
    cr_expect_eq(begun, ended, "task %llu: %d steps begun, %d ended",
                 (unsigned long long)id, begun, ended);
  }
}

Test(hooks, combined_switches_are_one_event_per_direct_switch) {
  int combined;
  nsw = 0;
  cr_assert_eq(uvt_hook_combine_switches(record_switch, NULL), UVT_EINVAL,
               "not subscribed");
  cr_assert_eq(uvt_hook_add_slot(record_switch, NULL), 0);
  cr_assert_eq(uvt_hook_combine_switches(record_switch, NULL), 0);
  cr_assert_eq(uvt_run(NULL, sw_main, NULL), 0);
  uvt_hook_remove(record_switch, NULL);
  check_steps(&combined);
  /* Two tasks yielding to each other five times hand the CPU straight
   * over at each yield. */
  cr_expect_geq(combined, 8, "only %d combined switches", combined);
  for (int i = 0; i < nsw; i++) {
    if (sw[i].kind != UVT_HOOK_SUSPEND || sw[i].next == NULL) continue;
    cr_expect(sw[i].next_slot, "the claimer gets the next task's word");
    cr_expect_neq(sw[i].next_id, 0);
  }
}

Test(hooks, switches_stay_apart_while_a_subscriber_did_not_ask) {
  int combined;
  nsw = 0;
  cr_assert_eq(uvt_hook_add(record_switch, NULL), 0);
  cr_assert_eq(uvt_hook_add(ignore_events, NULL), 0);
  cr_assert_eq(uvt_hook_combine_switches(record_switch, NULL), 0);
  cr_assert_eq(uvt_run(NULL, sw_main, NULL), 0);
  uvt_hook_remove(ignore_events, NULL);
  uvt_hook_remove(record_switch, NULL);
  check_steps(&combined);
  cr_expect_eq(combined, 0, "%d combined switches", combined);
  cr_expect_geq(nsw, 20, "only %d RESUME/SUSPEND events", nsw);
}

/* uvt_hook_switch_callback: the switches it takes are logged in `sw` as
 * the combined SUSPEND they stand for; every other one it declines, and
 * that one must then come as the event. */
static int swcb_calls, swcb_declined, swcb_no_word;

static int take_every_other(const void *prev, void **prev_slot, const void *next,
                            void **next_slot, void *data) {
  (void)data;
  swcb_calls++;
  if (prev_slot == NULL || next_slot == NULL) swcb_no_word++;
  if (swcb_calls % 2 == 0) {
    swcb_declined++;
    return 1;
  }
  if (nsw < SW_MAX) {
    sw[nsw].kind = UVT_HOOK_SUSPEND;
    sw[nsw].id = uvt_hook_current_task(); /* still prev: not switched yet */
    sw[nsw].object = prev;
    sw[nsw].next = next;
    sw[nsw].next_id = 0;
    sw[nsw].next_slot = true;
    nsw++;
  }
  return 0;
}

/* The ids of the switches the callback took, from the events around. */
static void name_taken_switches(void) {
  int i, j;
  for (i = 0; i < nsw; i++) {
    if (sw[i].next_id != 0 || sw[i].next == NULL) continue;
    for (j = 0; j < nsw; j++)
      if (sw[j].object == sw[i].next && sw[j].id != 0) sw[i].next_id = sw[j].id;
  }
}

Test(hooks, a_switch_callback_takes_direct_switches_and_what_it_declines_comes_as_events) {
  int combined, i, taken = 0;
  nsw = swcb_calls = swcb_declined = swcb_no_word = 0;
  cr_assert_eq(uvt_hook_switch_callback(record_switch, NULL, take_every_other),
               UVT_EINVAL, "not subscribed");
  cr_assert_eq(uvt_hook_add_slot(record_switch, NULL), 0);
  cr_assert_eq(uvt_hook_combine_switches(record_switch, NULL), 0);
  cr_assert_eq(uvt_hook_switch_callback(record_switch, NULL, take_every_other), 0);
  cr_assert_eq(uvt_run(NULL, sw_main, NULL), 0);
  uvt_hook_remove(record_switch, NULL);
  name_taken_switches();
  for (i = 0; i < nsw; i++)
    if (sw[i].kind == UVT_HOOK_SUSPEND && sw[i].next != NULL && sw[i].next_id == 0)
      cr_expect_fail("a switch to a task seen nowhere else");
  check_steps(&combined);
  cr_expect_geq(swcb_calls, 8, "only %d switches went through the callback", swcb_calls);
  cr_expect_eq(swcb_no_word, 0, "the claimer gets both words");
  for (i = 0; i < nsw; i++) taken += sw[i].kind == UVT_HOOK_SUSPEND && sw[i].next != NULL;
  /* Each call is one direct switch: taken by it, or sent as the event. */
  cr_expect_eq(taken, swcb_calls, "%d combined switches, %d calls", taken, swcb_calls);
  cr_expect_eq(combined, swcb_calls);
  cr_expect_geq(swcb_declined, 4);
}

Test(hooks, a_switch_callback_is_used_only_for_a_lone_claimer) {
  int combined;
  nsw = swcb_calls = 0;
  cr_assert_eq(uvt_hook_add_slot(record_switch, NULL), 0);
  cr_assert_eq(uvt_hook_add(ignore_events, NULL), 0);
  cr_assert_eq(uvt_hook_combine_switches(record_switch, NULL), 0);
  cr_assert_eq(uvt_hook_combine_switches(ignore_events, NULL), 0);
  cr_assert_eq(uvt_hook_switch_callback(record_switch, NULL, take_every_other), 0);
  cr_assert_eq(uvt_run(NULL, sw_main, NULL), 0);
  uvt_hook_remove(ignore_events, NULL);
  cr_expect_eq(swcb_calls, 0, "the callback ran with two subscribers");
  check_steps(&combined);
  cr_expect_geq(combined, 8, "the switches came as events");
  /* Alone again: the callback applies from the next switch on. */
  nsw = 0;
  cr_assert_eq(uvt_run(NULL, sw_main, NULL), 0);
  uvt_hook_remove(record_switch, NULL);
  cr_expect_geq(swcb_calls, 8, "alone, only %d calls", swcb_calls);
}

/* uvt_hook_life_callback: each task's DONE, RETRIEVED and DESTROY comes
 * once, through the callback (which takes every other one here) or as an
 * event, with the word its CREATE set; a failed task's DONE carries its
 * status and message either way. */
enum { LIFE_TASKS = 12, LIFE_MAX = 64 };
static struct {
  uint64_t id;
  int done, retrieved, destroyed, status, via_cb;
  char message[32];
} lives[LIFE_MAX];
static int nlives, life_calls, life_declined, life_bad_word;

static int life_index(void **slot) {
  intptr_t i = slot != NULL ? (intptr_t)*slot : 0;
  return i >= 1 && i <= nlives ? (int)i - 1 : -1;
}

static void life_note(int i, uvt_hook_kind_t kind, int status, const char *message,
                      bool via_cb) {
  if (kind == UVT_HOOK_DONE) {
    lives[i].done++;
    lives[i].status = status;
    snprintf(lives[i].message, sizeof(lives[i].message), "%s", message ? message : "");
  } else if (kind == UVT_HOOK_RETRIEVED) {
    lives[i].retrieved++;
  } else if (kind == UVT_HOOK_DESTROY) {
    lives[i].destroyed++;
  }
  lives[i].via_cb += via_cb;
}

static void life_subscriber(const uvt_hook_event_t *ev, void *data) {
  int i;
  (void)data;
  if (ev->object_kind != UVT_OBJECT_TASK || ev->slot == NULL) return;
  if (ev->kind == UVT_HOOK_CREATE) {
    if (nlives == LIFE_MAX) return;
    lives[nlives].id = ev->id;
    *ev->slot = (void *)(intptr_t)(++nlives); /* the word: index + 1 */
    return;
  }
  if ((i = life_index(ev->slot)) >= 0) life_note(i, ev->kind, ev->status, ev->message, false);
}

static int life_every_other(uvt_hook_kind_t kind, const void *object, void **slot,
                            int status, const char *message, void *data) {
  int i = life_index(slot);
  (void)object, (void)data;
  life_calls++;
  if (i < 0) {
    life_bad_word++;
    return 1;
  }
  if (life_calls % 2 == 0) {
    life_declined++;
    return 1; /* comes as the event */
  }
  life_note(i, kind, status, message, true);
  return 0;
}

static int life_child(void *arg) {
  intptr_t k = (intptr_t)arg;
  if (k % 3 == 0) return uvt_fail(UV_EIO, "child %d", (int)k);
  return 0;
}

static int life_main(void *arg) {
  intptr_t k;
  (void)arg;
  for (k = 0; k < LIFE_TASKS; k++) {
    uvt_task_t *t = uvt_spawn(life_child, (void *)k);
    if (t == NULL) return UVT_ENOMEM;
    (void)uvt_await(t);
  }
  return 0;
}

Test(hooks, a_life_callback_takes_task_ends_and_what_it_declines_comes_as_events) {
  int i, via_cb = 0;
  nlives = life_calls = life_declined = life_bad_word = 0;
  memset(lives, 0, sizeof(lives));
  cr_assert_eq(uvt_hook_life_callback(life_subscriber, NULL, life_every_other), UVT_EINVAL,
               "not subscribed");
  cr_assert_eq(uvt_hook_add_slot(life_subscriber, NULL), 0);
  cr_assert_eq(uvt_hook_life_callback(life_subscriber, NULL, life_every_other), 0);
  cr_assert_eq(uvt_run(NULL, life_main, NULL), 0);
  uvt_hook_remove(life_subscriber, NULL);
  cr_expect_eq(life_bad_word, 0, "the callback got a word its CREATE did not set");
  cr_expect_geq(nlives, LIFE_TASKS + 1, "only %d tasks created", nlives);
  /* The spawned tasks (the main task's end is not awaited). */
  for (i = 1; i < nlives; i++) {
    cr_expect_eq(lives[i].done, 1, "task %d: %d DONE", i, lives[i].done);
    cr_expect_eq(lives[i].retrieved, 1, "task %d: %d RETRIEVED", i, lives[i].retrieved);
    cr_expect_eq(lives[i].destroyed, 1, "task %d: %d DESTROY", i, lives[i].destroyed);
    if ((i - 1) % 3 == 0) {
      char want[32];
      snprintf(want, sizeof(want), "child %d", i - 1);
      cr_expect_eq(lives[i].status, UV_EIO, "task %d: status %d", i, lives[i].status);
      cr_expect_str_eq(lives[i].message, want);
    } else {
      cr_expect_eq(lives[i].status, 0, "task %d: status %d", i, lives[i].status);
    }
    via_cb += lives[i].via_cb;
  }
  cr_expect_geq(life_calls, 3 * LIFE_TASKS, "only %d calls", life_calls);
  cr_expect_geq(life_declined, LIFE_TASKS, "only %d declined", life_declined);
  cr_expect_geq(via_cb, LIFE_TASKS, "only %d taken", via_cb);
}

Test(hooks, a_life_callback_is_used_only_for_a_lone_claimer) {
  nlives = life_calls = 0;
  memset(lives, 0, sizeof(lives));
  cr_assert_eq(uvt_hook_add_slot(life_subscriber, NULL), 0);
  cr_assert_eq(uvt_hook_add(ignore_events, NULL), 0);
  cr_assert_eq(uvt_hook_life_callback(life_subscriber, NULL, life_every_other), 0);
  cr_assert_eq(uvt_run(NULL, life_main, NULL), 0);
  uvt_hook_remove(ignore_events, NULL);
  cr_expect_eq(life_calls, 0, "the callback ran with two subscribers");
  cr_expect_eq(lives[1].done + lives[1].retrieved + lives[1].destroyed, 3,
               "the ends came as events");
  /* Alone again: the callback applies. */
  nlives = 0;
  memset(lives, 0, sizeof(lives));
  cr_assert_eq(uvt_run(NULL, life_main, NULL), 0);
  uvt_hook_remove(life_subscriber, NULL);
  cr_expect_geq(life_calls, 3 * LIFE_TASKS, "alone, only %d calls", life_calls);
}
