/*
 * The environment switch, as PYTHONASYNCIODEBUG:
 *   ASYNCIODEBUG          unset, empty or 0: off; 1: ./asynciodebug.db;
 *                         anything else: the database path
 *   ASYNCIODEBUG_SLOW_MS  slow-callback threshold (default 100)
 *   ASYNCIODEBUG_DEPTH    frames per stack (default 16, at most
 *                         UVT_TRACE_MAX_DEPTH)
 *   ASYNCIODEBUG_LOG      0: no finding lines on stderr (default 1)
 *   ASYNCIODEBUG_LOCK_MS  lock-held-across-await threshold (default 20)
 *   ASYNCIODEBUG_STACKS   how stacks are captured: unset (the default):
 *                         frame pointers through code whose DWARF says it
 *                         keeps them, libunwind elsewhere (fpknown.c);
 *                         "unwind": libunwind only; "fp": frame pointers
 *                         wherever they lead (faster, right only where
 *                         the code keeps them; README)
 * A bad value gets one line on stderr naming the variable and the value
 * used instead.
 *
 * A setuid/setgid (or file-capability) program runs with AT_SECURE: its
 * environment belongs to a less privileged user, who could otherwise make
 * it create or write a file anywhere with its privileges.  There every
 * variable is read with secure_getenv (which gives NULL) and recording is
 * refused with one line, whatever the variables say.
 */
#include "tracer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

tracer_config_t uvt__tcfg = {false, "", 100, 16, true, 20, false};

static int int_env(const char *name, int def, int lo, int hi) {
  const char *v = secure_getenv(name);
  char *end;
  long n;
  if (v == NULL || *v == '\0') return def;
  errno = 0;
  n = strtol(v, &end, 10);
  if (errno != 0 || *end != '\0' || n < lo || n > hi) {
    uvt__tracer_line("asynciodebug: %s=%s is not a number from %d to %d; using %d",
            name, v, lo, hi, def);
    return def;
  }
  return (int)n;
}

void uvt__tracer_config_load(void) {
  const char *v = secure_getenv("ASYNCIODEBUG");
  uvt__tcfg.on = false;
  if (getauxval(AT_SECURE) != 0) {
    /* Only to say why nothing is recorded: the value itself is not used. */
    const char *asked = getenv("ASYNCIODEBUG");
    if (asked != NULL && *asked != '\0' && strcmp(asked, "0") != 0)
      uvt__tracer_line("asynciodebug: setuid/setgid program (AT_SECURE); "
                       "recording off");
    return;
  }
  if (v == NULL || *v == '\0' || strcmp(v, "0") == 0) return;
  if (strcmp(v, "1") == 0) v = "./asynciodebug.db";
  if (strlen(v) >= sizeof(uvt__tcfg.path)) {
    uvt__tracer_line("asynciodebug: ASYNCIODEBUG path is too long; recording off");
    return;
  }
  strcpy(uvt__tcfg.path, v);
  uvt__tcfg.slow_ms = int_env("ASYNCIODEBUG_SLOW_MS", 100, 1, 3600000);
  uvt__tcfg.depth = int_env("ASYNCIODEBUG_DEPTH", 16, 1, UVT_TRACE_MAX_DEPTH);
  uvt__tcfg.lock_ms = int_env("ASYNCIODEBUG_LOCK_MS", 20, 1, 3600000);
  uvt__tcfg.log = int_env("ASYNCIODEBUG_LOG", 1, 0, 1) != 0;
  {
    const char *st = secure_getenv("ASYNCIODEBUG_STACKS");
    uvt__tcfg.stacks = UVT__STACKS_AUTO;
    if (st != NULL && strcmp(st, "fp") == 0)
      uvt__tcfg.stacks = UVT__STACKS_FP;
    else if (st != NULL && strcmp(st, "unwind") == 0)
      uvt__tcfg.stacks = UVT__STACKS_UNWIND;
    else if (st != NULL && *st != '\0')
      uvt__tracer_line("asynciodebug: ASYNCIODEBUG_STACKS=%s is not \"fp\" or "
                       "\"unwind\"; using the default (frame pointers where "
                       "the code is known to keep them)", st);
  }
  uvt__tcfg.on = true;
}
