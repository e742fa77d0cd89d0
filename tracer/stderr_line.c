/*
 * The tracer's lines on stderr, escaped.  Findings carry task names and
 * uvt_fail messages, and set-up messages carry the path from the
 * environment: none of them may drive the terminal.  The runtime has its
 * own copy of this (uvt__stderr_line in runtime/error.c): the tracer sees
 * the runtime only through the hooks, and a dozen lines are cheaper than
 * a header shared across that boundary.
 */
#include "tracer.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

void uvt__tracer_line(const char *fmt, ...) {
  static const char hex[] = "0123456789abcdef";
  char text[4096], out[4096 + 8];
  const unsigned char *p = (const unsigned char *)text;
  size_t n = 0;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
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
