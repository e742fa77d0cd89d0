/*
 * hang_scenario — programs that hang (or look as if they might), for the
 * deadlock and stall tests (tests/test_hangs.c), which read what they
 * print on stderr while they still run, then kill them.
 *
 *   hang_scenario SCENARIO
 *
 * Deadlocks (each prints "ready" on stdout once its tasks are set up, and
 * then hangs, as asyncio would):
 *   locks2    'alice' holds L1 and waits for L2, 'bob' holds L2, waits L1
 *   locks3    three tasks, three locks, each waits for the next one's
 *   await2    'ping' awaits 'pong', which awaits 'ping'
 *   parent    main awaits 'outer', which awaits 'inner', which awaits main
 *   gather    'boss' gathers 'w1' and 'w2'; 'w2' awaits 'boss'
 *   relock    'greedy' acquires a lock it already holds
 *   waitfor   as await2, but 'pong' awaits with uvt_wait_for(50): once
 *             the time is up, it cancels 'ping' and waits for it to end,
 *             with no limit, while 'ping' awaits 'pong'
 *   ringN     N tasks 'ring0'..: each holds its own lock and waits for
 *             the next one's (N = 100, 1000, ...: longer than any fixed
 *             depth)
 *   aringN    N tasks, each awaiting the next one
 * Not deadlocks (each ends by itself, with status 0):
 *   timeout   as await2, but 'pong' waits with a time limit (uvt_wait)
 *   first     'boss' waits FIRST_COMPLETED on 'w1' (sleeping) and 'w2',
 *             and 'w2' awaits 'boss'
 * Stalls (run with a small ASYNCIODEBUG_STALL_MS; they hang):
 *   event     main waits for an event that nothing will set
 *   lockgone  'quitter' returns holding a lock, main then acquires it
 *   queue     'consumer' waits on a queue nothing feeds
 * Not stalls (each ends by itself, with status 0, after about a second
 * with tasks parked and nothing ready):
 *   server    main waits for an event its connection handler sets; the
 *             server is in accept until a thread connects and writes
 *   sleeps    three tasks in a long sleep
 *   pool      main awaits slow thread-pool work
 *   qtimer    'consumer' waits on a queue that the program's own
 *             uv_timer_t feeds
 *   signal    main waits for an event that the program's own uv_signal_t
 *             callback sets (a thread raises the signal)
 *   spawnon   no uvt_run: the program's own uv_run, a task spawned with
 *             uvt_spawn_on waits for an event that the program's own
 *             repeating timer sets at its fifth tick
 * Lines the tests look for carry a marker comment: "@name".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uvtask.h>

static uvt_lock_t locks[3];
static uvt_task_t *peer[3];
static int ready;

/* Every task of the scenario has reached its first lock or spawn. */
static void arrive(int n) {
  if (++ready == n) {
    printf("ready\n");
    fflush(stdout);
  }
}

/* ---- lock cycles ---------------------------------------------------------- */

typedef struct {
  int first, second, n;
} lock_pair_t;

static int lock_taker(void *arg) {
  const lock_pair_t *p = arg;
  uvt_lock_acquire(&locks[p->first]); /* @first-lock */
  arrive(p->n);
  /* Let every other task take its first lock. */
  uvt_yield();
  uvt_lock_acquire(&locks[p->second]); /* @second-lock */
  uvt_lock_release(&locks[p->second]);
  uvt_lock_release(&locks[p->first]);
  return 0;
}

static int run_locks(int n) {
  static const char *const names[3] = {"alice", "bob", "carol"};
  static lock_pair_t pairs[3];
  uvt_task_t *t[3];
  int i;
  for (i = 0; i < n; i++) {
    uvt_lock_init(&locks[i]);
    pairs[i] = (lock_pair_t){i, (i + 1) % n, n};
    t[i] = uvt_spawn(lock_taker, &pairs[i]); /* @lock-spawn */
    uvt_name(t[i], "%s", names[i]);
  }
  for (i = 0; i < n; i++) uvt_await(t[i]);
  return 0;
}

/* ---- long cycles --------------------------------------------------------- */

static int ring_n;
static uvt_lock_t *ring_locks;
static uvt_task_t **ring_tasks;

static int ring_taker(void *arg) {
  int i = (int)(intptr_t)arg;
  uvt_lock_acquire(&ring_locks[i]);
  arrive(ring_n);
  /* Let every other task take its own lock. */
  uvt_yield();
  uvt_lock_acquire(&ring_locks[(i + 1) % ring_n]); /* @ring-lock */
  uvt_lock_release(&ring_locks[(i + 1) % ring_n]);
  uvt_lock_release(&ring_locks[i]);
  return 0;
}

static int ring_awaiter(void *arg) {
  int i = (int)(intptr_t)arg;
  arrive(ring_n);
  return uvt_await(ring_tasks[(i + 1) % ring_n]); /* @ring-await */
}

static int run_ring(int n, bool awaits) {
  int i;
  ring_n = n;
  ring_locks = calloc((size_t)n, sizeof(*ring_locks));
  ring_tasks = calloc((size_t)n, sizeof(*ring_tasks));
  if (ring_locks == NULL || ring_tasks == NULL) return -1;
  for (i = 0; i < n; i++) {
    uvt_lock_init(&ring_locks[i]);
    ring_tasks[i] = uvt_spawn(awaits ? ring_awaiter : ring_taker, (void *)(intptr_t)i);
    uvt_name(ring_tasks[i], "ring%d", i);
    /* Each is awaited by the one before it, and by main. */
    if (awaits && uvt_task_ref(ring_tasks[i]) == NULL) return -1;
  }
  for (i = 0; i < n; i++) uvt_await(ring_tasks[i]);
  return 0;
}

/* ---- awaits ------------------------------------------------------------------ */

static int timeout_mode;

static int pong(void *arg) {
  (void)arg;
  arrive(2);
  if (timeout_mode == 1) {
    /* A time limit: not a deadlock edge; pong then ends, and so does
     * ping. */
    int st = uvt_wait(&peer[0], 1, UVT_ALL_COMPLETED, 50, NULL); /* @pong-timed */
    uvt_detach(peer[0]);
    return st == UVT_ETIMEDOUT ? 0 : -1;
  }
  if (timeout_mode == 2)
    /* After the time limit, wait_for cancels ping and waits for it to
     * end, with no limit: but ping awaits pong. */
    return uvt_wait_for(peer[0], 50); /* @pong-wait-for */
  return uvt_await(peer[0]); /* @pong-awaits */
}

static int ping(void *arg) {
  (void)arg;
  arrive(2);
  return uvt_await(peer[1]); /* @ping-awaits */
}

static int run_await2(void) {
  uvt_task_t *a = uvt_spawn(ping, NULL), *b = uvt_spawn(pong, NULL);
  /* Each awaits the other: one extra reference each. */
  peer[0] = uvt_task_ref(a);
  peer[1] = uvt_task_ref(b);
  uvt_await(b);
  uvt_await(a);
  return 0;
}

static int inner(void *arg) {
  (void)arg;
  arrive(1);
  return uvt_await(peer[0]); /* @inner-awaits-main */
}

static int outer(void *arg) {
  (void)arg;
  return uvt_await(uvt_spawn(inner, NULL)); /* @outer-awaits */
}

static int run_parent(void) {
  peer[0] = uvt_task_ref(uvt_current());
  return uvt_await(uvt_spawn(outer, NULL)); /* @main-awaits */
}

static int w1(void *arg) {
  (void)arg;
  return uvt_sleep(timeout_mode ? 10 : 3600 * 1000);
}

static int w2(void *arg) {
  (void)arg;
  arrive(1);
  return uvt_await(peer[0]); /* @w2-awaits */
}

static int boss(void *arg) {
  uvt_task_t *ts[2];
  int st;
  (void)arg;
  ts[0] = uvt_spawn(w1, NULL);
  ts[1] = uvt_spawn(w2, NULL);
  if (timeout_mode) {
    st = uvt_wait(ts, 2, UVT_FIRST_COMPLETED, -1, NULL); /* @boss-first */
  } else {
    st = uvt_gather(ts, 2); /* @boss-gathers */
  }
  uvt_detach(ts[0]);
  uvt_detach(ts[1]);
  return st;
}

static int run_gather(void) {
  uvt_task_t *b = uvt_spawn(boss, NULL);
  peer[0] = uvt_task_ref(b);
  return uvt_await(b);
}

static int greedy(void *arg) {
  (void)arg;
  uvt_lock_acquire(&locks[0]); /* @greedy-first */
  arrive(1);
  uvt_lock_acquire(&locks[0]); /* @greedy-again */
  return 0;
}

static int run_relock(void) {
  uvt_lock_init(&locks[0]);
  return uvt_await(uvt_spawn(greedy, NULL));
}

/* ---- stalls ------------------------------------------------------------------ */

static uvt_event_t event;
static uvt_queue_t queue;

static int run_event(void) {
  uvt_event_init(&event);
  arrive(1);
  return uvt_event_wait(&event); /* @event-wait */
}

static int quitter(void *arg) {
  (void)arg;
  uvt_lock_acquire(&locks[0]); /* @quitter-takes */
  return 0;
}

static int run_lockgone(void) {
  uvt_lock_init(&locks[0]);
  uvt_await(uvt_spawn(quitter, NULL));
  arrive(1);
  return uvt_lock_acquire(&locks[0]); /* @main-acquires */
}

static int consumer(void *arg) {
  void *item;
  (void)arg;
  arrive(1);
  return uvt_queue_get(&queue, &item); /* @consumer-gets */
}

static int run_queue(void) {
  uvt_queue_init(&queue, 0);
  return uvt_await(uvt_spawn(consumer, NULL)); /* @main-awaits-consumer */
}

/* ---- not stalls ---------------------------------------------------------------- */

static int port;

/* Another thread, which libuv does not see: after a while, connect and
 * say one line. */
static void *late_client(void *arg) {
  struct sockaddr_in a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  (void)arg;
  sleep(1);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
    (void)!write(fd, "hi\n", 3);
  if (fd >= 0) close(fd);
  return NULL;
}

static int greeter(uvt_stream_t *st, void *arg) {
  char line[16];
  size_t len;
  (void)arg;
  if (uvt_readline(st, line, sizeof(line), &len) == 0) uvt_event_set(&event);
  return 0;
}

static int run_server(void) {
  uvt_server_t *srv;
  pthread_t th;
  int st;
  uvt_event_init(&event);
  if (uvt_start_server("127.0.0.1", 0, greeter, NULL, &srv) != 0) return -1;
  port = uvt_server_port(srv);
  pthread_create(&th, NULL, late_client, NULL);
  arrive(1);
  st = uvt_event_wait(&event);
  pthread_join(th, NULL);
  uvt_server_close(srv);
  return st;
}

static int sleeper(void *arg) {
  (void)arg;
  return uvt_sleep(1000);
}

static int run_sleeps(void) {
  uvt_task_t *t[3];
  int i;
  for (i = 0; i < 3; i++) t[i] = uvt_spawn(sleeper, NULL);
  arrive(1);
  return uvt_gather(t, 3) || (uvt_detach(t[0]), uvt_detach(t[1]), uvt_detach(t[2]), 0);
}

static int slow_work(void *arg) {
  (void)arg;
  sleep(1);
  return 0;
}

static int run_pool(void) {
  arrive(1);
  return uvt_to_thread(slow_work, NULL);
}

static uv_timer_t feeder;

static void feed(uv_timer_t *h) {
  (void)h;
  uvt_queue_put_nowait(&queue, &feeder);
}

static int run_qtimer(void) {
  uvt_queue_init(&queue, 0);
  uv_timer_init(uvt_loop(), &feeder);
  uv_timer_start(&feeder, feed, 1000, 0);
  return uvt_await(uvt_spawn(consumer, NULL));
}

static uv_signal_t sig;

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  uv_signal_stop(h);
  uvt_event_set(&event);
}

static void *late_signal(void *arg) {
  (void)arg;
  sleep(1);
  kill(getpid(), SIGUSR1);
  return NULL;
}

static int run_signal(void) {
  pthread_t th;
  int st;
  uvt_event_init(&event);
  uv_signal_init(uvt_loop(), &sig);
  uv_signal_start(&sig, on_signal, SIGUSR1);
  pthread_create(&th, NULL, late_signal, NULL);
  arrive(1);
  st = uvt_event_wait(&event);
  pthread_join(th, NULL);
  return st;
}

static uv_timer_t ticker;
static int ticks;

static void tick(uv_timer_t *h) {
  if (++ticks < 5) return;
  uv_timer_stop(h);
  uvt_event_set(&event);
}

static int spawned(void *arg) {
  (void)arg;
  arrive(1);
  return uvt_event_wait(&event);
}

/* The program's own loop and uv_run; uvtask only through uvt_spawn_on. */
static int run_spawnon(void) {
  uv_loop_t loop;
  uvt_task_t *t;
  int st = 0;
  uv_loop_init(&loop);
  uvt_event_init(&event);
  uv_timer_init(&loop, &ticker);
  uv_timer_start(&ticker, tick, 200, 200);
  t = uvt_spawn_on(&loop, spawned, NULL);
  uvt_detach(t);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&ticker, NULL);
  if (uvt_loop_close(&loop) != 0) st = 1;
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) st = 3;
  return st;
}

static const char *scenario;

static int main_task(void *arg) {
  (void)arg;
  if (strcmp(scenario, "locks2") == 0) return run_locks(2);
  if (strcmp(scenario, "locks3") == 0) return run_locks(3);
  if (strcmp(scenario, "await2") == 0) return run_await2();
  if (strcmp(scenario, "timeout") == 0) {
    timeout_mode = 1;
    return run_await2();
  }
  if (strcmp(scenario, "waitfor") == 0) {
    timeout_mode = 2;
    return run_await2();
  }
  if (strcmp(scenario, "parent") == 0) return run_parent();
  if (strcmp(scenario, "gather") == 0) return run_gather();
  if (strcmp(scenario, "first") == 0) {
    timeout_mode = 1;
    return run_gather();
  }
  if (strcmp(scenario, "relock") == 0) return run_relock();
  if (strncmp(scenario, "ring", 4) == 0 && atoi(scenario + 4) > 0)
    return run_ring(atoi(scenario + 4), false);
  if (strncmp(scenario, "aring", 5) == 0 && atoi(scenario + 5) > 0)
    return run_ring(atoi(scenario + 5), true);
  if (strcmp(scenario, "event") == 0) return run_event();
  if (strcmp(scenario, "lockgone") == 0) return run_lockgone();
  if (strcmp(scenario, "queue") == 0) return run_queue();
  if (strcmp(scenario, "server") == 0) return run_server();
  if (strcmp(scenario, "sleeps") == 0) return run_sleeps();
  if (strcmp(scenario, "pool") == 0) return run_pool();
  if (strcmp(scenario, "qtimer") == 0) return run_qtimer();
  if (strcmp(scenario, "signal") == 0) return run_signal();
  fprintf(stderr, "hang_scenario: unknown scenario '%s'\n", scenario);
  return 2;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: hang_scenario SCENARIO\n");
    return 2;
  }
  scenario = argv[1];
  if (strcmp(scenario, "spawnon") == 0) return run_spawnon();
  /* The program's own loop, with its own handles on it for some. */
  uv_loop_t loop;
  int st;
  uv_loop_init(&loop);
  st = uvt_run(&loop, main_task, NULL);
  if (strcmp(scenario, "qtimer") == 0) uv_close((uv_handle_t *)&feeder, NULL);
  if (strcmp(scenario, "signal") == 0) uv_close((uv_handle_t *)&sig, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) st = 3;
  return st == 0 ? 0 : 1;
}
