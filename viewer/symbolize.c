/*
 * Symbolisation: recorded return addresses -> function, file:line.
 *
 * The tracer stored raw PCs and, per session, the module map of the
 * process (path, build-id, load bias, [lo, hi) of its PT_LOAD segments).
 * A session's map is an "address space" here.  For a PC we find the
 * module covering it, take the address in the file (pc - bias), and ask
 * libdw about that file.
 *
 * Files are opened once per (path, build-id), whatever the number of
 * sessions that loaded them, each in its own Dwfl reported at bias 0, so
 * addresses in the file are Dwfl addresses.  Before trusting a file we
 * compare its build-id with the recorded one: a rebuilt binary (ids
 * differ) or a missing one gives frames shown as module+0xoffset and one
 * note for the whole report; never a line from the wrong binary.  A module
 * recorded without a build-id is trusted when the file has none either.
 *
 * A recorded PC is a return address: the call that made the frame is the
 * instruction before it, so we look up pc - 1 (else the line shown could
 * be the statement after the call, or another function entirely after a
 * noreturn call).  Functions inlined at that address come out as frames of
 * their own, innermost first (dwarf_getscopes), each but the outermost
 * located at the call site its inlinee was called from (DW_AT_call_file /
 * DW_AT_call_line).
 *
 * Results are cached per (file, address): a stack seen by 100,000
 * findings costs one lookup per distinct PC.
 */
#include "viewer.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_INLINE 16

typedef enum { MF_UNOPENED, MF_OK, MF_GONE, MF_CHANGED, MF_UNREADABLE } mf_state_t;

typedef struct {
  uvt__frame_t *frames;
  int n;
} pcent_t;

typedef struct {
  char *path, *build_id;
  mf_state_t state;
  Dwfl *dwfl;
  Dwfl_Module *mod;
  uvt__map_t *pcs; /* address in file (8 bytes) -> pcent_t */
} modfile_t;

typedef struct {
  uint64_t lo, hi, base;
  modfile_t *mf;
} modmap_t;

typedef struct {
  modmap_t *m;
  int n, cap;
  bool sorted;
} space_t;

struct uvt__sym_s {
  uvt__map_t *files; /* "path\0build-id" -> modfile_t */
  modfile_t **mfs;
  int nmfs;
  space_t *spaces;
  int nspaces;
  uvt__map_t *nomod; /* pc -> pcent_t, for PCs no module covers */
  pcent_t **ents;    /* every cache entry, to free them */
  size_t nents, capents;
  char **notes;
  int nnotes;
};

static char *debuginfo_path;
static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

uvt__sym_t *uvt__sym_new(void) {
  uvt__sym_t *s = uvt__xcalloc(1, sizeof(*s));
  s->files = uvt__map_new();
  s->nomod = uvt__map_new();
  return s;
}

void uvt__sym_free(uvt__sym_t *s) {
  size_t i;
  int k;
  if (s == NULL) return;
  for (i = 0; i < s->nents; i++) {
    int j;
    for (j = 0; j < s->ents[i]->n; j++) {
      free((char *)s->ents[i]->frames[j].function);
      free((char *)s->ents[i]->frames[j].file);
    }
    free(s->ents[i]->frames);
    free(s->ents[i]);
  }
  free(s->ents);
  for (k = 0; k < s->nmfs; k++) {
    modfile_t *mf = s->mfs[k];
    if (mf->dwfl != NULL) dwfl_end(mf->dwfl);
    uvt__map_free(mf->pcs);
    free(mf->path);
    free(mf->build_id);
    free(mf);
  }
  free(s->mfs);
  for (k = 0; k < s->nspaces; k++) free(s->spaces[k].m);
  free(s->spaces);
  for (k = 0; k < s->nnotes; k++) free(s->notes[k]);
  free(s->notes);
  uvt__map_free(s->files);
  uvt__map_free(s->nomod);
  free(s);
}

int uvt__sym_space(uvt__sym_t *s) {
  s->spaces = uvt__xrealloc(s->spaces, (size_t)(s->nspaces + 1) * sizeof(*s->spaces));
  memset(&s->spaces[s->nspaces], 0, sizeof(s->spaces[0]));
  return s->nspaces++;
}

void uvt__sym_add_module(uvt__sym_t *s, int space, const char *path,
                         const char *build_id, uint64_t base, uint64_t lo,
                         uint64_t hi) {
  space_t *sp;
  modfile_t **slot;
  char *key;
  size_t klen;
  if (space < 0 || space >= s->nspaces || path == NULL || hi <= lo) return;
  sp = &s->spaces[space];
  klen = strlen(path) + 1 + (build_id != NULL ? strlen(build_id) : 0);
  key = uvt__xasprintf("%s%c%s", path, 0, build_id != NULL ? build_id : "");
  slot = (modfile_t **)uvt__map_slot(s->files, key, klen);
  free(key);
  if (*slot == NULL) {
    modfile_t *mf = uvt__xcalloc(1, sizeof(*mf));
    mf->path = uvt__xstrdup(path);
    mf->build_id = uvt__xstrdup(build_id);
    mf->pcs = uvt__map_new();
    *slot = mf;
    s->mfs = uvt__xrealloc(s->mfs, (size_t)(s->nmfs + 1) * sizeof(*s->mfs));
    s->mfs[s->nmfs++] = mf;
  }
  if (sp->n == sp->cap) {
    sp->cap = sp->cap ? sp->cap * 2 : 16;
    sp->m = uvt__xrealloc(sp->m, (size_t)sp->cap * sizeof(*sp->m));
  }
  sp->m[sp->n].lo = lo;
  sp->m[sp->n].hi = hi;
  sp->m[sp->n].base = base;
  sp->m[sp->n].mf = *slot;
  sp->n++;
  sp->sorted = false;
}

static int by_lo(const void *a, const void *b) {
  const modmap_t *x = a, *y = b;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static const modmap_t *module_of(space_t *sp, uint64_t pc) {
  int lo = 0, hi;
  if (!sp->sorted) {
    if (sp->n > 1) qsort(sp->m, (size_t)sp->n, sizeof(*sp->m), by_lo);
    sp->sorted = true;
  }
  hi = sp->n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    if (pc < sp->m[mid].lo) hi = mid - 1;
    else if (pc >= sp->m[mid].hi) lo = mid + 1;
    else return &sp->m[mid];
  }
  return NULL;
}

static void note(uvt__sym_t *s, char *text) {
  s->notes = uvt__xrealloc(s->notes, (size_t)(s->nnotes + 1) * sizeof(*s->notes));
  s->notes[s->nnotes++] = text;
}

static bool build_id_matches(Dwfl_Module *mod, const char *want) {
  const unsigned char *bits;
  GElf_Addr vaddr;
  int len = dwfl_module_build_id(mod, &bits, &vaddr), i;
  if (want == NULL || want[0] == '\0') return len <= 0;
  if (len <= 0 || strlen(want) != (size_t)len * 2) return false;
  for (i = 0; i < len; i++) {
    char hex[3];
    snprintf(hex, sizeof(hex), "%02x", bits[i]);
    if (strncasecmp(hex, want + 2 * i, 2) != 0) return false;
  }
  return true;
}

static void modfile_open(uvt__sym_t *s, modfile_t *mf) {
  const char *name = strrchr(mf->path, '/');
  struct stat st;
  int fd;
  name = name != NULL ? name + 1 : mf->path;
  /* The path comes from the database: it may name a FIFO or a device,
   * whose open or read would wait forever.  O_NONBLOCK makes the open
   * return at once (and does nothing to a regular file's reads). */
  fd = open(mf->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
    close(fd);
    mf->state = MF_UNREADABLE;
    note(s, uvt__xasprintf("%s is not a regular file; its frames are shown as "
                           "module+offset", mf->path));
    return;
  }
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      mf->state = MF_GONE;
      note(s, uvt__xasprintf("%s is gone since the run; its frames are shown "
                             "as module+offset", mf->path));
    } else {
      mf->state = MF_UNREADABLE;
      note(s, uvt__xasprintf("cannot read %s (%s); its frames are shown as "
                             "module+offset", mf->path, strerror(errno)));
    }
    return;
  }
  mf->dwfl = dwfl_begin(&callbacks);
  if (mf->dwfl != NULL) {
    dwfl_report_begin(mf->dwfl);
    mf->mod = dwfl_report_elf(mf->dwfl, name, mf->path, fd, 0, false);
    dwfl_report_end(mf->dwfl, NULL, NULL);
  }
  if (mf->mod == NULL) {
    close(fd);
    mf->state = MF_UNREADABLE;
    note(s, uvt__xasprintf("cannot read %s (%s); its frames are shown as "
                           "module+offset", mf->path,
                           dwfl_errmsg(-1) != NULL ? dwfl_errmsg(-1) : "not ELF"));
    return;
  }
  if (!build_id_matches(mf->mod, mf->build_id)) {
    mf->state = MF_CHANGED;
    note(s, uvt__xasprintf("%s has changed since the run (build-id differs); "
                           "its frames are shown as module+offset", mf->path));
    return;
  }
  mf->state = MF_OK;
}

static const char *die_name(Dwarf_Die *die) {
  Dwarf_Attribute attr;
  const char *n = NULL;
  if (dwarf_attr_integrate(die, DW_AT_name, &attr) != NULL) n = dwarf_formstring(&attr);
  if (n == NULL && dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) != NULL)
    n = dwarf_formstring(&attr);
  return n;
}

static void push(pcent_t *e, const char *function, const char *file, int line,
                 bool inlined) {
  uvt__frame_t *f;
  e->frames = uvt__xrealloc(e->frames, (size_t)(e->n + 1) * sizeof(*e->frames));
  f = &e->frames[e->n++];
  memset(f, 0, sizeof(*f));
  f->function = function != NULL ? uvt__utf8_clean(function, strlen(function)) : NULL;
  f->file = file != NULL ? uvt__utf8_clean(file, strlen(file)) : NULL;
  f->line = file != NULL ? line : 0;
  f->inlined = inlined;
  f->trusted = true;
}

/* The frames of address `a` (already pc - 1) in a trusted file.
 * dwarf_getscopes gives the innermost scope at `a`, but past an inlined
 * subroutine it continues with the scopes of its abstract definition;
 * the physical nesting (inlinee inside caller inside ... subprogram) comes
 * from dwarf_getscopes_die on the innermost function-like scope. */
static void lookup(modfile_t *mf, Dwarf_Addr a, pcent_t *e) {
  Dwarf_Addr bias = 0;
  Dwarf_Die *cudie = dwfl_module_addrdie(mf->mod, a, &bias);
  Dwfl_Line *ln = dwfl_module_getsrc(mf->mod, a);
  const char *file = NULL;
  int line = 0;
  if (ln != NULL) file = dwfl_lineinfo(ln, NULL, &line, NULL, NULL, NULL);
  if (cudie != NULL) {
    Dwarf_Die *scopes = NULL, inner;
    int ns = dwarf_getscopes(cudie, a - bias, &scopes), i, found = 0;
    for (i = 0; i < ns && !found; i++) {
      int tag = dwarf_tag(&scopes[i]);
      if (tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine) {
        inner = scopes[i];
        found = 1;
      }
    }
    free(scopes);
    scopes = NULL;
    ns = found ? dwarf_getscopes_die(&inner, &scopes) : 0;
    {
      Dwarf_Files *files = NULL;
      size_t nfiles = 0;
      for (i = 0; i < ns && e->n < MAX_INLINE; i++) {
        Dwarf_Die *d = &scopes[i];
        int tag = dwarf_tag(d);
        Dwarf_Attribute attr;
        Dwarf_Word v;
        if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine) continue;
        push(e, die_name(d), file, line, tag == DW_TAG_inlined_subroutine);
        if (tag == DW_TAG_subprogram) break;
        /* The next frame out is located at this inlinee's call site. */
        file = NULL;
        line = 0;
        if (dwarf_attr(d, DW_AT_call_line, &attr) != NULL && dwarf_formudata(&attr, &v) == 0)
          line = (int)v;
        if (dwarf_attr(d, DW_AT_call_file, &attr) != NULL && dwarf_formudata(&attr, &v) == 0 &&
            (files != NULL || dwarf_getsrcfiles(cudie, &files, &nfiles) == 0) && v < nfiles)
          file = dwarf_filesrc(files, v, NULL, NULL);
      }
    }
    free(scopes);
  }
  if (e->n == 0) push(e, dwfl_module_addrname(mf->mod, a), file, line, false);
}

static void append(uvt__frames_t *out, const pcent_t *e) {
  int i;
  out->v = uvt__xrealloc(out->v, (size_t)(out->n + e->n) * sizeof(*out->v));
  for (i = 0; i < e->n; i++) out->v[out->n++] = &e->frames[i];
}

static pcent_t *new_ent(uvt__sym_t *s) {
  pcent_t *e = uvt__xcalloc(1, sizeof(*e));
  if (s->nents == s->capents) {
    s->capents = s->capents ? s->capents * 2 : 256;
    s->ents = uvt__xrealloc(s->ents, s->capents * sizeof(*s->ents));
  }
  s->ents[s->nents++] = e;
  return e;
}

void uvt__sym_resolve(uvt__sym_t *s, int space, uint64_t pc, uvt__frames_t *out) {
  const modmap_t *m = NULL;
  pcent_t **slot, *e;
  uint64_t a;
  int i;
  if (space >= 0 && space < s->nspaces) m = module_of(&s->spaces[space], pc);
  if (m == NULL) {
    slot = (pcent_t **)uvt__map_slot(s->nomod, (const char *)&pc, sizeof(pc));
    if (*slot == NULL) {
      e = *slot = new_ent(s);
      push(e, NULL, NULL, 0, false);
      e->frames[0].trusted = false;
      e->frames[0].pc = pc;
    }
    e = *slot;
    append(out, e);
    return;
  }
  a = pc - m->base;
  slot = (pcent_t **)uvt__map_slot(m->mf->pcs, (const char *)&a, sizeof(a));
  if (*slot == NULL) {
    e = *slot = new_ent(s);
    if (m->mf->state == MF_UNOPENED) modfile_open(s, m->mf);
    if (m->mf->state == MF_OK && a > 0) lookup(m->mf, a - 1, e);
    if (e->n == 0) push(e, NULL, NULL, 0, false);
    for (i = 0; i < e->n; i++) {
      e->frames[i].module = m->mf->path;
      e->frames[i].offset = a;
      e->frames[i].trusted = m->mf->state == MF_OK;
      e->frames[i].pc = pc;
    }
  }
  append(out, *slot);
}

const char *const *uvt__sym_notes(const uvt__sym_t *s, int *n) {
  *n = s->nnotes;
  return (const char *const *)s->notes;
}
