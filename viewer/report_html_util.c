/*
 * What both HTML files write with (report_html.c, report_html_snap.c):
 * escaping and expandable stacks.  Calls neither of them, so that the
 * page and its snapshots do not call each other.
 */
#include "viewer.h"

#include <string.h>

void uvt__html_esc(FILE *o, const char *s) {
  for (; s != NULL && *s != '\0'; s++) {
    switch (*s) {
    case '&': fputs("&amp;", o); break;
    case '<': fputs("&lt;", o); break;
    case '>': fputs("&gt;", o); break;
    case '"': fputs("&quot;", o); break;
    case '\'': fputs("&#39;", o); break;
    default:
      if ((unsigned char)*s < 0x20 && *s != '\t') fprintf(o, "&#xfffd;");
      else fputc(*s, o);
    }
  }
}

void uvt__html_esc_loc(FILE *o, const char *file, int line) {
  uvt__html_esc(o, uvt__display_path(file));
  if (line > 0) fprintf(o, ":%d", line);
}

static const char *basename_of(const char *path) {
  const char *b = path != NULL ? strrchr(path, '/') : NULL;
  return b != NULL ? b + 1 : path;
}

static void frames_table(FILE *o, const uvt__frames_t *fr) {
  int i;
  fputs("<table class=\"stack\">", o);
  for (i = 0; i < fr->n; i++) {
    const uvt__frame_t *f = fr->v[i];
    fputs("<tr><td>", o);
    uvt__html_esc(o, f->trusted && f->function != NULL ? f->function : "??");
    fputs("</td><td>", o);
    if (f->trusted && f->file != NULL) uvt__html_esc_loc(o, f->file, f->line);
    else if (f->module != NULL) {
      uvt__html_esc(o, basename_of(f->module));
      fprintf(o, "+0x%llx", (unsigned long long)f->offset);
    } else {
      fprintf(o, "0x%llx (no module)", (unsigned long long)f->pc);
    }
    if (f->inlined) fputs(" <span class=\"muted\">(inlined)</span>", o);
    fputs("</td></tr>", o);
  }
  fputs("</table>", o);
}

/* A stack that expands: the summary names its first frame. */
void uvt__html_stack(FILE *o, const char *label, const uvt__frames_t *fr, bool open) {
  const uvt__frame_t *f;
  if (fr->n == 0) return;
  f = fr->v[0];
  fprintf(o, "<details%s><summary>%s <code>", open ? " open" : "", label);
  uvt__html_esc(o, f->trusted && f->function != NULL ? f->function : "??");
  fputs("</code>", o);
  if (fr->n > 1) fprintf(o, " <span class=\"muted\">(%d frames)</span>", fr->n);
  fputs("</summary>", o);
  frames_table(o, fr);
  fputs("</details>\n", o);
}
