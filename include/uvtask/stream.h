/*
 * uvtask streams — asyncio's StreamReader/StreamWriter and start_server,
 * over libuv TCP and Unix-domain (pipe) handles.
 *
 * A stream is one connection.  Its memory belongs to uvtask: streams are
 * heap objects (a libuv handle must outlive its close callback, which a
 * task stack need not), created by uvt_open_connection / uvt_open_unix or
 * handed to a server's handler, and freed by uvt_close.  After uvt_close
 * returns the pointer is invalid; a use soon after is usually caught
 * (UVT_ECLOSED) but that is not a promise.
 *
 * Like the rest of uvtask, every call runs on the thread that runs the
 * loop; the awaiting ones (marked "awaits") must be called from a task
 * (else UVT_ENOTASK) and are macros passing the caller's location.
 *
 * Reading.  Each stream reads into its own buffer as data arrives, up to
 * its limit (default UVT_STREAM_LIMIT, 64 KiB; uvt_stream_set_limit).  A
 * full buffer stops reading from the socket (uv_read_stop), so a peer that
 * sends faster than the task consumes is held back by TCP itself; reading
 * resumes as the buffer is consumed.  One task at a time may wait in a
 * read call on a stream (a second gets UV_EBUSY, as asyncio raises).
 *
 * A read call that returns an error consumes nothing: after UV_ENOBUFS,
 * UV_EOF, UVT_ECANCELED or a connection error the bytes already received
 * are all still in the buffer, readable by the next call.
 *
 * Writing.  uvt_write never yields: it copies the bytes into the stream's
 * outgoing buffer.  They leave before the loop next waits for I/O — every
 * write made until then together, in one system call, so pipelined
 * requests cost one send, not one each.  uvt_drain is the await that
 * applies backpressure: it returns once the bytes not yet handed to the
 * kernel are at most the high-water mark (default UVT_STREAM_HIGH_WATER,
 * 64 KiB).  A write that fails in the background (peer gone: UV_EPIPE,
 * UV_ECONNRESET) is remembered; the next uvt_write / uvt_drain returns it.
 *
 * Cancellation.  Cancelling a task parked in a stream call makes that call
 * return UVT_ECANCELED — also when what it waited for had come and woken
 * the task but the task had not run yet (asyncio's rule: the cancel wins)
 * — and leaves the stream as follows:
 *   - uvt_read / uvt_readline / uvt_readexactly: open and usable; nothing
 *     was consumed, so the next read sees every byte.
 *   - uvt_drain: open and usable; the buffered bytes are still being sent
 *     (cancelling a drain does not discard data).
 *   - uvt_open_connection / uvt_open_unix (name resolution or connect):
 *     no stream was created; the half-made one is closed and freed before
 *     the call returns (a connection that completed before the cancel
 *     won is closed too: the peer sees it end).
 *   - uvt_close: see there (the stream is closed either way).
 *   - uvt_server_close: see there.
 *
 * SIGPIPE.  Writing to a socket whose peer has gone raises SIGPIPE, whose
 * default action kills the process.  The first stream or server created
 * sets SIGPIPE to SIG_IGN if it is still SIG_DFL (as Python does at start
 * up); write errors then arrive as UV_EPIPE.
 *
 * Registry.  Open streams and servers are registered with the runtime
 * under their creation site.  One still open when uvt_run ends is reported
 * ("stream ... was never closed [unclosed-stream]") and closed for you,
 * discarding unsent data.
 */
#ifndef UVTASK_STREAM_H
#define UVTASK_STREAM_H

#include "uvtask.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct uvt_stream_s uvt_stream_t; /* opaque: one connection */
typedef struct uvt_server_s uvt_server_t; /* opaque: a listening socket */

/* A server's connection handler, run as a task per accepted connection.
 * It returns 0 or a negative error (reported as unretrieved-error, since
 * nobody awaits connection tasks: return 0 when the client merely went
 * away).  The stream belongs to the server: it is closed when the handler
 * returns.  The handler may close it earlier with uvt_close. */
typedef int (*uvt_conn_fn)(uvt_stream_t *s, void *arg);

#define UVT_STREAM_LIMIT (64 * 1024)      /* default read buffer / line limit */
#define UVT_STREAM_HIGH_WATER (64 * 1024) /* default drain threshold */

/* ---- connecting ---------------------------------------------------------- */

/* Awaits: connect to host:port over TCP (asyncio.open_connection).  `host`
 * is a numeric IPv4/IPv6 address or a name, resolved on libuv's thread
 * pool; each address is tried in turn.  TCP_NODELAY is set.  On success
 * *out is the open stream (reading already started) and 0 is returned;
 * else a libuv error (UV_ECONNREFUSED, UV_EAI_NONAME, ...), UVT_ECANCELED,
 * UVT_ENOTASK, UVT_EWRONGTHREAD (from a thread that runs no uvtask loop
 * while another does, in both libraries; see uvtask.h "Threads"),
 * UVT_EINVAL (NULL host/out, port outside 0..65535) and *out is NULL.
 * A cancel wins even when it comes after the connection was made
 * but before the task ran again (asyncio's rule): that connection is
 * closed, nothing is leaked, and UVT_ECANCELED is returned. */
#define uvt_open_connection(host, port, out) \
  UVT__KEEP_FRAME(uvt_open_connection_at((host), (port), (out), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_open_connection_at(const char *host, int port,
                                      uvt_stream_t **out, const char *file,
                                      int line, const char *func);

/* Awaits: connect to the Unix-domain socket at `path`
 * (asyncio.open_unix_connection).  Returns as uvt_open_connection, and
 * UV_ENAMETOOLONG for a path that does not fit in a sockaddr_un (107
 * bytes on Linux). */
#define uvt_open_unix(path, out) \
  UVT__KEEP_FRAME(uvt_open_unix_at((path), (out), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_open_unix_at(const char *path, uvt_stream_t **out,
                                const char *file, int line, const char *func);

/* ---- reading (one reader at a time) -------------------------------------- */

/* Cancelling a reader.  A read returns UVT_ECANCELED and consumes nothing
 * whenever its task is cancelled before it returns — also when the bytes
 * it waited for had arrived and woken it but it had not run yet (asyncio's
 * rule: the cancel wins).  Those bytes stay buffered for the next read, as
 * in asyncio's StreamReader: nothing is lost. */

/* Awaits: read one line, up to and including its '\n', into buf and
 * NUL-terminate it; *len receives its length without the NUL.  A line
 * needs len + 1 <= cap bytes and may be at most the stream's limit long.
 * Returns 0 with a full line; 0 with a final line that has no '\n' when the
 * peer ended the stream after it; 0 with *len == 0 at end of stream (as
 * asyncio returns b"").  Errors, each consuming nothing: UV_ENOBUFS when
 * the line does not fit in cap or in the limit (the bytes stay in the
 * buffer: read them with uvt_read / uvt_readexactly to skip the line),
 * UVT_ECANCELED, UVT_ECLOSED (the stream was closed meanwhile), a
 * connection error (UV_ECONNRESET), UV_EBUSY (another task is reading),
 * UVT_EINVAL (cap < 2). */
#define uvt_readline(s, buf, cap, len) \
  UVT__KEEP_FRAME(uvt_readline_at((s), (buf), (cap), (len), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_readline_at(uvt_stream_t *s, char *buf, size_t cap,
                               size_t *len, const char *file, int line,
                               const char *func);

/* Awaits: read exactly n bytes into buf.  Returns 0, or UV_EOF when the
 * stream ended first: then nothing is consumed and the partial data stays
 * readable (uvt_stream_read_buffered() says how much; uvt_read returns it).
 * A request larger than the limit grows the buffer to n for as long as it
 * waits.  Other errors as uvt_readline; UVT_ENOMEM if the buffer cannot
 * grow. */
#define uvt_readexactly(s, buf, n) \
  UVT__KEEP_FRAME(uvt_readexactly_at((s), (buf), (n), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_readexactly_at(uvt_stream_t *s, void *buf, size_t n,
                                  const char *file, int line, const char *func);

/* Awaits: read what is available, at least 1 byte and at most cap, into
 * buf; *n receives the count.  Returns 0 with *n == 0 at end of stream.
 * Errors as uvt_readline (cap == 0 is UVT_EINVAL). */
#define uvt_read(s, buf, cap, n) \
  UVT__KEEP_FRAME(uvt_read_at((s), (buf), (cap), (n), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_read_at(uvt_stream_t *s, void *buf, size_t cap, size_t *n,
                           const char *file, int line, const char *func);

/* ---- writing ------------------------------------------------------------- */

/* Queue len bytes for sending; never yields (the bytes are copied).
 * Returns 0, UVT_ECLOSED once uvt_close was called, UV_EPIPE after
 * uvt_write_eof, the error of an earlier write that failed (UV_EPIPE,
 * UV_ECONNRESET), UV_ENOBUFS when more than 1 GiB would be waiting to be
 * sent (drain first), UVT_ENOMEM, UVT_EINVAL for NULL. */
#define uvt_write(s, buf, len) \
  uvt_write_at((s), (buf), (len), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_write_at(uvt_stream_t *s, const void *buf, size_t len,
                            const char *file, int line, const char *func);
UVT_EXPORT int(uvt_write)(uvt_stream_t *s, const void *buf, size_t len);

/* Awaits: wait until the bytes not yet sent are at most the high-water
 * mark.  Returns at once, without yielding, when they already are.
 * Returns 0, a write error, UVT_ECANCELED (the data is still sent; also
 * when the bytes had left but the task was cancelled before it ran again),
 * UVT_ECLOSED.  Several tasks may drain at once. */
#define uvt_drain(s) \
  UVT__KEEP_FRAME(uvt_drain_at((s), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_drain_at(uvt_stream_t *s, const char *file, int line,
                            const char *func);

/* Half-close: send end-of-stream once the buffered bytes are sent
 * (asyncio's write_eof).  Never yields.  Reading goes on.  Later writes
 * return UV_EPIPE.  0, UVT_ECLOSED, UVT_EINVAL. */
#define uvt_write_eof(s) \
  uvt_write_eof_at((s), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_write_eof_at(uvt_stream_t *s,
                                const char *file, int line, const char *func);
UVT_EXPORT int(uvt_write_eof)(uvt_stream_t *s);

/* ---- closing ------------------------------------------------------------- */

/* Awaits: close the stream and free it (asyncio's close + wait_closed).
 * Buffered outgoing bytes are sent first, then the handle is closed and
 * libuv's close callback awaited.  A task parked reading or draining on it
 * is woken with UVT_ECLOSED.  Returns 0; UVT_ECANCELED if the closing task
 * was cancelled meanwhile (also after the close finished but before the
 * task ran again) — the stream is closed and freed all the same
 * (a cancel before the bytes were sent discards them); UVT_ECLOSED if a
 * close is already under way; UVT_ENOTASK outside a task (nothing done). */
#define uvt_close(s) \
  UVT__KEEP_FRAME(uvt_close_at((s), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_close_at(uvt_stream_t *s, const char *file, int line,
                            const char *func);

/* ---- tuning and inspection (never yield) --------------------------------- */

/* Set the read limit (bytes buffered before reading pauses, and the longest
 * line uvt_readline accepts); 0 restores the default.  Returns 0,
 * UVT_EINVAL, or UVT_ENOMEM. */
#define uvt_stream_set_limit(s, limit) \
  uvt_stream_set_limit_at((s), (limit), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_stream_set_limit_at(uvt_stream_t *s, size_t limit,
                                       const char *file, int line,
                                       const char *func);
UVT_EXPORT int(uvt_stream_set_limit)(uvt_stream_t *s, size_t limit);
/* Set the drain high-water mark (0: drain waits until everything is
 * sent).  Returns 0 or UVT_EINVAL. */
#define uvt_stream_set_high_water(s, bytes) \
  uvt_stream_set_high_water_at((s), (bytes), __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_stream_set_high_water_at(uvt_stream_t *s, size_t bytes,
                                            const char *file, int line,
                                            const char *func);
UVT_EXPORT int(uvt_stream_set_high_water)(uvt_stream_t *s, size_t bytes);
/* Bytes received and not yet read. */
UVT_EXPORT size_t uvt_stream_read_buffered(const uvt_stream_t *s);
/* Bytes written and not yet handed to the kernel. */
UVT_EXPORT size_t uvt_stream_write_buffered(const uvt_stream_t *s);
/* The libuv handle (a uv_tcp_t or uv_pipe_t), for getsockname, options
 * and the like.  Do not read, write or close through it. */
UVT_EXPORT uv_stream_t *uvt_stream_handle(uvt_stream_t *s);

/* ---- servers ------------------------------------------------------------- */

/* Awaits (name resolution): listen on host:port over TCP and run
 * handler(stream, arg) as a new task for each accepted connection
 * (asyncio.start_server).  `host` is required: "127.0.0.1", "::1", a name
 * (the first address is used), or "0.0.0.0" for every interface.  port 0
 * picks a free port: see uvt_server_port.  Returns 0 and *out, or a libuv
 * error (UV_EADDRINUSE, ...), UVT_ECANCELED, UVT_ENOTASK, UVT_EINVAL.
 * Connection tasks are named after the handler and created at this call's
 * site. */
#define uvt_start_server(host, port, handler, arg, out)                       \
  uvt_start_server_at((host), (port), (handler), (arg), (out), #handler,      \
                      __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_start_server_at(const char *host, int port,
                                   uvt_conn_fn handler, void *arg,
                                   uvt_server_t **out, const char *name,
                                   const char *file, int line,
                                   const char *func);

/* As uvt_start_server on a Unix-domain socket at `path` (which must not
 * exist: UV_EADDRINUSE; too long: UV_ENAMETOOLONG).  Does not await, but
 * needs a uvtask loop on this thread (UVT_ENOLOOP).  Closing the server
 * removes the socket file. */
#define uvt_start_unix_server(path, handler, arg, out)                        \
  uvt_start_unix_server_at((path), (handler), (arg), (out), #handler,         \
                           __FILE__, __LINE__, __func__)
UVT_EXPORT int uvt_start_unix_server_at(const char *path, uvt_conn_fn handler,
                                        void *arg, uvt_server_t **out,
                                        const char *name, const char *file,
                                        int line, const char *func);

/* The TCP port the server listens on (useful after asking for port 0), or
 * UVT_EINVAL for a Unix-domain server or a bad handle. */
UVT_EXPORT int uvt_server_port(const uvt_server_t *srv);

/* Connection tasks still running. */
UVT_EXPORT size_t uvt_server_connections(const uvt_server_t *srv);

/* Cancel every connection task of the server (asyncio's abort_clients);
 * never yields.  Each handler sees UVT_ECANCELED at its await; its stream
 * is closed when it returns.  Returns how many were cancelled. */
#define uvt_server_cancel_connections(srv) \
  uvt_server_cancel_connections_at((srv), __FILE__, __LINE__, __func__)
UVT_EXPORT size_t uvt_server_cancel_connections_at(uvt_server_t *srv,
                                                   const char *file, int line,
                                                   const char *func);
UVT_EXPORT size_t(uvt_server_cancel_connections)(uvt_server_t *srv);

/* Awaits: stop listening, then wait until every connection task has ended
 * on its own (asyncio's close + wait_closed: open connections are *not*
 * cancelled — call uvt_server_cancel_connections first for that), then
 * free the server.  If the closing task is cancelled while waiting, the
 * connection tasks are cancelled, waited for, and UVT_ECANCELED returned
 * (also for a cancel after the close finished but before the task ran
 * again); the server is freed either way.  UVT_ECLOSED if a close is already under
 * way, UVT_ENOTASK outside a task (nothing done). */
#define uvt_server_close(srv) \
  UVT__KEEP_FRAME(uvt_server_close_at((srv), __FILE__, __LINE__, __func__))
UVT_EXPORT int uvt_server_close_at(uvt_server_t *srv, const char *file,
                                   int line, const char *func);

#ifdef __cplusplus
}
#endif
#endif /* UVTASK_STREAM_H */
