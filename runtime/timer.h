/*
 * The scheduler's timers: a binary min-heap of deadlines driven by one
 * uv_timer_t per loop.  A sleeping task's node lives in its task struct,
 * so sleeping allocates nothing and cancelling is a heap removal, with no
 * libuv handle to close.  Ties fire in the order they were armed.
 */
#ifndef UVT_RUNTIME_TIMER_H
#define UVT_RUNTIME_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct uvt__timer_s {
  uint64_t due_ms;   /* in uv_now() time */
  uint64_t seq;      /* arming order, breaks ties */
  size_t index;      /* position in the heap; SIZE_MAX when not armed */
  void (*cb)(struct uvt__timer_s *t);
} uvt__timer_t;

typedef struct uvt__timer_heap_s {
  uvt__timer_t **items;
  size_t len, cap;
  uint64_t seq;
} uvt__timer_heap_t;

void uvt__timer_init(uvt__timer_t *t);
/* uvt__timer_init for a timer in zeroed memory (a new task): only the
 * "not armed" mark is not zero. */
static inline void uvt__timer_init_zeroed(uvt__timer_t *t) { t->index = SIZE_MAX; }
int uvt__timer_armed(const uvt__timer_t *t);
/* Returns 0 or UVT_ENOMEM. */
int uvt__heap_push(uvt__timer_heap_t *h, uvt__timer_t *t);
void uvt__heap_remove(uvt__timer_heap_t *h, uvt__timer_t *t);
/* Remove the node at position i without touching the node itself (its
 * memory may be gone: a timeout scope on the stack of a task that ended
 * inside it). */
void uvt__heap_remove_at(uvt__timer_heap_t *h, size_t i);
uvt__timer_t *uvt__heap_top(const uvt__timer_heap_t *h);
void uvt__heap_free(uvt__timer_heap_t *h);

#endif
