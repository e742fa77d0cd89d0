/*
 * The tracer's clocks: a monotonic one for step timings (the TSC where it
 * is invariant, calibrated once) and the wall clock for timestamps.
 */
#include "tracer.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uv.h>

/* The tracer's monotonic clock, in uv_hrtime() nanoseconds.  With an
 * invariant TSC (constant_tsc and nonstop_tsc), it reads the TSC (~7 ns)
 * instead of clock_gettime through kvm-clock (~50 ns here), calibrated
 * once over CALIBRATE_NS at start; elsewhere it is uv_hrtime(). */
#define CALIBRATE_NS 5000000u
static bool use_tsc;
/* Nanoseconds per tick in 32.32 fixed point: a multiply and a shift per
 * read, where a double's conversions both ways took 15 instructions. */
static uint64_t ns_per_tick_q32;
static uint64_t tsc0, hr0;

uint64_t uvt__tclock(void) {
#if defined(__x86_64__)
  if (use_tsc) {
    uint64_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return hr0 + (uint64_t)(((unsigned __int128)((hi << 32 | lo) - tsc0) *
                             ns_per_tick_q32) >> 32);
  }
#endif
  return uv_hrtime();
}

void uvt__tclock_init(void) {
#if defined(__x86_64__)
  FILE *f = fopen("/proc/cpuinfo", "re");
  char line[4096];
  bool constant = false, nonstop = false;
  uint64_t lo, hi, t1, h1;
  if (f == NULL) return;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, "flags", 5) != 0) continue;
    constant = strstr(line, " constant_tsc") != NULL;
    nonstop = strstr(line, " nonstop_tsc") != NULL;
    break;
  }
  fclose(f);
  if (!constant || !nonstop) return;
  hr0 = uv_hrtime();
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  tsc0 = hi << 32 | lo;
  do {
    h1 = uv_hrtime();
  } while (h1 - hr0 < CALIBRATE_NS);
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  t1 = hi << 32 | lo;
  if (t1 <= tsc0) return;
  ns_per_tick_q32 =
      (uint64_t)((double)(h1 - hr0) / (double)(t1 - tsc0) * 4294967296.0);
  use_tsc = ns_per_tick_q32 != 0;
#endif
}

int64_t uvt__now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

