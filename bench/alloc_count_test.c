/* alloc_count_test.c -- checks bench/alloc_count.so (bench/run builds and
 * runs it before measuring).
 *
 * Build and run:
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -pthread -o alloc_count_test \
 *       bench/alloc_count_test.c -ldl
 *   LD_PRELOAD=./alloc_count.so ./alloc_count_test     (prints "ok", exit 0)
 *   ./alloc_count_test                                  (prints "not preloaded", exit 3)
 *
 * Looks the counter up the way nnc does (dlsym(RTLD_DEFAULT, ...)), then
 * checks that each allocation function adds exactly one, that a region
 * without allocations reads zero, and that counts from two threads are
 * exact, and that the total is reported at _exit as at exit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef unsigned long (*CountFn)(void);
static CountFn count;
static int failures;

#define CHECK_DELTA(what, expect, stmt) do { \
	unsigned long c0_ = count(); \
	stmt; \
	unsigned long d_ = count() - c0_; \
	if (d_ != (unsigned long)(expect)) { \
		printf("FAIL %s: %lu allocations counted, expected %lu\n", \
		    what, d_, (unsigned long)(expect)); \
		failures++; \
	} \
} while (0)

enum { PER_THREAD = 100000 };

static void *
worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < PER_THREAD; i++) {
		void *volatile p = malloc(16 + (size_t)(i & 63));
		free(p);
	}
	return NULL;
}

int
main(void)
{
	count = (CountFn)dlsym(RTLD_DEFAULT, "nnc_alloc_count");
	if (!count) {
		printf("not preloaded\n");
		return 3;
	}
	void *volatile p = NULL;
	void *q = NULL;
	char *volatile s = NULL;

	CHECK_DELTA("malloc", 1, p = malloc(100));
	CHECK_DELTA("realloc", 1, p = realloc(p, 10000));
	CHECK_DELTA("free", 0, free(p));
	CHECK_DELTA("calloc", 1, p = calloc(10, 10));
	free(p);
	CHECK_DELTA("aligned_alloc", 1, p = aligned_alloc(64, 256));
	if ((unsigned long)p % 64 != 0) {
		printf("FAIL aligned_alloc: not aligned\n");
		failures++;
	}
	free(p);
	CHECK_DELTA("posix_memalign", 1, if (posix_memalign(&q, 128, 1000) != 0) q = NULL);
	if (!q || (unsigned long)q % 128 != 0) {
		printf("FAIL posix_memalign: null or not aligned\n");
		failures++;
	}
	free(q);
	CHECK_DELTA("posix_memalign(bad alignment)", 1,
	    if (posix_memalign(&q, 24, 1000) == 0) { printf("FAIL posix_memalign accepted 24\n"); failures++; });
	CHECK_DELTA("memalign", 1, p = memalign(32, 100));
	free(p);
	CHECK_DELTA("reallocarray", 1, p = reallocarray(NULL, 10, 8));
	free(p);
	CHECK_DELTA("strdup", 1, s = strdup("abc"));
	free(s);
	volatile double acc = 0;
	CHECK_DELTA("no allocation", 0, for (int i = 0; i < 1000; i++) acc += i * 0.5);

	/* two threads: every malloc counted exactly once (pthread_create
	 * itself allocates a few blocks: the thread's TLS vector) */
	pthread_t t[2];
	unsigned long c0 = count();
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	unsigned long d = count() - c0;
	if (d < 2 * PER_THREAD || d > 2 * PER_THREAD + 16) {
		printf("FAIL 2 threads: %lu allocations counted, expected %d (+ up to 16)\n",
		    d, 2 * PER_THREAD);
		failures++;
	}
	/* the report at _exit, which runs no destructors (nnc ends so) */
	int fd[2];
	if (pipe(fd) != 0) {
		printf("FAIL pipe\n");
		failures++;
	} else if (fork() == 0) {
		dup2(fd[1], 2);
		setenv("NNC_ALLOC_COUNT_REPORT", "1", 1);
		_exit(0);
	} else {
		close(fd[1]);
		char out[128] = {0};
		ssize_t n = read(fd[0], out, sizeof out - 1);
		wait(NULL);
		if (n <= 0 || strncmp(out, "alloc_count total ", 18) != 0) {
			printf("FAIL no report at _exit: '%s'\n", n > 0 ? out : "");
			failures++;
		}
	}
	if (failures) {
		printf("%d failures\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
