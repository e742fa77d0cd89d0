/*
 * asyncio.Queue of pointers.
 *
 * The items sit in a ring: items[alloc], the oldest at items[head], `count`
 * of them, wrapping.  A bounded queue (capacity > 0) allocates its ring
 * once, at init, with alloc == capacity; an unbounded one (capacity 0)
 * starts with no ring and doubles it (realloc, unwrapping the items) when
 * it fills, so its put never waits but may fail with UVT_ENOMEM.
 *
 * Getters park on `getters` while the ring is empty; putters park on
 * `putters` while it is full, each with its item in its waiter node.  Both
 * are handed over directly, which keeps items in FIFO order and keeps
 * newcomers from barging:
 *   - put when getters wait gives the item to the first getter (it never
 *     enters the ring);
 *   - get when putters wait takes the oldest item from the ring, then
 *     moves the first putter's item into the slot that freed up.
 * Hence the invariants
 *
 *     getters non-empty  =>  count == 0
 *     putters non-empty  =>  capacity > 0 && count == capacity
 *
 * A waiter that was handed its item (or whose item was moved in) owns the
 * result even if it is cancelled before it runs again: nothing is lost or
 * duplicated.  A waiter cancelled while still queued leaves no trace.
 */
#include "internal.h"
#include "waitq.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_MIN_ALLOC 16

static bool queue_valid(const uvt_queue_t *q) {
  return q != NULL && q->magic == UVT__MAGIC_LIVE;
}

static bool queue_full(const uvt_queue_t *q) {
  return q->capacity != 0 && q->count == q->capacity;
}

/* Double the ring of an unbounded queue, copying the items to the front
 * of the new one in order.  Returns 0 or UVT_ENOMEM (the queue as it was). */
static int queue_grow(uvt_queue_t *q) {
  size_t alloc = q->alloc ? q->alloc * 2 : QUEUE_MIN_ALLOC;
  size_t first;
  void **items;

  if (alloc < q->alloc || alloc > SIZE_MAX / sizeof(*items))
    return UVT_ENOMEM;
  items = realloc(q->items, alloc * sizeof(*items));
  if (items == NULL) return UVT_ENOMEM;
  /* The part that wrapped around, items[0 .. head+count-alloc), moves to
   * just after the old end, so that the ring reads head.. in order. */
  first = q->alloc - q->head;
  if (q->count > first) {
    size_t wrapped = q->count - first;
    size_t i;
    for (i = 0; i < wrapped; i++) items[q->alloc + i] = items[i];
  }
  q->items = items;
  q->alloc = alloc;
  return 0;
}

/* Append to the ring; there must be room or the queue must be unbounded. */
static int queue_push(uvt_queue_t *q, void *item) {
  if (q->count == q->alloc) {
    int err = queue_grow(q);
    if (err != 0) return err;
  }
  q->items[(q->head + q->count) % q->alloc] = item;
  q->count++;
  return 0;
}

static void *queue_shift(uvt_queue_t *q) {
  void *item = q->items[q->head];
  q->items[q->head] = NULL;
  q->head = (q->head + 1) % q->alloc;
  q->count--;
  return item;
}

int uvt_queue_init(uvt_queue_t *q, size_t capacity) {
  if (q == NULL) return UVT_EINVAL;
  memset(q, 0, sizeof(*q));
  q->magic = UVT__MAGIC_DEAD; /* until it succeeds */
  uvt__waitq_init(&q->joiners);
  uvt__waitq_init(&q->getters);
  uvt__waitq_init(&q->putters);
  q->items = NULL;
  q->capacity = capacity;
  q->alloc = 0;
  q->head = 0;
  q->count = 0;
  if (capacity != 0) {
    if (capacity > SIZE_MAX / sizeof(*q->items)) return UVT_ENOMEM;
    q->items = calloc(capacity, sizeof(*q->items));
    if (q->items == NULL) return UVT_ENOMEM;
    q->alloc = capacity;
  }
  q->magic = UVT__MAGIC_LIVE;
  return 0;
}

int uvt_queue_put_at(uvt_queue_t *q, void *item, const char *file, int line,
                     const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_queue_put", UVT_WAIT_QUEUE_PUT, q, false);
  uvt__wq_node_t node = {0};
  uvt_task_t *self;

  if (!queue_valid(q)) return UVT_EINVAL;
  self = uvt__task_current();
  if (self == NULL) return UVT_ENOTASK;
  if (q->loop == NULL) q->loop = self->sched->loop;
  if (uvt__waitq_grant_first(&q->getters, item)) return 0;
  if (!queue_full(q)) return queue_push(q, item);
  /* Full: wait for a getter to move our item into the ring (0), or for a
   * cancel (the ring is untouched) or destroy. */
  node.item = item;
  return uvt__waitq_wait(&q->putters, &node, self, &site);
}

int uvt_queue_get_at(uvt_queue_t *q, void **item, const char *file, int line,
                     const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_queue_get", UVT_WAIT_QUEUE_GET, q, false);
  uvt__wq_node_t node = {0};
  uvt_task_t *self;
  int st;

  if (!queue_valid(q) || item == NULL) return UVT_EINVAL;
  self = uvt__task_current();
  if (self == NULL) return UVT_ENOTASK;
  if (q->loop == NULL) q->loop = self->sched->loop;
  if (q->count > 0) {
    uvt__wq_node_t *putter;
    *item = queue_shift(q);
    putter = uvt__waitq_pop(&q->putters);
    if (putter != NULL) {
      /* The slot just freed takes the putter's item; cannot fail. */
      (void)queue_push(q, putter->item);
      putter->granted = 1;
      uvt__wake(putter->task, 0);
    }
    return 0;
  }
  st = uvt__waitq_wait(&q->getters, &node, self, &site);
  if (st == 0) *item = node.item;
  return st;
}

size_t uvt_queue_size(const uvt_queue_t *q) {
  return queue_valid(q) ? q->count : 0;
}

void uvt_queue_destroy(uvt_queue_t *q) {
  if (!queue_valid(q)) return;
  uvt__waitq_wake_all(&q->getters, UVT_ECLOSED);
  uvt__waitq_wake_all(&q->putters, UVT_ECLOSED);
  free(q->items);
  q->items = NULL;
  q->alloc = q->head = q->count = 0;
  q->magic = UVT__MAGIC_DEAD;
}
