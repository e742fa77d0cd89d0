/*
 * Streams, the read side: the read buffer, backpressure, and the three
 * read calls.  See stream_internal.h for the struct.
 *
 * libuv reads straight into the unread tail of rbuf (alloc_cb hands out
 * the free space, never more than the current threshold allows: the
 * limit, or a waiting uvt_readexactly's n when larger).  When the unread
 * bytes reach the threshold, reading stops; consuming bytes starts it
 * again.  That is all the backpressure there is: the kernel's buffers
 * fill, TCP's window closes, the peer's writes block.  The buffer starts
 * small and doubles up to the threshold, so a thousand idle connections
 * do not each hold 64 KiB.
 *
 * A read call checks what is buffered; if that does not satisfy it, it
 * parks as the stream's only reader with `rwant`, the buffered count that
 * is worth waking it for, and rechecks when woken.  It consumes bytes only
 * when it returns them, so every error path leaves the buffer as it was.
 * A reader woken by uvt_close finds the stream still allocated: the closer
 * waits until the reader has left (reader == NULL) before freeing it.
 */
#include "stream_internal.h"

#include <stdlib.h>
#include <string.h>

#define RBUF_MIN (16 * 1024) /* first read buffer size */

static size_t rthreshold(const uvt_stream_t *s) {
  return s->rneed > s->limit ? s->rneed : s->limit;
}

void uvt__stream_read_stop(uvt_stream_t *s) {
  if (!s->reading) return;
  uv_read_stop(&s->u.stream);
  s->reading = false;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf);

static void read_resume(uvt_stream_t *s) {
  if (s->reading || !s->registered || s->eof || s->rerr != 0 || s->uv_closing)
    return;
  if (uvt__stream_rbuffered(s) >= rthreshold(s)) return;
  if (uv_read_start(&s->u.stream, alloc_cb, read_cb) == 0) s->reading = true;
}

/* Move the unread bytes to the front, and make the buffer `cap` bytes if
 * it is smaller.  0 or UVT_ENOMEM (the buffer is then as it was). */
static int rbuf_reserve(uvt_stream_t *s, size_t cap) {
  char *nb;
  if (s->rstart > 0) {
    memmove(s->rbuf, s->rbuf + s->rstart, uvt__stream_rbuffered(s));
    s->rend -= s->rstart;
    s->rstart = 0;
  }
  if (cap <= s->rcap) return 0;
  nb = realloc(s->rbuf, cap);
  if (nb == NULL) return UVT_ENOMEM;
  s->rbuf = nb;
  s->rcap = cap;
  return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  uvt_stream_t *s = h->data;
  size_t th = rthreshold(s), have = uvt__stream_rbuffered(s), want, room;
  (void)suggested;
  buf->base = NULL;
  buf->len = 0;
  if (have >= th) return; /* read_cb sees UV_ENOBUFS and pauses */
  want = th - have;
  room = s->rcap - s->rend;
  if (room < want && room < RBUF_MIN) {
    /* Short of room: compact, and grow by doubling (up to th) if the
     * buffer is mostly unread data. */
    size_t cap = s->rcap;
    if (s->rcap - have < want && s->rcap - have < RBUF_MIN) {
      cap = s->rcap != 0 ? s->rcap * 2 : RBUF_MIN;
      if (cap > th) cap = th;
    }
    if (rbuf_reserve(s, cap) != 0) return;
    room = s->rcap - s->rend;
  }
  buf->base = s->rbuf + s->rend;
  buf->len = room < want ? room : want;
}

static void read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  uvt_stream_t *s = h->data;
  (void)buf;
  if (nread > 0) {
    s->rend += (size_t)nread;
    if (uvt__stream_rbuffered(s) >= rthreshold(s)) uvt__stream_read_stop(s);
  } else if (nread == UV_EOF) {
    s->eof = true;
    uvt__stream_read_stop(s);
  } else if (nread == UV_ENOBUFS) {
    /* Full (or out of memory): wait for the reader. */
    uvt__stream_read_stop(s);
  } else if (nread < 0) {
    s->rerr = (int)nread;
    uvt__stream_read_stop(s);
  } else {
    return; /* EAGAIN */
  }
  if (s->reader != NULL && (uvt__stream_rbuffered(s) >= s->rwant || s->eof ||
                            s->rerr != 0 || !s->reading))
    uvt__wake(s->reader, 0);
}

/* Take n bytes off the front of the read buffer. */
static void consume(uvt_stream_t *s, size_t n) {
  s->rstart += n;
  if (s->rstart == s->rend) {
    s->rstart = s->rend = 0;
    /* Give back what a large uvt_readexactly made us hold. */
    if (s->rcap > s->limit && s->rneed == 0) {
      free(s->rbuf);
      s->rbuf = NULL;
      s->rcap = 0;
    }
  }
  read_resume(s);
}

/* The checks every read call starts with. */
static int reader_enter(const uvt_stream_t *s, const char *what,
                        const char *file, int line, const char *func) {
  int err = uvt__stream_enter(s, what, file, line);
  uvt_task_t *self = uvt__task_current();
  if (err != 0) return err;
  if (self == NULL) return UVT_ENOTASK;
  UVT__YIELD_POINT(self, what);
  if (s->reader != NULL) return UV_EBUSY;
  return 0;
}

/* Park as the stream's reader until `want` bytes are buffered (or EOF, an
 * error, a full buffer, a cancel or a close).  The caller rechecks. */
static int read_wait(uvt_stream_t *s, size_t want, const uvt__site_t *site) {
  int st;
  s->rwant = want;
  s->reader = uvt__task_current();
  /* Revocable: woken by data, then cancelled before we ran, the cancel
   * wins; the data stays buffered for the next read (nothing is consumed
   * before a read returns), as in asyncio's StreamReader. */
  st = uvt__park_revocable(site, NULL, NULL);
  s->reader = NULL;
  if (s->closing) {
    /* uvt_close waits for us to have left before it frees the stream. */
    if (s->closer != NULL) uvt__wake(s->closer, 0);
    return st == UVT_ECANCELED ? UVT_ECANCELED : UVT_ECLOSED;
  }
  return st;
}

int uvt_readline_at(uvt_stream_t *s, char *buf, size_t cap, size_t *len,
                    const char *file, int line, const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_readline", UVT_WAIT_STREAM_READ, s, false);
  size_t scanned = 0;
  int err;
  if (len != NULL) *len = 0;
  if (buf == NULL || len == NULL || cap < 2) return UVT_EINVAL;
  if ((err = reader_enter(s, "uvt_readline", file, line, func)) != 0) return err;
  for (;;) {
    size_t have = uvt__stream_rbuffered(s);
    size_t max = cap - 1 < s->limit ? cap - 1 : s->limit;
    size_t lim = have < max ? have : max;
    if (lim > scanned) {
      const char *p = s->rbuf + s->rstart;
      const char *nl = memchr(p + scanned, '\n', lim - scanned);
      if (nl != NULL) {
        size_t n = (size_t)(nl - p) + 1;
        memcpy(buf, p, n);
        buf[n] = '\0';
        *len = n;
        consume(s, n);
        return 0;
      }
      scanned = lim;
    }
    if (have >= max) return UV_ENOBUFS;
    if (s->eof) {
      /* The last line, without its '\n'; or nothing: end of stream. */
      if (have > 0) memcpy(buf, s->rbuf + s->rstart, have);
      buf[have] = '\0';
      *len = have;
      consume(s, have);
      return 0;
    }
    if (s->rerr != 0) return s->rerr;
    if ((err = read_wait(s, have + 1, &site)) != 0) return err;
  }
}

int uvt_readexactly_at(uvt_stream_t *s, void *buf, size_t n, const char *file,
                       int line, const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_readexactly", UVT_WAIT_STREAM_READ, s, false);
  int err;
  if (buf == NULL && n > 0) return UVT_EINVAL;
  if ((err = reader_enter(s, "uvt_readexactly", file, line, func)) != 0) return err;
  if (n == 0) return 0;
  if (uvt__stream_rbuffered(s) < n) {
    if (n > s->rcap && (err = rbuf_reserve(s, n)) != 0) return err;
    s->rneed = n;
    read_resume(s);
    while (uvt__stream_rbuffered(s) < n) {
      if (s->eof) {
        err = UV_EOF;
        break;
      }
      if (s->rerr != 0) {
        err = s->rerr;
        break;
      }
      if ((err = read_wait(s, n, &site)) != 0) break;
    }
    /* Still ours to touch: a closer only runs once we yield again. */
    s->rneed = 0;
    if (err != 0) return err;
  }
  memcpy(buf, s->rbuf + s->rstart, n);
  consume(s, n);
  return 0;
}

int uvt_read_at(uvt_stream_t *s, void *buf, size_t cap, size_t *n,
                const char *file, int line, const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_read", UVT_WAIT_STREAM_READ, s, false);
  int err;
  if (n != NULL) *n = 0;
  if (buf == NULL || n == NULL || cap == 0) return UVT_EINVAL;
  if ((err = reader_enter(s, "uvt_read", file, line, func)) != 0) return err;
  for (;;) {
    size_t have = uvt__stream_rbuffered(s);
    if (have > 0) {
      size_t k = have < cap ? have : cap;
      memcpy(buf, s->rbuf + s->rstart, k);
      *n = k;
      consume(s, k);
      return 0;
    }
    if (s->eof) return 0;
    if (s->rerr != 0) return s->rerr;
    if ((err = read_wait(s, 1, &site)) != 0) return err;
  }
}

int uvt__stream_read_start(uvt_stream_t *s) {
  int err = uv_read_start(&s->u.stream, alloc_cb, read_cb);
  if (err == 0) s->reading = true;
  return err;
}

/* ---- tuning and inspection ----------------------------------------------- */

int uvt_stream_set_limit_at(uvt_stream_t *s, size_t limit,
                            const char *file, int line, const char *func) {
  int err = uvt__stream_enter(s, "uvt_stream_set_limit", file, line);
  (void)func;
  if (err != 0) return err;
  s->limit = limit != 0 ? limit : UVT_STREAM_LIMIT;
  if (uvt__stream_rbuffered(s) >= rthreshold(s)) {
    uvt__stream_read_stop(s);
    if (s->reader != NULL) uvt__wake(s->reader, 0);
  } else {
    read_resume(s);
  }
  return 0;
}

size_t uvt_stream_read_buffered(const uvt_stream_t *s) {
  return uvt__stream_check(s) == 0 ? uvt__stream_rbuffered(s) : 0;
}

/* The plain symbols of 0.2.0, for programs built before the header's
 * macros passed the caller's location (reported as unknown). */
int (uvt_stream_set_limit)(uvt_stream_t *s, size_t limit) {
  return uvt_stream_set_limit_at(s, limit, NULL, 0, NULL);
}
