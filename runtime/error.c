/*
 * Error names and the runtime's own diagnostics.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *uvt_strerror(int err) {
  switch (err) {
  case UVT_ENOTASK: return "not inside a task";
  case UVT_ENOLOOP: return "no uvtask loop on this thread or loop";
  case UVT_ESELF: return "a task cannot await itself";
  case UVT_ERELEASED: return "handle was already released";
  case UVT_ENESTED: return "uvt_run is already running on this thread or loop";
  case UVT_ECLOSED: return "object was destroyed while awaited";
  case UVT_EWRONGTHREAD: return "called from a thread that does not run the loop";
  case UVT_ENOTLOCKED: return "lock is not held";
  case UVT_EBROKEN: return "barrier is broken";
  default: break;
  }
  if (err == 0) return "success";
  if (err > 0) return "success (positive status)";
  {
    /* uv_strerror allocates a new string for a code it does not know. */
    char name[64];
    uv_err_name_r(err, name, sizeof(name));
    if (strncmp(name, "Unknown system error", 20) == 0) return "unknown error";
  }
  return uv_strerror(err);
}

void uvt__stderr_line(const char *prefix, const char *text) {
  static const char hex[] = "0123456789abcdef";
  char out[4096 + 8];
  size_t n = 0;
  const unsigned char *p = (const unsigned char *)text;
  while (*prefix != '\0' && n < 256) out[n++] = *prefix++;
  for (; *p != '\0' && n + 9 < sizeof(out); p++) {
    unsigned c = *p;
    bool c1 = c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f;
    if (c < 0x20 || c == 0x7f || c1) {
      if (c1) c = *++p;
      out[n++] = '\\';
      out[n++] = 'x';
      out[n++] = hex[c >> 4];
      out[n++] = hex[c & 15];
    } else {
      out[n++] = (char)c;
    }
  }
  out[n++] = '\n';
  fwrite(out, 1, n, stderr);
}

void uvt__warn(const char *fmt, ...) {
  va_list ap;
  char buf[1024];
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  uvt__stderr_line("uvtask: ", buf);
}

void uvt__panic(const char *fmt, ...) {
  va_list ap;
  char buf[1024];
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  uvt__stderr_line("uvtask: fatal: ", buf);
  fflush(stderr);
  abort();
}
