/*
 * first_completed — the fastest mirror wins, the others keep running.
 *
 * The bug: the same file is fetched from several mirrors and the first
 * answer is taken with uvt_wait(..., UVT_FIRST_COMPLETED).  Waiting leaves
 * the other fetches running: they waste their work in the background, and
 * one that hangs is still pending when the program ends.
 *
 * The asyncio original ("asyncio vs gevent", Common Bugs), with the talk's
 * fix in its last two lines:
 *
 *     done, left = yield from asyncio.wait(map(asyncio.Task, coroutines),
 *         return_when=asyncio.FIRST_COMPLETED)
 *     for coro in left:
 *         coro.cancel()
 *
 * The fix (--fixed): cancel the tasks that are not done, and await them,
 * so each has ended (and let go of what it held) before we go on.
 *
 * Finding (debug variant): pending-at-exit, for the task fetching from the
 * hung mirror, created in download() and parked in uvt_sleep in fetch().
 * (uvt_run already reports and cancels it on stderr.)
 */

#include <stdio.h>
#include <string.h>
#include <uvtask.h>

#define NMIRRORS 3

typedef struct {
  const char *name;
  int delay_ms; /* how long this mirror takes to answer */
} mirror_t;

static int fetch(void *arg) {
  mirror_t *m = arg;
  int err = uvt_sleep(m->delay_ms); /* the download */
  if (err != 0) return err;
  printf("fetch: %s finished its download\n", m->name);
  uvt_set_result(m);
  return 0;
}

static int download(void *arg) {
  bool fixed = *(bool *)arg;
  mirror_t mirrors[NMIRRORS] = {{"eu.example.org", 10},
                                 {"us.example.org", 60},
                                 {"hung.example.org", 60000}};
  uvt_task_t *t[NMIRRORS];
  bool done_at_pick[NMIRRORS];
  mirror_t *winner;
  int i, err, wasted = 0, running = 0;

  for (i = 0; i < NMIRRORS; i++) {
    t[i] = uvt_spawn(fetch, &mirrors[i]);
    uvt_name(t[i], "fetch %s", mirrors[i].name);
  }
  err = uvt_wait(t, NMIRRORS, UVT_FIRST_COMPLETED, -1, NULL);
  if (err != 0) return err;
  for (i = 0; !uvt_done(t[i]); i++) continue;
  winner = uvt_result(t[i]);
  printf("main: using the file from %s\n", winner->name);
  /* On a loaded machine two mirrors can finish in the same loop pass,
   * before we get to pick: only downloads finishing after the pick are
   * work we could have saved. */
  for (i = 0; i < NMIRRORS; i++) done_at_pick[i] = uvt_done(t[i]);

  if (fixed) {
    for (i = 0; i < NMIRRORS; i++)
      if (!uvt_done(t[i])) uvt_cancel(t[i]);
    for (i = 0; i < NMIRRORS; i++) {
      char name[64];
      snprintf(name, sizeof(name), "%s", uvt_task_name(t[i]));
      /* The await gives the handle up: t[i] is not used after it. */
      if (uvt_await(t[i]) == UVT_ECANCELED)
        printf("main: cancelled '%s'\n", name);
    }
    return uvt_sleep(100); /* process the file */
  }

  err = uvt_sleep(100); /* process the file */
  for (i = 0; i < NMIRRORS; i++) {
    if (!done_at_pick[i] && uvt_result(t[i]) != NULL) wasted++;
    if (!uvt_done(t[i])) running++;
    uvt_detach(t[i]); /* the handle goes; a running task goes on */
  }
  if (wasted + running > 0)
    printf("BUG: the other fetches were never cancelled: %d download%s "
           "wasted, %d still running as main returns\n",
           wasted, wasted == 1 ? "" : "s", running);
  return err;
}

int main(int argc, char **argv) {
  bool fixed = argc > 1 && strcmp(argv[1], "--fixed") == 0;
  /* Line-buffered, so our lines and uvt_run's warnings on stderr come
   * out in the order they happened. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  return uvt_run(NULL, download, &fixed) == 0 ? 0 : 1;
}
