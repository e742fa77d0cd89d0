/*
 * fail_call: an LD_PRELOAD module that makes the first call of one
 * function by the uvtask library fail, as the system would when out of
 * descriptors or threads: UVT_FAIL_CALL=pipe2 (EMFILE) or
 * UVT_FAIL_CALL=pthread_create (EAGAIN).  Calls from elsewhere
 * (libunwind makes pipes of its own) and later calls go through.
 * test_recorder_safety starts the recorder under it: the writer's start
 * is the library's first caller of both in a program that records.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failed;

/* Whether this call of `name`, returning to `ra`, is the one to fail. */
static int fail_now(const char *name, void *ra) {
  const char *want = getenv("UVT_FAIL_CALL");
  Dl_info info;
  if (want == NULL || strcmp(want, name) != 0) return 0;
  if (dladdr(ra, &info) == 0 || info.dli_fname == NULL ||
      strstr(info.dli_fname, "libuvtask") == NULL)
    return 0;
  return __atomic_exchange_n(&failed, 1, __ATOMIC_RELAXED) == 0;
}

static void *next_fn(const char *name) { return dlsym(RTLD_NEXT, name); }

int pipe2(int fd[2], int flags) {
  int (*real)(int[2], int);
  void *f = next_fn("pipe2");
  if (fail_now("pipe2", __builtin_return_address(0))) {
    errno = EMFILE;
    return -1;
  }
  if (f == NULL) {
    errno = ENOSYS;
    return -1;
  }
  memcpy(&real, &f, sizeof(real));
  return real(fd, flags);
}

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
  int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
  void *f = next_fn("pthread_create");
  if (fail_now("pthread_create", __builtin_return_address(0))) return EAGAIN;
  if (f == NULL) return ENOSYS;
  memcpy(&real, &f, sizeof(real));
  return real(t, attr, fn, arg);
}
