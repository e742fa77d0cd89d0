/*
 * Binary min-heap of timer nodes; see timer.h.
 */
#include "timer.h"
#include "uvtask.h"

#include <stdlib.h>

static int earlier(const uvt__timer_t *a, const uvt__timer_t *b) {
  if (a->due_ms != b->due_ms) return a->due_ms < b->due_ms;
  return a->seq < b->seq;
}

static void place(uvt__timer_heap_t *h, size_t i, uvt__timer_t *t) {
  h->items[i] = t;
  t->index = i;
}

static void sift_up(uvt__timer_heap_t *h, size_t i) {
  uvt__timer_t *t = h->items[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!earlier(t, h->items[parent])) break;
    place(h, i, h->items[parent]);
    i = parent;
  }
  place(h, i, t);
}

static void sift_down(uvt__timer_heap_t *h, size_t i) {
  uvt__timer_t *t = h->items[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    uvt__timer_t *best = t;
    if (l < h->len && earlier(h->items[l], best)) m = l, best = h->items[l];
    if (r < h->len && earlier(h->items[r], best)) m = r, best = h->items[r];
    if (m == i) break;
    place(h, i, best);
    i = m;
  }
  place(h, i, t);
}

void uvt__timer_init(uvt__timer_t *t) {
  t->due_ms = 0;
  t->seq = 0;
  t->index = SIZE_MAX;
  t->cb = NULL;
}

int uvt__timer_armed(const uvt__timer_t *t) { return t->index != SIZE_MAX; }

int uvt__heap_push(uvt__timer_heap_t *h, uvt__timer_t *t) {
  if (h->len == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    uvt__timer_t **items = realloc(h->items, cap * sizeof(*items));
    if (items == NULL) return UVT_ENOMEM;
    h->items = items;
    h->cap = cap;
  }
  t->seq = h->seq++;
  h->items[h->len] = t;
  t->index = h->len++;
  sift_up(h, t->index);
  return 0;
}

void uvt__heap_remove(uvt__timer_heap_t *h, uvt__timer_t *t) {
  size_t i = t->index;
  if (i == SIZE_MAX) return;
  t->index = SIZE_MAX;
  uvt__heap_remove_at(h, i);
}

void uvt__heap_remove_at(uvt__timer_heap_t *h, size_t i) {
  uvt__timer_t *last = h->items[--h->len];
  if (i == h->len) return;
  place(h, i, last);
  if (i > 0 && earlier(last, h->items[(i - 1) / 2])) sift_up(h, i);
  else sift_down(h, i);
}

uvt__timer_t *uvt__heap_top(const uvt__timer_heap_t *h) {
  return h->len ? h->items[0] : NULL;
}

void uvt__heap_free(uvt__timer_heap_t *h) {
  free(h->items);
  h->items = NULL;
  h->len = h->cap = 0;
}
