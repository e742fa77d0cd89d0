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
  int i, await;
  cr_assert_eq(uvt_hook_add(record, NULL), 0);
  cr_assert_eq(uvt_run(NULL, awaits_in_section, NULL), 0);
  uvt_hook_remove(record, NULL);
  await = find(0, UVT_HOOK_AWAIT, 0);
  cr_assert_geq(await, 0);
  cr_expect_eq(events[await].depth, 1);
  cr_expect_str_eq(events[await].what, "uvt_sleep");
  for (i = 0; i < nevents; i++) cr_expect_neq(events[i].kind, UVT_HOOK_FINDING);
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
