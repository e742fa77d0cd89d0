/*
 * Small helpers of the `uvtask` command: allocation, UTF-8 repair, number
 * and duration formatting, a string-keyed hash map.
 */
#include "viewer.h"
#include "uvtask/kinds.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void out_of_memory(void) {
  fputs("uvtask: out of memory\n", stderr);
  exit(UVT__EXIT_INPUT);
}

void *uvt__xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) out_of_memory();
  return p;
}

void *uvt__xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL) out_of_memory();
  return p;
}

void *uvt__xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (p == NULL) out_of_memory();
  return p;
}

char *uvt__xstrdup(const char *s) {
  char *d;
  if (s == NULL) return NULL;
  d = strdup(s);
  if (d == NULL) out_of_memory();
  return d;
}

char *uvt__xasprintf(const char *fmt, ...) {
  va_list ap;
  char *s;
  int n;
  va_start(ap, fmt);
  n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0) out_of_memory();
  return s;
}

/* ---- UTF-8 ------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs,
 * no surrogates, nothing past U+10FFFF), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t left) {
  unsigned c = p[0];
  size_t n, i;
  unsigned cp;
  if (c >= 0x01 && c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
  else return 0;
  if (left < n) return 0;
  for (i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

char *uvt__utf8_clean(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  char *out = uvt__xmalloc(n * 3 + 1), *o = out;
  size_t i = 0;
  while (i < n) {
    size_t k = utf8_seq(p + i, n - i);
    if (k == 0) {
      memcpy(o, "\xef\xbf\xbd", 3); /* U+FFFD */
      o += 3;
      i++;
    } else {
      memcpy(o, p + i, k);
      o += k;
      i += k;
    }
  }
  *o = '\0';
  return out;
}

char *uvt__col_text(sqlite3_stmt *st, int i) {
  const unsigned char *t;
  if (sqlite3_column_type(st, i) == SQLITE_NULL) return NULL;
  t = sqlite3_column_text(st, i);
  if (t == NULL) return uvt__xstrdup("");
  return uvt__utf8_clean((const char *)t, (size_t)sqlite3_column_bytes(st, i));
}

/* ---- escaping for terminals -------------------------------------------------- */

void uvt__put_escaped(FILE *o, const char *s) {
  const unsigned char *p = (const unsigned char *)(s != NULL ? s : ""), *run = p;
  for (; *p != '\0'; p++) {
    bool c0 = *p < 0x20 || *p == 0x7f;
    bool c1 = *p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f; /* U+0080..U+009F */
    if (!c0 && !c1) continue;
    fwrite(run, 1, (size_t)(p - run), o);
    if (c0) fprintf(o, "\\x%02x", *p);
    else fprintf(o, "\\u%04x", *++p);
    run = p + 1;
  }
  fwrite(run, 1, (size_t)(p - run), o);
}

void uvt__errorf(const char *fmt, ...) {
  va_list ap;
  char *line;
  int n;
  va_start(ap, fmt);
  n = vasprintf(&line, fmt, ap);
  va_end(ap);
  if (n < 0) out_of_memory();
  uvt__put_escaped(stderr, line);
  fputc('\n', stderr);
  free(line);
}

/* ---- arithmetic on values read from a database ------------------------------------ */

int64_t uvt__add_sat(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

int64_t uvt__sub_sat(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? INT64_MAX : INT64_MIN;
  return r;
}

/* ---- formatting ----------------------------------------------------------------- */

const char *uvt__fmt_count(int64_t n, char buf[32]) {
  char tmp[32];
  int len, i, o = 0;
  uint64_t u = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
  len = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)u);
  if (n < 0) buf[o++] = '-';
  for (i = 0; i < len; i++) {
    if (i > 0 && (len - i) % 3 == 0) buf[o++] = ',';
    buf[o++] = tmp[i];
  }
  buf[o] = '\0';
  return buf;
}

const char *uvt__fmt_dur(int64_t ns, char buf[32]) {
  double ms = (double)ns / 1e6;
  if (ns < 0) snprintf(buf, 32, "?");
  else if (ms < 1) snprintf(buf, 32, "%.2f ms", ms);
  else if (ms < 10000) snprintf(buf, 32, "%.0f ms", ms);
  else snprintf(buf, 32, "%.1f s", ms / 1000);
  return buf;
}

const char *uvt__signal_name(int sig, char buf[32]) {
  const char *abbrev = sigabbrev_np(sig);
  if (abbrev != NULL) snprintf(buf, 32, "SIG%s", abbrev);
  else snprintf(buf, 32, "signal %d", sig);
  return buf;
}

const char *uvt__display_path(const char *path) {
  static char cwd[4096];
  static size_t cwdlen;
  static bool have;
  if (path == NULL) return NULL;
  if (!have) {
    have = true;
    if (getcwd(cwd, sizeof(cwd)) != NULL && strcmp(cwd, "/") != 0)
      cwdlen = strlen(cwd);
  }
  if (cwdlen > 0 && strncmp(path, cwd, cwdlen) == 0 && path[cwdlen] == '/' &&
      path[cwdlen + 1] != '\0')
    return path + cwdlen + 1;
  return path;
}

/* The rank column of uvtask/kinds.h's table; unknown kinds last. */
int uvt__kind_rank(const char *kind) {
  return uvt_finding_kind_rank(uvt_finding_kind_parse(kind));
}

bool uvt__kind_known(const char *kind) {
  return uvt__kind_rank(kind) < uvt__kind_rank(NULL);
}

bool uvt__in_list(const char *const *list, int n, const char *word) {
  int i;
  for (i = 0; word != NULL && i < n; i++)
    if (strcmp(list[i], word) == 0) return true;
  return false;
}

/* ---- map -------------------------------------------------------------------------- */

typedef struct {
  char *key;
  size_t klen;
  uint64_t hash;
  void *value;
} entry_t;

struct uvt__map_s {
  entry_t *e;
  size_t cap, used;
};

static uint64_t hash_bytes(const char *k, size_t n) {
  uint64_t h = 1469598103934665603ull;
  size_t i;
  for (i = 0; i < n; i++) {
    h ^= (unsigned char)k[i];
    h *= 1099511628211ull;
  }
  return h;
}

uvt__map_t *uvt__map_new(void) {
  uvt__map_t *m = uvt__xcalloc(1, sizeof(*m));
  m->cap = 64;
  m->e = uvt__xcalloc(m->cap, sizeof(*m->e));
  return m;
}

static entry_t *find(const uvt__map_t *m, const char *key, size_t klen,
                     uint64_t h) {
  size_t i = h & (m->cap - 1);
  for (;; i = (i + 1) & (m->cap - 1)) {
    entry_t *e = &m->e[i];
    if (e->key == NULL) return e;
    if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
      return e;
  }
}

static void grow(uvt__map_t *m) {
  entry_t *old = m->e;
  size_t oldcap = m->cap, i;
  m->cap *= 2;
  m->e = uvt__xcalloc(m->cap, sizeof(*m->e));
  for (i = 0; i < oldcap; i++)
    if (old[i].key != NULL) *find(m, old[i].key, old[i].klen, old[i].hash) = old[i];
  free(old);
}

void **uvt__map_slot(uvt__map_t *m, const char *key, size_t klen) {
  uint64_t h = hash_bytes(key, klen);
  entry_t *e;
  if ((m->used + 1) * 2 > m->cap) grow(m);
  e = find(m, key, klen, h);
  if (e->key == NULL) {
    e->key = uvt__xmalloc(klen + 1);
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    e->klen = klen;
    e->hash = h;
    e->value = NULL;
    m->used++;
  }
  return &e->value;
}

void *uvt__map_get(const uvt__map_t *m, const char *key, size_t klen) {
  entry_t *e = find(m, key, klen, hash_bytes(key, klen));
  return e->key != NULL ? e->value : NULL;
}

void uvt__map_each(uvt__map_t *m, void (*fn)(void *value)) {
  size_t i;
  for (i = 0; m != NULL && i < m->cap; i++)
    if (m->e[i].key != NULL) fn(m->e[i].value);
}

void uvt__map_free(uvt__map_t *m) {
  size_t i;
  if (m == NULL) return;
  for (i = 0; i < m->cap; i++) free(m->e[i].key);
  free(m->e);
  free(m);
}
