/*
 * forgot_await — a coroutine object created and never awaited.
 *
 * The bug: calling a coroutine function in asyncio only creates a
 * coroutine object; without `yield from` (or `await`) its body never runs.
 * The call looks like it did the work, nothing fails, and the side effect
 * silently never happens.  uvt_coro() is that call: it makes the object,
 * and only uvt_await_coro() (or uvt_spawn_coro()) runs it.
 *
 * The asyncio original ("asyncio vs gevent", Common Bugs):
 *
 *     @coroutine
 *     def save_draft(doc):
 *         yield from storage.put(doc)
 *
 *     save_draft(doc)              # forgot `yield from`: nothing is saved
 *
 *     >>> asyncio.coroutine(a)()   # what PYTHONASYNCIODEBUG=1 catches
 *     <asyncio.tasks.CoroWrapper object at 0x7f5fe4cdbb38>
 *
 * The fix (--fixed): await the object, uvt_await_coro(uvt_coro(...)).
 *
 * Finding (debug variant): never-awaited, for the coroutine 'save_draft'
 * created in edit().  (uvt_run already reports it on stderr at its end.)
 */

#include <stdio.h>
#include <string.h>
#include <uvtask.h>

typedef struct {
  const char *text;
  bool saved;
} doc_t;

static int save_draft(void *arg) {
  doc_t *doc = arg;
  int err = uvt_sleep(5); /* storage.put(doc) */
  if (err != 0) return err;
  doc->saved = true;
  printf("save_draft: stored \"%s\"\n", doc->text);
  return 0;
}

static int edit(void *arg) {
  bool fixed = *(bool *)arg;
  doc_t doc = {"Dear diary, today I learnt about coroutines.", false};
  int err = 0;

  printf("main: saving the draft\n");
  if (fixed) err = uvt_await_coro(uvt_coro(save_draft, &doc));
  else (void)!uvt_coro(save_draft, &doc); /* forgot the await */
  /* (The compiler flags that line too, warn_unused_result; the cast lets
   * it build so that the run-time finding shows.) */
  printf("main: draft saved: %s\n", doc.saved ? "yes" : "no");
  if (!doc.saved)
    printf("BUG: save_draft was called but never ran: its coroutine object "
           "was never awaited\n");
  return err;
}

int main(int argc, char **argv) {
  bool fixed = argc > 1 && strcmp(argv[1], "--fixed") == 0;
  /* Line-buffered, so our lines and uvt_run's warnings on stderr come
   * out in the order they happened. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  return uvt_run(NULL, edit, &fixed) == 0 ? 0 : 1;
}
