/*
 * The watchdog: samples a loop thread's stack while a task step is still
 * blocking it, so a slow-callback finding shows where the loop was stuck
 * (the blocking call), not where the task parked afterwards.
 *
 * Each loop thread owns a slot.  Around a task step it publishes the
 * step's start time and number; the watchdog thread wakes every few
 * milliseconds and, for a step older than ASYNCIODEBUG_SLOW_MS that it has
 * not sampled yet, takes one sample:
 *
 *  - if the thread sits in a system call (/proc/self/task/TID/syscall gives
 *    its stack and instruction pointers), the watchdog unwinds it from
 *    there itself, without disturbing it: a signal would make nanosleep or
 *    poll fail with EINTR, which no SA_RESTART prevents;
 *  - if it is running, it sends SAMPLE_SIGNAL; the handler, on the loop
 *    thread, records its own backtrace (through the signal frame).
 *
 * The step's end compares its number with the sampled one and attaches
 * the sample to the finding.  libunwind is warmed up at start so the
 * handler does not take the loader lock the first time, and a sample is
 * skipped while the tracer itself is capturing on that thread.
 */
#define UNW_LOCAL_ONLY
#include "watchdog.h"
#include "tracer.h"

#include <fcntl.h>
#include <libunwind.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include <uv.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#define MAX_SLOTS 64
#define SAMPLE_SIGNAL (SIGRTMIN + 7)

static wd_slot_t slots[MAX_SLOTS];
static int nslots;
static pthread_mutex_t slots_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_t thread;
static int stopping;
static bool started;
static __thread wd_slot_t *my_slot __attribute__((tls_model("initial-exec")));

static pthread_key_t slot_key;

/* A loop thread that exits gives up its slot: never signal a dead thread. */
static void slot_release(void *p) {
  wd_slot_t *s = p;
  __atomic_store_n(&s->ready, 0, __ATOMIC_RELEASE);
}

wd_slot_t *uvt__wd_slot_peek(void) { return my_slot; }

wd_slot_t *uvt__wd_slot(void) {
  if (my_slot != NULL || !started) return my_slot;
  pthread_mutex_lock(&slots_mutex);
  if (nslots < MAX_SLOTS) {
    my_slot = &slots[nslots];
    pthread_setspecific(slot_key, my_slot);
    my_slot->tid = (pid_t)syscall(SYS_gettid);
    my_slot->thread = pthread_self();
    __atomic_store_n(&my_slot->ready, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&nslots, nslots + 1, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&slots_mutex);
  return my_slot;
}

static void sample_handler(int sig, siginfo_t *info, void *uctx) {
  wd_slot_t *s = my_slot;
  void *buf[WD_MAX_PCS];
  int n, i;
  (void)sig, (void)info, (void)uctx;
  if (s == NULL || __atomic_load_n(&s->in_capture, __ATOMIC_ACQUIRE)) return;
  n = unw_backtrace(buf, WD_MAX_PCS);
  /* Drop this handler and the signal trampoline. */
  i = n > 2 ? 2 : n;
  s->npcs = 0;
  for (; i < n; i++) s->pcs[s->npcs++] = (uint64_t)(uintptr_t)buf[i];
  __atomic_store_n(&s->sample_done,
                   __atomic_load_n(&s->sample_seq, __ATOMIC_ACQUIRE),
                   __ATOMIC_RELEASE);
}

/* Unwind a thread blocked in a system call from its stack and instruction
 * pointers alone.  Frames whose canonical frame address needs other
 * registers end the walk early; what was found is kept. */
static int unwind_blocked(uint64_t sp, uint64_t pc, uint64_t *pcs, int max) {
#if defined(__x86_64__)
  unw_context_t uc;
  if (unw_getcontext(&uc) != 0) return 0;
  memset(uc.uc_mcontext.gregs, 0, sizeof(uc.uc_mcontext.gregs));
  uc.uc_mcontext.gregs[REG_RIP] = (greg_t)pc;
  uc.uc_mcontext.gregs[REG_RSP] = (greg_t)sp;
  return uvt__unwind_from(&uc, pcs, max);
#else
  (void)sp, (void)pc, (void)pcs, (void)max;
  return 0;
#endif
}

static void sample(wd_slot_t *s, uint64_t seq) {
  char path[64], buf[256];
  long nr;
  unsigned long long sp = 0, pc = 0;
  int fd, n;
  __atomic_store_n(&s->sample_seq, seq, __ATOMIC_RELEASE);
  snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)s->tid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  n = (int)read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = '\0';
  if (strncmp(buf, "running", 7) == 0) {
    pthread_kill(s->thread, SAMPLE_SIGNAL);
    return;
  }
  /* "nr arg1 .. arg6 sp pc" (hex), or "-1 sp pc" outside a call. */
  nr = strtol(buf, NULL, 10);
  {
    char *last = strrchr(buf, ' ');
    char *prev;
    if (last == NULL) return;
    *last = '\0';
    prev = strrchr(buf, ' ');
    if (prev == NULL) return;
    sp = strtoull(prev + 1, NULL, 16);
    pc = strtoull(last + 1, NULL, 16);
  }
  (void)nr;
  if (sp == 0 || pc == 0) return;
  {
    uint64_t pcs[WD_MAX_PCS];
    int k = unwind_blocked(sp, pc, pcs, WD_MAX_PCS);
    /* Keep it only if the step did not end meanwhile. */
    if (k > 0 && __atomic_load_n(&s->step_seq, __ATOMIC_ACQUIRE) == seq &&
        __atomic_load_n(&s->step_start, __ATOMIC_ACQUIRE) != 0) {
      memcpy(s->pcs, pcs, (size_t)k * sizeof(*pcs));
      s->npcs = k;
      __atomic_store_n(&s->sample_done, seq, __ATOMIC_RELEASE);
    }
  }
}

static void *watchdog_main(void *arg) {
  uint64_t slow_ns = (uint64_t)uvt__tcfg.slow_ms * 1000000u;
  long interval_ms = uvt__tcfg.slow_ms / 4;
  sigset_t all;
  (void)arg;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  if (interval_ms < 2) interval_ms = 2;
  if (interval_ms > 50) interval_ms = 50;
  while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
    struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000};
    uint64_t now;
    int i, n;
    nanosleep(&ts, NULL);
    now = uvt__tclock();
    n = __atomic_load_n(&nslots, __ATOMIC_ACQUIRE);
    for (i = 0; i < n; i++) {
      wd_slot_t *s = &slots[i];
      uint64_t start = __atomic_load_n(&s->step_start, __ATOMIC_ACQUIRE);
      uint64_t seq = __atomic_load_n(&s->step_seq, __ATOMIC_ACQUIRE);
      if (!__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE)) continue;
      if (start == 0 || now - start < slow_ns || s->sample_seq == seq) continue;
      sample(s, seq);
    }
  }
  return NULL;
}

void uvt__watchdog_start(void) {
  struct sigaction sa;
  void *warm[4];
  /* Under valgrind the stack pointer /proc shows is valgrind's own, not
   * the program's: samples would be garbage.  Slow callbacks are still
   * found, without the blocked stack. */
  if (RUNNING_ON_VALGRIND) return;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = sample_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SAMPLE_SIGNAL, &sa, NULL) != 0) return;
  if (pthread_key_create(&slot_key, slot_release) != 0) return;
  /* libunwind's first use takes locks and reads /proc: not in a handler. */
  unw_backtrace(warm, 4);
  if (pthread_create(&thread, NULL, watchdog_main, NULL) != 0) return;
  started = true;
}

void uvt__watchdog_stop(void) {
  if (!started) return;
  __atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);
  pthread_join(thread, NULL);
  started = false;
}

void uvt__watchdog_forget(void) {
  /* After fork: the thread is gone; slots belong to the parent. */
  started = false;
  __atomic_store_n(&stopping, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&nslots, 0, __ATOMIC_RELAXED);
  my_slot = NULL;
  pthread_mutex_init(&slots_mutex, NULL);
}
