/*
 * uvtask/kinds.h — the enumerations shared by the runtime, its hook
 * subscribers (the tracer) and the `uvtask` report command.
 *
 * Each enumeration is written once, as an X-macro table in the style of
 * libuv's UV_ERRNO_MAP: XX(NAME, "text", ...) per member.  The enum, its
 * name strings and any lookup are generated from the table, so adding a
 * member is one line here.  Names are what the database stores and the
 * report prints: never renumber or rename a member that has shipped.
 */
#ifndef UVTASK_KINDS_H
#define UVTASK_KINDS_H

#include <stddef.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The deepest stack the tracer stores (frames); ASYNCIODEBUG_DEPTH may
 * ask for fewer, never more.  Every buffer that holds a captured stack is
 * sized from this one constant. */
#define UVT_MAX_STACK_DEPTH 64

/* Object ids: the scheduler's number (one per loop uvtask runs on) in
 * the bits from UVT_ID_SCHED_SHIFT up, a counter below.  Every place that
 * shows an id (uvt_dump, the report, `uvtask ps`, gdb) writes it as
 * "#S:N" with uvt_id_format. */
#define UVT_ID_SCHED_SHIFT 40
#define UVT_ID_FORMAT_MAX 48 /* "#S:N" and its NUL, for any 64-bit id */

/* Write `id` as "#S:N" (or "#N" for an id without a scheduler number) into
 * buf, which has room for UVT_ID_FORMAT_MAX bytes; returns buf.  Uses no
 * library call: safe in a signal handler. */
static inline char *uvt_id_format(unsigned long long id, char *buf) {
  char tmp[UVT_ID_FORMAT_MAX];
  unsigned long long parts[2];
  int nparts = 0, i, n = 0, k;
  parts[0] = id >> UVT_ID_SCHED_SHIFT;
  parts[1] = id & ((1ull << UVT_ID_SCHED_SHIFT) - 1);
  buf[n++] = '#';
  for (i = parts[0] != 0 ? 0 : 1; i < 2; i++, nparts++) {
    unsigned long long v = parts[i];
    k = 0;
    if (nparts > 0) buf[n++] = ':';
    do tmp[k++] = (char)('0' + v % 10); while ((v /= 10) != 0);
    while (k > 0) buf[n++] = tmp[--k];
  }
  buf[n] = '\0';
  return buf;
}

/* Findings.  XX(NAME, "name", rank, "what it means"): `rank` orders the
 * report (0: most serious first), so that a kind added later is appended
 * here (keeping every shipped member's number, which hook subscribers
 * compiled earlier rely on) and still ranked where it belongs. */
#define UVT_FINDING_KIND_MAP(XX)                                             \
  XX(CRASH, "crash", 0, "the process died of a signal")                      \
  XX(UNRETRIEVED_ERROR, "unretrieved-error", 3,                              \
     "a task or future failed and nobody read its error")                    \
  XX(PENDING_AT_EXIT, "pending-at-exit", 4,                                  \
     "a task was still pending when its loop or the process ended")          \
  XX(NEVER_AWAITED, "never-awaited", 7,                                      \
     "a coroutine object was made and never awaited")                        \
  XX(SLOW_CALLBACK, "slow-callback", 9,                                      \
     "a task step or a runtime callback blocked the loop")                   \
  XX(YIELD_IN_CRITICAL_SECTION, "yield-in-critical-section", 10,             \
     "a task awaited inside a no-yield section")                             \
  XX(WRONG_THREAD, "wrong-thread", 11,                                       \
     "a loop-thread call was made from another thread")                      \
  XX(UNCLOSED_STREAM, "unclosed-stream", 12,                                 \
     "a stream or server was still open at shutdown")                        \
  XX(UNRELEASED_HANDLE, "unreleased-handle", 13,                             \
     "a task or future handle was neither awaited nor detached")             \
  XX(DEADLOCK, "deadlock", 1,                                                \
     "tasks wait on each other in a cycle: none of them can go on")          \
  XX(STALL, "stall", 2,                                                      \
     "tasks are parked and nothing left in the process can wake them")       \
  XX(LOCK_NOT_RELEASED, "lock-not-released", 5,                              \
     "a task ended holding a lock: its next user waits forever")             \
  XX(LOCK_ORDER_INVERSION, "lock-order-inversion", 6,                        \
     "two locks were taken in both orders: a deadlock waiting to happen")    \
  XX(LOCK_HELD_ACROSS_AWAIT, "lock-held-across-await", 8,                    \
     "a task kept a lock while parked on something else, others queued")

typedef enum uvt_finding_kind {
  UVT_FINDING_NONE = 0,
#define UVT__XX(c, n, r, d) UVT_FINDING_##c,
  UVT_FINDING_KIND_MAP(UVT__XX)
#undef UVT__XX
  UVT_FINDING_KIND_MAX
} uvt_finding_kind_t;

/* Objects the runtime tracks.  XX(NAME, "name") */
#define UVT_OBJECT_KIND_MAP(XX) \
  XX(TASK, "task")              \
  XX(CORO, "coroutine")         \
  XX(FUTURE, "future")          \
  XX(STREAM, "stream")          \
  XX(SERVER, "server")

typedef enum uvt_object_kind {
  UVT_OBJECT_NONE = 0,
#define UVT__XX(c, n) UVT_OBJECT_##c,
  UVT_OBJECT_KIND_MAP(UVT__XX)
#undef UVT__XX
  UVT_OBJECT_KIND_MAX
} uvt_object_kind_t;

/* A task's life: CREATED -> RUNNING (or DONE: cancelled before it ran,
 * no stack); RUNNING -> PARKED | READY (yield) | DONE; PARKED -> READY;
 * READY -> RUNNING.  XX(NAME, "name") */
#define UVT_TASK_STATE_MAP(XX)                                             \
  XX(CREATED, "created") /* spawned, in the ready queue, never run */     \
  XX(READY, "ready")     /* in the ready queue */                         \
  XX(RUNNING, "running")                                                  \
  XX(PARKED, "parked")   /* suspended until a wake */                     \
  XX(DONE, "done")

typedef enum uvt_task_state {
#define UVT__XX(c, n) UVT_TASK_##c,
  UVT_TASK_STATE_MAP(UVT__XX)
#undef UVT__XX
  UVT_TASK_STATE_MAX
} uvt_task_state_t;

/* What a parked task waits on (hook events AWAIT, SUSPEND and
 * SNAPSHOT_TASK carry it with the awaited object's identity).
 * XX(NAME, "name") */
#define UVT_WAIT_KIND_MAP(XX)                                  \
  XX(TASK, "task")             /* uvt_await: a task */         \
  XX(LOCK, "lock")                                             \
  XX(SEMAPHORE, "semaphore")                                   \
  XX(EVENT, "event")                                           \
  XX(QUEUE_GET, "queue-get")                                   \
  XX(QUEUE_PUT, "queue-put")                                   \
  XX(FUTURE, "future")                                         \
  XX(GATHER, "gather")         /* uvt_gather: several tasks */ \
  XX(WAIT_SET, "wait-set")     /* uvt_wait: the first of many */ \
  XX(STREAM_READ, "stream-read")                               \
  XX(STREAM_WRITE, "stream-write") /* drain, close's flush */  \
  XX(STREAM_CLOSE, "stream-close") /* a stream's or server's */ \
  XX(CONNECT, "connect")       /* connect and name lookup */   \
  XX(SLEEP, "sleep")                                           \
  XX(POOL_WORK, "pool-work")   /* uvt_to_thread */             \
  XX(YIELD, "yield")                                           \
  XX(QUEUE_JOIN, "queue-join") /* uvt_queue_join */            \
  XX(CONDITION, "condition")   /* uvt_cond_wait */             \
  XX(BARRIER, "barrier")       /* uvt_barrier_wait */        \
  XX(SIGNAL, "signal")         /* uvt_signal_wait: woken from outside */

typedef enum uvt_wait_kind {
  UVT_WAIT_NONE = 0,
#define UVT__XX(c, n) UVT_WAIT_##c,
  UVT_WAIT_KIND_MAP(UVT__XX)
#undef UVT__XX
  UVT_WAIT_KIND_MAX
} uvt_wait_kind_t;

/* Why a snapshot of a loop's tasks was taken (uvt_hook_request_snapshot's
 * `reason`; the database's snapshots.reason).  XX(NAME, "name") */
#define UVT_SNAPSHOT_REASON_MAP(XX)                                    \
  XX(PS, "ps")             /* `uvtask ps PID` asked the live process */ \
  XX(SIGQUIT, "sigquit")   /* SIGQUIT: listed, then the core dump */    \
  XX(STALL, "stall")       /* with a stall finding */                   \
  XX(DEADLOCK, "deadlock") /* with a deadlock finding */                \
  XX(REQUEST, "request")   /* any other subscriber's request */

typedef enum uvt_snapshot_reason {
  UVT_SNAPSHOT_NONE = 0,
#define UVT__XX(c, n) UVT_SNAPSHOT_##c,
  UVT_SNAPSHOT_REASON_MAP(UVT__XX)
#undef UVT__XX
  UVT_SNAPSHOT_REASON_MAX
} uvt_snapshot_reason_t;

/* Names, generated from the tables; "?" for a value outside them. */
static inline const char *uvt_finding_kind_name(uvt_finding_kind_t k) {
  static const char *const names[] = {"?",
#define UVT__XX(c, n, r, d) n,
                                      UVT_FINDING_KIND_MAP(UVT__XX)
#undef UVT__XX
  };
  return (unsigned)k < UVT_FINDING_KIND_MAX ? names[k] : "?";
}

static inline const char *uvt_finding_kind_text(uvt_finding_kind_t k) {
  static const char *const texts[] = {"?",
#define UVT__XX(c, n, r, d) d,
                                      UVT_FINDING_KIND_MAP(UVT__XX)
#undef UVT__XX
  };
  return (unsigned)k < UVT_FINDING_KIND_MAX ? texts[k] : "?";
}

/* Its place in the report (0 first); unknown kinds after every known one. */
static inline int uvt_finding_kind_rank(uvt_finding_kind_t k) {
  static const int ranks[] = {0,
#define UVT__XX(c, n, r, d) r,
                              UVT_FINDING_KIND_MAP(UVT__XX)
#undef UVT__XX
  };
  return k > UVT_FINDING_NONE && (unsigned)k < UVT_FINDING_KIND_MAX
             ? ranks[k]
             : UVT_FINDING_KIND_MAX;
}

/* The kind named `name`, or UVT_FINDING_NONE. */
static inline uvt_finding_kind_t uvt_finding_kind_parse(const char *name) {
  int k;
  for (k = 1; name != NULL && k < UVT_FINDING_KIND_MAX; k++)
    if (strcmp(name, uvt_finding_kind_name((uvt_finding_kind_t)k)) == 0)
      return (uvt_finding_kind_t)k;
  return UVT_FINDING_NONE;
}

static inline const char *uvt_object_kind_name(uvt_object_kind_t k) {
  static const char *const names[] = {"?",
#define UVT__XX(c, n) n,
                                      UVT_OBJECT_KIND_MAP(UVT__XX)
#undef UVT__XX
  };
  return (unsigned)k < UVT_OBJECT_KIND_MAX ? names[k] : "?";
}

static inline const char *uvt_task_state_name(uvt_task_state_t s) {
  static const char *const names[] = {
#define UVT__XX(c, n) n,
      UVT_TASK_STATE_MAP(UVT__XX)
#undef UVT__XX
  };
  return (unsigned)s < UVT_TASK_STATE_MAX ? names[s] : "?";
}

static inline const char *uvt_wait_kind_name(uvt_wait_kind_t k) {
  static const char *const names[] = {"none",
#define UVT__XX(c, n) n,
                                      UVT_WAIT_KIND_MAP(UVT__XX)
#undef UVT__XX
  };
  return (unsigned)k < UVT_WAIT_KIND_MAX ? names[k] : "?";
}

static inline const char *uvt_snapshot_reason_name(int r) {
  static const char *const names[] = {"?",
#define UVT__XX(c, n) n,
                                      UVT_SNAPSHOT_REASON_MAP(UVT__XX)
#undef UVT__XX
  };
  return (unsigned)r < UVT_SNAPSHOT_REASON_MAX ? names[r] : "request";
}

#ifdef __cplusplus
}
#endif
#endif
