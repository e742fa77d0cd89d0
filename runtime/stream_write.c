/*
 * Streams, the write side: uvt_write, uvt_drain, uvt_write_eof.  See
 * stream_internal.h for the struct.
 *
 * uvt_write only appends to `wnext` and, unless a write is already in
 * flight, arms the stream's flusher: a uv_idle handle, which runs early in
 * the next loop iteration — before the loop can block in its poll, since
 * an active idle handle makes the poll return at once — and sends
 * everything written meanwhile with one uv_try_write.  So a burst of small
 * writes (pipelined requests) costs one system call, and a write the
 * kernel takes whole costs no libuv write request, no callback and no
 * epoll_ctl.  Only what the kernel does not take goes out as a uv_write of
 * `wcur` (the buffers swap: at most one uv_write in flight); its callback
 * flushes whatever wnext gathered in the meantime the same way.
 *
 * "Unsent" is wnext plus what libuv still holds of wcur (its write queue
 * size).  Drainers park on a wait queue and are woken once the unsent
 * bytes are at most the high-water mark, or by an error or a close.
 */
#include "stream_internal.h"

#include <stdlib.h>
#include <string.h>

#define WBUF_KEEP (1024 * 1024) /* larger write buffers are freed once sent */
#define WBUF_MAX (1024 * 1024 * 1024) /* most bytes waiting to be sent */

static void write_cb(uv_write_t *req, int status);

static int wbuf_append(uvt__wbuf_t *b, const void *p, size_t n) {
  if (b->cap - b->len < n) {
    size_t cap = b->cap != 0 ? b->cap : 4096;
    char *nd;
    while (cap - b->len < n) {
      if (cap > SIZE_MAX / 2) return UVT_ENOMEM;
      cap *= 2;
    }
    nd = realloc(b->data, cap);
    if (nd == NULL) return UVT_ENOMEM;
    b->data = nd;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static void shutdown_cb(uv_shutdown_t *req, int status) {
  uvt_stream_t *s = req->handle->data;
  s->shutdown_inflight = false;
  if (status < 0 && status != UV_ECANCELED && s->werr == 0) s->werr = status;
  if (s->closer != NULL) uvt__wake(s->closer, 0);
}

static void shutdown_start(uvt_stream_t *s) {
  if (uv_shutdown(&s->sreq, &s->u.stream, shutdown_cb) == 0)
    s->shutdown_inflight = true;
}

/* After any progress: end the stream if asked and all is sent, and tell
 * drainers and a closer what they wait for. */
static void write_progress(uvt_stream_t *s) {
  if (!s->winflight && s->wnext.len == 0 && s->werr == 0 &&
      s->eof_requested && !s->shutdown_started) {
    s->shutdown_started = true;
    shutdown_start(s);
  }
  if (s->werr != 0 || uvt__stream_unsent(s) <= s->hwm)
    uvt__waitq_wake_all(&s->drainers, s->werr);
  if (s->closer != NULL && uvt__stream_flushed(s)) uvt__wake(s->closer, 0);
}

/* Send wnext (nothing is in flight): what the kernel takes at once, then
 * the rest as one uv_write from wcur. */
static void write_flush(uvt_stream_t *s) {
  uv_buf_t b = uv_buf_init(s->wnext.data, (unsigned int)s->wnext.len);
  uvt__wbuf_t spare;
  int n, err;
  if (s->wnext.len == 0 || s->werr != 0) return;
  n = uv_try_write(&s->u.stream, &b, 1);
  if (n == UV_EAGAIN) n = 0;
  if (n < 0) {
    s->werr = n;
    s->wnext.len = 0;
    return;
  }
  if ((size_t)n == s->wnext.len) {
    s->wnext.len = 0;
    return;
  }
  spare = s->wcur;
  s->wcur = s->wnext;
  s->wnext = spare;
  s->wnext.len = 0;
  b = uv_buf_init(s->wcur.data + n, (unsigned int)(s->wcur.len - (size_t)n));
  err = uv_write(&s->wreq, &s->u.stream, &b, 1, write_cb);
  if (err != 0) {
    s->werr = err;
    s->wcur.len = 0;
    return;
  }
  s->winflight = true;
}

static void flush_cb(uv_idle_t *h) {
  uvt_stream_t *s = h->data;
  uv_idle_stop(h);
  s->flush_armed = false;
  if (s->uv_closing || s->winflight) return;
  write_flush(s);
  write_progress(s);
}

static void write_cb(uv_write_t *req, int status) {
  uvt_stream_t *s = req->handle->data;
  s->winflight = false;
  s->wcur.len = 0;
  if (s->wcur.cap > WBUF_KEEP) {
    free(s->wcur.data);
    s->wcur.data = NULL;
    s->wcur.cap = 0;
  }
  if (s->uv_closing) return; /* cancelled by uv_close; nobody waits */
  if (status < 0) {
    if (s->werr == 0) s->werr = status;
    s->wnext.len = 0;
  } else {
    write_flush(s); /* the socket just took a whole write: try now */
  }
  write_progress(s);
}

int uvt_write_at(uvt_stream_t *s, const void *buf, size_t len,
                 const char *file, int line, const char *func) {
  int err = uvt__stream_enter(s, "uvt_write", file, line);
  (void)func;
  if (err != 0) return err;
  if (buf == NULL && len > 0) return UVT_EINVAL;
  if (s->werr != 0) return s->werr;
  if (s->eof_requested) return UV_EPIPE;
  if (len == 0) return 0;
  if (len > WBUF_MAX || s->wnext.len > WBUF_MAX - len) return UV_ENOBUFS;
  if ((err = wbuf_append(&s->wnext, buf, len)) != 0) return err;
  if (!s->winflight && !s->flush_armed) {
    uv_idle_start(&s->flusher, flush_cb);
    s->flush_armed = true;
  }
  return 0;
}

int uvt_drain_at(uvt_stream_t *s, const char *file, int line,
                 const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_drain", UVT_WAIT_STREAM_WRITE, s, false);
  uvt__wq_node_t node;
  uvt_task_t *self;
  int err = uvt__stream_enter(s, "uvt_drain", file, line);
  if (err != 0) return err;
  if (s->werr != 0) return s->werr;
  if ((self = uvt__task_current()) == NULL) return UVT_ENOTASK;
  UVT__YIELD_POINT(self, "uvt_drain");
  if (uvt__stream_unsent(s) <= s->hwm) return 0;
  memset(&node, 0, sizeof(node));
  /* Woken by write_progress (0 or the write error) or uvt_close
   * (UVT_ECLOSED);
   * after a wake the stream is not touched again. */
  return uvt__waitq_wait(&s->drainers, &node, self, &site);
}

int uvt_write_eof_at(uvt_stream_t *s,
                     const char *file, int line, const char *func) {
  int err = uvt__stream_enter(s, "uvt_write_eof", file, line);
  (void)func;
  if (err != 0) return err;
  if (s->eof_requested) return 0;
  s->eof_requested = true;
  write_progress(s); /* now, if nothing is left to send */
  return 0;
}

/* ---- tuning and inspection ----------------------------------------------- */

int uvt_stream_set_high_water_at(uvt_stream_t *s, size_t bytes,
                                 const char *file, int line, const char *func) {
  int err = uvt__stream_enter(s, "uvt_stream_set_high_water", file, line);
  (void)func;
  if (err != 0) return err;
  s->hwm = bytes;
  return 0;
}

size_t uvt_stream_write_buffered(const uvt_stream_t *s) {
  return uvt__stream_check(s) == 0 ? uvt__stream_unsent(s) : 0;
}

/* The plain symbols of 0.2.0, for programs built before the header's
 * macros passed the caller's location (reported as unknown). */
int (uvt_write)(uvt_stream_t *s, const void *buf, size_t len) {
  return uvt_write_at(s, buf, len, NULL, 0, NULL);
}
int (uvt_write_eof)(uvt_stream_t *s) {
  return uvt_write_eof_at(s, NULL, 0, NULL);
}
int (uvt_stream_set_high_water)(uvt_stream_t *s, size_t bytes) {
  return uvt_stream_set_high_water_at(s, bytes, NULL, 0, NULL);
}
