/*
 * A recording session: one per process, from the library's load to the
 * process's end, however it ends.
 *
 *  - start: a constructor reads the environment; with ASYNCIODEBUG set it
 *    opens the database, inserts the session row and the module map, and
 *    subscribes the recorder to the hooks;
 *  - exit() or return from main: an on_exit handler (which, unlike atexit,
 *    is told the exit status) reports what is still alive, writes every
 *    remaining row, ends the session and checkpoints the WAL;
 *  - a fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) or
 *    SIGTERM/SIGINT left at their default action: the handler, on an
 *    alternate stack (a stack overflow leaves none), notes the signal and
 *    the running task, hands the pending rows to the writer, waits a
 *    bounded time for its commit, then restores the previous action and
 *    re-raises, so the process dies as it would have;
 *  - fork: the writer parks outside SQLite with its connection closed
 *    while fork() runs (see uvt__writer_park); the child drops the
 *    parent's writer and starts a session of its own on a fresh
 *    connection, and the parent's writer reopens.
 */
#include "locks.h"
#include "tracer.h"
#include "uvtask/hooks.h"
#include "watchdog.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CRASH_WAIT_MS 2000
#define ALTSTACK_SIZE (64 * 1024)

static bool active;
static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT,
                                    SIGTERM, SIGINT};
#define NSIG_HANDLED (sizeof(fatal_signals) / sizeof(fatal_signals[0]))
static struct sigaction old_actions[NSIG_HANDLED];
static bool installed[NSIG_HANDLED];
static volatile sig_atomic_t in_crash;

static void session_begin(void);

/* The crash's stack, unwound in the handler (no allocation there). */
static uint64_t crash_pcs[UVT_TRACE_MAX_PCS];
/* The C library's code: abort() and raise() frames above the caller's are
 * not where the program went wrong. */
static uintptr_t libc_lo, libc_hi;

static bool is_crash(int sig) { return sig != SIGTERM && sig != SIGINT; }

/* Fill the crash fields of `end` from the signal's context.  The first
 * frame is the faulting instruction: stored + 1 so that the reader's
 * pc - 1 (meant for return addresses) stays inside it.  For SIGABRT the C
 * library's frames on top (abort, raise) are dropped: the frame below
 * them called abort(). */
static void note_crash(session_end_t *end, int sig, const siginfo_t *info,
                       void *uctx) {
  int n = uvt__unwind_signal(uctx, crash_pcs, UVT_TRACE_MAX_PCS), i = 0, k;
  if (sig == SIGABRT)
    while (i < n - 1 && crash_pcs[i] >= libc_lo && crash_pcs[i] < libc_hi) i++;
  else if (n > 0)
    crash_pcs[0]++;
  for (k = 0; i + k < n; k++) crash_pcs[k] = crash_pcs[i + k];
  end->crash = true;
  end->overflow_task_id = sig == SIGSEGV || sig == SIGBUS
                              ? uvt_hook_stack_overflow(info, uctx)
                              : sig == SIGABRT ? uvt_hook_stack_overflow(NULL, NULL) : 0;
  end->crash_pcs = crash_pcs;
  end->crash_npcs = k;
  if (info != NULL && sig != SIGABRT && info->si_code > 0) {
    end->has_addr = true;
    end->fault_addr = (uint64_t)(uintptr_t)info->si_addr;
  }
}

static void on_fatal_signal(int sig, siginfo_t *info, void *uctx) {
  session_end_t end = {"signal", 0, sig, 0, NULL, 0, false, false, 0, 0, false};
  size_t i;
  if (!in_crash) {
    in_crash = 1;
    end.crash_task_id = uvt_hook_current_task();
    if (is_crash(sig)) note_crash(&end, sig, info, uctx);
    /* The writer writes this thread's unwritten rows itself (no malloc in
     * a signal handler), while this thread waits. */
    uvt__writer_crash(&end, uvt__recorder_state(), CRASH_WAIT_MS);
  }
  for (i = 0; i < NSIG_HANDLED; i++)
    if (fatal_signals[i] == sig) sigaction(sig, &old_actions[i], NULL);
  raise(sig);
}

/* SIGQUIT, as Go's runtime does: every task on stderr (what a handler
 * can print: call sites from the macros), a snapshot with raw stacks into
 * the file when recording, then the default action (a core dump). */
static void on_sigquit(int sig, siginfo_t *info, void *uctx) {
  static const char head[] = "SIGQUIT: uvtask's tasks (the debug library)\n";
  session_end_t end = {"signal", 0, sig, 0, NULL, 0, false, false, 0, 0, true};
  struct sigaction dfl;
  (void)info;
  if (write(STDERR_FILENO, head, sizeof(head) - 1) < 0) {
    /* nothing to say it with */
  }
  uvt_hook_dump_fd(STDERR_FILENO);
  if (!in_crash) {
    uvt__inspect_quit_capture();
    uvt__inspect_quit_print(STDERR_FILENO, uctx);
  }
  if (active && !in_crash) {
    in_crash = 1;
    end.crash_task_id = uvt_hook_current_task();
    uvt__writer_crash(&end, uvt__recorder_state(), CRASH_WAIT_MS);
  }
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, NULL);
  raise(sig);
}

/* Only where the program left SIGQUIT at its default (it would have
 * died of it anyway), recording or not. */
static void install_sigquit(void) {
  struct sigaction sa, old;
  if (sigaction(SIGQUIT, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
      old.sa_handler != SIG_DFL)
    return;
  uvt__inspect_quit_prepare();
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = on_sigquit;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGQUIT, &sa, NULL);
}

static void install_signal_handlers(void) {
  static char *altstack;
  stack_t ss;
  size_t i;
  if (altstack == NULL) altstack = malloc(ALTSTACK_SIZE);
  if (altstack != NULL) {
    ss.ss_sp = altstack;
    ss.ss_size = ALTSTACK_SIZE;
    ss.ss_flags = 0;
    sigaltstack(&ss, NULL);
  }
  uvt__module_range((const void *)(uintptr_t)abort, &libc_lo, &libc_hi);
  for (i = 0; i < NSIG_HANDLED; i++) {
    struct sigaction sa;
    bool crash = is_crash(fatal_signals[i]);
    if (sigaction(fatal_signals[i], NULL, &old_actions[i]) != 0) continue;
    /* A program that handles SIGTERM/SIGINT itself ends by its own exit,
     * which on_exit sees: leave those alone.  Crash signals are recorded
     * first, then passed on to whoever handled them before (a sanitizer,
     * say) by restoring its action and raising again. */
    if (!crash && old_actions[i].sa_handler != SIG_DFL) continue;
    if (old_actions[i].sa_handler == SIG_IGN) continue;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fatal_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(fatal_signals[i], &sa, NULL) == 0) installed[i] = true;
  }
}

static void on_process_exit(int status, void *arg) {
  session_end_t end = {"exit", status, 0, 0, NULL, 0, false, false, 0, 0, false};
  (void)arg;
  if (!active || in_crash) return;
  active = false;
  uvt__watchdog_stop();
  uvt_hook_scan_at_exit();
  uvt__recorder_flush_all();
  /* The writer's own bound, and a little more to close. */
  uvt__writer_finish(&end, UVT__FINISH_MAX_MS + 1000);
  if (uvt__tcfg.log) {
    uint64_t n = __atomic_load_n(&uvt__stat_findings, __ATOMIC_RELAXED);
    uvt__tracer_line("asynciodebug: %llu finding%s; see: uvtask report %s",
            (unsigned long long)n, n == 1 ? "" : "s", uvt__tcfg.path);
  }
}

/* How long fork() waits for the writer to leave SQLite (it is at most
 * one lock wait and one commit away). */
#define FORK_PARK_MS 2000

static void atfork_prepare(void) {
  if (active) (void)uvt__writer_park(FORK_PARK_MS);
}

static void atfork_parent(void) {
  if (active) uvt__writer_unpark();
}

static void atfork_child(void) {
  bool may_record;
  if (!active) return;
  may_record = uvt__writer_forget();
  uvt__stacks_forget();
  uvt__lockdep_forget();
  uvt__watchdog_forget();
  uvt__inspect_forget();
  __atomic_store_n(&uvt__stat_objects, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&uvt__stat_findings, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&uvt__stat_shed, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&uvt__stat_peak_tasks, 0, __ATOMIC_RELAXED);
  active = false;
  if (!may_record) {
    uvt__tracer_line("asynciodebug: %s: the writer was busy at fork(); "
                     "this child (pid %d) is not recorded", uvt__tcfg.path, (int)getpid());
    return;
  }
  session_begin();
  if (active) uvt__watchdog_start();
}

static void session_begin(void) {
  if (uvt__writer_start() != 0) return;
  active = true;
  uvt__modules_record();
  uvt__rec_submit();
  if (uvt__tcfg.log)
    uvt__tracer_line("asynciodebug: recording to %s (pid %d, slow > %d ms, depth %d%s)",
            uvt__tcfg.path, (int)getpid(), uvt__tcfg.slow_ms, uvt__tcfg.depth,
            uvt__tcfg.stacks == UVT__STACKS_FP       ? ", frame-pointer stacks"
            : uvt__tcfg.stacks == UVT__STACKS_UNWIND ? ", libunwind stacks"
                                                     : "");
}

__attribute__((constructor)) static void tracer_init(void) {
  static bool once;
  if (once) return;
  once = true;
  uvt__tracer_config_load();
  install_sigquit();
  if (!uvt__tcfg.on) return;
  session_begin();
  if (!active) return;
  uvt__recorder_start();
  uvt__watchdog_start();
  install_signal_handlers();
  uvt__inspect_start();
  on_exit(on_process_exit, NULL);
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}
