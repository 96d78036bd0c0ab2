/* alloc_count.c -- count heap allocations of a process (LD_PRELOAD).
 *
 * Build:
 *   gcc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -fPIC -shared \
 *       -o alloc_count.so bench/alloc_count.c
 *
 * Use:
 *   LD_PRELOAD=./alloc_count.so nnc bench/w1_moons.nn --jit --train ...
 *
 * Every call of malloc, calloc, realloc, reallocarray, aligned_alloc,
 * posix_memalign, memalign, valloc and pvalloc adds one to a counter
 * (also the ones that fail, and realloc(p, 0)); free is not counted.
 * C++ operator new goes through malloc, so LLVM's allocations are seen
 * too.  The counter is a relaxed atomic, so counts from several threads
 * are exact; reading it is cheap.
 *
 * A program may read it with
 *
 *   unsigned long (*count)(void) =
 *       (unsigned long (*)(void))dlsym(RTLD_DEFAULT, "nnc_alloc_count");
 *
 * which is NULL when the library is not preloaded (alloc_count_test.c
 * does).  With NNC_ALLOC_COUNT_REPORT=1 in the environment the library
 * writes "alloc_count total N" to standard error when the process exits
 * (by exit or by _exit):
 * bench/run runs nnc at two epoch counts, and the difference of the two
 * totals is what the extra training steps allocated.
 *
 * The allocation functions forward to glibc's own entry points
 * (__libc_malloc and friends, exported by glibc for exactly this), so there
 * is no dlsym(RTLD_NEXT) and no recursion while the library starts.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* glibc's allocator, under the names it exports for interposers */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static atomic_ulong n_alloc;

static inline void
count(void)
{
	atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
}

EXPORT unsigned long
nnc_alloc_count(void)
{
	return atomic_load_explicit(&n_alloc, memory_order_relaxed);
}

EXPORT void *
malloc(size_t n)
{
	count();
	return __libc_malloc(n);
}

EXPORT void *
calloc(size_t n, size_t size)
{
	count();
	return __libc_calloc(n, size);
}

EXPORT void *
realloc(void *p, size_t n)
{
	count();
	return __libc_realloc(p, n);
}

/* glibc's own reallocarray calls realloc internally, not through the PLT */
EXPORT void *
reallocarray(void *p, size_t n, size_t size)
{
	count();
	size_t bytes;
	if (__builtin_mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, bytes);
}

static int
pow2(size_t a)
{
	return a != 0 && (a & (a - 1)) == 0;
}

EXPORT void *
aligned_alloc(size_t align, size_t n)
{
	count();
	if (!pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return __libc_memalign(align, n);
}

EXPORT void *
memalign(size_t align, size_t n)
{
	count();
	return __libc_memalign(align, n);
}

EXPORT int
posix_memalign(void **out, size_t align, size_t n)
{
	count();
	if (!pow2(align) || align % sizeof(void *) != 0)
		return EINVAL;
	int saved = errno;
	void *p = __libc_memalign(align, n);
	if (!p)
		return ENOMEM;
	errno = saved;
	*out = p;
	return 0;
}

EXPORT void *
valloc(size_t n)
{
	count();
	return __libc_valloc(n);
}

EXPORT void *
pvalloc(size_t n)
{
	count();
	return __libc_pvalloc(n);
}

/* "alloc_count total N\n" on standard error, without stdio (no allocation),
 * at the process's exit: a destructor, and _exit below */
__attribute__((destructor)) static void
report(void)
{
	const char *e = getenv("NNC_ALLOC_COUNT_REPORT");
	if (!e || strcmp(e, "1") != 0)
		return;
	char buf[64], digits[24];
	unsigned long v = nnc_alloc_count();
	int nd = 0;
	do {
		digits[nd++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	static const char head[] = "alloc_count total ";
	size_t k = sizeof head - 1;
	memcpy(buf, head, k);
	while (nd)
		buf[k++] = digits[--nd];
	buf[k++] = '\n';
	ssize_t r = write(2, buf, k);
	(void)r;
}

/* nnc ends a plain run with _exit, which runs no destructors (driver/main.c:
 * LLVM's static destructors cost more than they give back), so the report
 * is written here too before the process ends. */
void
_exit(int status)
{
	report();
	syscall(SYS_exit_group, status);
	__builtin_unreachable();
}
