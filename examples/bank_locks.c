/*
 * bank_locks — two locks taken in opposite orders.
 *
 * The bug: a transfer locks the paying account, reads the ledger (which
 * awaits), then locks the receiving account.  alice -> bob takes alice's
 * lock, then bob's; bob -> alice takes bob's, then alice's.  One after the
 * other they are fine, and every test that runs them so passes.  Run at
 * the same moment, each takes its first lock, parks in the ledger read,
 * and then waits for the lock the other one holds: neither can go on.
 *
 * The talk's transfer (a yield point between a check and an update) and
 * its lock scenario combined: here the lock is there, and the yield point
 * between the two acquires is what lets the other transfer in.
 *
 * This program runs the two transfers one after the other first (no
 * deadlock), then at the same moment: in the buggy version they deadlock,
 * which main sees (each transfer is waiting for its second lock, which the
 * other holds) and ends by cancelling them.
 *
 * The fix (--fixed): lock the two accounts in one global order, by account
 * id, whichever way the money goes.
 *
 * Finding (debug variant): lock-order-inversion at the second acquire in
 * transfer(), as soon as the second sequential transfer takes the locks
 * the other way round: before any deadlock happens.
 */

#include <stdio.h>
#include <string.h>
#include <uvtask.h>

#define CHECK_MS 10 /* how often main looks at the transfers */

typedef struct {
  int id; /* the global lock order of the fix */
  const char *name;
  long cents;
  uvt_lock_t lock;
} account_t;

typedef struct {
  account_t *from, *to;
  long cents;
  bool fixed;
  bool waits_for_second; /* parked in the second acquire */
} transfer_t;

/* Read an account's entries from the ledger: a yield point, as a
 * database query would be (a yield keeps the example's interleaving
 * exact, whatever the machine's load; a query would park for a while). */
static int ledger_read(const account_t *a) {
  (void)a;
  return uvt_yield();
}

static int transfer(void *arg) {
  transfer_t *tr = arg;
  account_t *first = tr->from, *second = tr->to;
  int err;
  if (tr->fixed && second->id < first->id) {
    first = tr->to; /* the fix: the lower id first, always */
    second = tr->from;
  }
  if ((err = uvt_lock_acquire(&first->lock)) != 0) return err;
  err = ledger_read(first);
  tr->waits_for_second = true;
  if (err == 0) err = uvt_lock_acquire(&second->lock); /* the second lock */
  tr->waits_for_second = false;
  if (err == 0) {
    tr->from->cents -= tr->cents;
    tr->to->cents += tr->cents;
    printf("  %s paid %ld.%02ld to %s\n", tr->from->name, tr->cents / 100,
           tr->cents % 100, tr->to->name);
    uvt_lock_release(&second->lock);
  }
  uvt_lock_release(&first->lock);
  return err;
}

static int bank(void *arg) {
  bool fixed = *(bool *)arg;
  account_t alice, bob;
  transfer_t tr[2] = {{&alice, &bob, 2500, false, false}, {&bob, &alice, 1000, false, false}};
  uvt_task_t *t[2];
  size_t done = 0;
  int i, st;

  memset(&alice, 0, sizeof(alice));
  memset(&bob, 0, sizeof(bob));
  alice.id = 1, alice.name = "alice", alice.cents = 10000;
  bob.id = 2, bob.name = "bob", bob.cents = 10000;
  uvt_lock_init(&alice.lock);
  uvt_lock_init(&bob.lock);
  tr[0].fixed = tr[1].fixed = fixed;
  printf("one after the other:\n");
  for (i = 0; i < 2; i++) {
    t[i] = uvt_spawn(transfer, &tr[i]);
    if ((st = uvt_await(t[i])) != 0) printf("  transfer %d failed: %s\n", i, uvt_strerror(st));
  }
  printf("at the same moment:\n");
  for (i = 0; i < 2; i++) t[i] = uvt_spawn(transfer, &tr[i]);
  /* Both parked in their second acquire: each waits for the lock the
   * other holds, and nothing will ever release one.  (The fix never gets
   * there: whoever holds the first lock in the order finds the second one
   * free, and takes it without parking.) */
  while ((st = uvt_wait(t, 2, UVT_ALL_COMPLETED, CHECK_MS, &done)) == UVT_ETIMEDOUT) {
    if (tr[0].waits_for_second && tr[1].waits_for_second) {
      printf("BUG: %zu of 2 transfers finished: each holds one account's lock "
             "and waits for the other's (a deadlock); cancelling them\n", done);
      for (i = 0; i < 2; i++) uvt_cancel(t[i]);
      break;
    }
  }
  for (i = 0; i < 2; i++) uvt_await(t[i]);
  printf("balances: alice %ld.%02ld, bob %ld.%02ld\n", alice.cents / 100,
         alice.cents % 100, bob.cents / 100, bob.cents % 100);
  uvt_lock_destroy(&alice.lock);
  uvt_lock_destroy(&bob.lock);
  return 0;
}

int main(int argc, char **argv) {
  bool fixed = argc > 1 && strcmp(argv[1], "--fixed") == 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  return uvt_run(NULL, bank, &fixed) == 0 ? 0 : 1;
}
