/*
 * The uvt_leaks_ignore list (testing.h): names of objects expected to
 * outlive a run.  The leak checks (leaks.c) skip them, and the runtime's
 * findings (findings.c) are neither printed nor counted for them.  Any
 * thread may change the list.
 */
#include "findings.h"

#include <stdlib.h>
#include <string.h>

#include "uvtask/testing.h"

static uv_once_t list_once = UV_ONCE_INIT;
static uv_mutex_t list_mutex;
static char **ignored;
static size_t nignored, capignored;

static void list_init(void) {
  if (uv_mutex_init(&list_mutex) != 0)
    uvt__panic("cannot initialise the ignore list's mutex");
}

static void list_lock(void) {
  uv_once(&list_once, list_init);
  uv_mutex_lock(&list_mutex);
}

int uvt_leaks_ignore(const char *name) {
  char *copy;
  if (name == NULL || name[0] == '\0') return UVT_EINVAL;
  if ((copy = strdup(name)) == NULL) return UVT_ENOMEM;
  list_lock();
  if (nignored == capignored) {
    size_t cap = capignored ? capignored * 2 : 8;
    char **nv = realloc(ignored, cap * sizeof(*nv));
    if (nv == NULL) {
      uv_mutex_unlock(&list_mutex);
      free(copy);
      return UVT_ENOMEM;
    }
    ignored = nv;
    capignored = cap;
  }
  ignored[nignored++] = copy;
  uv_mutex_unlock(&list_mutex);
  return 0;
}

void uvt_leaks_ignore_clear(void) {
  size_t i;
  list_lock();
  for (i = 0; i < nignored; i++) free(ignored[i]);
  free(ignored);
  ignored = NULL;
  nignored = capignored = 0;
  uv_mutex_unlock(&list_mutex);
}

/* True if the object named `name`, created in function `func`, is on the
 * ignore list. */
bool uvt__leaks_ignored(const char *name, const char *func) {
  bool hit = false;
  size_t i;
  list_lock();
  for (i = 0; i < nignored && !hit; i++)
    hit = (name != NULL && strcmp(ignored[i], name) == 0) ||
          (func != NULL && strcmp(ignored[i], func) == 0);
  uv_mutex_unlock(&list_mutex);
  return hit;
}
