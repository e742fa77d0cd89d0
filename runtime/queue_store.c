/*
 * The item store of uvt_queue_t: a ring (FIFO, LIFO) or a min-heap
 * (priority); see queue_store.h.
 */
#include "queue_store.h"

#include <stdint.h>
#include <stdlib.h>

#define QUEUE_MIN_ALLOC 16

/* Grow to `alloc` slots, keeping the ring in order (the part that wrapped
 * around, items[0 .. head+count-old), moves to just after the old end). */
static int store_resize(uvt_queue_t *q, size_t alloc) {
  size_t first, i;
  void **items;
  if (alloc < q->alloc || alloc > SIZE_MAX / sizeof(*items)) return UVT_ENOMEM;
  items = realloc(q->items, alloc * sizeof(*items));
  if (items == NULL) return UVT_ENOMEM;
  first = q->alloc - q->head;
  if (q->alloc > 0 && q->count > first)
    for (i = 0; i < q->count - first; i++) items[q->alloc + i] = items[i];
  q->items = items;
  q->alloc = alloc;
  return 0;
}

int uvt__qstore_reserve(uvt_queue_t *q, size_t n) {
  return n > q->alloc ? store_resize(q, n) : 0;
}

static int store_room(uvt_queue_t *q) {
  if (q->count < q->alloc) return 0;
  return store_resize(q, q->alloc ? q->alloc * 2 : QUEUE_MIN_ALLOC);
}

static size_t slot(const uvt_queue_t *q, size_t k) {
  return (q->head + k) % q->alloc;
}

/* ---- the heap (priority) -------------------------------------------------- */

static bool less(const uvt_queue_t *q, size_t a, size_t b) {
  return q->compare(q->items[a], q->items[b]) < 0;
}

static void swap(uvt_queue_t *q, size_t a, size_t b) {
  void *t = q->items[a];
  q->items[a] = q->items[b];
  q->items[b] = t;
}

static void sift_up(uvt_queue_t *q, size_t i) {
  while (i > 0 && less(q, i, (i - 1) / 2)) {
    swap(q, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
}

static void sift_down(uvt_queue_t *q, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < q->count && less(q, l, m)) m = l;
    if (r < q->count && less(q, r, m)) m = r;
    if (m == i) return;
    swap(q, i, m);
    i = m;
  }
}

/* Remove the heap's element at i. */
static void heap_remove(uvt_queue_t *q, size_t i) {
  q->count--;
  if (i != q->count) {
    q->items[i] = q->items[q->count];
    sift_down(q, i);
    sift_up(q, i);
  }
  q->items[q->count] = NULL;
}

/* ---- the operations --------------------------------------------------------- */

int uvt__qstore_push(uvt_queue_t *q, void *item) {
  int err = store_room(q);
  if (err != 0) return err;
  if (q->order == UVT__QUEUE_PRIORITY) {
    q->items[q->count] = item;
    sift_up(q, q->count++);
    return 0;
  }
  q->items[slot(q, q->count)] = item;
  q->count++;
  return 0;
}

void *uvt__qstore_take(uvt_queue_t *q) {
  void *item;
  if (q->order == UVT__QUEUE_PRIORITY) {
    item = q->items[0];
    heap_remove(q, 0);
  } else if (q->order == UVT__QUEUE_LIFO) {
    size_t at = slot(q, q->count - 1);
    item = q->items[at];
    q->items[at] = NULL;
    q->count--;
  } else {
    item = q->items[q->head];
    q->items[q->head] = NULL;
    q->head = (q->head + 1) % q->alloc;
    q->count--;
  }
  return item;
}

int uvt__qstore_give_back(uvt_queue_t *q, void *item) {
  int err;
  /* LIFO takes from the tail and priority by order: a plain push puts
   * the item where the next get finds it again. */
  if (q->order != UVT__QUEUE_FIFO) return uvt__qstore_push(q, item);
  if ((err = store_room(q)) != 0) return err;
  q->head = (q->head + q->alloc - 1) % q->alloc;
  q->items[q->head] = item;
  q->count++;
  return 0;
}

bool uvt__qstore_take_back(uvt_queue_t *q, void *item) {
  size_t k = q->count;
  if (q->order == UVT__QUEUE_PRIORITY) {
    while (k-- > 0)
      if (q->items[k] == item) {
        heap_remove(q, k);
        return true;
      }
    return false;
  }
  while (k-- > 0) {
    if (q->items[slot(q, k)] != item) continue;
    for (; k + 1 < q->count; k++) q->items[slot(q, k)] = q->items[slot(q, k + 1)];
    q->items[slot(q, q->count - 1)] = NULL;
    q->count--;
    return true;
  }
  return false;
}
