/*
 * The HTML report in a real browser: headless Chromium (Debian's
 * chromium, installed by scripts/install-deps.sh) loads the page and
 * dumps its DOM.  The page shows as many findings as the JSON report, and
 * a task named `<script>alert(1)</script>` shows as text, never as markup.
 */
#include <criterion/criterion.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char dir[256], db_path[512];

static void make_dir(void) {
  snprintf(dir, sizeof(dir), "/tmp/uvt-html-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  snprintf(db_path, sizeof(db_path), "%s/trace.db", dir);
}

static void remove_dir(void) {
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  (void)!system(cmd);
}

TestSuite(report_html, .init = make_dir, .fini = remove_dir, .timeout = 120);

/* Run argv (extra env first) with stdout into a malloc'd string. */
static char *run(char *const argv[], const char *env1, const char *env2, int *status) {
  char *envp[80], *out = NULL;
  size_t len = 0, cap = 0;
  int n = 0, i, fd[2];
  ssize_t got;
  pid_t pid;
  posix_spawn_file_actions_t fa;
  if (env1 != NULL) envp[n++] = (char *)env1;
  if (env2 != NULL) envp[n++] = (char *)env2;
  envp[n++] = "ASYNCIODEBUG_LOG=0";
  for (i = 0; environ[i] != NULL && n < 78; i++)
    if (strncmp(environ[i], "ASYNCIODEBUG", 12) != 0 &&
        strncmp(environ[i], "LD_LIBRARY_PATH=", 16) != 0 &&
        strncmp(environ[i], "BXFI_", 5) != 0)
      envp[n++] = environ[i];
  envp[n] = NULL;
  cr_assert_eq(pipe(fd), 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
  posix_spawn_file_actions_addclose(&fa, fd[0]);
  cr_assert_eq(posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp), 0,
               "cannot start %s (scripts/install-deps.sh installs chromium)", argv[0]);
  posix_spawn_file_actions_destroy(&fa);
  close(fd[1]);
  for (;;) {
    if (len + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 65536;
      out = realloc(out, cap);
      cr_assert_not_null(out);
    }
    got = read(fd[0], out + len, cap - len - 1);
    if (got <= 0) break;
    len += (size_t)got;
  }
  out[len] = '\0';
  close(fd[0]);
  cr_assert_eq(waitpid(pid, status, 0), pid);
  return out;
}

static void record(const char *prog, const char *arg) {
  char env_db[600], env_lib[600];
  char *argv[] = {(char *)prog, (char *)arg, NULL};
  int status;
  snprintf(env_db, sizeof(env_db), "ASYNCIODEBUG=%s", db_path);
  snprintf(env_lib, sizeof(env_lib), "LD_LIBRARY_PATH=%s/debug", UVT_BUILD_DIR);
  free(run(argv, env_db, env_lib, &status));
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: %d", prog, status);
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
  return n;
}

static long long json_int(const char *json, const char *sql) {
  sqlite3 *db;
  sqlite3_stmt *st;
  long long v = -1;
  cr_assert_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  sqlite3_bind_text(st, 1, json, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

Test(report_html, the_page_shows_what_the_json_says_and_escapes_names) {
  char uvtask[512], scenario[512], transfer[512], html[600], url[700], ud[600];
  char *json, *dom;
  int status;
  long long groups, total, shown = 0;
  const char *p;
  snprintf(uvtask, sizeof(uvtask), "%s/uvtask", UVT_BUILD_DIR);
  snprintf(scenario, sizeof(scenario), "%s/tests/tracer_scenario", UVT_BUILD_DIR);
  snprintf(transfer, sizeof(transfer), "%s/examples/transfer", UVT_BUILD_DIR);
  snprintf(html, sizeof(html), "%s/report.html", dir);
  snprintf(url, sizeof(url), "file://%s", html);
  snprintf(ud, sizeof(ud), "--user-data-dir=%s/chromium", dir);

  record(scenario, "hostile"); /* one pending task named <script>... */
  record(transfer, NULL);      /* two yield-in-critical-section */
  {
    char *argv[] = {uvtask, "report", "--format", "json", db_path, NULL};
    json = run(argv, NULL, NULL, &status);
    groups = json_int(json, "SELECT json_array_length(?1, '$.findings')");
    total = json_int(json, "SELECT sum(value) FROM json_tree(?1, '$.findings') "
                           "WHERE key = 'count' AND path LIKE '$.findings[%]'");
    cr_assert_eq(groups, 2, "%s", json);
    cr_assert_eq(total, 3);
  }
  {
    char *argv[] = {uvtask, "report", "--format", "html", "-o", html, db_path, NULL};
    free(run(argv, NULL, NULL, &status));
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "html report: %d", status);
  }
  {
    char *argv[] = {"chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-quic", "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", ud,
                    "--dump-dom", url, NULL};
    dom = run(argv, NULL, NULL, &status);
  }
  cr_assert_gt(strlen(dom), 100, "chromium printed no DOM");
  cr_expect_eq((long long)count(dom, "class=\"finding\""), groups);
  for (p = dom; (p = strstr(p, "data-count=\"")) != NULL; p += 12) shown += atoll(p + 12);
  cr_expect_eq(shown, total);
  cr_expect_geq(count(dom, "&lt;script&gt;alert(1)&lt;/script&gt;"), 1);
  cr_expect_eq(count(dom, "<script>alert(1)"), 0, "a name became markup");
  free(json);
  free(dom);
}
