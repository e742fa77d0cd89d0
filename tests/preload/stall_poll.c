/*
 * stall_poll: an LD_PRELOAD library that makes a program behave as on a
 * loaded machine, deterministically.  Every epoll wait that would block
 * (timeout > 0) first sleeps for the timeout plus UVT_STALL_MS (default
 * 100) and then polls without blocking, as if the process had been
 * descheduled past its next timer.  Timers that a fast machine fires in
 * separate loop iterations then fire in one: a program whose ordering
 * rests on timer luck shows it every run.
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>

static long stall_ms(void) {
  const char *s = getenv("UVT_STALL_MS");
  long ms = s != NULL ? strtol(s, NULL, 10) : 100;
  return ms > 0 ? ms : 0;
}

static void stall(int timeout) {
  long ms = timeout + stall_ms();
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

int epoll_wait(int epfd, struct epoll_event *ev, int n, int timeout) {
  static int (*real)(int, struct epoll_event *, int, int);
  if (real == NULL) real = (int (*)(int, struct epoll_event *, int, int))dlsym(RTLD_NEXT, "epoll_wait");
  if (timeout > 0) {
    stall(timeout);
    timeout = 0;
  }
  return real(epfd, ev, n, timeout);
}

int epoll_pwait(int epfd, struct epoll_event *ev, int n, int timeout,
                const sigset_t *mask) {
  static int (*real)(int, struct epoll_event *, int, int, const sigset_t *);
  if (real == NULL)
    real = (int (*)(int, struct epoll_event *, int, int, const sigset_t *))dlsym(RTLD_NEXT, "epoll_pwait");
  if (timeout > 0) {
    stall(timeout);
    timeout = 0;
  }
  return real(epfd, ev, n, timeout, mask);
}
