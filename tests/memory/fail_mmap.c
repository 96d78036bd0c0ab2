/*
 * fail_mmap.c - an LD_PRELOAD library for tests: every mmap of at least
 * NNC_TEST_MMAP_FAIL bytes fails with ENOMEM, as when memory is short, so a
 * test sees what nnc says then (glibc's malloc maps through an internal
 * call, which this does not catch).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/types.h>

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  static void *(*real)(void *, size_t, int, int, int, off_t);
  if (!real) real = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
  const char *limit = getenv("NNC_TEST_MMAP_FAIL");
  if (limit && len >= strtoull(limit, NULL, 10)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  return real(addr, len, prot, flags, fd, off);
}
