/*
 * Structured concurrency (asyncio 3.11's TaskGroup, timeout scopes,
 * shield, as_completed) and asyncio's cancel counting.  Included by
 * uvtask.h; do not include it on its own.
 *
 * Groups and timeout scopes are caller-allocated (the stack of the task
 * that opens them is the natural place) and strictly nested per task: a
 * task leaves its scopes in the reverse order it entered them, as
 * Python's `async with` does.  Their fields are private.  A task that
 * ends with a scope still open is a bug: its open timeouts are disarmed,
 * the children of its open groups are cancelled and handed to the loop
 * (their errors are reported as unretrieved), and one line says so on
 * stderr.
 */
#ifndef UVTASK_STRUCTURED_H
#define UVTASK_STRUCTURED_H

#ifdef __cplusplus
extern "C" {
#endif

/* ---- cancel counting --------------------------------------------------------
 *
 * Every uvt_cancel (and every cancel a group or a timeout scope makes)
 * that returns 1 counts one request; uvt_uncancel takes one back.  A
 * scope that cancelled its task uncancels it when it is left; if the
 * count is then still above what it was when the scope was entered,
 * somebody else cancelled the task too, and the scope passes the
 * UVT_ECANCELED on instead of absorbing it.  As in asyncio 3.13, when
 * uvt_uncancel brings the count to 0, a cancel not yet delivered is
 * dropped. */

/* The task's count of cancel requests not taken back (NULL: the current
 * task); 0 for NULL outside a task or a released handle. */
UVT_EXPORT int uvt_cancelling(const uvt_task_t *t);
/* Take one request back (NULL: the current task); returns the count
 * left (0 if it was 0 already), UVT_EINVAL / UVT_ERELEASED for a bad
 * handle. */
UVT_EXPORT int uvt_uncancel(uvt_task_t *t);

/* ---- scopes ----------------------------------------------------------------- */

/* The link every group and timeout scope starts with (private). */
typedef struct uvt__scope_s {
  struct uvt__scope_s *outer; /* the task's next-outer open scope */
  int kind;
  uint32_t magic;
  uvt_task_t *task;           /* the task that opened it */
} uvt__scope_t;

/* ---- task groups (asyncio.TaskGroup) -----------------------------------------
 *
 *     uvt_group_t g;
 *     uvt_group_init(&g);                  // from the task that will leave it
 *     uvt_task_t *a = uvt_group_spawn(&g, fetch, url1);   // borrowed handle
 *     uvt_task_t *b = uvt_group_spawn(&g, fetch, url2);
 *     int st = uvt_sleep(10);              // the body: any awaits
 *     st = uvt_group_leave(&g, st);        // waits for every child
 *     ... uvt_group_error(&g, i, &t) for each failure ...
 *     uvt_group_destroy(&g);
 *
 * The first child to fail (an error other than UVT_ECANCELED) cancels
 * every other child and, if it is still in the body, the owner task too
 * (its current await returns UVT_ECANCELED once, which the group takes
 * back when it is left: see "cancel counting").  No child outlives the
 * group: leaving waits for them all, also when the owner is cancelled
 * meanwhile (the children are then cancelled and waited for).
 */
typedef struct uvt_group_s {
  uvt__scope_t scope;
  uvt_task_t *live;           /* children not yet done */
  uvt_task_t *failed_head, *failed_tail; /* children that failed, in order */
  size_t nlive;
  size_t nfailed;
  int first_error;
  int base_cancelling;        /* the owner's count at init */
  int state;
  bool aborting;              /* children are being cancelled */
  bool parent_cancel_requested; /* the group cancelled its owner */
  bool left_waiting;          /* the owner is parked in leave */
  bool cancel_seen;           /* the owner was cancelled in leave */
  bool pending_at_entry;      /* a cancel was waiting for delivery at init */
  void *reserved[UVT__RESERVED];
} uvt_group_t;

/* Open a group owned by the current task (the one that must leave it).
 * 0, UVT_ENOTASK outside a task, UVT_EINVAL for NULL. */
UVT_EXPORT int uvt_group_init(uvt_group_t *g);

/* Spawn fn(arg) as a child of the group (asyncio's TaskGroup.create_task);
 * any task of the group's loop may call it.  The child's parent, for the
 * recorder's parent chains, is the group's owner.  The handle returned is
 * BORROWED: the group holds the reference, and the handle stays valid
 * until uvt_group_leave returns (uvt_task_ref it to keep it longer; do
 * not uvt_await or uvt_detach it without taking one).  Returns NULL, with
 * one line on stderr, when the group is being aborted after a failure or
 * has been left (asyncio's RuntimeError), or when out of memory or
 * outside the group's loop. */
#define uvt_group_spawn(g, fn, arg) \
  uvt_group_spawn_at((g), (fn), (arg), #fn, __FILE__, __LINE__, __func__)
UVT_EXPORT uvt_task_t *uvt_group_spawn_at(uvt_group_t *g, uvt_fn fn, void *arg,
                                          const char *name, const char *file,
                                          int line, const char *func);

/* Leave the group (asyncio's `async with` exit): `body_status` is what
 * the owner's code in the group ended with (0, or its error; an error
 * other than UVT_ECANCELED cancels the children, as an exception in the
 * body does).  Waits for every child, whatever happens meanwhile; a
 * cancel of the owner during the wait cancels the children.  Returns:
 * the first child failure in completion order if any child failed
 * (errors take priority over cancellation, as asyncio's ExceptionGroup
 * does); else the body's error; else UVT_ECANCELED if the owner was
 * cancelled by someone other than the group (its body's UVT_ECANCELED,
 * or a cancel during the wait); else 0.  Every child's error is counted
 * as retrieved (the group speaks for them) and stays readable with
 * uvt_group_error until uvt_group_destroy.  Misuse: UVT_ENOTASK outside
 * a task; UVT_EINVAL when the caller is not the owner, the group is not
 * its innermost open scope, or it was left already. */
#define uvt_group_leave(g, body_status) \
  uvt_group_leave_at((g), (body_status), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_group_leave_at(uvt_group_t *g, int body_status,
                                  const char *file, int line,
                                  const char *func);

/* How many children failed (so far). */
UVT_EXPORT size_t uvt_group_nerrors(const uvt_group_t *g);
/* The i-th child failure in completion order: its error code, and in
 * *task (may be NULL) the child's handle, borrowed until
 * uvt_group_destroy (uvt_error_message reads its message).  0 for i out
 * of range. */
UVT_EXPORT int uvt_group_error(const uvt_group_t *g, size_t i,
                               uvt_task_t **task);
/* Give back the failed children the group kept.  After uvt_group_leave
 * only (before it: ignored, with one line on stderr). */
UVT_EXPORT void uvt_group_destroy(uvt_group_t *g);

/* ---- timeout scopes (asyncio.timeout) ----------------------------------------
 *
 *     uvt_timeout_t to;
 *     uvt_timeout_enter(&to, 500);
 *     int st = step_one();                 // any sequence of awaits
 *     if (st == 0) st = step_two();
 *     st = uvt_timeout_leave(&to, st);     // UVT_ETIMEDOUT if it expired
 *
 * When the deadline passes, the task is cancelled (its current or next
 * await returns UVT_ECANCELED); leaving the scope with that
 * UVT_ECANCELED turns it into UVT_ETIMEDOUT, unless the task was also
 * cancelled by someone else (then UVT_ECANCELED stays).  Scopes nest: an
 * outer scope's expiry passes through the inner ones as UVT_ECANCELED.
 */
typedef struct uvt_timeout_s {
  uvt__scope_t scope;
  uint64_t timer[4];          /* the deadline's timer node */
  int state;
  int base_cancelling;        /* the task's count at enter */
  bool pending_at_entry;      /* a cancel was waiting for delivery at enter */
  void *reserved[UVT__RESERVED];
} uvt_timeout_t;

/* Enter a scope on the current task expiring in `ms` milliseconds (-1:
 * none for now, see reschedule; 0: at the next turn of the loop).  0,
 * UVT_ENOTASK, UVT_EINVAL (NULL, ms < -1), UVT_ENOMEM. */
UVT_EXPORT int uvt_timeout_enter(uvt_timeout_t *to, int64_t ms);
/* Move the deadline to `ms` from now (-1: none).  Only before it has
 * expired: UVT_EINVAL after (asyncio's RuntimeError), or for a scope not
 * entered / already left. */
UVT_EXPORT int uvt_timeout_reschedule(uvt_timeout_t *to, int64_t ms);
/* True once the deadline passed (the scope cancelled its task). */
UVT_EXPORT bool uvt_timeout_expired(const uvt_timeout_t *to);
/* Leave the scope with what the code inside ended with; returns
 * UVT_ETIMEDOUT for the UVT_ECANCELED this scope's expiry caused, else
 * `status` unchanged.  If it expired but the code finished without
 * seeing the cancel, the cancel is taken back (not delivered later) and
 * `status` is returned.  UVT_EINVAL (nothing done) when the caller is
 * not the task that entered it or it is not the innermost open scope. */
UVT_EXPORT int uvt_timeout_leave(uvt_timeout_t *to, int status);

/* ---- shield ------------------------------------------------------------------ */

/* As uvt_await, except that cancelling the awaiting task does not cancel
 * `t` (asyncio.shield): the await returns UVT_ECANCELED at once and `t`
 * runs on without an owner (the caller's reference is given up in every
 * case, as by uvt_await; take another with uvt_task_ref first to read or
 * await `t` later).  An error `t` then ends with, unread, is reported as
 * unretrieved. */
#define uvt_shield(t) uvt_shield_at((t), NULL, NULL, __FILE__, __LINE__, __func__)
#define uvt_shield_result(t, result, message) \
  uvt_shield_at((t), (result), (message), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_shield_at(uvt_task_t *t, void **result, char **message,
                             const char *file, int line, const char *func);

/* ---- as_completed ------------------------------------------------------------ */

/* An iterator over n tasks in the order they finish (asyncio.as_completed).
 * The handles stay the caller's; the iterator pins them until destroy. */
typedef struct uvt_as_completed_s {
  void *impl;
  uint32_t magic;
  void *reserved[UVT__RESERVED];
} uvt_as_completed_t;

/* Start iterating over tasks[0..n) (each at most once; n > 0), with an
 * overall limit of timeout_ms from now (-1: none).  0, UVT_EINVAL (n ==
 * 0, NULL), UVT_ERELEASED, UVT_EWRONGTHREAD, UVT_ENOTASK,
 * UVT_ENOMEM. */
UVT_EXPORT int uvt_as_completed_init(uvt_as_completed_t *ac, uvt_task_t **tasks,
                                     size_t n, int64_t timeout_ms);
/* Wait for the next task to finish and store it in *done: returns 1 then;
 * 0 (and *done = NULL) once all n were returned; UVT_ETIMEDOUT once the
 * limit passed with tasks still running (they are left running);
 * UVT_ECANCELED if the caller was cancelled; UVT_EINVAL while another
 * task is waiting in next on the same iterator.  Tasks already done at
 * init come first, in the order given.  Nothing is retrieved: read each
 * task (uvt_await returns at once for a done task). */
#define uvt_as_completed_next(ac, done) \
  uvt_as_completed_next_at((ac), (done), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_as_completed_next_at(uvt_as_completed_t *ac,
                                        uvt_task_t **done, const char *file,
                                        int line, const char *func);
UVT_EXPORT void uvt_as_completed_destroy(uvt_as_completed_t *ac);

/* ---- futures: callbacks and other threads ----------------------------------- */

typedef void (*uvt_future_cb)(uvt_future_t *f, void *data);

/* asyncio's Future.add_done_callback: cb(f, data) runs once `f` is done
 * (set, failed or cancelled), in the order added.  A deliberate
 * difference: it runs synchronously, inside the call that completed `f`
 * (uvt_future_set_*, uvt_future_cancel, or the loop thread's end of a
 * *_threadsafe set), and at once, before this returns, if `f` is already
 * done (asyncio defers both to call_soon).  It must not await; it may
 * read `f` (the callback does not own a reference: take one with
 * uvt_future_ref to keep `f`).  Loop thread only.  0, UVT_EINVAL,
 * UVT_ERELEASED, UVT_EWRONGTHREAD, UVT_ENOMEM. */
UVT_EXPORT int uvt_future_add_done_callback(uvt_future_t *f, uvt_future_cb cb,
                                            void *data);
/* Remove every registration of (cb, data) not yet run; returns how many
 * (asyncio's remove_done_callback), or UVT_EINVAL / UVT_ERELEASED. */
UVT_EXPORT int uvt_future_remove_done_callback(uvt_future_t *f,
                                               uvt_future_cb cb, void *data);

/* Complete `f` from ANY thread (as the future of asyncio's
 * run_coroutine_threadsafe is): the setting happens on the loop's thread
 * soon after, through the loop's async handle, in call order with
 * uvt_call_threadsafe.  Each call GIVES UP ONE REFERENCE that the caller
 * owns (take it with uvt_future_ref on the loop thread before handing
 * `f` to the other thread), once the future is set, so that `f` cannot
 * be freed while the call is in flight.  A future already done by then
 * keeps its outcome (the late set is dropped, as a second set is).
 * Returns 0 once posted, UVT_EINVAL (NULL, code >= 0), UVT_ENOLOOP (its
 * loop has ended), UVT_ENOMEM. */
UVT_EXPORT int uvt_future_set_result_threadsafe(uvt_future_t *f, void *result);
UVT_EXPORT int uvt_future_set_error_threadsafe(uvt_future_t *f, int code);

/* ---- waiting on futures --------------------------------------------------------- */

/* uvt_wait over futures (asyncio.wait accepts futures): the same modes,
 * limit and results; nothing is retrieved and the handles stay the
 * caller's.  Cancelling the waiter leaves the futures alone; a cancel
 * after the condition was met but before the waiter ran again wins, as
 * with uvt_wait. */
#define uvt_wait_futures(f, n, mode, timeout_ms, ndone) \
  uvt_wait_futures_at((f), (n), (mode), (timeout_ms), (ndone), __FILE__, \
                      __LINE__, __func__)
UVT_EXPORT int uvt_wait_futures_at(uvt_future_t **f, size_t n, int mode,
                                   int64_t timeout_ms, size_t *ndone,
                                   const char *file, int line,
                                   const char *func);

/* uvt_wait_for over a future (asyncio.wait_for(fut, t)): as
 * uvt_await_future_result with a limit, giving up the caller's reference
 * in every case past the argument checks.  On the limit the future is
 * cancelled (as asyncio does) and UVT_ETIMEDOUT returned — unless it was
 * set meanwhile: then its outcome. */
#define uvt_wait_for_future(f, timeout_ms, result, message) \
  uvt_wait_for_future_at((f), (timeout_ms), (result), (message), __FILE__, \
                         __LINE__, __func__)
UVT_EXPORT int uvt_wait_for_future_at(uvt_future_t *f, int64_t timeout_ms,
                                      void **result, char **message,
                                      const char *file, int line,
                                      const char *func);

/* ---- signals ------------------------------------------------------------------ */

/* Suspend until the process receives signal `signum` (SIGINT: Ctrl-C;
 * SIGTERM, SIGHUP...), through libuv's uv_signal_t: while any task waits
 * for it, the signal's default action (ending the process) is replaced
 * by waking the waiters; once none waits, libuv restores it.  Returns 0
 * when the signal arrived after the call, UVT_ECANCELED (the handle is
 * closed before it returns), UVT_ENOTASK, or libuv's error (UV_EINVAL
 * for a bad signal number).  Each call wakes once: loop to handle every
 * Ctrl-C.  The hang checks count this wait (wait kind "signal") as one
 * that something outside the program ends, not as a hang. */
#define uvt_signal_wait(signum) \
  uvt_signal_wait_at((signum), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_signal_wait_at(int signum, const char *file, int line,
                                  const char *func);

#ifdef __cplusplus
}
#endif

#endif /* UVTASK_STRUCTURED_H */
