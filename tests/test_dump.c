/*
 * uvt_dump: the task listing a user prints to see what a program's tasks
 * are doing.  Built twice, against the release library (test_dump) and
 * against the debug one (test_dump_debug, UVT_TEST_DEBUG_LIB): both must
 * list every task with its parked line; the debug one also says for how
 * long and on what.
 *
 * The listing is made inside a task; checks there use cr_expect, and the
 * text is examined after uvt_run returns.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uvtask.h"
#include "source_line.h"

TestSuite(dump, .timeout = 20);

typedef struct {
  uvt_lock_t lock;
  uvt_event_t never;
  uvt_queue_t empty;
  char *text;
  size_t size;
  int listed;
} world_t;

static int on_lock(void *arg) {
  world_t *w = arg;
  return uvt_lock_acquire(&w->lock); /* DUMP_LOCK */
}

static int on_event(void *arg) {
  world_t *w = arg;
  return uvt_event_wait(&w->never); /* DUMP_EVENT */
}

static int on_queue(void *arg) {
  world_t *w = arg;
  void *item;
  return uvt_queue_get(&w->empty, &item); /* DUMP_QUEUE */
}

static int on_sleep(void *arg) {
  (void)arg;
  return uvt_sleep(600000); /* DUMP_SLEEP */
}

static int awaiter(void *arg) {
  uvt_task_t *t = uvt_spawn(on_sleep, arg); /* DUMP_INNER_SPAWN */
  uvt_name(NULL, "awaiter of %s", "sleeper");
  return uvt_await(t); /* DUMP_AWAIT */
}

static int dump_main(void *arg) {
  world_t *w = arg;
  uvt_task_t *t[8];
  FILE *out;
  int i, n = 0;
  cr_expect_eq(uvt_lock_init(&w->lock), 0);
  cr_expect_eq(uvt_lock_acquire(&w->lock), 0);
  uvt_event_init(&w->never);
  cr_expect_eq(uvt_queue_init(&w->empty, 0), 0);
  t[n++] = uvt_spawn(on_lock, w);
  t[n++] = uvt_spawn(on_event, w);
  t[n++] = uvt_spawn(on_queue, w);
  t[n++] = uvt_spawn(awaiter, w);
  /* Three alike: one group of three in the listing. */
  for (i = 0; i < 3; i++) t[n++] = uvt_spawn(on_sleep, w); /* DUMP_ALIKE */
  for (i = 0; i < 4; i++) cr_expect_eq(uvt_yield(), 0);
  out = open_memstream(&w->text, &w->size);
  cr_expect_not_null(out);
  if (out != NULL) {
    w->listed = uvt_dump(out);
    fclose(out);
  }
  for (i = 0; i < n; i++) uvt_cancel(t[i]);
  for (i = 0; i < n; i++) uvt_await(t[i]);
  uvt_lock_release(&w->lock);
  return 0;
}

/* The line of the listing's entry that mentions `needle`, or NULL. */
static const char *has(const char *text, const char *needle) {
  return strstr(text, needle);
}

static char *site(const char *marker) {
  char *s;
  cr_assert(asprintf(&s, "%s:%d", __FILE__, source_line(__FILE__, marker)) > 0);
  return s;
}

Test(dump, lists_every_task_with_its_state_wait_and_parked_line) {
  world_t w;
  const char *markers[] = {"DUMP_LOCK */", "DUMP_EVENT */", "DUMP_QUEUE */",
                           "DUMP_SLEEP */", "DUMP_AWAIT */", "DUMP_ALIKE */",
                           "DUMP_INNER_SPAWN */"};
  const char *calls[] = {"[uvt_lock_acquire", "[uvt_event_wait", "[uvt_queue_get",
                         "[uvt_sleep", "[uvt_await"};
  size_t i;
  memset(&w, 0, sizeof(w));
  cr_assert_eq(uvt_run(NULL, dump_main, &w), 0);
  cr_assert_not_null(w.text);
  /* main (running), four single tasks, the awaited sleeper, three alike. */
  cr_expect_eq(w.listed, 9, "listed %d:\n%s", w.listed, w.text);
  cr_expect(has(w.text, "uvtask: 9 tasks on scheduler #"), "%s", w.text);
  cr_expect(has(w.text, "'dump_main' running"), "%s", w.text);
  for (i = 0; i < sizeof(markers) / sizeof(*markers); i++) {
    char *s = site(markers[i]);
    cr_expect(has(w.text, s), "no %s in:\n%s", s, w.text);
    free(s);
  }
  for (i = 0; i < sizeof(calls) / sizeof(*calls); i++)
    cr_expect(has(w.text, calls[i]), "no %s in:\n%s", calls[i], w.text);
  /* The current name, not the creation one. */
  cr_expect(has(w.text, "'awaiter of sleeper' parked [uvt_await"), "%s", w.text);
  /* Alike tasks: once, with their count. */
  cr_expect(has(w.text, "3 tasks parked [uvt_sleep"), "%s", w.text);
  /* Ids as the report shows them, one entry per line, main first. */
  cr_expect(has(w.text, "\ntask #1:1 'dump_main' running\n    created at  "), "%s", w.text);
  cr_expect(has(w.text, "\n    parked at   "), "%s", w.text);
  free(w.text);
}

Test(dump, draws_who_awaits_whom) {
  world_t w;
  const char *tree, *parent, *child;
  memset(&w, 0, sizeof(w));
  cr_assert_eq(uvt_run(NULL, dump_main, &w), 0);
  cr_assert_not_null(w.text);
  tree = strstr(w.text, "await tree (");
  cr_assert_not_null(tree, "%s", w.text);
  parent = strstr(tree, "'awaiter of sleeper' uvt_await at");
  child = strstr(tree, "└── ");
  cr_expect_not_null(parent, "%s", tree);
  cr_expect_not_null(child, "%s", tree);
  cr_expect(parent != NULL && child != NULL && parent < child, "%s", tree);
  cr_expect(child != NULL && strstr(child, "'on_sleep' uvt_sleep at") != NULL, "%s", tree);
  free(w.text);
}

#ifdef UVT_TEST_DEBUG_LIB
/* The debug library knows since when and on what. */
Test(dump, debug_library_says_how_long_and_on_what) {
  world_t w;
  memset(&w, 0, sizeof(w));
  cr_assert_eq(uvt_run(NULL, dump_main, &w), 0);
  cr_assert_not_null(w.text);
  cr_expect(has(w.text, "[uvt_lock_acquire, "), "%s", w.text);
  cr_expect(has(w.text, "ms]"), "%s", w.text);
  cr_expect(has(w.text, "waits on    lock"), "%s", w.text);
  cr_expect(has(w.text, "waits on    task #1:"), "%s", w.text);
  cr_expect(has(w.text, "waits on    sleep (with a timeout)"), "%s", w.text);
  free(w.text);
}
#endif

static int wrong_thread_main(void *arg) {
  (void)arg;
  return 0;
}

Test(dump, refuses_without_a_loop_or_output) {
  cr_expect_eq(uvt_dump(NULL), UVT_EINVAL);
  cr_expect_eq(uvt_dump(stderr), UVT_ENOLOOP);
  cr_expect_eq(uvt_run(NULL, wrong_thread_main, NULL), 0);
  cr_expect_eq(uvt_dump(stderr), UVT_ENOLOOP);
}
