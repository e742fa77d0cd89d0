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
 *     putters non-empty  =>  capacity > 0 && count >= capacity
 *
 * A cancel wins over a hand-off the waiter has not yet seen, as asyncio's
 * does (test_queues test_get_cancel_drop_many_pending_readers,
 * test_cancelled_put_silence_value_error_exception): a getter handed an
 * item and cancelled before it runs passes the item to the next getter,
 * or puts it back at the front of the ring; a putter whose item was moved
 * in takes it back out (the last equal pointer from the tail: to the
 * readers, equal pointers are the same item) and gives the slot to the
 * next putter, unless a getter already took it, in which case the put
 * stands and the cancel goes to its next await.  Putting an item back can
 * leave a bounded queue over its capacity for a while (puts wait until it
 * is below); nothing is lost or duplicated.  A waiter cancelled while
 * still queued leaves no trace.
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
  return q->capacity != 0 && q->count >= q->capacity;
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

/* Put an item back at the front (a revoked get); grows the ring if it is
 * full, bounded or not.  0 or UVT_ENOMEM. */
static int queue_unshift(uvt_queue_t *q, void *item) {
  if (q->count == q->alloc) {
    int err = queue_grow(q);
    if (err != 0) return err;
  }
  q->head = (q->head + q->alloc - 1) % q->alloc;
  q->items[q->head] = item;
  q->count++;
  return 0;
}

/* Take the last item equal to `item` out of the ring; false if none. */
static bool queue_take_back(uvt_queue_t *q, void *item) {
  size_t k = q->count;
  while (k-- > 0) {
    size_t at = (q->head + k) % q->alloc;
    if (q->items[at] != item) continue;
    for (; k + 1 < q->count; k++)
      q->items[(q->head + k) % q->alloc] = q->items[(q->head + k + 1) % q->alloc];
    q->items[(q->head + q->count - 1) % q->alloc] = NULL;
    q->count--;
    return true;
  }
  return false;
}

/* After the ring lost an item: move the first putter's item in, while
 * there is room. */
static void queue_admit_putters(uvt_queue_t *q) {
  uvt__wq_node_t *putter;
  while (!queue_full(q) && (putter = uvt__waitq_pop(&q->putters)) != NULL) {
    /* The slot just freed takes the putter's item; cannot fail. */
    (void)queue_push(q, putter->item);
    putter->granted = 1;
    uvt__wake(putter->task, 0);
  }
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

/* A getter handed an item and cancelled before it ran: the next getter
 * takes it, else it goes back to the front. */
static bool queue_revoke_get(uvt__wq_node_t *n) {
  uvt_queue_t *q = n->obj;
  if (uvt__waitq_grant_first(&q->getters, n->item)) return true;
  return queue_unshift(q, n->item) == 0;
}

/* A putter whose item was moved in and which was cancelled before it
 * ran: take the item back out, unless a getter already took it. */
static bool queue_revoke_put(uvt__wq_node_t *n) {
  uvt_queue_t *q = n->obj;
  if (!queue_take_back(q, n->item)) return false;
  queue_admit_putters(q);
  return true;
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
  node.revoke = queue_revoke_put;
  node.obj = q;
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
    *item = queue_shift(q);
    queue_admit_putters(q);
    return 0;
  }
  node.revoke = queue_revoke_get;
  node.obj = q;
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
