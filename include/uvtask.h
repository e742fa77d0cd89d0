/*
 * uvtask — asyncio-style tasks for libuv.
 *
 * One header serves the release and the debug library: nothing here tests
 * ASYNCIODEBUG, structs the caller allocates have the same layout in both,
 * and calls that want the caller's location are macros passing __FILE__,
 * __LINE__ and __func__ to an exported *_at function.  Every macro evaluates
 * each of its arguments exactly once.
 *
 * Threads: everything here runs on the thread that runs the loop, except
 * uvt_call_threadsafe(), which any thread may call.  "The loop's thread"
 * is the one that attached uvtask to the loop: uvt_run's, or that of the
 * first uvt_spawn_on.  Calls that change state or wait check it (one
 * thread-local load and a compare on the loop thread): from another
 * thread (a uvt_to_thread function, a thread of the program's own) they
 * do nothing, write one line on stderr and return UVT_EWRONGTHREAD; a call
 * returning a pointer returns NULL, a void call just returns.  The debug
 * library also sends a WRONG_THREAD hook event, which its recorder keeps
 * as a wrong-thread finding at the call: every checked call is a macro
 * passing the caller's __FILE__ and __LINE__ to its *_at function (the
 * plain functions are still exported for programs built against 0.2.0;
 * called directly, they report no line).  The awaiting calls that take
 * no object (uvt_sleep, uvt_yield, uvt_to_thread, uvt_open_connection,
 * uvt_open_unix, uvt_start_server) are refused the same way from a thread
 * that runs none of uvtask's loops while another thread runs one; they
 * return UVT_ENOTASK only where no loop is running at all or on a loop's
 * own thread outside a task.  Calls that only read (uvt_done,
 * uvt_event_is_set, uvt_queue_size, ...) are not checked.  A sync object
 * belongs to the loop that first uses it; before that no check can tell.
 * A plain libuv callback on the loop's thread (a program running its own
 * uv_run) may make every call that does not await.
 *
 * Errors are negative integers.  libuv's UV_E* pass through unchanged;
 * uvtask's own UVT_E* codes do not collide with them; uvt_strerror() names
 * every one.
 */
#ifndef UVTASK_H
#define UVTASK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define UVT_EXPORT __attribute__((visibility("default")))
#define UVT__PRINTF(f, a) __attribute__((format(printf, f, a)))
/* A result that must be kept: a handle dropped on the floor is a leak. */
#define UVT__WUR __attribute__((warn_unused_result))
#else
#define UVT_EXPORT
#define UVT__PRINTF(f, a)
#define UVT__WUR
#endif

/* The call `call` (an int) made so that it is never a tail call: the
 * caller's frame stays on the stack while the call runs.  Every macro
 * that may park the task, and uvt_fail, uses it, so that a parked task's
 * stack (`uvtask ps`, gdb's `uvtask bt`, pending-at-exit) and the stack of
 * a raised error start in the caller's own function: compiled as a jump,
 * `return uvt_await(t);` left only uvtask's frames.  The empty asm uses
 * the result after the call; it costs no instruction. */
#if defined(__GNUC__)
#define UVT__KEEP_FRAME(call)                                      \
  (__extension__({                                                 \
    int uvt__kept_ = (call);                                       \
    __asm__ volatile("" : "+r"(uvt__kept_));                       \
    uvt__kept_;                                                    \
  }))
#else
#define UVT__KEEP_FRAME(call) (call)
#endif

#define UVTASK_VERSION_MAJOR 0
#define UVTASK_VERSION_MINOR 2
#define UVTASK_VERSION_PATCH 0
#define UVTASK_VERSION_STRING "0.2.0"

/* ---- error codes ------------------------------------------------------- */

#define UVT_ECANCELED UV_ECANCELED   /* the await was cancelled */
#define UVT_ETIMEDOUT UV_ETIMEDOUT   /* a time limit ran out first */
#define UVT_EINVAL    UV_EINVAL      /* bad argument, or object already used */
#define UVT_EAGAIN    UV_EAGAIN      /* *_nowait: the queue is full / empty */
#define UVT_ENOMEM    UV_ENOMEM      /* out of memory (or of stack mappings) */
#define UVT_ENOTASK   (-30001)       /* an awaiting call made outside a task */
#define UVT_ENOLOOP   (-30002)       /* no uvtask loop on this thread / loop */
#define UVT_ESELF     (-30003)       /* a task awaited itself */
#define UVT_ERELEASED (-30004)       /* the handle was already released */
#define UVT_ENESTED   (-30005)       /* uvt_run inside uvt_run on one thread */
#define UVT_ECLOSED   (-30006)       /* the object was destroyed while awaited */
#define UVT_EWRONGTHREAD (-30007)    /* called from a thread not running the loop */
#define UVT_ENOTLOCKED (-30008)      /* release of a lock that is not held */
#define UVT_EBROKEN   (-30009)       /* the barrier was aborted */

/* A readable name for any uvtask or libuv error code ("unknown error" for
 * others).  The string is static. */
UVT_EXPORT const char *uvt_strerror(int err);

/* ---- types --------------------------------------------------------------- */

/* A coroutine body: returns 0 (or a positive value) on success, a negative
 * error code on failure.  It may await only while it runs as a task or
 * inside uvt_await_coro(). */
typedef int (*uvt_fn)(void *arg);

typedef struct uvt_task_s uvt_task_t;     /* opaque: a running or done task */
typedef struct uvt_coro_s uvt_coro_t;     /* opaque: a call not yet started */
typedef struct uvt_future_s uvt_future_t; /* opaque: a value set later */

/* ---- running ------------------------------------------------------------- */

/* Run `main(arg)` as the first task on `loop` (NULL: a private loop) until
 * it returns; return its status.  Like asyncio.run: tasks still pending when
 * main returns are reported on stderr (count, names, where they were
 * created and where they are parked), cancelled and given a bounded time
 * (1 s) to finish.  Handles still held when it ends are freed: no task,
 * coroutine or future pointer stays valid after uvt_run returns.  A loop
 * passed in is left open (uvtask's own handles on it are closed); a private
 * loop is closed.  uvt_run on a thread already inside uvt_run returns
 * UVT_ENESTED. */
#define uvt_run(loop, main, arg) \
  uvt_run_at((loop), (main), (arg), #main, __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_run_at(uv_loop_t *loop, uvt_fn main, void *arg,
                          const char *name, const char *file, int line,
                          const char *func);

/* The loop running the current task; NULL outside a task. */
UVT_EXPORT uv_loop_t *uvt_loop(void);

/* The current task; NULL outside a task. */
UVT_EXPORT uvt_task_t *uvt_current(void);

/* ---- tasks --------------------------------------------------------------- */

/* Create a task running fn(arg) on the current loop (asyncio.create_task).
 * It starts in a later scheduler pass.  The returned handle belongs to the
 * caller until uvt_detach() or the end of uvt_run.  Returns NULL, with a
 * one-line message on stderr, when no loop runs on this thread or memory is
 * exhausted.  The call site is the task's creation site; `fn`'s name is its
 * name. */
#define uvt_spawn(fn, arg) \
  uvt_spawn_at((fn), (arg), 0, #fn, __FILE__, __LINE__, __func__)

/* As uvt_spawn with a stack of `stack_size` bytes (rounded up to pages;
 * 0: the default, see uvt_set_default_stack_size).  At most 1 GiB: a
 * bigger size returns NULL with a one-line message. */
#define uvt_spawn_stack(fn, arg, stack_size) \
  uvt_spawn_at((fn), (arg), (stack_size), #fn, __FILE__, __LINE__, __func__)

/* As uvt_spawn, onto `loop`, from a plain libuv callback of a program that
 * runs its own uv_run.  Call uvt_loop_close(loop) before uv_loop_close(). */
#define uvt_spawn_on(loop, fn, arg) \
  uvt_spawn_on_at((loop), (fn), (arg), #fn, __FILE__, __LINE__, __func__)

UVT_EXPORT UVT__WUR uvt_task_t *uvt_spawn_at(uvt_fn fn, void *arg, size_t stack_size,
                                    const char *name, const char *file,
                                    int line, const char *func);
UVT_EXPORT UVT__WUR uvt_task_t *uvt_spawn_on_at(uv_loop_t *loop, uvt_fn fn, void *arg,
                                       const char *name, const char *file,
                                       int line, const char *func);

/* Run fn(arg) as a detached task on `loop`, from any thread (through
 * uv_async; from a task or uvt_run on the loop's own thread it is spawned
 * at once, so it keeps its place among later spawns, as asyncio's
 * call_soon_threadsafe does).  Returns 0, UVT_ENOLOOP when uvtask is not attached to `loop`,
 * or UVT_ENOMEM.  An error the task returns is reported as unretrieved. */
#define uvt_call_threadsafe(loop, fn, arg) \
  uvt_call_threadsafe_at((loop), (fn), (arg), #fn, __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_call_threadsafe_at(uv_loop_t *loop, uvt_fn fn, void *arg,
                                      const char *name, const char *file,
                                      int line, const char *func);

/* Cancel what uvtask runs on a loop driven by the caller's own uv_run:
 * reports and cancels the tasks still pending (as uvt_run does), runs the
 * loop until they finish (bounded), and closes uvtask's handles, so that
 * uv_loop_close() can then succeed.  Returns 0 or UVT_ENOLOOP. */
UVT_EXPORT int uvt_loop_close(uv_loop_t *loop);

/* Ownership of task handles (reference counted).
 *
 * uvt_spawn returns a handle holding one reference, owned by the caller.
 * Each of these gives up exactly one reference, after which the caller
 * must not touch the handle again:
 *
 *   uvt_await / uvt_await_result  always once the call got past its
 *                       argument checks: on success, on the task's error,
 *                       and when the awaiting task was cancelled (the
 *                       awaited task has then finished, see below);
 *   uvt_wait_for / uvt_wait_for_result  likewise, on a timeout too;
 *   uvt_detach          always.
 *
 * uvt_gather and uvt_wait only wait: the handles stay the caller's, to
 * read (uvt_result, uvt_done, ...) and then give up with uvt_detach or an
 * uvt_await, which returns at once for a task that is done.  A call that
 * fails its argument checks (UVT_EINVAL, UVT_ERELEASED, UVT_ENOTASK,
 * UVT_ESELF, UVT_EWRONGTHREAD) gives up nothing.
 *
 * To await a task from several places, or to read it after an await,
 * take one more reference per extra user with uvt_task_ref().  A task's
 * memory is freed once it has ended and its last reference is gone; its
 * stack goes back to the pool as soon as it ends.  Handles still held
 * when uvt_run ends are freed by it and reported as `unreleased-handle`
 * (a memory leak in a program that runs for long), except those of tasks
 * already reported as pending. */

/* Suspend until `t` is done; return its status (0, its error, or
 * UVT_ECANCELED), count its error, if any, as retrieved, and give up the
 * caller's reference (see above): the plain pattern
 *
 *     uvt_task_t *t = uvt_spawn(fetch, url);
 *     int st = uvt_await(t);
 *
 * leaves nothing behind.  A done task returns at once without yielding.
 * Cancelling the awaiting task cancels `t` too (as asyncio does) and
 * returns UVT_ECANCELED once `t` has finished.  Errors (nothing is given
 * up): UVT_ENOTASK outside a task, UVT_ESELF for the current task,
 * UVT_EINVAL for NULL, UVT_ERELEASED for a handle already given up
 * (detected for the most recent releases; beyond them, a use after
 * release is undefined, as for free()). */
#define uvt_await(t) \
  UVT__KEEP_FRAME(uvt_await_at((t), NULL, NULL, __FILE__, __LINE__, __func__))

/* As uvt_await, and hand over what the task left: *result (may be NULL)
 * receives what it passed to uvt_set_result (NULL if nothing or if the
 * await was cancelled); *message (may be NULL) receives a malloc'd copy of
 * its uvt_fail() message, which the caller frees, or NULL. */
#define uvt_await_result(t, result, message) \
  UVT__KEEP_FRAME(uvt_await_at((t), (result), (message), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_await_at(uvt_task_t *t, void **result, char **message,
                            const char *file, int line, const char *func);

/* Take one more reference to `t` for another user (another awaiter, or
 * code that reads the handle after awaiting it): each reference is given
 * up once, as above.  Returns `t`, or NULL for NULL or a released handle. */
UVT_EXPORT UVT__WUR uvt_task_t *uvt_task_ref(uvt_task_t *t);

/* Give up one reference: the task is freed once it has ended and no
 * reference is left (it goes on running meanwhile).  If it ends in an
 * error that nobody read, that error is reported (unretrieved-error).
 * NULL and released handles are ignored. */
#define uvt_detach(t) uvt_detach_at((t), __FILE__, __LINE__, __func__)
UVT_EXPORT void uvt_detach_at(uvt_task_t *t, const char *file, int line,
                              const char *func);
UVT_EXPORT void(uvt_detach)(uvt_task_t *t);

/* Request cancellation (one-shot, as asyncio): the await the task is parked
 * in, or its next one, returns UVT_ECANCELED once; the task may still clean
 * up with further awaits.  A task cancelled before it starts never runs its
 * body.  Returns 1 if cancellation was requested, 0 if the task had already
 * finished (a no-op: an error nobody read is still reported, where
 * asyncio's cancel() silences it; a deliberate difference), UVT_EINVAL /
 * UVT_ERELEASED for a bad handle. */
#define uvt_cancel(t) uvt_cancel_at((t), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_cancel_at(uvt_task_t *t, const char *file, int line,
                             const char *func);

/* True once the task has finished (returned, failed or been cancelled). */
UVT_EXPORT bool uvt_done(const uvt_task_t *t);

/* What the task passed to uvt_set_result(); NULL if nothing or not done. */
UVT_EXPORT void *uvt_result(const uvt_task_t *t);

/* The message given to uvt_fail() by a task that failed; NULL when none.
 * Owned by the task handle. */
UVT_EXPORT const char *uvt_error_message(const uvt_task_t *t);

/* The task's name (its function's, unless renamed). */
UVT_EXPORT const char *uvt_task_name(const uvt_task_t *t);

/* Rename `t` (NULL: the current task) with a printf format. */
UVT_EXPORT void uvt_name(uvt_task_t *t, const char *fmt, ...) UVT__PRINTF(2, 3);

/* Set the current task's result pointer (see uvt_result).  Outside a task
 * it does nothing. */
UVT_EXPORT void uvt_set_result(void *result);

/* Record a formatted message on the current task and return `code`:
 * `return uvt_fail(UV_ECONNRESET, "peer %s went away", name);`. */
#define uvt_fail(...) \
  UVT__KEEP_FRAME(uvt_fail_at(__FILE__, __LINE__, __func__, __VA_ARGS__))
UVT_EXPORT int uvt_fail_at(const char *file, int line, const char *func,
                           int code, const char *fmt, ...) UVT__PRINTF(5, 6);

/* Default stack size for new tasks (bytes, rounded up to pages, at least
 * 16 KiB, at most 1 GiB); returns the previous one.  0 only queries.  A
 * size over 1 GiB is refused: the default stays, 0 is returned and one
 * line is written on stderr.  Stacks are pooled at the size in force when
 * the loop's scheduler was made (uvt_run's start): set it before uvt_run,
 * or tasks of another size get a mapping of their own each, which is
 * slower.
 *
 * Stack overflow.  Every task's stack has a guard page below it (on Linux
 * 6.13 and later; on older kernels the first vm.max_map_count / 8 stacks
 * do, later ones have a canary instead).  When a task switches away with
 * its stack pointer outside its stack, or with its canary overwritten,
 * the process stops (abort) after one line on stderr naming the task, its
 * creation site and its stack size.  A fault in a guard page is a SIGSEGV:
 * when the library is loaded, if SIGSEGV is at its default action (only
 * then: a handler installed before is never replaced), it installs a
 * handler that writes the same line and lets the default action go on
 * (the process dies of SIGSEGV, with a core dump if enabled).  It runs on
 * an alternate signal stack, which the library gives each thread that
 * runs a loop and has none.  A handler the program installs later
 * replaces it.  Not caught: a single frame larger than a page whose
 * writes all miss the guard page and the canary, between two switches. */
UVT_EXPORT size_t uvt_set_default_stack_size(size_t size);

/* ---- coroutine objects ---------------------------------------------------- */

/* A coroutine object: fn(arg) not yet started.  Each of await, spawn and
 * close consumes it; using it again returns UVT_EINVAL (or NULL).  One that
 * is never consumed is reported as never awaited when uvt_run ends. */
#define uvt_coro(fn, arg) uvt_coro_at((fn), (arg), #fn, __FILE__, __LINE__, __func__)
UVT_EXPORT UVT__WUR uvt_coro_t *uvt_coro_at(uvt_fn fn, void *arg, const char *name,
                                   const char *file, int line,
                                   const char *func);

/* Run the coroutine inline, as part of the current task, and return its
 * status.  uvt_set_result and uvt_fail inside it act on the current task.
 * UVT_ENOTASK outside a task (the object is then left unconsumed). */
#define uvt_await_coro(c) \
  UVT__KEEP_FRAME(uvt_await_coro_at((c), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_await_coro_at(uvt_coro_t *c, const char *file, int line,
                                 const char *func);

/* Make the coroutine a task (created here) and return its handle. */
#define uvt_spawn_coro(c) uvt_spawn_coro_at((c), __FILE__, __LINE__, __func__)
UVT_EXPORT UVT__WUR uvt_task_t *uvt_spawn_coro_at(uvt_coro_t *c, const char *file,
                                         int line, const char *func);

/* Discard the coroutine on purpose (asyncio's coro.close()). */
UVT_EXPORT int uvt_coro_close(uvt_coro_t *c);

/* ---- futures ------------------------------------------------------------- */

/* A future: a value some other code sets later.  uvt_future_new returns
 * a handle holding one reference; uvt_await_future and uvt_future_detach
 * each give up one (as for tasks, see above), uvt_future_ref takes one
 * more: code that sets a future it does not await (a reader resolving
 * requests) holds its own reference and detaches after setting it.
 * Setting it twice returns UVT_EINVAL.  A future nobody awaits is normal;
 * one that ends in an error nobody read is reported when it is released;
 * one still held when uvt_run ends is reported as unreleased-handle. */
#define uvt_future_new() uvt_future_new_at(__FILE__, __LINE__, __func__)
UVT_EXPORT UVT__WUR uvt_future_t *uvt_future_new_at(const char *file, int line,
                                                    const char *func);
/* One more reference (see above); returns `f`, NULL for a bad handle. */
UVT_EXPORT UVT__WUR uvt_future_t *uvt_future_ref(uvt_future_t *f);
#define uvt_future_set_result(f, result) \
  uvt_future_set_result_at((f), (result), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_future_set_result_at(uvt_future_t *f, void *result,
                                        const char *file, int line,
                                        const char *func);
UVT_EXPORT int(uvt_future_set_result)(uvt_future_t *f, void *result);
/* Complete with error `code` (< 0) and an optional printf message:
 * uvt_future_set_error(f, code, fmt, ...). */
#define uvt_future_set_error(...) \
  uvt_future_set_error_at(__FILE__, __LINE__, __func__, __VA_ARGS__)
UVT_EXPORT int uvt_future_set_error_at(const char *file, int line,
                                       const char *func, uvt_future_t *f,
                                       int code, const char *fmt, ...)
    UVT__PRINTF(6, 7);
UVT_EXPORT int(uvt_future_set_error)(uvt_future_t *f, int code,
                                     const char *fmt, ...) UVT__PRINTF(3, 4);
/* Cancel the future (asyncio's Future.cancel): if it is not done it is
 * completed with UVT_ECANCELED and its awaiters wake with that; a later
 * set returns UVT_EINVAL.  Returns 1 if it was cancelled, 0 if it was
 * already done, UVT_EINVAL / UVT_ERELEASED for a bad handle.  On a done
 * future it changes nothing: an error nobody read is still reported when
 * the future is released (a deliberate difference: asyncio's cancel()
 * silences that report even when it cancels nothing). */
#define uvt_future_cancel(f) \
  uvt_future_cancel_at((f), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_future_cancel_at(uvt_future_t *f, const char *file,
                                    int line, const char *func);
UVT_EXPORT int(uvt_future_cancel)(uvt_future_t *f);
/* Suspend until set; return 0 or its error (counted as retrieved) and
 * give up the caller's reference.  A set future returns at once.
 * Cancelling the awaiter cancels the future (as asyncio does) and returns
 * UVT_ECANCELED.  Argument errors give up nothing. */
#define uvt_await_future(f) \
  UVT__KEEP_FRAME(uvt_await_future_at((f), NULL, NULL, __FILE__, __LINE__, __func__))
/* As uvt_await_future, handing over the result and a malloc'd copy of the
 * error message (see uvt_await_result). */
#define uvt_await_future_result(f, result, message) \
  UVT__KEEP_FRAME(uvt_await_future_at((f), (result), (message), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_await_future_at(uvt_future_t *f, void **result,
                                   char **message, const char *file, int line,
                                   const char *func);
UVT_EXPORT bool uvt_future_done(const uvt_future_t *f);
UVT_EXPORT void *uvt_future_result(const uvt_future_t *f);
UVT_EXPORT const char *uvt_future_error_message(const uvt_future_t *f);
/* Give up one reference: freed once set (or cancelled) and no reference
 * is left. */
#define uvt_future_detach(f) \
  uvt_future_detach_at((f), __FILE__, __LINE__, __func__)
UVT_EXPORT void uvt_future_detach_at(uvt_future_t *f,
                                     const char *file, int line,
                                     const char *func);
UVT_EXPORT void(uvt_future_detach)(uvt_future_t *f);

/* ---- waiting on several -------------------------------------------------- */

/* Wait for all n tasks; return the error of the first to fail, in the
 * order they finished (not a UVT_ECANCELED that a failure caused), or 0.
 * A failure does not end the wait early (a deliberate difference:
 * asyncio's gather is done at the first exception and leaves the others
 * running unwatched).  Every error is counted as retrieved; the handles
 * stay the caller's (see "Ownership" above).  If the gathering task is cancelled, the gathered
 * tasks are cancelled, waited for, and UVT_ECANCELED is returned — also
 * when the cancel came after the last task finished but before the
 * gathering task ran again (asyncio's rule; nothing is left to cancel
 * then, and the tasks' outcomes stay readable).  n == 0 returns 0 at
 * once. */
#define uvt_gather(t, n) \
  UVT__KEEP_FRAME(uvt_gather_at((t), (n), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_gather_at(uvt_task_t **t, size_t n, const char *file,
                             int line, const char *func);

enum { UVT_FIRST_COMPLETED = 1, UVT_ALL_COMPLETED = 2, UVT_FIRST_EXCEPTION = 3 };

/* Wait until one (UVT_FIRST_COMPLETED), all (UVT_ALL_COMPLETED), or one
 * that failed or else all (UVT_FIRST_EXCEPTION: a status < 0 other than
 * UVT_ECANCELED, as asyncio's FIRST_EXCEPTION) of the n tasks are done, or
 * timeout_ms (-1: no limit) has passed.  Returns 0 when the condition is
 * met, UVT_ETIMEDOUT, UVT_EINVAL for n == 0 (as asyncio), or UVT_ECANCELED
 * if the waiting task was cancelled (the tasks themselves are left
 * running), even after the condition was met, if the cancel came before
 * the waiting task ran again.  *ndone (may be NULL) receives how many are done; uvt_done()
 * says which.  Errors are not retrieved and the handles stay the
 * caller's. */
#define uvt_wait(t, n, mode, timeout_ms, ndone) \
  UVT__KEEP_FRAME(uvt_wait_at((t), (n), (mode), (timeout_ms), (ndone), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_wait_at(uvt_task_t **t, size_t n, int mode,
                           int64_t timeout_ms, size_t *ndone,
                           const char *file, int line, const char *func);

/* Await with a limit, giving up the caller's reference as uvt_await
 * does: the task's status, or UVT_ETIMEDOUT after cancelling it and
 * waiting for it to finish — unless it finished on its own meanwhile
 * (its result or its own error is then returned, as asyncio.wait_for
 * does).  Cancelling the waiting task cancels `t` and returns
 * UVT_ECANCELED once it has finished.  timeout_ms -1 waits without limit
 * (asyncio's None), 0 cancels `t` at once unless it is done; other
 * negative values are UVT_EINVAL (a deliberate difference: asyncio
 * treats any negative timeout as 0). */
#define uvt_wait_for(t, timeout_ms) \
  UVT__KEEP_FRAME(uvt_wait_for_at((t), (timeout_ms), NULL, NULL, __FILE__, __LINE__, __func__))
/* As uvt_wait_for, handing over the result and message as
 * uvt_await_result does. */
#define uvt_wait_for_result(t, timeout_ms, result, message) \
  UVT__KEEP_FRAME(uvt_wait_for_at((t), (timeout_ms), (result), (message), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_wait_for_at(uvt_task_t *t, int64_t timeout_ms,
                               void **result, char **message,
                               const char *file, int line, const char *func);

/* ---- time and yielding --------------------------------------------------- */

/* Suspend for ms milliseconds (0: as uvt_yield).  0, UVT_ECANCELED,
 * UVT_ENOTASK (outside a task), UVT_EWRONGTHREAD (from a thread that runs
 * no uvtask loop while another does: see "Threads" above; both libraries
 * return it), UVT_EINVAL for ms < 0. */
#define uvt_sleep(ms) \
  UVT__KEEP_FRAME(uvt_sleep_at((ms), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_sleep_at(int64_t ms, const char *file, int line,
                            const char *func);

/* Let every other ready task run once.  0, UVT_ECANCELED, UVT_ENOTASK or
 * UVT_EWRONGTHREAD (as uvt_sleep). */
#define uvt_yield() \
  UVT__KEEP_FRAME(uvt_yield_at(__FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_yield_at(const char *file, int line, const char *func);

/* Run fn(arg) on libuv's thread pool and return its status.  If the task
 * is cancelled meanwhile, the work is dequeued if it has not started, else
 * waited for; then UVT_ECANCELED is returned.  A cancel after fn returned
 * but before the task ran again wins too: fn ran, its status is dropped
 * (as asyncio.to_thread's result is).  UVT_ENOTASK outside a task,
 * UVT_EWRONGTHREAD from a thread that runs no uvtask loop while another
 * does (as uvt_sleep: fn itself calling uvt_to_thread, for one).  fn must
 * not call uvtask: its loop-only calls are refused (see "Threads"). */
#define uvt_to_thread(fn, arg) \
  UVT__KEEP_FRAME(uvt_to_thread_at((fn), (arg), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_to_thread_at(uvt_fn fn, void *arg, const char *file,
                                int line, const char *func);

/* ---- no-yield sections ----------------------------------------------------- */

/* Declare that the code between them must not await ("WARNING! Do not
 * insert yield points between following lines").  Nestable; the depth is
 * per task.  The debug library reports a yield-in-critical-section
 * finding for every call inside that MAY suspend, whether or not it
 * suspends this time: an uncontended lock or semaphore acquire, a put on
 * a queue with room, a get from a non-empty one, join, an event wait, a
 * condition or barrier wait, every await (task, future, coroutine),
 * uvt_sleep (0 too), uvt_yield, uvt_to_thread, gather, wait, wait_for,
 * stream reads, drain and close, connect, start_server, server close,
 * and the structured calls that await (group leave, shield, as_completed
 * next, wait_futures, wait_for_future, signal wait).
 * One finding per outermost section, at the first such call made from the
 * section's own code (an await of a coroutine, not the calls inside it):
 * a line on stderr ("file:line: warning: ... [yield-in-critical-section]")
 * and a FINDING hook event.  The release library only counts the depth:
 * checking there cost 1 % of a spawn+await and 12 % of an uncontended
 * lock acquire+release (callgrind instructions), too much for the hot
 * paths of a build that cannot report it anyway beyond stderr. */
#define UVT_NO_YIELD_BEGIN() uvt_no_yield_begin_at(__FILE__, __LINE__, __func__)
#define UVT_NO_YIELD_END() uvt_no_yield_end_at(__FILE__, __LINE__, __func__)
UVT_EXPORT void uvt_no_yield_begin_at(const char *file, int line, const char *func);
UVT_EXPORT void uvt_no_yield_end_at(const char *file, int line, const char *func);

/* ---- synchronisation (caller-owned memory, initialised in place) ----------
 *
 * The fields are private.  Each must be used on one loop only, and must
 * outlive every task that waits on it — including waiters that uvt_run
 * cancels when main returns, which unlink themselves from it — so do not
 * put one on main's stack if other tasks may still wait on it then.
 * Destroy it only when no task will touch it again; tasks still waiting at
 * destroy get UVT_ECLOSED; a queue's remaining items (the caller's
 * pointers) are dropped, not freed.  Awaiting calls return 0,
 * UVT_ECANCELED, UVT_ENOTASK, UVT_ECLOSED, or UVT_EINVAL for an object
 * never initialised or already destroyed.  Every call but init and the
 * read-only ones returns UVT_EWRONGTHREAD from a thread that does not run
 * the object's loop (void calls: nothing done, one line on stderr; see
 * "Threads" at the top).  Waiters are served first come,
 * first served, and an uncontended acquire returns without yielding.
 */
typedef struct uvt__waitq_s {
  void *head;
  void *tail;
} uvt__waitq_t;

/* ABI rule.  Every struct the caller allocates ends with `reserved`
 * pointers, zeroed by its init, which later releases may turn into
 * fields without changing the struct's size or the offsets of the fields
 * before them (libuv's handles do the same).  Programs built against
 * 0.2.x run with any 0.2.y library; a change that cannot fit in the
 * reserve bumps the soname. */
#define UVT__RESERVED 4

typedef struct uvt_lock_s {
  uvt__waitq_t waiters;
  int locked_unused;        /* 0.2.0's `locked`; held == holder set */
  uint32_t magic;
  uv_loop_t *loop;          /* bound at first release or wait */
  uvt_task_t *holder;       /* the task that acquired it, until a release;
                               once that task has ended holding it, no
                               task of the program (see "Hangs" below) */
  const char *acquired_file; /* where the holder acquired it */
  int acquired_line;
  struct uvt_lock_s *next_held; /* the holder's previous lock still held */
  void *ended;              /* what is kept of a holder that ended */
  void *reserved[UVT__RESERVED - 2];
} uvt_lock_t;

typedef struct uvt_event_s {
  uvt__waitq_t waiters;
  int is_set;
  uint32_t magic;
  uv_loop_t *loop;          /* bound at first use; NULL until then */
  void *reserved[UVT__RESERVED];
} uvt_event_t;

typedef struct uvt_sem_s {
  uvt__waitq_t waiters;
  unsigned value;
  uint32_t magic;
  unsigned bound;           /* BoundedSemaphore's limit; 0: unbounded */
  uv_loop_t *loop;          /* bound at first use; NULL until then */
  void *reserved[UVT__RESERVED];
} uvt_sem_t;

typedef struct uvt_queue_s {
  uvt__waitq_t getters;
  uvt__waitq_t putters;
  void **items;
  size_t capacity; /* 0: unbounded */
  size_t alloc;
  size_t head;
  size_t count;
  uint32_t magic;
  int closed;               /* close(): waiters wake with an error */
  uv_loop_t *loop;          /* bound at first use; NULL until then */
  size_t unfinished;        /* items put and not yet task_done'd (join) */
  uvt__waitq_t joiners;     /* tasks in join */
  int order;                /* FIFO, LIFO or priority */
  int (*compare)(const void *a, const void *b); /* priority order */
  void *reserved[UVT__RESERVED];
} uvt_queue_t;

typedef struct uvt_cond_s {
  uvt__waitq_t waiters;
  uvt_lock_t *lock;
  uint32_t magic;
  uv_loop_t *loop;          /* bound at first use; NULL until then */
  void *reserved[UVT__RESERVED];
} uvt_cond_t;

typedef struct uvt_barrier_s {
  uvt__waitq_t waiters;
  unsigned parties;
  unsigned count;           /* tasks waiting in this cycle */
  int broken;
  uint32_t magic;
  uv_loop_t *loop;          /* bound at first use; NULL until then */
  void *reserved[UVT__RESERVED];
} uvt_barrier_t;

/* Hangs.  Both libraries report, on stderr, tasks that wait on each
 * other in a cycle (a deadlock: awaits, gathers, ALL_COMPLETED waits with
 * no time limit, acquires of held locks) at the park that closes it, and
 * tasks parked with nothing left that could wake them (a stall) once it
 * has lasted ASYNCIODEBUG_STALL_MS milliseconds (default 1000, 0: never
 * checked); the program goes on.  README "When it hangs" shows the lines.
 * A cycle of any length is found; one check looks at most at
 * ASYNCIODEBUG_DEADLOCK_TASKS parked tasks (default 65536) and says on
 * stderr, once per loop, when it stopped there.
 * A task that ends holding a uvt_lock_t is freed as any other: the lock
 * keeps a small record of it (its id, name and creation site, for these
 * reports), freed when some task releases the lock or uvt_lock_destroy;
 * its `holder` then points at a placeholder, not at a task.  The locks a
 * task holds are linked to it: a held lock's memory must not be freed or
 * reused (uvt_lock_init) before it is released or destroyed. */

/* asyncio.Lock.  acquire awaits (FIFO; the lock is handed to the first
 * waiter on release, where asyncio lets a newcomer race for it: a
 * deliberate difference, it keeps the queue fair; so after a release to
 * a waiter uvt_lock_locked stays true, where asyncio's locked() reads
 * false until that waiter runs); release never yields
 * and returns UVT_ENOTLOCKED if the lock is not held.  A waiter handed the
 * lock and cancelled before it runs does not take it: its acquire returns
 * UVT_ECANCELED and the lock goes to the next waiter (asyncio's rule). */
UVT_EXPORT int uvt_lock_init(uvt_lock_t *l);
#define uvt_lock_acquire(l) \
  UVT__KEEP_FRAME(uvt_lock_acquire_at((l), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_lock_acquire_at(uvt_lock_t *l, const char *file, int line,
                                   const char *func);
#define uvt_lock_release(l) \
  uvt_lock_release_at((l), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_lock_release_at(uvt_lock_t *l, const char *file, int line,
                                   const char *func);
UVT_EXPORT int(uvt_lock_release)(uvt_lock_t *l);
UVT_EXPORT bool uvt_lock_locked(const uvt_lock_t *l);
#define uvt_lock_destroy(l) \
  uvt_lock_destroy_at((l), __FILE__, __LINE__, __func__)
UVT_EXPORT void uvt_lock_destroy_at(uvt_lock_t *l,
                                    const char *file, int line,
                                    const char *func);
UVT_EXPORT void(uvt_lock_destroy)(uvt_lock_t *l);

/* asyncio.Event. */
UVT_EXPORT int uvt_event_init(uvt_event_t *e);
#define uvt_event_set(e) \
  uvt_event_set_at((e), __FILE__, __LINE__, __func__)
UVT_EXPORT void uvt_event_set_at(uvt_event_t *e,
                                 const char *file, int line, const char *func);
UVT_EXPORT void(uvt_event_set)(uvt_event_t *e);
#define uvt_event_clear(e) \
  uvt_event_clear_at((e), __FILE__, __LINE__, __func__)
UVT_EXPORT void uvt_event_clear_at(uvt_event_t *e,
                                   const char *file, int line,
                                   const char *func);
UVT_EXPORT void(uvt_event_clear)(uvt_event_t *e);
UVT_EXPORT bool uvt_event_is_set(const uvt_event_t *e);
#define uvt_event_wait(e) \
  UVT__KEEP_FRAME(uvt_event_wait_at((e), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_event_wait_at(uvt_event_t *e, const char *file, int line,
                                 const char *func);
#define uvt_event_destroy(e) \
  uvt_event_destroy_at((e), __FILE__, __LINE__, __func__)
UVT_EXPORT void uvt_event_destroy_at(uvt_event_t *e,
                                     const char *file, int line,
                                     const char *func);
UVT_EXPORT void(uvt_event_destroy)(uvt_event_t *e);

/* asyncio.Semaphore with initial value n.  release returns UVT_EINVAL
 * if the count would overflow.  A permit handed to a waiter that is
 * cancelled before it runs goes to the next waiter (asyncio's rule).
 * Permits are handed to waiters at release: a permit released while no
 * task waits is free at once, even to a newcomer, while tasks handed
 * permits earlier have not run yet (a deliberate difference: asyncio
 * makes the newcomer queue behind them). */
UVT_EXPORT int uvt_sem_init(uvt_sem_t *s, unsigned n);
/* asyncio.BoundedSemaphore: as uvt_sem_init, and a release that would
 * raise the count above n returns UVT_EINVAL (asyncio's ValueError). */
UVT_EXPORT int uvt_sem_init_bounded(uvt_sem_t *s, unsigned n);
#define uvt_sem_acquire(s) \
  UVT__KEEP_FRAME(uvt_sem_acquire_at((s), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_sem_acquire_at(uvt_sem_t *s, const char *file, int line,
                                  const char *func);
#define uvt_sem_release(s) \
  uvt_sem_release_at((s), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_sem_release_at(uvt_sem_t *s,
                                  const char *file, int line, const char *func);
UVT_EXPORT int(uvt_sem_release)(uvt_sem_t *s);
#define uvt_sem_destroy(s) \
  uvt_sem_destroy_at((s), __FILE__, __LINE__, __func__)
UVT_EXPORT void uvt_sem_destroy_at(uvt_sem_t *s,
                                   const char *file, int line,
                                   const char *func);
UVT_EXPORT void(uvt_sem_destroy)(uvt_sem_t *s);

/* asyncio.Queue of pointers holding at most `capacity` items (0: no
 * limit).  put awaits while full, get while empty; put on an unbounded
 * queue never yields and returns UVT_ENOMEM if it cannot grow.  init
 * returns 0 or UVT_ENOMEM.  A getter handed an item and cancelled before
 * it runs passes the item to the next getter or back to the queue; a
 * putter cancelled after its item went in takes it back out (unless a
 * getter already took it: then its put stands and the cancel comes at its
 * next await).  Giving an item back may hold a bounded queue above its
 * capacity for a while; puts wait until it is below. */
UVT_EXPORT int uvt_queue_init(uvt_queue_t *q, size_t capacity);
/* asyncio.LifoQueue: get takes the most recently put item. */
UVT_EXPORT int uvt_queue_init_lifo(uvt_queue_t *q, size_t capacity);
/* asyncio.PriorityQueue: get takes the smallest item by `compare` (a
 * qsort-style comparison of the two item pointers; required: UVT_EINVAL
 * for NULL).  Items that compare equal come out in no set order. */
UVT_EXPORT int uvt_queue_init_priority(uvt_queue_t *q, size_t capacity,
                                       int (*compare)(const void *a,
                                                      const void *b));
/* put / get without waiting, from a task or a callback on the loop thread:
 * 0, UVT_EAGAIN when full / empty, UVT_ECLOSED after close (get: once the
 * queue is empty), UVT_ENOMEM, UVT_EINVAL. */
#define uvt_queue_put_nowait(q, item) \
  uvt_queue_put_nowait_at((q), (item), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_queue_put_nowait_at(uvt_queue_t *q, void *item,
                                       const char *file, int line,
                                       const char *func);
UVT_EXPORT int(uvt_queue_put_nowait)(uvt_queue_t *q, void *item);
#define uvt_queue_get_nowait(q, item) \
  uvt_queue_get_nowait_at((q), (item), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_queue_get_nowait_at(uvt_queue_t *q, void **item,
                                       const char *file, int line,
                                       const char *func);
UVT_EXPORT int(uvt_queue_get_nowait)(uvt_queue_t *q, void **item);
/* asyncio.Queue.task_done: one item put earlier has been processed.
 * UVT_EINVAL if called more often than items were put. */
#define uvt_queue_task_done(q) \
  uvt_queue_task_done_at((q), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_queue_task_done_at(uvt_queue_t *q,
                                      const char *file, int line,
                                      const char *func);
UVT_EXPORT int(uvt_queue_task_done)(uvt_queue_t *q);
/* asyncio.Queue.join: wait until every item put has been marked done
 * (at once if so).  0, UVT_ECANCELED, UVT_ENOTASK, UVT_ECLOSED. */
#define uvt_queue_join(q) \
  UVT__KEEP_FRAME(uvt_queue_join_at((q), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_queue_join_at(uvt_queue_t *q, const char *file, int line,
                                 const char *func);
/* Close the queue (Python 3.13's Queue.shutdown): puts return UVT_ECLOSED
 * from now on, gets drain what is left, then return UVT_ECLOSED; tasks
 * waiting in put or get wake with UVT_ECLOSED.  Never yields.  The queue
 * must still be destroyed. */
#define uvt_queue_close(q) \
  uvt_queue_close_at((q), __FILE__, __LINE__, __func__)
UVT_EXPORT void uvt_queue_close_at(uvt_queue_t *q,
                                   const char *file, int line,
                                   const char *func);
UVT_EXPORT void(uvt_queue_close)(uvt_queue_t *q);
#define uvt_queue_put(q, item) \
  UVT__KEEP_FRAME(uvt_queue_put_at((q), (item), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_queue_put_at(uvt_queue_t *q, void *item, const char *file,
                                int line, const char *func);
#define uvt_queue_get(q, item) \
  UVT__KEEP_FRAME(uvt_queue_get_at((q), (item), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_queue_get_at(uvt_queue_t *q, void **item, const char *file,
                                int line, const char *func);
UVT_EXPORT size_t uvt_queue_size(const uvt_queue_t *q);
#define uvt_queue_destroy(q) \
  uvt_queue_destroy_at((q), __FILE__, __LINE__, __func__)
UVT_EXPORT void uvt_queue_destroy_at(uvt_queue_t *q,
                                     const char *file, int line,
                                     const char *func);
UVT_EXPORT void(uvt_queue_destroy)(uvt_queue_t *q);

/* asyncio.Condition over `lock` (required: C has no default lock; it
 * must outlive the condition).  wait, notify and notify_all need the lock
 * held by the calling task (else UVT_ENOTLOCKED).  wait releases it, waits
 * for a notify, and takes it again before it returns — also when it was
 * cancelled (then UVT_ECANCELED, with the lock held, as asyncio).  A task
 * notified and cancelled before it runs passes the notification to the
 * next waiter (asyncio 3.13's rule).  notify wakes up to n waiters, in
 * the order they waited; both never yield. */
UVT_EXPORT int uvt_cond_init(uvt_cond_t *c, uvt_lock_t *lock);
#define uvt_cond_wait(c) \
  UVT__KEEP_FRAME(uvt_cond_wait_at((c), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_cond_wait_at(uvt_cond_t *c, const char *file, int line,
                                const char *func);
#define uvt_cond_notify(c, n) \
  uvt_cond_notify_at((c), (n), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_cond_notify_at(uvt_cond_t *c, unsigned n,
                                  const char *file, int line, const char *func);
UVT_EXPORT int(uvt_cond_notify)(uvt_cond_t *c, unsigned n);
#define uvt_cond_notify_all(c) \
  uvt_cond_notify_all_at((c), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_cond_notify_all_at(uvt_cond_t *c,
                                      const char *file, int line,
                                      const char *func);
UVT_EXPORT int(uvt_cond_notify_all)(uvt_cond_t *c);
#define uvt_cond_destroy(c) \
  uvt_cond_destroy_at((c), __FILE__, __LINE__, __func__)
UVT_EXPORT void uvt_cond_destroy_at(uvt_cond_t *c,
                                    const char *file, int line,
                                    const char *func);
UVT_EXPORT void(uvt_cond_destroy)(uvt_cond_t *c);

/* asyncio.Barrier for `parties` tasks (> 0).  wait returns 0 once
 * `parties` tasks are waiting, all of them at once, and stores in *index
 * (may be NULL) the caller's arrival order in that cycle (0 .. parties-1);
 * then the barrier fills again.  A waiter cancelled before the cycle
 * completes leaves it (UVT_ECANCELED); one cancelled after it completed
 * keeps its 0 (the cancel comes at its next await).  abort breaks it:
 * every waiter, and every later wait, returns UVT_EBROKEN until reset. */
UVT_EXPORT int uvt_barrier_init(uvt_barrier_t *b, unsigned parties);
#define uvt_barrier_wait(b, index) \
  UVT__KEEP_FRAME(uvt_barrier_wait_at((b), (index), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_barrier_wait_at(uvt_barrier_t *b, unsigned *index,
                                   const char *file, int line,
                                   const char *func);
#define uvt_barrier_abort(b) \
  uvt_barrier_abort_at((b), __FILE__, __LINE__, __func__)
UVT_EXPORT void uvt_barrier_abort_at(uvt_barrier_t *b,
                                     const char *file, int line,
                                     const char *func);
UVT_EXPORT void(uvt_barrier_abort)(uvt_barrier_t *b);
#define uvt_barrier_reset(b) \
  uvt_barrier_reset_at((b), __FILE__, __LINE__, __func__)
UVT_EXPORT void uvt_barrier_reset_at(uvt_barrier_t *b,
                                     const char *file, int line,
                                     const char *func);
UVT_EXPORT void(uvt_barrier_reset)(uvt_barrier_t *b);
#define uvt_barrier_destroy(b) \
  uvt_barrier_destroy_at((b), __FILE__, __LINE__, __func__)
UVT_EXPORT void uvt_barrier_destroy_at(uvt_barrier_t *b,
                                       const char *file, int line,
                                       const char *func);
UVT_EXPORT void(uvt_barrier_destroy)(uvt_barrier_t *b);

/* ---- looking inside -------------------------------------------------------- */

/* Print every live task of `loop` (NULL: the loop whose task or callback
 * is running on this thread) to `out`, as Go prints its goroutines: id
 * ("#S:N": the scheduler's number, then the task's; the same id the
 * report, `uvtask ps` and gdb show), current name, state, what it waits
 * on and, in the debug library, for how long ("[uvt_lock_acquire, 5s]"),
 * where it is parked and where it was created, then who awaits whom as a
 * tree.  Tasks alike in all of these (state, wait, parked and creation
 * sites) are printed once with their count and ids.  Call it on the
 * loop's thread (a task, a libuv callback of that loop, or after uvt_run
 * returned for a loop passed in).  Returns the number of tasks listed,
 * UVT_EINVAL (out NULL), UVT_ENOLOOP (no uvtask scheduler on that loop)
 * or UVT_EWRONGTHREAD (called from another thread). */
UVT_EXPORT int uvt_dump_loop(uv_loop_t *loop, FILE *out);
#define uvt_dump(out) uvt_dump_loop(NULL, (out))

#ifdef __cplusplus
}
#endif

#include "uvtask/stream.h" /* streams and servers (TCP, Unix sockets) */
#include "uvtask/structured.h" /* task groups, timeouts, shield, as_completed */

#endif /* UVTASK_H */
