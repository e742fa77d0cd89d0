/*
 * Creation stacks without ASYNCIODEBUG_STACKS: frame pointers where the
 * program's DWARF says its code keeps them, libunwind elsewhere, and the
 * same frames either way.
 *
 * tests/fp/fp_auto.c is built with frame pointers (fp_auto_fp) and
 * without (fp_auto_nofp), each run under the debug library with the
 * default stacks and with ASYNCIODEBUG_STACKS=unwind, and with
 * tests/preload/unw_count.c counting the calls of libunwind's
 * unw_backtrace.  The stacks stored are compared as module+offset lists
 * (the two runs load modules at different addresses).  The one allowed
 * difference: with the default stacks, the library's frames at the bottom
 * of a task's stack (task entry, context trampoline) are not stored; the
 * report trims them from libunwind's stacks too.  So they are trimmed
 * here before comparing.
 */
#include <criterion/criterion.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define PROG_FP UVT_BUILD_DIR "/tests/fp_auto_fp"
#define PROG_NOFP UVT_BUILD_DIR "/tests/fp_auto_nofp"
#define PROG_NOID UVT_BUILD_DIR "/tests/fp_auto_noid"
#define UNW_COUNT UVT_BUILD_DIR "/tests/libunw_count.so"

static char dir[256];

static void make_dir(void) {
  snprintf(dir, sizeof(dir), "/tmp/uvt-fpauto-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void) {
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  (void)!system(cmd);
}

TestSuite(recorder_fpauto, .init = make_dir, .fini = remove_dir, .timeout = 120);

typedef struct {
  char **stacks; /* "module+0xoffset ..." per stored stack, sorted */
  int n;
  long unw_calls;
} run_t;

/* Run prog with recording on into dir/<tag>.db, the debug library in
 * front, the counter preloaded and `stacks` as ASYNCIODEBUG_STACKS (NULL:
 * unset). */
static void record(const char *prog, const char *stacks, const char *tag, char *db,
                   size_t dbsz, char *count, size_t countsz) {
  char env_db[700], env_lib[600], env_pre[600], env_count[700], env_st[64], env_asan[1024];
  char *envp[96], *argv[] = {(char *)prog, "10", NULL};
  const char *asan = getenv("ASAN_OPTIONS");
  int n = 0, i, status;
  pid_t pid;
  posix_spawn_file_actions_t fa;
  snprintf(db, dbsz, "%s/%s.db", dir, tag);
  snprintf(count, countsz, "%s/%s.count", dir, tag);
  snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", db);
  snprintf(env_lib, sizeof(env_lib), "LD_LIBRARY_PATH=%s/debug", UVT_BUILD_DIR);
  snprintf(env_pre, sizeof(env_pre), "LD_PRELOAD=%s", UNW_COUNT);
  snprintf(env_count, sizeof(env_count), "UVT_UNW_COUNT=%s", count);
  /* An ASan build wants its runtime first; the counter is not built with it. */
  snprintf(env_asan, sizeof(env_asan), "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
           asan ? asan : "", asan ? ":" : "");
  envp[n++] = env_db;
  envp[n++] = env_lib;
  envp[n++] = env_pre;
  envp[n++] = env_count;
  envp[n++] = env_asan;
  envp[n++] = "ASYNCIODEBUG_LOG=0";
  envp[n++] = "ASYNCIODEBUG_SLOW_MS=60000";
  if (stacks != NULL) {
    snprintf(env_st, sizeof(env_st), "ASYNCIODEBUG_STACKS=%s", stacks);
    envp[n++] = env_st;
  }
  for (i = 0; environ[i] != NULL && n < 94; i++)
    if (strncmp(environ[i], "ASYNCIODEBUG", 12) != 0 &&
        strncmp(environ[i], "LD_LIBRARY_PATH=", 16) != 0 &&
        strncmp(environ[i], "LD_PRELOAD=", 11) != 0 &&
        strncmp(environ[i], "ASAN_OPTIONS=", 13) != 0 &&
        strncmp(environ[i], "BXFI_", 5) != 0)
      envp[n++] = environ[i];
  envp[n] = NULL;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
  cr_assert_eq(posix_spawn(&pid, prog, &fa, NULL, argv, envp), 0, "cannot start %s", prog);
  posix_spawn_file_actions_destroy(&fa);
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s (%s): status %d", prog,
            stacks ? stacks : "default", status);
}

typedef struct {
  uint64_t lo, hi, base;
  char *path;
} module_t;

static int by_string(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append to *s (malloc'd, *len used). */
static void append(char **s, size_t *len, const char *add) {
  size_t k = strlen(add);
  *s = realloc(*s, *len + k + 1);
  cr_assert_not_null(*s);
  memcpy(*s + *len, add, k + 1);
  *len += k;
}

static run_t load(const char *prog, const char *stacks, const char *tag) {
  char db_path[600], count_path[600], frame[600];
  run_t r = {NULL, 0, -1};
  module_t mods[64];
  int nmods = 0, i;
  sqlite3 *db;
  sqlite3_stmt *st;
  FILE *f;
  record(prog, stacks, tag, db_path, sizeof(db_path), count_path, sizeof(count_path));
  f = fopen(count_path, "r");
  cr_assert_not_null(f, "no count from %s", tag);
  cr_assert_eq(fscanf(f, "%ld", &r.unw_calls), 1);
  fclose(f);
  cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT lo, hi, base, path FROM modules", -1, &st, NULL),
               SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW && nmods < 64) {
    mods[nmods].lo = (uint64_t)sqlite3_column_int64(st, 0);
    mods[nmods].hi = (uint64_t)sqlite3_column_int64(st, 1);
    mods[nmods].base = (uint64_t)sqlite3_column_int64(st, 2);
    mods[nmods].path = strdup((const char *)sqlite3_column_text(st, 3));
    nmods++;
  }
  sqlite3_finalize(st);
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT pcs FROM stacks", -1, &st, NULL), SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char *b = sqlite3_column_blob(st, 0);
    int npcs = sqlite3_column_bytes(st, 0) / 8, k, keep = npcs;
    char *s = NULL;
    size_t len = 0;
    const char *name[64];
    uint64_t off[64];
    for (i = 0; i < npcs && i < 64; i++) {
      uint64_t pc = 0;
      int m;
      for (k = 7; k >= 0; k--) pc = pc << 8 | b[i * 8 + k];
      name[i] = "?";
      off[i] = pc;
      for (m = 0; m < nmods; m++)
        if (pc >= mods[m].lo && pc < mods[m].hi) {
          const char *base = strrchr(mods[m].path, '/');
          name[i] = base ? base + 1 : mods[m].path;
          off[i] = pc - mods[m].base;
        }
    }
    /* The library's own frames at the bottom (see the top of the file). */
    while (keep > 1 && strncmp(name[keep - 1], "libuvtask.so", 12) == 0) keep--;
    append(&s, &len, "");
    for (i = 0; i < keep && i < 64; i++) {
      snprintf(frame, sizeof(frame), "%s+0x%llx ", name[i], (unsigned long long)off[i]);
      append(&s, &len, frame);
    }
    r.stacks = realloc(r.stacks, (size_t)(r.n + 1) * sizeof(*r.stacks));
    cr_assert_not_null(r.stacks);
    r.stacks[r.n++] = s;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  for (i = 0; i < nmods; i++) free(mods[i].path);
  qsort(r.stacks, (size_t)r.n, sizeof(*r.stacks), by_string);
  return r;
}

static void run_free(run_t *r) {
  for (int i = 0; i < r->n; i++) free(r->stacks[i]);
  free(r->stacks);
}

/* The same stacks, one for one (the lists are sorted). */
static void expect_same_stacks(const run_t *a, const run_t *b) {
  int i;
  cr_expect_eq(a->n, b->n, "%d stacks with the default against %d with libunwind", a->n,
               b->n);
  for (i = 0; i < a->n && i < b->n; i++)
    cr_expect_str_eq(a->stacks[i], b->stacks[i], "stack %d differs", i);
}

/* fp_auto's stacks: 21 depths (the deepest ones the same 16 frames: 16
 * distinct), a task's own spawn, the one through code without frame
 * pointers, the one through a library with them, a coroutine, main's;
 * each taken 10 times (rounds). */
#define MIN_STACKS 21
#define ROUNDS 10

Test(recorder_fpauto, a_program_built_with_frame_pointers_gets_libunwinds_frames_without_libunwind) {
  run_t aut = load(PROG_FP, NULL, "fp-default"), unw = load(PROG_FP, "unwind", "fp-unwind");
  cr_assert_geq(unw.n, MIN_STACKS, "only %d stacks", unw.n);
  expect_same_stacks(&aut, &unw);
  /* libunwind took every stack with =unwind; by default only the few the
   * walk declines: main's (on the thread's stack, called by the C
   * library), the one through code without frame pointers each round,
   * and the first at a task's bottom (which libunwind then confirms).
   * The one through the library with frame pointers is walked. */
  cr_expect_geq(unw.unw_calls, (long)MIN_STACKS * ROUNDS, "=unwind: %ld calls",
                unw.unw_calls);
  cr_expect_leq(aut.unw_calls, (long)ROUNDS + 4,
                "default: %ld of %ld stacks by libunwind", aut.unw_calls, unw.unw_calls);
  run_free(&aut);
  run_free(&unw);
}

/* prog's stacks are all libunwind's with the default too: as many calls
 * as with =unwind, and the same stacks. */
static void expect_libunwind_only(const char *prog, const char *tag) {
  char t1[64], t2[64];
  run_t aut, unw;
  snprintf(t1, sizeof(t1), "%s-default", tag);
  snprintf(t2, sizeof(t2), "%s-unwind", tag);
  aut = load(prog, NULL, t1);
  unw = load(prog, "unwind", t2);
  cr_assert_geq(unw.n, MIN_STACKS, "only %d stacks", unw.n);
  expect_same_stacks(&aut, &unw);
  cr_expect_eq(aut.unw_calls, unw.unw_calls, "default: %ld libunwind calls, =unwind: %ld",
               aut.unw_calls, unw.unw_calls);
  run_free(&aut);
  run_free(&unw);
}

Test(recorder_fpauto, a_program_built_without_frame_pointers_gets_libunwind_stacks) {
  expect_libunwind_only(PROG_NOFP, "nofp");
}

/* Frame pointers and DWARF, but no build-id: the file read could be
 * another than the one loaded, so its code is not known. */
Test(recorder_fpauto, a_program_without_a_build_id_gets_libunwind_stacks) {
  expect_libunwind_only(PROG_NOID, "noid");
}
