/*
 * The HTML report in a real browser: headless Chromium (Debian's
 * chromium, installed by scripts/install-deps.sh) loads the page and
 * dumps its DOM.  The page shows as many findings as the JSON report, and
 * a task named `<script>alert(1)</script>` shows as text, never as markup.
 */
#include <sqlite3.h>

#include "e2e_support.h"

TestSuite(report_html, .init = e2e_make_dir, .fini = e2e_remove_dir,
          .timeout = 120);

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
  snprintf(html, sizeof(html), "%s/report.html", e2e_dir);
  snprintf(url, sizeof(url), "file://%s", html);
  snprintf(ud, sizeof(ud), "--user-data-dir=%s/chromium", e2e_dir);

  e2e_record(scenario, "hostile"); /* one pending task named <script>... */
  e2e_record(transfer, NULL);      /* two yield-in-critical-section */
  {
    char *argv[] = {uvtask, "report", "--format", "json", e2e_db, NULL};
    json = e2e_run(argv, NULL, NULL, false, &status);
    groups = json_int(json, "SELECT json_array_length(?1, '$.findings')");
    total = json_int(json, "SELECT sum(value) FROM json_tree(?1, '$.findings') "
                           "WHERE key = 'count' AND path LIKE '$.findings[%]'");
    cr_assert_eq(groups, 2, "%s", json);
    cr_assert_eq(total, 3);
  }
  {
    char *argv[] = {uvtask, "report", "--format", "html", "-o", html, e2e_db, NULL};
    free(e2e_run(argv, NULL, NULL, false, &status));
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "html report: %d", status);
  }
  {
    char *argv[] = {"chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-quic", "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", ud,
                    "--dump-dom", url, NULL};
    dom = e2e_run(argv, NULL, NULL, false, &status);
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
