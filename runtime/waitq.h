/*
 * The wait queue behind the lock, event, semaphore and queue.
 *
 * A uvt__waitq_t (declared in uvtask.h so that it can sit inside the
 * caller-owned sync structs) is a FIFO of waiter nodes.  A node lives on
 * the stack of the task that waits, for exactly as long as that task is
 * inside uvt__waitq_wait(); the queue never allocates.  The list is doubly
 * linked so that a waiter that is cancelled while parked unlinks itself in
 * O(1) from its on_cancel callback, wherever it is in the queue.
 *
 * Who does what:
 *   - the waiting task fills the node, then calls uvt__waitq_wait(), which
 *     links it at the tail, parks, and unlinks it again if it is still
 *     linked when the task resumes (a cancel that was pending before the
 *     park, for instance);
 *   - a waker takes the node off with uvt__waitq_pop() (so that a node is
 *     linked exactly while nobody has answered it), records the answer in
 *     it (`granted`, and `item` for the queue) and wakes its task;
 *   - a cancel while parked unlinks the node and wakes the task with
 *     UVT_ECANCELED; a node that was already popped is not touched.
 *
 * Invariant: a node is linked iff node->q != NULL, and then it is on the
 * list of *node->q.  `granted` is set only by the waker that popped it.  A
 * granted waiter cancelled before it runs again returns UVT_ECANCELED, as
 * asyncio's do, after its revoke hook has passed the grant on: nothing is
 * lost or duplicated.
 */
#ifndef UVT_RUNTIME_WAITQ_H
#define UVT_RUNTIME_WAITQ_H

#include "internal.h"

typedef struct uvt__wq_node_s {
  struct uvt__wq_node_s *prev, *next;
  uvt__waitq_t *q;  /* the queue it is linked on; NULL when unlinked */
  uvt_task_t *task; /* the parked task */
  void *item;       /* queue: the item to put, or the item handed over */
  int granted;      /* set by the waker: the wait succeeded */
  const uvt__site_t *site; /* where the waiter waits (its acquire call) */
  /* Granted, then cancelled before it ran again: the cancel wins and this
   * passes the grant on (the lock or permit to the next waiter, the item
   * to the next getter or back to the queue's front, a put taken back).
   * Returns false if it cannot (an item already taken by a getter): the
   * wait then stands and the cancel waits for the next await.  NULL:
   * nothing to pass on (an event). */
  bool (*revoke)(struct uvt__wq_node_s *n);
  void *obj;        /* the lock, semaphore or queue, for revoke */
} uvt__wq_node_t;

void uvt__waitq_init(uvt__waitq_t *q);

/* Link `n` at the tail of `q`.  `n` must not be linked. */
void uvt__waitq_push(uvt__waitq_t *q, uvt__wq_node_t *n);
/* Unlink `n` from the queue it is on; a no-op if it is not linked. */
void uvt__waitq_remove(uvt__wq_node_t *n);
/* Unlink and return the first node, or NULL when the queue is empty. */
uvt__wq_node_t *uvt__waitq_pop(uvt__waitq_t *q);

/* Answer the first waiter: pop it, mark it granted with `item`, wake it
 * with 0.  Returns false (and does nothing) when nobody waits. */
bool uvt__waitq_grant_first(uvt__waitq_t *q, void *item);
/* Pop every waiter and wake each with `status`, in order; granted when
 * status is 0.  Used by event set (0) and by destroy (UVT_ECLOSED). */
void uvt__waitq_wake_all(uvt__waitq_t *q, int status);

/* Park the current task `task` as waiter `n` on `q` (n->item, n->revoke
 * and n->obj are kept, n->granted is reset).  Returns 0 if a waker granted
 * the wait, else UVT_ECANCELED (also when the grant came first but the
 * cancel came before the task ran: then n->revoke has passed it on) or
 * UVT_ECLOSED.  `n` is unlinked on return.  After UVT_ECLOSED the object
 * that holds `q` may be gone. */
int uvt__waitq_wait(uvt__waitq_t *q, uvt__wq_node_t *n, uvt_task_t *task,
                    const uvt__site_t *site);

#endif
