/*
 * pmemobj_kv: the PMDK side of RAllocator's YCSB comparison. A persistent hash table in a libpmemobj pool
 * (buckets of chained entries; each entry points to a separately allocated value), running YCSB workloads
 * A, B, C, D, F with the same key names ("user" + FNV-1a 64 of the record number), the same choosers (uniform,
 * YCSB's scrambled zipfian 0.99, latest) and record sizes as `rallocator ycsb`. Prints one JSON line.
 *
 * Durability: every put is one pmemobj transaction (undo log; the new value and entry allocated, the pointer
 * swung, the old value freed), durable when it returns: pmem_msync on this page-cache mapping, or cache-line
 * flushes when PMEM_IS_PMEM_FORCE=1 (the cost of real pmem; NOT durable on this machine).
 * Threads: reads share a pthread rwlock, writes take it exclusively (one writer at a time, as the C# store).
 *
 *   pmemobj_kv --workload a|b|c|d|f [--distribution uniform|zipfian|latest] --records N --operations N
 *              [--record-size B] [--threads T] [--seed S] [--dir DIR] [--buckets N]
 */
#define _GNU_SOURCE
#include <libpmem.h>
#include <libpmemobj.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LAYOUT "rallocator-kv-bench"
#define KEYMAX 32
#define MAXT 64

struct entry { uint64_t next; uint64_t value; uint32_t klen; char key[KEYMAX]; };
struct value { uint32_t len; char bytes[]; };
struct root { uint64_t nbuckets; uint64_t buckets; };

static PMEMobjpool *pop;
static uint64_t *buckets; static uint64_t nbuckets;
static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static size_t record_size = 1000;

static void *D(uint64_t off) { return off ? (char *)pop + off : NULL; }
static uint64_t O(PMEMoid oid) { return oid.off; }
static PMEMoid OID(uint64_t off) { PMEMoid o = { pmemobj_root(pop, sizeof(struct root)).pool_uuid_lo, off }; return o; }

static uint64_t fnv64(uint64_t v) { uint64_t h = 0xCBF29CE484222325ULL; for (int i = 0; i < 8; i++) { h ^= v & 0xff; v >>= 8; h *= 1099511628211ULL; } return h; }
static int keyname(uint64_t n, char *out) { return snprintf(out, KEYMAX, "user%llu", (unsigned long long)fnv64(n)); }

/* xorshift per thread; uniform double in [0,1) */
static double rnd(uint64_t *s) { *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17; return (*s >> 11) * (1.0 / 9007199254740992.0); }

/* YCSB ZipfianGenerator (Gray et al.) */
struct zipf { double theta, zetan, zeta2, alpha, eta; uint64_t items, count_for_zeta; pthread_mutex_t m; };
static double zeta(uint64_t st, uint64_t n, double th, double sum) { for (uint64_t i = st; i < n; i++) sum += 1 / pow(i + 1, th); return sum; }
static void zipf_init(struct zipf *z, uint64_t items, double zetan) {
	z->theta = 0.99; z->items = items; z->count_for_zeta = items; z->zeta2 = zeta(0, 2, 0.99, 0); z->alpha = 1 / (1 - 0.99);
	z->zetan = zetan > 0 ? zetan : zeta(0, items, 0.99, 0);
	z->eta = (1 - pow(2.0 / items, 1 - z->theta)) / (1 - z->zeta2 / z->zetan); pthread_mutex_init(&z->m, NULL);
}
static uint64_t zipf_next(struct zipf *z, uint64_t *s, uint64_t items) {
	pthread_mutex_lock(&z->m);
	if (items != z->count_for_zeta) {
		z->zetan = items > z->count_for_zeta ? zeta(z->count_for_zeta, items, z->theta, z->zetan) : zeta(0, items, z->theta, 0);
		z->count_for_zeta = items; z->items = items; z->eta = (1 - pow(2.0 / items, 1 - z->theta)) / (1 - z->zeta2 / z->zetan);
	}
	double zn = z->zetan, eta = z->eta; pthread_mutex_unlock(&z->m);
	double u = rnd(s), uz = u * zn;
	if (uz < 1.0) return 0;
	if (uz < 1.0 + pow(0.5, z->theta)) return 1;
	uint64_t r = (uint64_t)(items * pow(eta * u - eta + 1, z->alpha));
	return r < items ? r : items - 1;
}

static struct zipf zscr, zlatest;
static int dist; /* 0 uniform 1 zipfian 2 latest */
static uint64_t records; static volatile uint64_t next_insert, latest_acked;

static uint64_t choose(uint64_t *s) {
	if (dist == 0) return (uint64_t)(rnd(s) * records);
	if (dist == 1) return fnv64(zipf_next(&zscr, s, 10000000000ULL)) % records;
	uint64_t max = __atomic_load_n(&latest_acked, __ATOMIC_ACQUIRE);
	return max - zipf_next(&zlatest, s, max + 1);
}

static uint64_t *slot_of(const char *k, uint32_t kl) { uint64_t h = 1469598103934665603ULL; for (uint32_t i = 0; i < kl; i++) { h ^= (unsigned char)k[i]; h *= 1099511628211ULL; } return &buckets[h & (nbuckets - 1)]; }

static int get(const char *k, uint32_t kl, char *out) {
	pthread_rwlock_rdlock(&lock);
	for (struct entry *e = D(*slot_of(k, kl)); e; e = D(e->next))
		if (e->klen == kl && memcmp(e->key, k, kl) == 0) { struct value *v = D(e->value); memcpy(out, v->bytes, v->len); pthread_rwlock_unlock(&lock); return 1; }
	pthread_rwlock_unlock(&lock); return 0;
}

static void put(const char *k, uint32_t kl, const char *val, size_t len) {
	pthread_rwlock_wrlock(&lock);
	uint64_t *slot = slot_of(k, kl);
	struct entry *e = D(*slot);
	while (e && !(e->klen == kl && memcmp(e->key, k, kl) == 0)) e = D(e->next);
	TX_BEGIN(pop) {
		PMEMoid v = pmemobj_tx_alloc(sizeof(struct value) + len, 1);
		struct value *vp = pmemobj_direct(v); vp->len = (uint32_t)len; memcpy(vp->bytes, val, len);
		if (e) {
			pmemobj_tx_add_range_direct(&e->value, 8);
			uint64_t old = e->value; e->value = O(v);
			pmemobj_tx_free(OID(old));
		} else {
			PMEMoid n = pmemobj_tx_alloc(sizeof(struct entry), 2);
			struct entry *np = pmemobj_direct(n); np->next = *slot; np->value = O(v); np->klen = kl; memcpy(np->key, k, kl);
			pmemobj_tx_add_range_direct(slot, 8); *slot = O(n);
		}
	} TX_ONABORT { fprintf(stderr, "put aborted: %s\n", pmemobj_errormsg()); exit(1); } TX_END
	pthread_rwlock_unlock(&lock);
}

struct hist { uint64_t n; double sum, max; double *v; size_t cap; };
static void hrec(struct hist *h, double ns) { if (h->n == h->cap) { h->cap = h->cap ? h->cap * 2 : 1024; h->v = realloc(h->v, h->cap * sizeof(double)); } h->v[h->n++] = ns; h->sum += ns; if (ns > h->max) h->max = ns; }
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
static double pct(struct hist *h, double q) { if (!h->n) return 0; size_t i = (size_t)ceil(q * h->n); if (i) i--; return h->v[i]; }

struct work { int t; uint64_t from, to; double rd, up, ins, rmw; uint64_t seed; struct hist h[4]; uint64_t miss; int load; };
static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec * 1e9 + ts.tv_nsec; }

static void *worker(void *arg) {
	struct work *w = arg; uint64_t s = w->seed * 2654435761ULL + 88172645463325252ULL;
	char key[KEYMAX], *val = malloc(record_size + 1), *buf = malloc(65536 + 8);
	for (uint64_t i = w->from; i < w->to; i++) {
		for (size_t b = 0; b < record_size; b++) val[b] = (char)(rnd(&s) * 256);
		if (w->load) { int kl = keyname(i, key); put(key, kl, val, record_size); continue; }
		double u = rnd(&s); int op = u < w->rd ? 0 : u < w->rd + w->up ? 1 : u < w->rd + w->up + w->ins ? 2 : 3;
		double t0 = now();
		if (op == 0) { int kl = keyname(choose(&s), key); if (!get(key, kl, buf)) w->miss++; }
		else if (op == 1) { int kl = keyname(choose(&s), key); put(key, kl, val, record_size); }
		else if (op == 2) { uint64_t r = __atomic_fetch_add(&next_insert, 1, __ATOMIC_SEQ_CST); int kl = keyname(r, key); put(key, kl, val, record_size);
			uint64_t exp = r - 1; while (!__atomic_compare_exchange_n(&latest_acked, &exp, r, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) { if (exp >= r) break; exp = r - 1; sched_yield(); } }
		else { int kl = keyname(choose(&s), key); if (!get(key, kl, buf)) w->miss++; put(key, kl, val, record_size); }
		hrec(&w->h[op], now() - t0);
	}
	free(val); free(buf); return NULL;
}

static double phase(struct work *ws, int threads, uint64_t total, int load, double *mix, int seedbase) {
	pthread_t th[MAXT]; uint64_t per = (total + threads - 1) / threads; double t0 = now();
	for (int t = 0; t < threads; t++) {
		memset(&ws[t], 0, sizeof ws[t]); ws[t].t = t; ws[t].load = load; ws[t].seed = seedbase + t;
		ws[t].from = t * per < total ? t * per : total; ws[t].to = (t + 1) * per < total ? (t + 1) * per : total;
		if (mix) { ws[t].rd = mix[0]; ws[t].up = mix[1]; ws[t].ins = mix[2]; ws[t].rmw = mix[3]; }
		pthread_create(&th[t], NULL, worker, &ws[t]);
	}
	for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
	return (now() - t0) / 1e9;
}

int main(int argc, char **argv) {
	const char *wl = "a", *dname = NULL, *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	static uint64_t ops; static int threads, seed;
	ops = 100000; threads = 1; seed = 1; records = 10000; nbuckets = 1 << 16;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--workload")) wl = argv[i + 1]; else if (!strcmp(argv[i], "--distribution")) dname = argv[i + 1];
		else if (!strcmp(argv[i], "--records")) records = strtoull(argv[i + 1], 0, 10); else if (!strcmp(argv[i], "--operations")) ops = strtoull(argv[i + 1], 0, 10);
		else if (!strcmp(argv[i], "--record-size")) record_size = strtoull(argv[i + 1], 0, 10); else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--seed")) seed = atoi(argv[i + 1]); else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
		else if (!strcmp(argv[i], "--buckets")) nbuckets = strtoull(argv[i + 1], 0, 10);
		else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
	}
	if (threads < 1 || threads > MAXT || records < 1 || (nbuckets & (nbuckets - 1)) || record_size > 65536) { fprintf(stderr, "bad arguments\n"); return 2; }
	double mix[4]; char W = (char)(wl[0] & ~0x20);
	switch (W) { case 'A': mix[0] = .5; mix[1] = .5; mix[2] = 0; mix[3] = 0; break; case 'B': mix[0] = .95; mix[1] = .05; mix[2] = 0; mix[3] = 0; break;
	case 'C': mix[0] = 1; mix[1] = 0; mix[2] = 0; mix[3] = 0; break; case 'D': mix[0] = .95; mix[1] = 0; mix[2] = .05; mix[3] = 0; break;
	case 'F': mix[0] = .5; mix[1] = 0; mix[2] = 0; mix[3] = .5; break; default: fprintf(stderr, "workload %s is not one of a b c d f\n", wl); return 2; }
	dist = dname ? (!strcmp(dname, "uniform") ? 0 : !strcmp(dname, "latest") ? 2 : 1) : (W == 'D' ? 2 : 1);

	uint64_t maxrec = records + (mix[2] > 0 ? ops : 0);
	size_t pool = (size_t)(maxrec * (record_size + 200) * 2) + nbuckets * 8 + (64u << 20);
	char path[4096]; snprintf(path, sizeof path, "%s/pmemobj-kv-%d.pool", dir, (int)getpid());
	pop = pmemobj_create(path, LAYOUT, pool, 0600);
	if (!pop) { fprintf(stderr, "pmemobj_create(%s): %s\n", path, pmemobj_errormsg()); return 1; }
	PMEMoid r = pmemobj_root(pop, sizeof(struct root)); struct root *rp = pmemobj_direct(r);
	TX_BEGIN(pop) { pmemobj_tx_add_range(r, 0, sizeof *rp); PMEMoid b = pmemobj_tx_zalloc(nbuckets * 8, 3); rp->buckets = b.off; rp->nbuckets = nbuckets; } TX_END
	buckets = D(rp->buckets);
	int is_pmem = pmem_is_pmem(buckets, 8);

	zipf_init(&zscr, 10000000000ULL, 26.46902820178302); zipf_init(&zlatest, records, 0);
	next_insert = records; latest_acked = records - 1;
	struct work *ws = calloc(MAXT, sizeof *ws);
	double load_s = phase(ws, threads, records, 1, NULL, seed);
	double run_s = phase(ws, threads, ops, 0, mix, seed + 1000);

	const char *names[4] = { "read", "update", "insert", "read_modify_write" };
	printf("{\"impl\":\"pmemobj-kv\",\"workload\":\"%c\",\"distribution\":\"%s\",\"records\":%llu,\"operations\":%llu,\"record_size\":%zu,\"threads\":%d,"
	       "\"load_seconds\":%.4f,\"load_ops_per_s\":%.1f,\"run_seconds\":%.4f,\"throughput_ops_per_s\":%.1f,\"latency\":[",
	       W, dist == 0 ? "uniform" : dist == 1 ? "zipfian" : "latest", (unsigned long long)records, (unsigned long long)ops, record_size, threads,
	       load_s, records / load_s, run_s, ops / run_s);
	int first = 1;
	for (int op = 0; op < 4; op++) {
		struct hist all = { 0 }; uint64_t miss = 0;
		for (int t = 0; t < threads; t++) { for (uint64_t i = 0; i < ws[t].h[op].n; i++) hrec(&all, ws[t].h[op].v[i]); if (op == 0 || op == 3) miss += ws[t].miss; }
		if (!all.n) continue;
		qsort(all.v, all.n, sizeof(double), cmpd);
		printf("%s{\"operation\":\"%s\",\"count\":%llu,\"mean_ns\":%.1f,\"p50_ns\":%.0f,\"p99_ns\":%.0f,\"max_ns\":%.0f}", first ? "" : ",", names[op],
		       (unsigned long long)all.n, all.sum / all.n, pct(&all, .5), pct(&all, .99), all.max);
		first = 0;
	}
	const char *force = getenv("PMEM_IS_PMEM_FORCE");
	printf("],\"pmem\":%s,\"durability\":\"%s\"}\n", is_pmem ? "true" : "false",
	       is_pmem ? (force && !strcmp(force, "1") ? "pmemobj transaction per put, cache-line flushes (PMEM_IS_PMEM_FORCE=1: NOT durable on this machine)" : "pmemobj transaction per put, pmem_persist")
		       : "pmemobj transaction per put, pmem_msync of the page-cache mapping: durable on this disk");
	pmemobj_close(pop); unlink(path);
	return 0;
}
