/*
 * The `uvtask` command: argument parsing and the subcommands.
 *
 *   uvtask report [options] [FILE...]       findings and sessions
 *   uvtask run [options] [--] PROG [ARGS]   run PROG recording, then report
 *   uvtask export --chrome-trace OUT [FILE...] Trace Event Format for Perfetto
 *   uvtask ps [--db FILE] PID|FILE          a live process's tasks, or a
 *                                           file's last snapshot
 *   uvtask help [SUBCOMMAND], --help, --version
 *
 * Usage errors exit with 2 for report and export (the status for "could
 * not do what was asked with the input"), 125 for run (whose 1 and 2 may
 * be the program's own).  The manual is viewer/uvtask.1.
 */
#include "viewer.h"
#include "schema.h"
#include "uvtask.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_DB "asynciodebug.db"
#define EXIT_RUN_USAGE 125
#define MS_MIN 1 /* --slow-ms, --stall-ms, --lock-ms: the tracer's range */
#define MS_MAX 3600000

static const char usage_main[] =
    "usage: uvtask <command> [options]\n"
    "\n"
    "Read what uvtask's debug library recorded (ASYNCIODEBUG=1) about a program's\n"
    "tasks: the bugs asyncio's debug mode looks for, post-mortem.\n"
    "\n"
    "commands:\n"
    "  report [FILE...]              findings as compiler-style warnings (default\n"
    "                                ./" DEFAULT_DB "), or --format json|html\n"
    "  run [--db F] -- PROG ARGS     run PROG with recording on, then report\n"
    "  export --chrome-trace OUT [FILE...]  a trace for Perfetto / chrome://tracing\n"
    "  ps PID|FILE                   the tasks of a live recording process, or the\n"
    "                                last snapshot recorded in FILE\n"
    "  help [COMMAND]                this text, or a command's\n"
    "\n"
    "  --version                     print the version\n"
    "\n"
    "Exit status: 0 no findings, 1 findings, 2 the input could not be read.\n"
    "See uvtask(1).\n";

static const char usage_report[] =
    "usage: uvtask report [options] [FILE...]\n"
    "\n"
    "Print the findings recorded in FILE (default ./" DEFAULT_DB "), grouped by\n"
    "kind and creation site, each as a compiler-style diagnostic with its\n"
    "symbolised stacks and parent task chain, after a summary of each session.\n"
    "\n"
    "options:\n"
    "  --format text|json|html   output format (default text); json is documented\n"
    "                            in uvtask(1), html is one self-contained page\n"
    "  -o, --output FILE         write to FILE instead of standard output\n"
    "  --kind KINDS              only these kinds (comma-separated, repeatable)\n"
    "  --pid PIDS                only the sessions of these processes\n"
    "  --min-ms N                drop findings with a duration (slow-callback)\n"
    "                            shorter than N ms\n"
    "  --fail-on KINDS           exit 1 only for findings of these kinds\n"
    "  --color auto|always|never colour (default: auto, on a terminal unless\n"
    "                            NO_COLOR is set)\n"
    "  -h, --help                this text\n"
    "\n"
    "kinds: crash deadlock stall unretrieved-error pending-at-exit\n"
    "       lock-not-released lock-order-inversion never-awaited\n"
    "       lock-held-across-await slow-callback yield-in-critical-section\n"
    "       wrong-thread unclosed-stream unreleased-handle\n"
    "\n"
    "Exit status: 0 no findings, 1 findings, 2 an input could not be read\n"
    "(missing, empty, not SQLite, another program's, newer, truncated, corrupt).\n";

static const char usage_run[] =
    "usage: uvtask run [options] [--] PROG [ARGS...]\n"
    "\n"
    "Run PROG with recording on (ASYNCIODEBUG=FILE) and uvtask's debug library\n"
    "preloaded, so a program built against the release library is traced\n"
    "without a rebuild; then print the report for this run's sessions.\n"
    "\n"
    "options:\n"
    "  --db FILE        record into FILE (default ./" DEFAULT_DB "; a run adds\n"
    "                   its sessions to what the file holds)\n"
    "  --slow-ms N      the slow-callback threshold (ASYNCIODEBUG_SLOW_MS)\n"
    "  --stall-ms N     how long nothing can wake the program before it is\n"
    "                   a stall (ASYNCIODEBUG_STALL_MS)\n"
    "  --lock-ms N      how long a lock holder may stay parked elsewhere while\n"
    "                   others queue (ASYNCIODEBUG_LOCK_MS: lock-held-across-await)\n"
    "  --format, -o, --kind, --min-ms, --fail-on, --color: as for report\n"
    "  -h, --help       this text\n"
    "\n"
    "The debug library is $UVTASK_DEBUG_LIB if set, else the installed one.\n"
    "\n"
    "Exit status: PROG's own if it failed (128+N if killed by signal N); else\n"
    "0 no findings, 1 findings, 2 nothing recorded.  125: uvtask failed,\n"
    "126: PROG cannot be executed, 127: PROG not found.\n";

static const char usage_export[] =
    "usage: uvtask export --chrome-trace OUT.json [options] [FILE...]\n"
    "\n"
    "Write the recordings in FILE... (default ./" DEFAULT_DB ") as one Trace\n"
    "Event Format file for Perfetto (ui.perfetto.dev) or chrome://tracing: a\n"
    "process per session, a track per task with its life and its steps (slow\n"
    "ones flagged), findings as instant events.\n"
    "\n"
    "options:\n"
    "  --chrome-trace OUT   the file to write (required)\n"
    "  --pid PIDS           only the sessions of these processes\n"
    "  --kind KINDS         only findings of these kinds\n"
    "  -h, --help           this text\n"
    "\n"
    "Exit status: 0 written, 2 the input could not be read or OUT written.\n";

static const char usage_ps[] =
    "usage: uvtask ps [--db FILE] PID\n"
    "       uvtask ps FILE\n"
    "\n"
    "PID: list every task of a running program that records (ASYNCIODEBUG):\n"
    "id, name, state, what it waits on and for how long, where it is parked\n"
    "and where it was created, its symbolised stack, and who awaits whom.  The\n"
    "database is the one its environment names (--db FILE overrides); the\n"
    "process is signalled only if that file holds its live session.  Its loops\n"
    "answer between task steps: a loop blocked inside a step cannot (SIGQUIT\n"
    "prints its tasks on its stderr).\n"
    "\n"
    "FILE: the last snapshot recorded there (by `uvtask ps PID`, SIGQUIT).\n"
    "\n"
    "Exit status: 0 listed, 1 no answer or no snapshot, 2 PID is not\n"
    "recording or FILE cannot be read.\n";

typedef struct {
  const char **kinds, **fail_on;
  int nkinds, nfail_on;
  int64_t *pids;
  int npids;
} lists_t;

static void lists_free(lists_t *l) {
  int i;
  for (i = 0; i < l->nkinds; i++) free((char *)l->kinds[i]);
  for (i = 0; i < l->nfail_on; i++) free((char *)l->fail_on[i]);
  free(l->kinds);
  free(l->fail_on);
  free(l->pids);
}

/* Append the comma-separated words of `arg` to a list. */
static void add_words(const char ***list, int *n, const char *arg) {
  const char *p = arg;
  while (*p != '\0') {
    size_t len = strcspn(p, ",");
    if (len > 0) {
      char *w = uvt__xmalloc(len + 1);
      memcpy(w, p, len);
      w[len] = '\0';
      *list = uvt__xrealloc(*list, (size_t)(*n + 1) * sizeof(**list));
      (*list)[(*n)++] = w;
    }
    p += len;
    if (*p == ',') p++;
  }
}

static bool parse_int(const char *s, int64_t min, int64_t *out) {
  char *end;
  long long v;
  errno = 0;
  v = strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < min) return false;
  *out = v;
  return true;
}

static bool add_pids(lists_t *l, const char *arg) {
  const char **words = NULL;
  int n = 0, i;
  bool ok = true;
  add_words(&words, &n, arg);
  for (i = 0; i < n; i++) {
    int64_t v;
    if (ok && parse_int(words[i], 1, &v)) {
      l->pids = uvt__xrealloc(l->pids, (size_t)(l->npids + 1) * sizeof(*l->pids));
      l->pids[l->npids++] = v;
    } else {
      ok = false;
    }
    free((char *)words[i]);
  }
  free(words);
  return ok && n > 0;
}

enum {
  OPT_FORMAT = 256, OPT_KIND, OPT_PID, OPT_MIN_MS, OPT_FAIL_ON, OPT_COLOR, OPT_DB,
  OPT_SLOW_MS, OPT_STALL_MS, OPT_LOCK_MS, OPT_CHROME
};

static const struct option report_opts[] = {
    {"format", required_argument, NULL, OPT_FORMAT},
    {"output", required_argument, NULL, 'o'},
    {"kind", required_argument, NULL, OPT_KIND},
    {"pid", required_argument, NULL, OPT_PID},
    {"min-ms", required_argument, NULL, OPT_MIN_MS},
    {"fail-on", required_argument, NULL, OPT_FAIL_ON},
    {"color", required_argument, NULL, OPT_COLOR},
    {"colour", required_argument, NULL, OPT_COLOR},
    {"db", required_argument, NULL, OPT_DB},
    {"slow-ms", required_argument, NULL, OPT_SLOW_MS},
    {"stall-ms", required_argument, NULL, OPT_STALL_MS},
    {"lock-ms", required_argument, NULL, OPT_LOCK_MS},
    {"chrome-trace", required_argument, NULL, OPT_CHROME},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

typedef struct {
  const char *cmd;
  uvt__output_t out;
  uvt__filter_t filter;
  lists_t lists;
  const char *db, *chrome;
  uvt__thresholds_t th;
  bool help;
} args_t;

static int usage_error(const args_t *a, const char *msg, const char *arg) {
  uvt__errorf("uvtask %s: %s%s%s", a->cmd, msg, arg != NULL ? ": " : "",
              arg != NULL ? arg : "");
  uvt__errorf("Try 'uvtask help %s'.", a->cmd);
  return strcmp(a->cmd, "run") == 0 ? EXIT_RUN_USAGE : UVT__EXIT_INPUT;
}

/* Parse the options of a subcommand; -1 on success (else an exit status). */
static int parse(args_t *a, int argc, char **argv) {
  bool run = strcmp(a->cmd, "run") == 0, export = strcmp(a->cmd, "export") == 0;
  int c;
  int64_t v;
  optind = 1;
  opterr = 0;
  /* "+": for run, options end at PROG. */
  while ((c = getopt_long(argc, argv, run ? "+:ho:" : ":ho:", report_opts, NULL)) != -1) {
    switch (c) {
    case 'h': a->help = true; break;
    case 'o':
      if (export) return usage_error(a, "unknown option", "-o");
      a->out.output = optarg;
      break;
    case OPT_FORMAT:
      if (export) return usage_error(a, "unknown option", "--format");
      if (strcmp(optarg, "text") != 0 && strcmp(optarg, "json") != 0 &&
          strcmp(optarg, "html") != 0)
        return usage_error(a, "--format is text, json or html, not", optarg);
      a->out.format = optarg;
      break;
    case OPT_KIND: add_words(&a->lists.kinds, &a->lists.nkinds, optarg); break;
    case OPT_FAIL_ON: add_words(&a->lists.fail_on, &a->lists.nfail_on, optarg); break;
    case OPT_PID:
      if (!add_pids(&a->lists, optarg)) return usage_error(a, "bad --pid", optarg);
      break;
    case OPT_MIN_MS:
      if (!parse_int(optarg, 0, &v)) return usage_error(a, "bad --min-ms", optarg);
      a->filter.min_ms = v;
      break;
    case OPT_COLOR:
      if (strcmp(optarg, "auto") == 0) a->out.color = -1;
      else if (strcmp(optarg, "always") == 0) a->out.color = 1;
      else if (strcmp(optarg, "never") == 0) a->out.color = 0;
      else return usage_error(a, "--color is auto, always or never, not", optarg);
      break;
    case OPT_DB:
      if (!run && strcmp(a->cmd, "ps") != 0) return usage_error(a, "unknown option", "--db");
      a->db = optarg;
      break;
    case OPT_SLOW_MS:
    case OPT_STALL_MS:
    case OPT_LOCK_MS: {
      const char *name = c == OPT_SLOW_MS ? "--slow-ms" : c == OPT_STALL_MS ? "--stall-ms"
                                                                              : "--lock-ms";
      char msg[64];
      if (!run) return usage_error(a, "unknown option", name);
      /* The tracer's range (tracer/config.c): outside it the debug
       * library would quietly fall back to its default. */
      snprintf(msg, sizeof(msg), "%s must be 1 to 3600000 (ms), not", name);
      if (!parse_int(optarg, MS_MIN, &v) || v > MS_MAX)
        return usage_error(a, msg, optarg);
      if (c == OPT_SLOW_MS) a->th.slow_ms = optarg;
      else if (c == OPT_STALL_MS) a->th.stall_ms = optarg;
      else a->th.lock_ms = optarg;
      break;
    }
    case OPT_CHROME:
      if (!export) return usage_error(a, "unknown option", "--chrome-trace");
      a->chrome = optarg;
      break;
    case ':': return usage_error(a, "missing argument", argv[optind - 1]);
    default: return usage_error(a, "unknown option", argv[optind - 1]);
    }
  }
  /* A misspelt kind would silently select nothing (and exit 0 in CI):
   * say so, but go on — a newer tracer may record kinds we do not know. */
  for (c = 0; c < a->lists.nkinds + a->lists.nfail_on; c++) {
    const char *k = c < a->lists.nkinds ? a->lists.kinds[c] : a->lists.fail_on[c - a->lists.nkinds];
    if (!uvt__kind_known(k) && !(c >= a->lists.nkinds && strcmp(k, UVT__KILLED_WORD) == 0))
      uvt__errorf("uvtask %s: warning: unknown finding kind '%s' (see 'uvtask help %s')",
                  a->cmd, k, a->cmd);
  }
  a->filter.kinds = a->lists.kinds;
  a->filter.nkinds = a->lists.nkinds;
  a->filter.fail_on = a->lists.fail_on;
  a->filter.nfail_on = a->lists.nfail_on;
  a->filter.pids = a->lists.pids;
  a->filter.npids = a->lists.npids;
  return -1;
}

static int cmd_report(args_t *a, int argc, char **argv) {
  static const char *const dflt[] = {DEFAULT_DB};
  int n = argc - optind;
  if (n == 0) return uvt__report_main(dflt, 1, &a->filter, &a->out);
  return uvt__report_main((const char *const *)argv + optind, n, &a->filter, &a->out);
}

static int cmd_run(args_t *a, int argc, char **argv) {
  if (optind >= argc) return usage_error(a, "no program to run", NULL);
  return uvt__run_prog(argv + optind, a->db, &a->th, &a->filter, &a->out);
}

static int cmd_export(args_t *a, int argc, char **argv) {
  static const char *const dflt[] = {DEFAULT_DB};
  int n = argc - optind;
  if (a->chrome == NULL) return usage_error(a, "--chrome-trace OUT.json is required", NULL);
  if (n == 0) return uvt__export_chrome(dflt, 1, a->chrome, &a->filter);
  return uvt__export_chrome((const char *const *)argv + optind, n, a->chrome, &a->filter);
}

static int cmd_ps(args_t *a, int argc, char **argv) {
  if (optind + 1 != argc) return usage_error(a, "one PID or FILE", NULL);
  return uvt__ps_main(argv[optind], a->db);
}

static const char *usage_of(const char *cmd) {
  if (cmd == NULL) return usage_main;
  if (strcmp(cmd, "report") == 0) return usage_report;
  if (strcmp(cmd, "run") == 0) return usage_run;
  if (strcmp(cmd, "export") == 0) return usage_export;
  if (strcmp(cmd, "ps") == 0) return usage_ps;
  if (strcmp(cmd, "help") == 0) return usage_main;
  return NULL;
}

int main(int argc, char **argv) {
  args_t a;
  int rc;
  const char *u;
  memset(&a, 0, sizeof(a));
  a.out.format = "text";
  a.out.color = -1;
  if (argc < 2) {
    fputs(usage_main, stderr);
    return UVT__EXIT_INPUT;
  }
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
    printf("uvtask %s (reads asynciodebug schema %d)\n", UVTASK_VERSION_STRING,
           UVT_SCHEMA_VERSION);
    return 0;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    u = usage_of(argc > 2 && strcmp(argv[1], "help") == 0 ? argv[2] : NULL);
    if (u == NULL) {
      uvt__errorf("uvtask: no command '%s'", argv[2]);
      return UVT__EXIT_INPUT;
    }
    fputs(u, stdout);
    return 0;
  }
  a.cmd = argv[1];
  if (usage_of(a.cmd) == NULL) {
    uvt__errorf("uvtask: no command '%s'", a.cmd);
    fputs(usage_main, stderr);
    return UVT__EXIT_INPUT;
  }
  rc = parse(&a, argc - 1, argv + 1);
  if (rc < 0 && a.help) {
    fputs(usage_of(a.cmd), stdout);
    rc = 0;
  } else if (rc < 0) {
    if (strcmp(a.cmd, "report") == 0) rc = cmd_report(&a, argc - 1, argv + 1);
    else if (strcmp(a.cmd, "run") == 0) rc = cmd_run(&a, argc - 1, argv + 1);
    else if (strcmp(a.cmd, "export") == 0) rc = cmd_export(&a, argc - 1, argv + 1);
    else if (strcmp(a.cmd, "ps") == 0) rc = cmd_ps(&a, argc - 1, argv + 1);
    else { /* help */
      fputs(usage_main, stdout);
      rc = 0;
    }
  }
  lists_free(&a.lists);
  return rc;
}
