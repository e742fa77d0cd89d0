/*
 * A small pipelining Redis client on uvtask streams — the talk's
 * "Pipelining" slides in C.
 *
 * The point is the shape of request(): it is *not* a coroutine.  It
 * writes the command to the stream (uvt_write never yields) and returns a
 * future at once; one reader task per connection parses the replies and
 * resolves the futures in the order the commands were sent, which is the
 * order Redis answers in.  So a caller may send ten thousand commands
 * before awaiting the first reply — the connection carries them back to
 * back instead of idling for one round trip per command:
 *
 *     uvt_future_t *f[3] = {redis_multi(r), redis_incr(r, "n"), redis_exec(r)};
 *     for (int i = 0; i < 3; i++) redis_await(r, f[i], NULL);
 *
 * RESP2 only: simple strings, errors, integers, bulk strings, arrays.
 *
 * Not a library: examples, tests and benchmarks include redis.c directly
 * (one translation unit each; see examples/pipelining.c).
 */
#ifndef UVT_EXAMPLES_REDIS_H
#define UVT_EXAMPLES_REDIS_H

#include <stddef.h>

#include "uvtask.h"
#include "uvtask/stream.h"

typedef struct redis_s redis_t;

enum {
  REDIS_REPLY_STATUS = 1, /* +OK */
  REDIS_REPLY_ERROR,      /* -ERR ... */
  REDIS_REPLY_INTEGER,    /* :42 */
  REDIS_REPLY_STRING,     /* $3 abc */
  REDIS_REPLY_NIL,        /* $-1 or *-1 */
  REDIS_REPLY_ARRAY       /* *2 ... */
};

typedef struct redis_reply_s {
  int type;
  long long integer;              /* INTEGER */
  char *str;                      /* STATUS, ERROR, STRING: NUL-terminated */
  size_t len;                     /* (a STRING may also hold NULs) */
  size_t elements;                /* ARRAY */
  struct redis_reply_s **element; /* ARRAY */
} redis_reply_t;

#define REDIS_EREPLY (-31001) /* Redis answered with an error reply */
#define REDIS_EPROTO (-31002) /* the bytes received are not RESP */

/* Awaits: connect over TCP or a Unix socket and start the reader task.
 * 0 and *out, or the stream's error. */
int redis_connect(const char *host, int port, redis_t **out);
int redis_connect_unix(const char *path, redis_t **out);

/* Awaits: wait for the replies still expected, stop the reader, close the
 * stream, free the client.  Requests not answered by then (the server
 * went away, or the closing task was cancelled) fail with UVT_ECLOSED.
 * Returns 0 or UVT_ECANCELED; the client is freed either way. */
int redis_close(redis_t *r);

/* Send a command; never yields.  Returns a future that the reader task
 * sets to the reply (a redis_reply_t *), or fails with REDIS_EREPLY and
 * Redis's message, or with the connection's error (UV_EOF, UV_ECONNRESET,
 * UVT_ECLOSED...).  A client whose connection is gone returns a future
 * that has already failed.  NULL only when out of memory.  The future
 * belongs to the caller: redis_await() it, or redis_discard() it. */
#define redis_request(r, argc, argv, argvlen) \
  redis_request_at((r), (argc), (argv), (argvlen), __FILE__, __LINE__, __func__)
uvt_future_t *redis_request_at(redis_t *r, int argc, const char *const *argv,
                               const size_t *argvlen, const char *file,
                               int line, const char *func);

/* The same with NUL-terminated arguments: redis_command(r, "SET", k, v). */
#define redis_command(r, ...) \
  redis_command_at((r), __FILE__, __LINE__, __func__, __VA_ARGS__, (const char *)NULL)
uvt_future_t *redis_command_at(redis_t *r, const char *file, int line,
                               const char *func, ...);

#define redis_ping(r) redis_command((r), "PING")
#define redis_set(r, key, value) redis_command((r), "SET", (key), (value))
#define redis_get(r, key) redis_command((r), "GET", (key))
#define redis_incr(r, key) redis_command((r), "INCR", (key))
#define redis_multi(r) redis_command((r), "MULTI")
#define redis_exec(r) redis_command((r), "EXEC")

/* Awaits: the reply of a request, then gives up the future.  Returns 0
 * and *reply (free it with redis_reply_free); REDIS_EREPLY or a
 * connection error, with *reply an ERROR reply carrying the message;
 * UVT_ECANCELED (the reply will be dropped when it comes) with *reply
 * NULL.  `reply` may be NULL: the reply is then freed. */
int redis_await(redis_t *r, uvt_future_t *f, redis_reply_t **reply);

/* Give up a request's future without reading it (never yields).  Its
 * reply is freed when it comes; an error reply is then reported by the
 * runtime as an error nobody read, at the request's line. */
void redis_discard(redis_t *r, uvt_future_t *f);

void redis_reply_free(redis_reply_t *rep);

/* Requests sent and not yet answered. */
size_t redis_pending(const redis_t *r);

/* uvt_strerror plus REDIS_EREPLY and REDIS_EPROTO. */
const char *redis_strerror(int err);

#endif
