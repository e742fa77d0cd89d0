/*
 * The pipelining Redis client; see redis.h.
 *
 * State per connection: the stream, a FIFO of the futures of requests
 * sent and not yet answered (a ring buffer), and the reader task.
 * request() appends to the FIFO and writes; the reader pops one entry per
 * reply.  Both run on the loop thread and neither yields between touching
 * the FIFO and the stream, so the FIFO order is the wire order.
 *
 * Each entry holds its own reference to its future (the caller's goes
 * with its await), which the reader gives up once it has set it.  An
 * entry may be marked `discard` (its future given up by the caller): the
 * reader then frees the reply instead of handing it over, since nobody
 * would free it; so it does when the future was cancelled (its awaiter
 * was) and refuses the reply.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "redis.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define REDIS_LINE_MAX (64 * 1024)     /* longest status/error line */
#define REDIS_BULK_MAX (512 * 1024 * 1024) /* Redis's own limit */
#define REDIS_DEPTH_MAX 16
#define REDIS_ARGS_MAX 64              /* redis_command's argument limit */

typedef struct {
  uvt_future_t *f;
  bool discard;
} redis_entry_t;

struct redis_s {
  uvt_stream_t *s;
  uvt_task_t *reader;
  redis_entry_t *q; /* ring of requests awaiting their reply */
  size_t qcap, qhead, qlen;
  char *wbuf;       /* the command being encoded */
  size_t wcap;
  char line[REDIS_LINE_MAX + 1];
  int dead;         /* the connection's error, once it has failed */
  bool closing;
  uvt_event_t answered; /* set when the FIFO empties while closing */
};

const char *redis_strerror(int err) {
  if (err == REDIS_EREPLY) return "Redis error reply";
  if (err == REDIS_EPROTO) return "Redis protocol error";
  return uvt_strerror(err);
}

/* ---- replies ------------------------------------------------------------- */

/* A reply with its string in the same allocation. */
static redis_reply_t *reply_new(int type, const char *str, size_t len) {
  redis_reply_t *rep = malloc(sizeof(*rep) + len + 1);
  if (rep == NULL) return NULL;
  memset(rep, 0, sizeof(*rep));
  rep->type = type;
  rep->str = (char *)(rep + 1);
  rep->len = len;
  if (len > 0) memcpy(rep->str, str, len);
  rep->str[len] = '\0';
  return rep;
}

void redis_reply_free(redis_reply_t *rep) {
  if (rep == NULL) return;
  if (rep->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < rep->elements; i++) redis_reply_free(rep->element[i]);
    free(rep->element);
  }
  free(rep);
}

static int parse_ll(const char *p, long long *out) {
  char *end;
  if (*p == '\0') return REDIS_EPROTO;
  *out = strtoll(p, &end, 10);
  return *end == '\0' ? 0 : REDIS_EPROTO;
}

/* Read one reply (recursively for arrays).  Any error leaves *out NULL. */
static int read_reply(redis_t *r, redis_reply_t **out, int depth) {
  redis_reply_t *rep = NULL;
  long long n;
  size_t len;
  char *body;
  int err;

  *out = NULL;
  if (depth > REDIS_DEPTH_MAX) return REDIS_EPROTO;
  if ((err = uvt_readline(r->s, r->line, sizeof(r->line), &len)) != 0)
    return err;
  if (len == 0) return UV_EOF;
  if (len < 3 || r->line[len - 2] != '\r' || r->line[len - 1] != '\n')
    return REDIS_EPROTO;
  r->line[len - 2] = '\0';
  body = r->line + 1;
  switch (r->line[0]) {
  case '+':
  case '-':
    rep = reply_new(r->line[0] == '+' ? REDIS_REPLY_STATUS : REDIS_REPLY_ERROR,
                    body, len - 3);
    break;
  case ':':
    if ((err = parse_ll(body, &n)) != 0) return err;
    if ((rep = reply_new(REDIS_REPLY_INTEGER, NULL, 0)) != NULL) rep->integer = n;
    break;
  case '$':
    if ((err = parse_ll(body, &n)) != 0) return err;
    if (n == -1) {
      rep = reply_new(REDIS_REPLY_NIL, NULL, 0);
      break;
    }
    if (n < 0 || n > REDIS_BULK_MAX) return REDIS_EPROTO;
    /* The payload and its CRLF land in the reply's own string. */
    rep = malloc(sizeof(*rep) + (size_t)n + 2);
    if (rep == NULL) return UVT_ENOMEM;
    memset(rep, 0, sizeof(*rep));
    rep->type = REDIS_REPLY_STRING;
    rep->str = (char *)(rep + 1);
    rep->len = (size_t)n;
    if ((err = uvt_readexactly(r->s, rep->str, (size_t)n + 2)) != 0) {
      free(rep);
      return err;
    }
    if (rep->str[n] != '\r' || rep->str[n + 1] != '\n') {
      free(rep);
      return REDIS_EPROTO;
    }
    rep->str[n] = '\0';
    break;
  case '*':
    if ((err = parse_ll(body, &n)) != 0) return err;
    if (n == -1) {
      rep = reply_new(REDIS_REPLY_NIL, NULL, 0);
      break;
    }
    if (n < 0 || n > 1024 * 1024 * 1024LL) return REDIS_EPROTO;
    if ((rep = reply_new(REDIS_REPLY_ARRAY, NULL, 0)) == NULL) return UVT_ENOMEM;
    if (n > 0 && (rep->element = calloc((size_t)n, sizeof(*rep->element))) == NULL) {
      free(rep);
      return UVT_ENOMEM;
    }
    for (rep->elements = 0; rep->elements < (size_t)n; rep->elements++) {
      if ((err = read_reply(r, &rep->element[rep->elements], depth + 1)) != 0) {
        redis_reply_free(rep);
        return err;
      }
    }
    break;
  default:
    return REDIS_EPROTO;
  }
  if (rep == NULL) return UVT_ENOMEM;
  *out = rep;
  return 0;
}

/* ---- the FIFO of pending requests ---------------------------------------- */

static int queue_push(redis_t *r, uvt_future_t *f) {
  if (r->qlen == r->qcap) {
    size_t cap = r->qcap != 0 ? r->qcap * 2 : 64;
    redis_entry_t *nq = malloc(cap * sizeof(*nq));
    if (nq == NULL) return UVT_ENOMEM;
    for (size_t i = 0; i < r->qlen; i++) nq[i] = r->q[(r->qhead + i) % r->qcap];
    free(r->q);
    r->q = nq;
    r->qcap = cap;
    r->qhead = 0;
  }
  r->q[(r->qhead + r->qlen) % r->qcap] =
      (redis_entry_t){uvt_future_ref(f), false};
  r->qlen++;
  return 0;
}

static redis_entry_t queue_pop(redis_t *r) {
  redis_entry_t e = r->q[r->qhead];
  r->qhead = (r->qhead + 1) % r->qcap;
  r->qlen--;
  return e;
}

/* Fail every pending request with err (the connection is gone). */
static void fail_pending(redis_t *r, int err, const char *why) {
  while (r->qlen > 0) {
    redis_entry_t e = queue_pop(r);
    uvt_future_set_error(e.f, err, "%s: %s", why, redis_strerror(err));
    uvt_future_detach(e.f);
  }
}

/* ---- the reader task ----------------------------------------------------- */

static int redis_reader(void *arg) {
  redis_t *r = arg;
  int err;
  for (;;) {
    redis_reply_t *rep;
    redis_entry_t e;
    if ((err = read_reply(r, &rep, 0)) != 0) break;
    if (r->qlen == 0) { /* a reply nobody asked for */
      redis_reply_free(rep);
      err = REDIS_EPROTO;
      break;
    }
    e = queue_pop(r);
    if (rep->type == REDIS_REPLY_ERROR) {
      uvt_future_set_error(e.f, REDIS_EREPLY, "%s", rep->str);
      redis_reply_free(rep);
    } else if (e.discard) {
      uvt_future_set_result(e.f, NULL);
      redis_reply_free(rep);
    } else if (uvt_future_set_result(e.f, rep) != 0) {
      redis_reply_free(rep); /* cancelled: nobody will read it */
    }
    uvt_future_detach(e.f);
    if (r->closing && r->qlen == 0) uvt_event_set(&r->answered);
  }
  /* Cancelled by redis_close: the stream stays usable for its close. */
  if (err == UVT_ECANCELED) return 0;
  r->dead = err;
  fail_pending(r, err, "redis connection lost");
  uvt_event_set(&r->answered);
  return 0;
}

/* ---- connecting and closing ---------------------------------------------- */

static int redis_start(uvt_stream_t *s, redis_t **out) {
  redis_t *r = calloc(1, sizeof(*r));
  if (r == NULL) {
    uvt_close(s);
    return UVT_ENOMEM;
  }
  r->s = s;
  uvt_event_init(&r->answered);
  r->reader = uvt_spawn(redis_reader, r);
  if (r->reader == NULL) {
    uvt_event_destroy(&r->answered);
    free(r);
    uvt_close(s);
    return UVT_ENOMEM;
  }
  *out = r;
  return 0;
}

int redis_connect(const char *host, int port, redis_t **out) {
  uvt_stream_t *s;
  int err;
  *out = NULL;
  if ((err = uvt_open_connection(host, port, &s)) != 0) return err;
  return redis_start(s, out);
}

int redis_connect_unix(const char *path, redis_t **out) {
  uvt_stream_t *s;
  int err;
  *out = NULL;
  if ((err = uvt_open_unix(path, &s)) != 0) return err;
  return redis_start(s, out);
}

int redis_close(redis_t *r) {
  int err = 0;
  if (r == NULL) return UVT_EINVAL;
  r->closing = true;
  if (r->qlen > 0 && r->dead == 0) err = uvt_event_wait(&r->answered);
  uvt_cancel(r->reader);
  uvt_await(r->reader); /* gives up the handle */
  fail_pending(r, UVT_ECLOSED, "redis_close");
  uvt_close(r->s);
  uvt_event_destroy(&r->answered);
  free(r->q);
  free(r->wbuf);
  free(r);
  return err == UVT_ECANCELED ? UVT_ECANCELED : 0;
}

size_t redis_pending(const redis_t *r) { return r != NULL ? r->qlen : 0; }

/* ---- requests ------------------------------------------------------------ */

static char *put_uint(char *p, size_t v) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) *p++ = tmp[--n];
  return p;
}

/* Encode the command as a RESP array of bulk strings into r->wbuf. */
static int encode(redis_t *r, int argc, const char *const *argv,
                  const size_t *argvlen, size_t *len) {
  size_t need = 16;
  char *p;
  for (int i = 0; i < argc; i++) need += argvlen[i] + 32;
  if (need > r->wcap) {
    char *nb = realloc(r->wbuf, need);
    if (nb == NULL) return UVT_ENOMEM;
    r->wbuf = nb;
    r->wcap = need;
  }
  p = r->wbuf;
  *p++ = '*';
  p = put_uint(p, (size_t)argc);
  *p++ = '\r';
  *p++ = '\n';
  for (int i = 0; i < argc; i++) {
    *p++ = '$';
    p = put_uint(p, argvlen[i]);
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, argv[i], argvlen[i]);
    p += argvlen[i];
    *p++ = '\r';
    *p++ = '\n';
  }
  *len = (size_t)(p - r->wbuf);
  return 0;
}

uvt_future_t *redis_request_at(redis_t *r, int argc, const char *const *argv,
                               const size_t *argvlen, const char *file,
                               int line, const char *func) {
  uvt_future_t *f = uvt_future_new_at(file, line, func);
  size_t len;
  int err;
  if (f == NULL) return NULL;
  if (r == NULL || argc < 1 || argv == NULL || argvlen == NULL) {
    uvt_future_set_error(f, UVT_EINVAL, "redis_request: bad arguments");
    return f;
  }
  if (r->dead != 0 || r->closing) {
    uvt_future_set_error(f, r->dead != 0 ? r->dead : UVT_ECLOSED,
                         "redis connection is closed");
    return f;
  }
  /* Queue first, then write: the reply cannot come before the request. */
  if ((err = encode(r, argc, argv, argvlen, &len)) != 0 ||
      (err = queue_push(r, f)) != 0) {
    uvt_future_set_error(f, err, "redis_request: %s", redis_strerror(err));
    return f;
  }
  if ((err = uvt_write(r->s, r->wbuf, len)) != 0) {
    /* Nothing was sent: take the entry back off the tail. */
    r->qlen--;
    uvt_future_detach(f);
    uvt_future_set_error(f, err, "redis_request: write failed: %s",
                         redis_strerror(err));
  }
  return f;
}

uvt_future_t *redis_command_at(redis_t *r, const char *file, int line,
                               const char *func, ...) {
  const char *argv[REDIS_ARGS_MAX];
  size_t argvlen[REDIS_ARGS_MAX];
  const char *a;
  int argc = 0;
  va_list ap;
  va_start(ap, func);
  while ((a = va_arg(ap, const char *)) != NULL && argc < REDIS_ARGS_MAX) {
    argv[argc] = a;
    argvlen[argc] = strlen(a);
    argc++;
  }
  va_end(ap);
  return redis_request_at(r, argc, argv, argvlen, file, line, func);
}

/* ---- awaiting ------------------------------------------------------------ */

void redis_discard(redis_t *r, uvt_future_t *f) {
  if (f == NULL) return;
  if (uvt_future_done(f)) {
    redis_reply_free(uvt_future_result(f));
  } else if (r != NULL) {
    for (size_t i = r->qlen; i-- > 0;) {
      redis_entry_t *e = &r->q[(r->qhead + i) % r->qcap];
      if (e->f == f) {
        e->discard = true;
        break;
      }
    }
  }
  uvt_future_detach(f);
}

int redis_await(redis_t *r, uvt_future_t *f, redis_reply_t **reply) {
  void *res = NULL;
  char *msg = NULL;
  int st;
  (void)r;
  if (reply != NULL) *reply = NULL;
  if (f == NULL) return UVT_ENOMEM;
  /* Gives up our reference; a cancel cancels the future, and the reader
   * then frees the reply it can no longer set. */
  st = uvt_await_future_result(f, &res, &msg);
  if (st == UVT_ECANCELED) return st;
  if (st == 0) {
    if (reply != NULL) *reply = res;
    else redis_reply_free(res);
  } else if (reply != NULL) {
    const char *m = msg != NULL ? msg : redis_strerror(st);
    *reply = reply_new(REDIS_REPLY_ERROR, m, strlen(m));
  }
  free(msg);
  return st;
}
