/*
 * Looking inside a live recording process: `uvtask ps PID`.
 *
 * The command checks that PID is recording (its session in the file has
 * no end and its process is the one that began it), then sends it
 * UVT_PS_SIGNAL, which only a recording process handles (this file
 * installs the handler when a session begins; a process that is not
 * recording would die of it, hence the check).  The handler asks every
 * loop the recorder has seen for a snapshot (uvt_hook_request_snapshot:
 * an atomic store and a uv_async_send, both safe there); each loop's
 * thread then sends the snapshot events, which the recorder turns into
 * snapshots rows and commits at once.  The command reads them through the
 * WAL.  A loop stuck inside a task step cannot answer until the step ends:
 * the command says so after its wait.
 *
 * Loops are kept in a fixed array written under a mutex by loop threads
 * and read without it by the handler (each slot is one atomic pointer).
 */
#include "tracer.h"
#include "schema.h"
#include "uvtask/hooks.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

#define MAX_LOOPS 64

static uv_loop_t *loops[MAX_LOOPS];
static pthread_mutex_t loops_mutex = PTHREAD_MUTEX_INITIALIZER;

void uvt__inspect_loop_seen(uv_loop_t *loop) {
  int i, free_slot = -1;
  if (loop == NULL) return;
  pthread_mutex_lock(&loops_mutex);
  for (i = 0; i < MAX_LOOPS; i++) {
    uv_loop_t *l = __atomic_load_n(&loops[i], __ATOMIC_RELAXED);
    if (l == loop) break;
    if (l == NULL && free_slot < 0) free_slot = i;
  }
  if (i == MAX_LOOPS && free_slot >= 0)
    __atomic_store_n(&loops[free_slot], loop, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&loops_mutex);
}

void uvt__inspect_loop_gone(uv_loop_t *loop) {
  int i;
  pthread_mutex_lock(&loops_mutex);
  for (i = 0; i < MAX_LOOPS; i++)
    if (__atomic_load_n(&loops[i], __ATOMIC_RELAXED) == loop)
      __atomic_store_n(&loops[i], NULL, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&loops_mutex);
}

int uvt__inspect_request_all(int reason) {
  int i, n = 0;
  for (i = 0; i < MAX_LOOPS; i++) {
    uv_loop_t *l = __atomic_load_n(&loops[i], __ATOMIC_ACQUIRE);
    if (l != NULL && uvt_hook_request_snapshot(l, reason) == 0) n++;
  }
  return n;
}

static void on_ps_signal(int sig, siginfo_t *info, void *uctx) {
  (void)sig, (void)info, (void)uctx;
  uvt__inspect_request_all(UVT_SNAPSHOT_PS);
}

void uvt__inspect_start(void) {
  struct sigaction sa, old;
  /* A program that uses this signal itself keeps it. */
  if (sigaction(UVT_PS_SIGNAL, NULL, &old) != 0 ||
      (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
    return;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = on_ps_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(UVT_PS_SIGNAL, &sa, NULL);
}

void uvt__inspect_forget(void) {
  memset(loops, 0, sizeof(loops));
  pthread_mutex_init(&loops_mutex, NULL);
}
