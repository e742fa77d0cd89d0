/*
 * FIFO wait queue of stack-allocated waiter nodes; see waitq.h.
 */
#include "waitq.h"

#include <assert.h>

void uvt__waitq_init(uvt__waitq_t *q) {
  q->head = NULL;
  q->tail = NULL;
}

void uvt__waitq_push(uvt__waitq_t *q, uvt__wq_node_t *n) {
  uvt__wq_node_t *tail = q->tail;
  assert(n->q == NULL);
  n->q = q;
  n->next = NULL;
  n->prev = tail;
  if (tail != NULL) tail->next = n;
  else q->head = n;
  q->tail = n;
}

void uvt__waitq_remove(uvt__wq_node_t *n) {
  uvt__waitq_t *q = n->q;
  if (q == NULL) return;
  if (n->prev != NULL) n->prev->next = n->next;
  else q->head = n->next;
  if (n->next != NULL) n->next->prev = n->prev;
  else q->tail = n->prev;
  n->prev = n->next = NULL;
  n->q = NULL;
}

uvt__wq_node_t *uvt__waitq_pop(uvt__waitq_t *q) {
  uvt__wq_node_t *n = q->head;
  if (n != NULL) uvt__waitq_remove(n);
  return n;
}

bool uvt__waitq_grant_first(uvt__waitq_t *q, void *item) {
  uvt__wq_node_t *n = uvt__waitq_pop(q);
  if (n == NULL) return false;
  n->item = item;
  n->granted = 1;
  uvt__wake(n->task, 0);
  return true;
}

void uvt__waitq_wake_all(uvt__waitq_t *q, int status) {
  uvt__wq_node_t *n;
  /* Pop before waking: a woken task only runs in a later pass, but the
   * node must already be off the list when anyone looks at it again. */
  while ((n = uvt__waitq_pop(q)) != NULL) {
    n->granted = (status == 0);
    uvt__wake(n->task, status);
  }
}

/* Cancelled while parked: leave the queue so that no waker can grant us
 * anything any more, then resume with UVT_ECANCELED.  A node that a waker
 * already popped has been answered; its wake came first and this later
 * one is ignored by uvt__wake. */
static void waitq_on_cancel(uvt_task_t *t, void *data) {
  uvt__wq_node_t *n = data;
  if (n->q == NULL) return;
  uvt__waitq_remove(n);
  uvt__wake(t, UVT_ECANCELED);
}

int uvt__waitq_wait(uvt__waitq_t *q, uvt__wq_node_t *n, uvt_task_t *task,
                    const uvt__site_t *site) {
  int st;
  n->prev = n->next = NULL;
  n->q = NULL;
  n->task = task;
  n->site = site;
  n->granted = 0;
  uvt__waitq_push(q, n);
  st = uvt__park_revocable(site, waitq_on_cancel, n);
  /* Still linked when park returned at once with a cancel that was
   * pending; unlinked by the waker or on_cancel otherwise. */
  uvt__waitq_remove(n);
  if (n->granted) {
    if (st != UVT_ECANCELED) return 0;
    /* Granted, then cancelled before we ran: the cancel wins and the
     * grant passes on; if it cannot be taken back, the wait stands and
     * the cancel goes to the next await. */
    if (n->revoke == NULL || n->revoke(n)) return UVT_ECANCELED;
    task->cancel_pending = true;
    return 0;
  }
  assert(st != 0);
  return st;
}
