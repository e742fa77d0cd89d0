/*
 * unw_count: an LD_PRELOAD module that counts the program's calls of
 * libunwind's unw_backtrace (the tracer's stack capture when it does not
 * walk frame pointers) and, at exit, writes the count in decimal to the
 * file UVT_UNW_COUNT names.  test_recorder_fpauto tells by it which way
 * the stacks were taken.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned long calls;

int unw_backtrace(void **buf, int size);

int unw_backtrace(void **buf, int size) {
  static int (*real)(void **, int);
  if (real == NULL) {
    void *f = dlsym(RTLD_NEXT, "unw_backtrace");
    if (f == NULL) return 0;
    memcpy(&real, &f, sizeof(real));
  }
  __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED);
  return real(buf, size);
}

__attribute__((destructor)) static void write_count(void) {
  const char *path = getenv("UVT_UNW_COUNT");
  char line[32];
  int fd, n;
  if (path == NULL) return;
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  n = snprintf(line, sizeof(line), "%lu\n", __atomic_load_n(&calls, __ATOMIC_RELAXED));
  if (write(fd, line, (size_t)n) != n) {
    /* the test reads no count and fails */
  }
  close(fd);
}
