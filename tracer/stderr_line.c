/*
 * The tracer's lines on stderr, escaped.  Findings carry task names and
 * uvt_fail messages, and set-up messages carry the path from the
 * environment: none of them may drive the terminal.  The escaping is the
 * runtime's, reached through hooks.h (uvt_hook_stderr_line), so the
 * tracer and the runtime print alike without sharing a header.
 */
#include "tracer.h"
#include "uvtask/hooks.h"

#include <stdarg.h>
#include <stdio.h>

void uvt__tracer_line(const char *fmt, ...) {
  char text[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  uvt_hook_stderr_line("", text);
}
