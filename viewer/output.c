/*
 * Writing a report where it was asked for: `uvtask report` as main.c and
 * run.c both call it (main.c parses the command line, run.c runs a
 * program and then reports; neither calls back into the other), and the
 * output file that report and export share.
 *
 * An output file is written whole or not at all: into a fresh temporary
 * beside it, created by mkostemp (O_CREAT|O_EXCL: a symlink or file
 * planted under the temporary's name is never followed or reused), then
 * renamed over the name asked for.  An output that is one of the inputs
 * (the same inode, whatever path names it) is refused before anything is
 * read: `report -o X X` would otherwise replace the recording with its
 * report.
 */
#include "viewer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int uvt__outfile_check(const char *path, const char *const *inputs, int n) {
  struct stat out, in;
  char wal[4200];
  int i;
  if (path == NULL || strcmp(path, "-") == 0 || stat(path, &out) != 0) return 0;
  for (i = 0; i < n; i++) {
    bool same = stat(inputs[i], &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino;
    /* Its write-ahead log is part of the recording too. */
    snprintf(wal, sizeof(wal), "%s-wal", inputs[i]);
    same = same || (stat(wal, &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino);
    if (same) {
      uvt__errorf("uvtask: the output %s is the input %s: refusing to overwrite the "
                  "recording", path, inputs[i]);
      return -1;
    }
  }
  return 0;
}

int uvt__outfile_open(uvt__outfile_t *o, const char *path) {
  mode_t mask;
  int fd;
  memset(o, 0, sizeof(*o));
  o->path = path;
  if (path == NULL || strcmp(path, "-") == 0) {
    o->f = stdout;
    return 0;
  }
  o->tmp = uvt__xasprintf("%s.XXXXXX", path);
  fd = mkostemp(o->tmp, O_CLOEXEC);
  if (fd < 0) {
    uvt__errorf("uvtask: cannot write %s: %m", path);
    free(o->tmp);
    o->tmp = NULL;
    return -1;
  }
  /* mkostemp makes it 0600; a report is as readable as any new file. */
  mask = umask(0);
  umask(mask);
  (void)fchmod(fd, 0666 & ~mask);
  o->f = fdopen(fd, "w");
  if (o->f == NULL) {
    uvt__errorf("uvtask: cannot write %s: %m", path);
    close(fd);
    unlink(o->tmp);
    free(o->tmp);
    o->tmp = NULL;
    return -1;
  }
  return 0;
}

int uvt__outfile_finish(uvt__outfile_t *o, bool ok) {
  int err;
  if (fflush(o->f) != 0 || ferror(o->f)) ok = false;
  err = errno;
  if (o->tmp == NULL) {
    if (!ok) uvt__errorf("uvtask: cannot write the output: %s", strerror(err));
    return ok ? 0 : -1;
  }
  if (fclose(o->f) != 0) ok = false;
  if (ok && rename(o->tmp, o->path) != 0) ok = false;
  if (!ok) {
    uvt__errorf("uvtask: cannot write %s: %m", o->path);
    unlink(o->tmp);
  }
  free(o->tmp);
  o->tmp = NULL;
  o->f = NULL;
  return ok ? 0 : -1;
}

void uvt__outfile_abandon(uvt__outfile_t *o) {
  if (o->tmp == NULL) return;
  fclose(o->f);
  unlink(o->tmp);
  free(o->tmp);
  o->tmp = NULL;
  o->f = NULL;
}

static bool want_color(int setting, FILE *out) {
  const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
  if (setting >= 0) return setting == 1;
  if (nc != NULL && nc[0] != '\0') return false;
  if (term != NULL && strcmp(term, "dumb") == 0) return false;
  return isatty(fileno(out));
}

int uvt__report_main(const char *const *paths, int n, const uvt__filter_t *filter,
                     const uvt__output_t *o) {
  uvt__report_t r;
  uvt__filter_t f = *filter;
  uvt__outfile_t out;
  char why[1024];
  int status;
  bool failed = false;
  f.timeline = strcmp(o->format, "html") == 0;
  if (uvt__outfile_check(o->output, paths, n) != 0) return UVT__EXIT_INPUT;
  if (uvt__report_load(&r, paths, n, &f, why, sizeof(why)) != 0) {
    uvt__errorf("uvtask: %s", why);
    uvt__report_free(&r);
    return UVT__EXIT_INPUT;
  }
  if (f.run && uvt__report_recorded_nothing(&r)) {
    uvt__errorf("uvtask run: %s recorded nothing (is it linked with libuvtask?)",
                f.run_prog != NULL ? f.run_prog : "the program");
    uvt__report_free(&r);
    return UVT__EXIT_INPUT;
  }
  if (uvt__outfile_open(&out, o->output) != 0) {
    uvt__report_free(&r);
    return UVT__EXIT_INPUT;
  }
  if (strcmp(o->format, "json") == 0) failed = uvt__json_write(out.f, &r) != 0;
  else if (strcmp(o->format, "html") == 0) uvt__html_write(out.f, &r);
  else uvt__text_write(out.f, &r, want_color(o->color, out.f));
  status = uvt__report_status(&r, &f);
  uvt__report_free(&r);
  if (uvt__outfile_finish(&out, !failed) != 0) return UVT__EXIT_INPUT;
  return status;
}
