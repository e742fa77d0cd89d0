/*
 * Records (tracer.h): their memory, and each thread's batch of records
 * not yet handed to the writer.  Nothing here calls the writer or the
 * recorder: the recorder hands batches over (uvt__rec_submit), the writer
 * frees what it wrote.
 */
#include "tracer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Records are made on loop threads and freed on the writer thread.  With
 * malloc/free per record, glibc's arenas then lock and consolidate on
 * every call (a third of the time with 100k tasks alive at a flush), so
 * records are recycled instead: each thread takes them REC_CHUNK at a
 * time from a shared free list (fresh chunks when it is empty) and gives
 * freed ones back a chunk at a time.  The lock is taken once per chunk.
 * Chunks are kept for the life of the process. */
#define REC_CHUNK 256

static pthread_mutex_t pool_mutex = PTHREAD_MUTEX_INITIALIZER;
static rec_t *pool;
static __thread rec_t *local_free __attribute__((tls_model("initial-exec")));
static __thread rec_t *freed_head __attribute__((tls_model("initial-exec")));
static __thread rec_t *freed_tail __attribute__((tls_model("initial-exec")));
static __thread size_t nfreed __attribute__((tls_model("initial-exec")));

static void give_back_freed(void) {
  if (freed_head == NULL) return;
  pthread_mutex_lock(&pool_mutex);
  freed_tail->next = pool;
  pool = freed_head;
  pthread_mutex_unlock(&pool_mutex);
  freed_head = freed_tail = NULL;
  nfreed = 0;
}

UVT__TRACER_TUNE rec_t *uvt__rec_new(rec_kind_t kind) {
  rec_t *r = local_free;
  if (r == NULL) {
    rec_t *last = NULL, *p;
    int n = 0;
    pthread_mutex_lock(&pool_mutex);
    for (p = pool; p != NULL && n < REC_CHUNK; p = p->next, n++) last = p;
    if (last != NULL) {
      r = pool;
      pool = last->next;
      last->next = NULL;
    }
    pthread_mutex_unlock(&pool_mutex);
    if (r == NULL) {
      /* Not calloc: each record is cleared as it is handed out, and
       * zeroing the chunk as well cost the loop thread ~330 instructions
       * per record while the writer lags behind (callgrind). */
      rec_t *chunk = malloc(REC_CHUNK * sizeof(*chunk));
      int i;
      if (chunk == NULL) return NULL;
      for (i = 0; i + 1 < REC_CHUNK; i++) chunk[i].next = &chunk[i + 1];
      chunk[REC_CHUNK - 1].next = NULL;
      r = chunk;
    }
  }
  local_free = r->next;
  memset(r, 0, sizeof(*r));
  r->kind = kind;
  return r;
}

void uvt__rec_free(rec_t *r) {
  free(r->name);
  free(r->message);
  free(r->pcs);
  free(r->path);
  free(r->build_id);
  r->next = freed_head;
  freed_head = r;
  if (freed_tail == NULL) freed_tail = r;
  if (++nfreed >= REC_CHUNK) give_back_freed();
}

void uvt__rec_thread_exit(void) {
  rec_t *r;
  while ((r = local_free) != NULL) {
    local_free = r->next;
    r->next = freed_head;
    freed_head = r;
    if (freed_tail == NULL) freed_tail = r;
  }
  give_back_freed();
}

void uvt__rec_forget(void) {
  /* A fork may have copied the lock held by a thread that is gone. */
  pthread_mutex_init(&pool_mutex, NULL);
}

/* ---- the calling thread's batch --------------------------------------------- */

static _Thread_local rec_batch_t batch __attribute__((tls_model("initial-exec")));

rec_batch_t *uvt__rec_batch(void) { return &batch; }

void uvt__rec_push(rec_t *r) {
  r->next = NULL;
  if (batch.tail != NULL) batch.tail->next = r;
  else batch.head = r;
  batch.tail = r;
  batch.n++;
}

rec_t *uvt__rec_take(rec_batch_t *b, rec_t **tail) {
  rec_t *head = b->head;
  *tail = b->tail;
  b->head = b->tail = NULL;
  b->n = 0;
  return head;
}
