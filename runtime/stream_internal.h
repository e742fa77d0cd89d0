/*
 * What the stream files share — stream.c (creation, closing),
 * stream_read.c, stream_write.c, stream_connect.c (clients) and server.c
 * (listeners): the stream struct and its life cycle.
 *
 * Life of a stream.  The struct is heap memory holding the libuv handles,
 * so that libuv may call back into it until its close callbacks, whoever
 * started the close:
 *
 *   new (handle initialised, not registered)
 *     -> registered + reading   (connected or accepted)
 *     -> closing                (uvt_close: API calls fail with UVT_ECLOSED,
 *                                buffered bytes are flushed)
 *     -> uv_closing             (uv_close called on both handles)
 *     -> freed                  (in or after the last close callback)
 *
 * Three paths reach "freed": uvt_close (a task waits for the close
 * callback, then unregisters and quarantines the struct), a failed or
 * cancelled connect (the task waits likewise; never registered), and a
 * detached close (uvt__stream_close_detached: the runtime's shutdown, a
 * connection task that never ran), which counts in sched->pending_callbacks
 * and frees in the close callback.
 *
 * Invariants:
 *   rstart <= rend <= rcap; the unread bytes are rbuf[rstart, rend).
 *   reading  <=>  uv_read_start is in effect on the handle.
 *   winflight <=> wreq is queued in libuv, writing wcur; wnext gathers
 *                 what is written meanwhile (never in flight).
 *   flush_armed <=> the flusher (uv_idle) is started; then !winflight.
 *   Each stream owns two libuv handles, the stream and its flusher; both
 *   are closed together and the struct is freed after the second close
 *   callback.
 *   reader != NULL only while that task is inside a read call.
 */
#ifndef UVT_RUNTIME_STREAM_INTERNAL_H
#define UVT_RUNTIME_STREAM_INTERNAL_H

#include "internal.h"
#include "waitq.h"
#include "uvtask/stream.h"

typedef struct uvt__wbuf_s {
  char *data;
  size_t len, cap;
} uvt__wbuf_t;

/* The libuv handle of a stream or a server: TCP or a Unix pipe. */
typedef union {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
} uvt__uvstream_t;

struct uvt_stream_s {
  uvt__obj_t obj;
  uvt__sched_t *sched;
  uvt__uvstream_t u;
  bool is_pipe;
  bool registered;

  /* Read side. */
  char *rbuf;
  size_t rcap, rstart, rend;
  size_t limit;        /* reading pauses at this many buffered bytes */
  size_t rneed;        /* uvt_readexactly's n while it waits (may > limit) */
  size_t rwant;        /* wake the reader once this many are buffered */
  bool reading;
  bool eof;
  int rerr;            /* sticky read error */
  uvt_task_t *reader;

  /* Write side. */
  uvt__wbuf_t wcur, wnext;
  uv_write_t wreq;
  bool winflight;
  uv_idle_t flusher;   /* armed by uvt_write: sends wnext before the poll */
  bool flush_armed;
  uv_shutdown_t sreq;
  bool eof_requested;  /* uvt_write_eof was called */
  bool shutdown_started;
  bool shutdown_inflight;
  size_t hwm;
  int werr;            /* sticky write error */
  uvt__waitq_t drainers;

  /* Closing. */
  bool closing;        /* uvt_close (or a detached close) has begun */
  bool uv_closing;     /* uv_close was called (on both handles) */
  int closes_pending;  /* close callbacks still to come */
  bool handle_closed;  /* both close callbacks ran */
  bool detached;       /* nobody waits: the last close callback frees */
  bool close_cancelled;
  uvt_task_t *closer;  /* a task waiting in uvt_close or a connect */
  bool *closed_flag;   /* set to true when uvt_close finishes (servers) */

  /* Connecting. */
  uv_connect_t creq;
  int cstatus;
  bool cdone;
};

/* The check every public call starts with: UVT_EINVAL for NULL,
 * UVT_ECLOSED once a close has begun or the struct was released. */
static inline int uvt__stream_check(const uvt_stream_t *s) {
  if (s == NULL) return UVT_EINVAL;
  if (s->obj.magic != UVT__MAGIC_LIVE || s->closing) return UVT_ECLOSED;
  return 0;
}

/* uvt__stream_check, then the loop-thread check (internal.h). */
static inline int uvt__stream_enter(const uvt_stream_t *s, const char *call,
                                    const char *file, int line) {
  int err = uvt__stream_check(s);
  return err != 0 ? err : uvt__sched_check(s->sched, &s->obj, call, file, line);
}

/* Bytes received and not yet read. */
static inline size_t uvt__stream_rbuffered(const uvt_stream_t *s) {
  return s->rend - s->rstart;
}

/* Bytes written and not yet handed to the kernel. */
static inline size_t uvt__stream_unsent(const uvt_stream_t *s) {
  size_t n = s->wnext.len;
  if (s->winflight) n += uv_stream_get_write_queue_size(&s->u.stream);
  return n;
}

/* Nothing left to send (or sending failed): a close may proceed. */
static inline bool uvt__stream_flushed(const uvt_stream_t *s) {
  if (s->werr != 0) return true;
  return !s->winflight && s->wnext.len == 0 && !s->shutdown_inflight;
}

/* stream_read.c: start reading (once, when the stream opens), and stop
 * (pause for backpressure, or for good before closing). */
int uvt__stream_read_start(uvt_stream_t *s);
void uvt__stream_read_stop(uvt_stream_t *s);

/* Allocate a stream and initialise its handle on `sched`'s loop.  NULL
 * when out of memory (or the handle cannot be initialised). */
uvt_stream_t *uvt__stream_new(uvt__sched_t *sched, bool is_pipe);
/* Register it in the runtime's registry and start reading: it is now an
 * open stream.  Returns 0 or a libuv error (the stream is then still
 * unregistered and must be closed by the caller). */
int uvt__stream_open(uvt_stream_t *s, const char *name, const char *file,
                     int line, const char *func);
/* From a task: uv_close the handle and wait for the callback, then free.
 * For streams that were never opened (failed connects).  Returns
 * UVT_ECANCELED if the task was cancelled while it waited (the wait goes
 * on regardless), else 0. */
int uvt__stream_close_wait(uvt_stream_t *s, const uvt__site_t *site);
/* uv_close both handles (once); the last close callback sets
 * handle_closed and wakes s->closer, or frees the stream if `detached`. */
void uvt__stream_uv_close(uvt_stream_t *s);
/* Without a task: uv_close now, discarding unsent bytes; the close
 * callback unregisters and frees.  Counted in sched->pending_callbacks so
 * that a shutdown waits for it. */
void uvt__stream_close_detached(uvt_stream_t *s);

/* Resolve host:port (numeric hosts at once, names on the thread pool;
 * cancellable).  On success *res is freed with uv_freeaddrinfo. */
int uvt__resolve(const char *host, int port, bool passive,
                 struct addrinfo **res, const uvt__site_t *site);

/* Set SIGPIPE to SIG_IGN if it is still SIG_DFL (once per process). */
void uvt__ignore_sigpipe(void);

#endif
