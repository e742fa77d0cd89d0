/*
 * transfer — the yield-points bug.
 *
 * The bug: the lines that check the payer's funds and move the money must
 * run without interruption, and say so in a comment.  Someone later adds a
 * currency-rate lookup in the middle, and the lookup awaits.  While one
 * transfer is parked in it, a second one runs the same check against the
 * same, not yet debited balance: two transfers that each fit the balance,
 * but not together, both go through and the account is overdrawn.
 *
 * The asyncio original ("asyncio vs gevent", Yield Points):
 *
 *     @coroutine
 *     def transfer(amount, payer, payee, server):
 *         # WARNING! WARNING! WARNING!
 *         # Do not insert yield points between following lines
 *         if not payer.sufficient_funds_for_withdrawl(amount):
 *             raise InsufficientFunds()
 *         payee.deposit(amount)
 *         currency_rate = get_currency_rate()
 *         payer.withdraw(amount/currency_rate)  # !!!
 *
 * Here the comment is code: UVT_NO_YIELD_BEGIN/END around the block.
 *
 * The fix (--fixed): look the rate up before the section, so nothing inside
 * it awaits; the second transfer then sees the debited balance and is
 * refused.
 *
 * Finding (debug variant): yield-in-critical-section, at the
 * get_currency_rate() call inside transfer_buggy's section.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uvtask.h>

#define E_INSUFFICIENT_FUNDS (-40001) /* ours; collides with no UV_E* */

typedef struct {
  const char *name;
  const char *currency;
  long cents;
} account_t;

typedef struct {
  account_t *payer, *payee;
  long cents; /* in the payer's currency */
} transfer_t;

/* "-60.00 USD" into buf. */
static const char *money(char buf[32], long cents, const char *currency) {
  snprintf(buf, 32, "%s%ld.%02ld %s", cents < 0 ? "-" : "", labs(cents) / 100,
           labs(cents) % 100, currency);
  return buf;
}

/* One USD in `currency`, in millionths.  It awaits, as asking a rate
 * service over the network would. */
static int get_currency_rate(const char *currency, long *ppm) {
  int err = uvt_sleep(10);
  *ppm = strcmp(currency, "EUR") == 0 ? 920000 : 1000000;
  return err;
}

static int insufficient(const transfer_t *tr) {
  return uvt_fail(E_INSUFFICIENT_FUNDS, "%s has insufficient funds",
                  tr->payer->name);
}

static void move_money(const transfer_t *tr, long rate_ppm) {
  tr->payee->cents += tr->cents * rate_ppm / 1000000;
  tr->payer->cents -= tr->cents;
  printf("%s received payment from %s\n", tr->payee->name, tr->payer->name);
}

static int transfer_buggy(void *arg) {
  transfer_t *tr = arg;
  long rate;
  int err;

  UVT_NO_YIELD_BEGIN();
  /* WARNING! Do not insert yield points between the following lines. */
  if (tr->payer->cents < tr->cents) {
    UVT_NO_YIELD_END();
    return insufficient(tr);
  }
  printf("%s has sufficient funds for %s\n", tr->payer->name, tr->payee->name);
  err = get_currency_rate(tr->payee->currency, &rate); /* a yield point! */
  if (err == 0) move_money(tr, rate);
  UVT_NO_YIELD_END();
  return err;
}

static int transfer_fixed(void *arg) {
  transfer_t *tr = arg;
  long rate;
  int err = get_currency_rate(tr->payee->currency, &rate);
  if (err != 0) return err;

  UVT_NO_YIELD_BEGIN();
  /* WARNING! Do not insert yield points between the following lines. */
  if (tr->payer->cents < tr->cents) {
    UVT_NO_YIELD_END();
    return insufficient(tr);
  }
  printf("%s has sufficient funds for %s\n", tr->payer->name, tr->payee->name);
  move_money(tr, rate);
  UVT_NO_YIELD_END();
  return 0;
}

static int bank(void *arg) {
  bool fixed = *(bool *)arg;
  account_t alice = {"alice", "USD", 10000};
  account_t bob = {"bob", "EUR", 0}, carol = {"carol", "EUR", 0};
  account_t *all[] = {&alice, &bob, &carol};
  transfer_t tr[2] = {{&alice, &bob, 8000}, {&alice, &carol, 8000}};
  uvt_task_t *t[2];
  char buf[32];
  int i;

  printf("alice (100.00 USD) pays 80.00 USD to bob and to carol, "
         "concurrently\n");
  for (i = 0; i < 2; i++)
    t[i] = fixed ? uvt_spawn(transfer_fixed, &tr[i])
                 : uvt_spawn(transfer_buggy, &tr[i]);
  for (i = 0; i < 2; i++) {
    char *msg = NULL;
    if (uvt_await_result(t[i], NULL, &msg) != 0)
      printf("transfer to %s refused: %s\n", tr[i].payee->name,
             msg != NULL ? msg : "?");
    free(msg);
  }
  printf("balances:");
  for (i = 0; i < 3; i++)
    printf("  %s %s", all[i]->name,
           money(buf, all[i]->cents, all[i]->currency));
  printf("\n");
  if (alice.cents < 0)
    printf("BUG: alice is overdrawn: both transfers passed the funds check "
           "before either withdrew\n");
  return 0;
}

int main(int argc, char **argv) {
  bool fixed = argc > 1 && strcmp(argv[1], "--fixed") == 0;
  /* Line-buffered, so our lines and uvt_run's warnings on stderr come
   * out in the order they happened. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  return uvt_run(NULL, bank, &fixed) == 0 ? 0 : 1;
}
