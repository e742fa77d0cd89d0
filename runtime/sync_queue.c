/*
 * asyncio.Queue (and LifoQueue, PriorityQueue) of pointers.
 *
 * The items sit in a store (queue_store.h) that gives them back FIFO,
 * LIFO or smallest first.  A bounded queue (capacity > 0) allocates its
 * capacity at init; an unbounded one (capacity 0) grows, so its put never
 * waits but may fail with UVT_ENOMEM.
 *
 * Getters park on `getters` while the store is empty; putters park on
 * `putters` while it is full, each with its item in its waiter node.  Both
 * are handed over directly, which keeps newcomers from barging:
 *   - put when getters wait gives the item to the first getter (it never
 *     enters the store);
 *   - get when putters wait takes its item from the store, then moves the
 *     first putter's item in.
 * Hence the invariants
 *
 *     getters non-empty  =>  count == 0
 *     putters non-empty  =>  capacity > 0 && count >= capacity
 *
 * A cancel wins over a hand-off the waiter has not yet seen, as asyncio's
 * does (test_queues test_get_cancel_drop_many_pending_readers,
 * test_cancelled_put_silence_value_error_exception): a getter handed an
 * item and cancelled before it runs passes the item to the next getter,
 * or gives it back to the store (the next get takes it again); a putter
 * whose item was moved in takes it back out (the last equal pointer: to
 * the readers, equal pointers are the same item) and gives the room to
 * the next putter, unless a getter already took it, in which case the put
 * stands and the cancel goes to its next await.  Giving an item back can
 * leave a bounded queue over its capacity for a while (puts wait until it
 * is below); nothing is lost or duplicated.  A waiter cancelled while
 * still queued leaves no trace.
 *
 * join/task_done: `unfinished` counts items put (into the store or
 * straight to a getter) and not yet marked done; join parks on `joiners`
 * until it is 0.  close: `closed` refuses puts and, once the store is
 * empty, gets; waiters wake with UVT_ECLOSED.
 */
#include "internal.h"
#include "queue_store.h"
#include "waitq.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool queue_valid(const uvt_queue_t *q) {
  return q != NULL && q->magic == UVT__MAGIC_LIVE;
}

static bool queue_full(const uvt_queue_t *q) {
  return q->capacity != 0 && q->count >= q->capacity;
}

/* The store lost an item: move putters' items in while there is room. */
static void queue_admit_putters(uvt_queue_t *q) {
  uvt__wq_node_t *putter;
  while (!queue_full(q) && (putter = uvt__waitq_pop(&q->putters)) != NULL) {
    /* Room was made, or the store grew: cannot fail. */
    (void)uvt__qstore_push(q, putter->item);
    q->unfinished++;
    putter->granted = 1;
    uvt__wake(putter->task, 0);
  }
}

static int queue_init_as(uvt_queue_t *q, size_t capacity, int order,
                         int (*compare)(const void *, const void *)) {
  if (q == NULL) return UVT_EINVAL;
  memset(q, 0, sizeof(*q));
  q->magic = UVT__MAGIC_DEAD; /* until it succeeds */
  uvt__waitq_init(&q->getters);
  uvt__waitq_init(&q->putters);
  uvt__waitq_init(&q->joiners);
  q->capacity = capacity;
  q->order = order;
  q->compare = compare;
  if (capacity != 0 && uvt__qstore_reserve(q, capacity) != 0)
    return UVT_ENOMEM;
  q->magic = UVT__MAGIC_LIVE;
  return 0;
}

int uvt_queue_init(uvt_queue_t *q, size_t capacity) {
  return queue_init_as(q, capacity, UVT__QUEUE_FIFO, NULL);
}

int uvt_queue_init_lifo(uvt_queue_t *q, size_t capacity) {
  return queue_init_as(q, capacity, UVT__QUEUE_LIFO, NULL);
}

int uvt_queue_init_priority(uvt_queue_t *q, size_t capacity,
                            int (*compare)(const void *a, const void *b)) {
  if (compare == NULL) return UVT_EINVAL;
  return queue_init_as(q, capacity, UVT__QUEUE_PRIORITY, compare);
}

/* A getter handed an item and cancelled before it ran: the next getter
 * takes it, else it goes back to the store. */
static bool queue_revoke_get(uvt__wq_node_t *n) {
  uvt_queue_t *q = n->obj;
  if (uvt__waitq_grant_first(&q->getters, n->item)) return true;
  return uvt__qstore_give_back(q, n->item) == 0;
}

/* A putter whose item was moved in and which was cancelled before it
 * ran: take the item back out, unless a getter already took it. */
static bool queue_revoke_put(uvt__wq_node_t *n) {
  uvt_queue_t *q = n->obj;
  if (!uvt__qstore_take_back(q, n->item)) return false;
  q->unfinished--;
  queue_admit_putters(q);
  return true;
}

/* put without waiting: 0, UVT_EAGAIN when full, UVT_ECLOSED, UVT_ENOMEM. */
static int queue_put_now(uvt_queue_t *q, void *item) {
  int err;
  if (q->closed) return UVT_ECLOSED;
  if (uvt__waitq_grant_first(&q->getters, item)) {
    q->unfinished++;
    return 0;
  }
  if (queue_full(q)) return UVT_EAGAIN;
  if ((err = uvt__qstore_push(q, item)) == 0) q->unfinished++;
  return err;
}

int uvt_queue_put_nowait_at(uvt_queue_t *q, void *item,
                            const char *file, int line, const char *func) {
  int err;
  if (!queue_valid(q)) return UVT_EINVAL;
  (void)func;
  if ((err = uvt__loop_check(&q->loop, "uvt_queue_put_nowait", file, line))) return err;
  return queue_put_now(q, item);
}

int uvt_queue_put_at(uvt_queue_t *q, void *item, const char *file, int line,
                     const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_queue_put", UVT_WAIT_QUEUE_PUT, q, false);
  uvt__wq_node_t node = {0};
  uvt_task_t *self;
  int err;

  if (!queue_valid(q)) return UVT_EINVAL;
  self = uvt__task_current();
  if (self == NULL) return uvt__no_task_here(&q->loop, "uvt_queue_put", file, line);
  if (q->loop == NULL) q->loop = self->sched->loop;
  UVT__YIELD_POINT(self, "uvt_queue_put");
  if ((err = queue_put_now(q, item)) != UVT_EAGAIN) return err;
  /* Full: wait for a getter to move our item in (0), or for a cancel (the
   * store is untouched), a close or destroy. */
  node.item = item;
  node.revoke = queue_revoke_put;
  node.obj = q;
  return uvt__waitq_wait(&q->putters, &node, self, &site);
}

/* get without waiting: 0, UVT_EAGAIN when empty, UVT_ECLOSED when empty
 * and closed. */
static int queue_get_now(uvt_queue_t *q, void **item) {
  if (q->count == 0) return q->closed ? UVT_ECLOSED : UVT_EAGAIN;
  *item = uvt__qstore_take(q);
  queue_admit_putters(q);
  return 0;
}

int uvt_queue_get_nowait_at(uvt_queue_t *q, void **item,
                            const char *file, int line, const char *func) {
  int err;
  if (!queue_valid(q) || item == NULL) return UVT_EINVAL;
  (void)func;
  if ((err = uvt__loop_check(&q->loop, "uvt_queue_get_nowait", file, line))) return err;
  return queue_get_now(q, item);
}

int uvt_queue_get_at(uvt_queue_t *q, void **item, const char *file, int line,
                     const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_queue_get", UVT_WAIT_QUEUE_GET, q, false);
  uvt__wq_node_t node = {0};
  uvt_task_t *self;
  int st;

  if (!queue_valid(q) || item == NULL) return UVT_EINVAL;
  self = uvt__task_current();
  if (self == NULL) return uvt__no_task_here(&q->loop, "uvt_queue_get", file, line);
  if (q->loop == NULL) q->loop = self->sched->loop;
  UVT__YIELD_POINT(self, "uvt_queue_get");
  if ((st = queue_get_now(q, item)) != UVT_EAGAIN) return st;
  node.revoke = queue_revoke_get;
  node.obj = q;
  st = uvt__waitq_wait(&q->getters, &node, self, &site);
  if (st == 0) *item = node.item;
  return st;
}

int uvt_queue_task_done_at(uvt_queue_t *q,
                           const char *file, int line, const char *func) {
  int err;
  if (!queue_valid(q)) return UVT_EINVAL;
  (void)func;
  if ((err = uvt__loop_check(&q->loop, "uvt_queue_task_done", file, line))) return err;
  if (q->unfinished == 0) return UVT_EINVAL;
  if (--q->unfinished == 0) uvt__waitq_wake_all(&q->joiners, 0);
  return 0;
}

int uvt_queue_join_at(uvt_queue_t *q, const char *file, int line,
                      const char *func) {
  uvt__site_t site = UVT__SITE_ON("uvt_queue_join", UVT_WAIT_QUEUE_JOIN, q, false);
  uvt__wq_node_t node = {0};
  uvt_task_t *self;

  if (!queue_valid(q)) return UVT_EINVAL;
  self = uvt__task_current();
  if (self == NULL) return uvt__no_task_here(&q->loop, "uvt_queue_join", file, line);
  if (q->loop == NULL) q->loop = self->sched->loop;
  UVT__YIELD_POINT(self, "uvt_queue_join");
  if (q->unfinished == 0) return 0;
  return uvt__waitq_wait(&q->joiners, &node, self, &site);
}

void uvt_queue_close_at(uvt_queue_t *q,
                        const char *file, int line, const char *func) {
  (void)func;
  if (!queue_valid(q) || uvt__loop_check(&q->loop, "uvt_queue_close", file, line)) return;
  if (q->closed) return;
  q->closed = 1;
  /* Getters wait only on an empty store: none will ever come now. */
  uvt__waitq_wake_all(&q->getters, UVT_ECLOSED);
  uvt__waitq_wake_all(&q->putters, UVT_ECLOSED);
}

size_t uvt_queue_size(const uvt_queue_t *q) {
  return queue_valid(q) ? q->count : 0;
}

void uvt_queue_destroy_at(uvt_queue_t *q,
                          const char *file, int line, const char *func) {
  (void)func;
  if (!queue_valid(q) || uvt__loop_check(&q->loop, "uvt_queue_destroy", file, line)) return;
  uvt__waitq_wake_all(&q->getters, UVT_ECLOSED);
  uvt__waitq_wake_all(&q->putters, UVT_ECLOSED);
  uvt__waitq_wake_all(&q->joiners, UVT_ECLOSED);
  free(q->items);
  q->items = NULL;
  q->alloc = q->head = q->count = 0;
  q->magic = UVT__MAGIC_DEAD;
}

/* The plain symbols of 0.2.0, for programs built before the header's
 * macros passed the caller's location (reported as unknown). */
int (uvt_queue_put_nowait)(uvt_queue_t *q, void *item) {
  return uvt_queue_put_nowait_at(q, item, NULL, 0, NULL);
}
int (uvt_queue_get_nowait)(uvt_queue_t *q, void **item) {
  return uvt_queue_get_nowait_at(q, item, NULL, 0, NULL);
}
int (uvt_queue_task_done)(uvt_queue_t *q) {
  return uvt_queue_task_done_at(q, NULL, 0, NULL);
}
void (uvt_queue_close)(uvt_queue_t *q) { uvt_queue_close_at(q, NULL, 0, NULL); }
void (uvt_queue_destroy)(uvt_queue_t *q) {
  uvt_queue_destroy_at(q, NULL, 0, NULL);
}
