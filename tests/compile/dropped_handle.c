/*
 * Compiled by ctest, not run: with DROP_HANDLE defined it drops the handle
 * uvt_spawn returns, which warn_unused_result turns into a build error
 * under -Werror (entry compile_dropped_handle_fails, WILL_FAIL); without
 * it the same file compiles (compile_kept_handle_builds), so the failure
 * is the dropped handle and nothing else.
 */
#include <uvtask.h>

static int work(void *arg) {
  (void)arg;
  return 0;
}

int body(void *arg);
int body(void *arg) {
#ifdef DROP_HANDLE
  uvt_spawn(work, arg); /* the handle is lost: a leak */
  return 0;
#else
  return uvt_await(uvt_spawn(work, arg));
#endif
}
