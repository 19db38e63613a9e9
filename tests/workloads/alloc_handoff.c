/*
 * alloc_handoff: blocks allocated by one thread and freed by another, for the in-use values
 * of allocation profiles.
 *
 *   producer thread  produce_item     malloc(48..208 bytes) per item, handed to the
 *                                     consumer through a bounded queue
 *   consumer thread  consume_item     frees 3 items in 4 and keeps the 4th (never freed)
 *                    consumer_note    malloc(40) once per 16 items taken, kept
 *
 * So the producer's blocks that are still in use at the end are exactly those the consumer
 * kept: the frees all happen on the other thread. The queue holds QUEUE_SLOTS items at most,
 * so the two threads take turns all along rather than one after the other.
 *
 * Every function named above calls the allocator itself and does work after the call (no
 * tail call), and is noinline, so the caller of malloc is certain.
 *
 * Build: gcc -O2 -g -pthread (as a distribution builds: no frame pointers)
 * Usage:
 *   alloc_handoff ITEMS
 *     Prints "ready <pid>", runs the two threads over ITEMS items, then prints
 *       "thread producer TID" and "thread consumer TID",
 *       "fn NAME CALLS BYTES KEPT_BYTES KEPT_BLOCKS" for produce_item and consumer_note,
 *       "freed BYTES BLOCKS" (what the consumer freed of the producer's), and "done".
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define QUEUE_SLOTS 64
#define KEEP_ONE_IN 4
#define NOTE_EVERY 16
#define NOTE_SIZE 40
#define MAX_KEPT (1 << 20)

struct item {
    unsigned long index;
    size_t size;
};

struct fn_counts {
    unsigned long calls, bytes, kept_bytes, kept_blocks;
};

/* The bounded queue between the two threads. */
static struct item *queue[QUEUE_SLOTS];
static unsigned long head, tail;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;

static unsigned long items_wanted;

/* Written by the producer only. */
static struct fn_counts produced;
/* Written by the consumer only. */
static struct fn_counts notes;
static unsigned long kept_item_bytes, kept_item_blocks, freed_bytes, freed_blocks;
static void *kept[MAX_KEPT];
static unsigned long n_kept;

static pid_t producer_tid, consumer_tid;

static void *checked(void *p, size_t size)
{
    if (!p) {
        fprintf(stderr, "allocation of %zu bytes failed\n", size);
        exit(1);
    }
    return p;
}

static void keep(void *p)
{
    if (n_kept >= MAX_KEPT) {
        fprintf(stderr, "too many blocks kept\n");
        exit(1);
    }
    kept[n_kept++] = p;
}

static void push(struct item *it)
{
    pthread_mutex_lock(&lock);
    while (tail - head == QUEUE_SLOTS)
        pthread_cond_wait(&not_full, &lock);
    queue[tail++ % QUEUE_SLOTS] = it;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&lock);
}

static struct item *pop(void)
{
    pthread_mutex_lock(&lock);
    while (tail == head)
        pthread_cond_wait(&not_empty, &lock);
    struct item *it = queue[head++ % QUEUE_SLOTS];
    pthread_cond_signal(&not_full);
    pthread_mutex_unlock(&lock);
    return it;
}

/* The request size of item i: 48..208 bytes, in steps of 16. */
static size_t item_size(unsigned long i)
{
    return 48 + 16 * (size_t)((i * 5) % 11);
}

__attribute__((noinline)) void produce_item(unsigned long i)
{
    size_t size = item_size(i);
    struct item *it = checked(malloc(size), size);
    it->index = i;
    it->size = size;
    ((volatile char *)it)[size - 1] = 1;
    produced.calls++;
    produced.bytes += size;
    push(it);
}

__attribute__((noinline)) void consumer_note(unsigned long taken)
{
    unsigned long *note = checked(malloc(NOTE_SIZE), NOTE_SIZE);
    note[0] = taken;
    ((volatile char *)note)[NOTE_SIZE - 1] = 1;
    notes.calls++;
    notes.bytes += NOTE_SIZE;
    notes.kept_bytes += NOTE_SIZE;
    notes.kept_blocks++;
    keep(note);
}

/* Frees the item, unless it is one to keep. */
__attribute__((noinline)) void consume_item(struct item *it)
{
    if (it->index % KEEP_ONE_IN == KEEP_ONE_IN - 1) {
        kept_item_bytes += it->size;
        kept_item_blocks++;
        keep(it);
    } else {
        freed_bytes += it->size;
        freed_blocks++;
        free(it);
    }
}

__attribute__((noinline)) void *producer_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "producer");
    producer_tid = gettid();
    for (unsigned long i = 0; i < items_wanted; i++)
        produce_item(i);
    push(NULL);
    return NULL;
}

__attribute__((noinline)) void *consumer_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "consumer");
    consumer_tid = gettid();
    unsigned long taken = 0;
    for (;;) {
        struct item *it = pop();
        if (!it)
            break;
        consume_item(it);
        if (++taken % NOTE_EVERY == 0)
            consumer_note(taken);
    }
    return NULL;
}

static void start(pthread_t *t, void *(*fn)(void *))
{
    if (pthread_create(t, NULL, fn, NULL) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: alloc_handoff ITEMS\n");
        return 2;
    }
    items_wanted = strtoul(argv[1], NULL, 10);
    printf("ready %d\n", getpid());
    fflush(stdout);
    pthread_t producer, consumer;
    start(&consumer, consumer_main);
    start(&producer, producer_main);
    pthread_join(producer, NULL);
    pthread_join(consumer, NULL);
    produced.kept_bytes = kept_item_bytes;
    produced.kept_blocks = kept_item_blocks;
    printf("thread producer %d\n", (int)producer_tid);
    printf("thread consumer %d\n", (int)consumer_tid);
    printf("fn produce_item %lu %lu %lu %lu\n", produced.calls, produced.bytes,
           produced.kept_bytes, produced.kept_blocks);
    printf("fn consumer_note %lu %lu %lu %lu\n", notes.calls, notes.bytes, notes.kept_bytes,
           notes.kept_blocks);
    printf("freed %lu %lu\n", freed_bytes, freed_blocks);
    printf("done\n");
    return 0;
}
