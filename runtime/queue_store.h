/*
 * Where a uvt_queue_t keeps its items, in the order its gets take them.
 *
 * FIFO and LIFO queues keep a ring: items[alloc], the oldest at
 * items[head], `count` of them, wrapping; FIFO takes from the head, LIFO
 * from the tail.  A priority queue keeps a binary min-heap in
 * items[0..count) (head stays 0) ordered by q->compare: its get takes the
 * smallest.  The store grows by doubling (realloc) when it is full, for a
 * bounded queue too: a bounded queue allocates its capacity at init, and
 * goes past it only when a revoked get gives its item back (see
 * sync_queue.c).  Every function runs on the loop thread.
 */
#ifndef UVT_RUNTIME_QUEUE_STORE_H
#define UVT_RUNTIME_QUEUE_STORE_H

#include "internal.h"

enum { UVT__QUEUE_FIFO = 0, UVT__QUEUE_LIFO = 1, UVT__QUEUE_PRIORITY = 2 };

/* Allocate room for `n` items (n > 0): 0 or UVT_ENOMEM. */
int uvt__qstore_reserve(uvt_queue_t *q, size_t n);
/* Add an item (growing if needed): 0 or UVT_ENOMEM. */
int uvt__qstore_push(uvt_queue_t *q, void *item);
/* Remove and return the item a get takes next; count must be > 0. */
void *uvt__qstore_take(uvt_queue_t *q);
/* Give back an item a get took (a revoked get): it is the next taken
 * again.  0 or UVT_ENOMEM. */
int uvt__qstore_give_back(uvt_queue_t *q, void *item);
/* Remove the most recently added item equal to `item` (a revoked put);
 * false if there is none. */
bool uvt__qstore_take_back(uvt_queue_t *q, void *item);

#endif
