/*
 * pmemobj_bench: the PMDK side of RAllocator's allocator comparison.
 *
 * Creates a libpmemobj pool in a temporary file, then times N pairs of pmemobj_alloc + pmemobj_free of one size
 * (each pair allocates one object and frees it at once, the same shape as RAllocator's AllocateFreePair), after
 * a warm-up of the same length, repeated R times; prints one JSON line with the median.
 *
 * Durability at that speed: every pmemobj_alloc and pmemobj_free is failure-atomic and persistent when it
 * returns (redo log in the pool, flushed with pmem_persist on real persistent memory or pmem_msync on a
 * page-cache mapping such as this file, unless PMEM_IS_PMEM_FORCE=1 pretends it is pmem: then only cache-line
 * flushes, and nothing is durable on this machine). The "pmem" field of the output says which was in force.
 *
 *   pmemobj_bench --size BYTES --ops N [--threads T] [--runs R] [--pool-mib M] [--dir DIR]
 *
 * With T threads, each thread does N pairs per run on the shared pool; alloc_free_pair_ns is wall time / N
 * (one thread's mean pair time) and pairs_per_sec counts all threads.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libpmem.h>
#include <libpmemobj.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LAYOUT "rallocator-pmemobj-bench"
#define MAX_THREADS 64
#define MAX_RUNS 64

struct worker {
	PMEMobjpool *pop;
	size_t size;
	long ops;
	pthread_barrier_t *start;
	int failed;
	pthread_t thread;
};

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* N pairs: allocate an object and free it at once. The OID lives on the stack, as RAllocator's RemotePtr does. */
static int run_pairs(PMEMobjpool *pop, size_t size, long ops)
{
	for (long i = 0; i < ops; i++) {
		PMEMoid oid = OID_NULL;
		if (pmemobj_alloc(pop, &oid, size, 1, NULL, NULL) != 0) {
			fprintf(stderr, "pmemobj_alloc(%zu) failed at pair %ld: %s\n", size, i, pmemobj_errormsg());
			return -1;
		}
		pmemobj_free(&oid);
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	pthread_barrier_wait(w->start);
	w->failed = run_pairs(w->pop, w->size, w->ops) != 0;
	return NULL;
}

/* One timed run: wall time of T threads doing N pairs each. */
static double timed_run(PMEMobjpool *pop, size_t size, long ops, int threads)
{
	if (threads == 1) {
		double start = now_ns();
		if (run_pairs(pop, size, ops) != 0)
			return -1;
		return now_ns() - start;
	}

	struct worker workers[MAX_THREADS];
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
	for (int t = 0; t < threads; t++) {
		workers[t] = (struct worker){ .pop = pop, .size = size, .ops = ops, .start = &start };
		if (pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			exit(1);
		}
	}
	pthread_barrier_wait(&start);
	double begin = now_ns();
	int failed = 0;
	for (int t = 0; t < threads; t++) {
		pthread_join(workers[t].thread, NULL);
		failed |= workers[t].failed;
	}
	double elapsed = now_ns() - begin;
	pthread_barrier_destroy(&start);
	return failed ? -1 : elapsed;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static long parse_long(const char *name, const char *value)
{
	char *end;
	errno = 0;
	long v = strtol(value, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0) {
		fprintf(stderr, "%s: '%s' is not a positive integer\n", name, value);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	size_t size = 64;
	long ops = 100000;
	int threads = 1, runs = 5;
	long pool_mib = 64;
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc) {
			fprintf(stderr, "usage: %s --size BYTES --ops N [--threads T] [--runs R] [--pool-mib M] [--dir DIR]\n", argv[0]);
			return 2;
		}
		const char *name = argv[i], *value = argv[++i];
		if (strcmp(name, "--size") == 0)
			size = (size_t)parse_long(name, value);
		else if (strcmp(name, "--ops") == 0)
			ops = parse_long(name, value);
		else if (strcmp(name, "--threads") == 0)
			threads = (int)parse_long(name, value);
		else if (strcmp(name, "--runs") == 0)
			runs = (int)parse_long(name, value);
		else if (strcmp(name, "--pool-mib") == 0)
			pool_mib = parse_long(name, value);
		else if (strcmp(name, "--dir") == 0)
			dir = value;
		else {
			fprintf(stderr, "unknown option %s\n", name);
			return 2;
		}
	}
	if (threads > MAX_THREADS || runs > MAX_RUNS) {
		fprintf(stderr, "at most %d threads and %d runs\n", MAX_THREADS, MAX_RUNS);
		return 2;
	}

	size_t pool_bytes = (size_t)pool_mib << 20;
	if (pool_bytes < PMEMOBJ_MIN_POOL)
		pool_bytes = PMEMOBJ_MIN_POOL;

	char path[4096];
	snprintf(path, sizeof path, "%s/pmemobj-bench-%d.pool", dir, (int)getpid());
	PMEMobjpool *pop = pmemobj_create(path, LAYOUT, pool_bytes, 0600);
	if (pop == NULL) {
		fprintf(stderr, "pmemobj_create(%s, %zu bytes) failed: %s\n", path, pool_bytes, pmemobj_errormsg());
		return 1;
	}

	/* Whether libpmem treats the pool as persistent memory (user-space flushes) or as a page-cache mapping (msync). */
	int is_pmem = pmem_is_pmem(pmemobj_direct(pmemobj_root(pop, 64)), 64);

	double samples[MAX_RUNS];
	int status = 0;
	if (timed_run(pop, size, ops, threads) < 0) /* warm-up: same length, untimed */
		status = 1;
	for (int r = 0; r < runs && status == 0; r++) {
		double elapsed = timed_run(pop, size, ops, threads);
		if (elapsed < 0)
			status = 1;
		samples[r] = elapsed / (double)ops;
	}

	pmemobj_close(pop);
	unlink(path);
	if (status != 0)
		return status;

	qsort(samples, (size_t)runs, sizeof samples[0], compare_double);
	double median = runs % 2 ? samples[runs / 2] : (samples[runs / 2 - 1] + samples[runs / 2]) / 2;
	const char *force = getenv("PMEM_IS_PMEM_FORCE");
	printf("{\"impl\":\"pmemobj\",\"size\":%zu,\"ops\":%ld,\"threads\":%d,\"runs\":%d,"
	       "\"alloc_free_pair_ns\":%.1f,\"alloc_free_pair_ns_min\":%.1f,\"alloc_free_pair_ns_max\":%.1f,"
	       "\"pairs_per_sec\":%.0f,\"pool_bytes\":%zu,\"pmem\":%s,\"pmem_is_pmem_force\":\"%s\","
	       "\"persist\":\"%s\"}\n",
	       size, ops, threads, runs, median, samples[0], samples[runs - 1], threads * 1e9 / median, pool_bytes,
	       is_pmem ? "true" : "false", force ? force : "",
	       is_pmem ? (force && strcmp(force, "1") == 0 ? "cache-line flush only (forced; not durable on this machine)" : "pmem_persist")
		       : "pmem_msync (page cache)");
	return 0;
}
