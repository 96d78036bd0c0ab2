/*
 * test_util.c - unit tests of util's string map, closest-name search and
 * bulk memory (nnc_bulk_alloc, nnc_prefault).
 * Prints "N passed, N failed"; the exit status is 1 when any check failed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#include "../check.h"

static void test_strmap(void) {
  StrMap m = {0};
  CHECK(strmap_get(&m, "x") == NULL); /* an empty map */
  /* enough keys to grow the table several times */
  static char keys[5000][8];
  for (int i = 0; i < 5000; i++) {
    snprintf(keys[i], sizeof keys[i], "k%d", i);
    strmap_put(&m, keys[i], keys[i]);
  }
  CHECK(m.len == 5000);
  int found = 0;
  for (int i = 0; i < 5000; i++) {
    char probe[8];
    snprintf(probe, sizeof probe, "k%d", i); /* equal text, another pointer */
    found += strmap_get(&m, probe) == keys[i];
  }
  CHECK(found == 5000);
  CHECK(strmap_get(&m, "k5000") == NULL);
  CHECK(strmap_get(&m, "") == NULL);
  /* putting a key again replaces its value */
  strmap_put(&m, "k7", keys[8]);
  CHECK(strmap_get(&m, "k7") == keys[8]);
  CHECK(m.len == 5000);
  strmap_free(&m);
  CHECK(m.cap == 0 && strmap_get(&m, "k1") == NULL);
}

static const char *closest(const char *name, int max_edits, const char *const *names) {
  Closest c = closest_start(name, max_edits);
  for (; *names; names++) closest_offer(&c, *names);
  return c.best;
}

static void test_closest(void) {
  const char *keys[] = {"data", "valid", "epochs", "batch", "seed", NULL};
  CHECK(closest("epoch", 2, keys) && strcmp(closest("epoch", 2, keys), "epochs") == 0);
  CHECK(closest("bacth", 2, keys) && strcmp(closest("bacth", 2, keys), "batch") == 0);
  CHECK(closest("momentum", 2, keys) == NULL); /* nothing close */
  CHECK(closest("seeds", 0, keys) == NULL);    /* one edit away, none allowed */
  /* fewer edits than the name has letters: 'ed' is not a misspelling of 'seed' */
  CHECK(closest("ed", 2, keys) == NULL);
  /* the closest wins, and the first of equally close ones */
  const char *names[] = {"relu", "reli", "rel", NULL};
  CHECK(closest("relx", 2, names) && strcmp(closest("relx", 2, names), "relu") == 0);
  CHECK(closest("rel", 2, names) && strcmp(closest("rel", 2, names), "rel") == 0);
  /* names past 40 characters are never close */
  char longer[64];
  memset(longer, 'a', 50);
  longer[50] = 0;
  const char *only[] = {longer, NULL};
  CHECK(closest(longer, 2, only) == NULL);
}

/* Resident bytes of this process (/proc/self/statm), or -1. */
static long resident(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size, pages = -1;
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &size, &pages) != 2) pages = -1;
  fclose(f);
  return pages < 0 ? -1 : pages * sysconf(_SC_PAGESIZE);
}

static bool all_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

static void test_bulk(void) {
  /* zeroed, 64-byte aligned, writable, freed, on both sides of the
     threshold and of a huge page; a mapping's length is the size rounded
     to pages, or to huge pages when that adds at most 1/16 */
  size_t sizes[] = {0, 1, 100, NNC_BULK_MIN - 1, NNC_BULK_MIN, NNC_BULK_MIN + 1, (size_t)3 << 20,
                    12544000, ((size_t)4 << 20) - 4096};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    size_t n = sizes[i];
    unsigned char *p = nnc_bulk_alloc(n);
    CHECK(p != NULL);
    if (!p) continue;
    CHECK((uintptr_t)p % 64 == 0);
    CHECK(all_zero(p, n));
    memset(p, 0xab, n);
    size_t len = nnc_bulk_size(n);
    CHECK(len >= n);
    if (n >= NNC_BULK_MIN) CHECK(len % 4096 == 0 && len <= n + (n / 16 > 4095 ? n / 16 : 4095));
    nnc_bulk_free(p, n);
  }
  CHECK(nnc_bulk_size(12544000) == (size_t)6 << 21);      /* 40 KB short of 6 huge pages */
  CHECK(nnc_bulk_size((size_t)3 << 20) == (size_t)3 << 20); /* 1 MiB more would be a third */
  /* every page is present once it returns: the resident size grew by
     the whole of it before anything was written */
  size_t big = (size_t)16 << 20;
  long before = resident();
  unsigned char *p = nnc_bulk_alloc(big);
  long after = resident();
  CHECK(p != NULL);
  if (before >= 0 && after >= 0) CHECK(after - before >= (long)big - (1 << 20));
  nnc_bulk_free(p, big);
  /* more than the address space: NULL with errno set, no crash */
  errno = 0;
  CHECK(nnc_bulk_alloc(SIZE_MAX / 2) == NULL && errno != 0);
  nnc_bulk_free(NULL, 12345);
  /* prefault: the pages of any allocation, contents untouched */
  size_t n = (size_t)5 << 20;
  unsigned char *q = malloc(n);
  CHECK(q != NULL);
  if (!q) return;
  memset(q, 7, n);
  before = resident();
  nnc_prefault(q, n);
  CHECK(q[0] == 7 && q[n / 2] == 7 && q[n - 1] == 7);
  free(q);
  unsigned char *r = malloc(n); /* fresh pages, or reused ones */
  CHECK(r != NULL);
  if (!r) return;
  nnc_prefault(r + 1, n - 1); /* an unaligned start: the pages inside it */
  memset(r, 1, n);
  nnc_prefault(r, 100); /* below the threshold: nothing */
  nnc_prefault(NULL, n);
  CHECK(r[0] == 1 && r[n - 1] == 1);
  /* a prefaulted block grows by realloc (glibc moves a large block's
     mapping whole: the huge-page flag must not split it) and keeps its
     contents; the new part is prefaulted as a data set's rows are */
  unsigned char *g = realloc(r, 4 * n);
  CHECK(g != NULL);
  if (!g) {
    free(r);
    return;
  }
  nnc_prefault(g, 4 * n);
  CHECK(g[0] == 1 && g[n - 1] == 1);
  memset(g + n, 2, 3 * n);
  CHECK(g[4 * n - 1] == 2);
  free(g);
  unsigned char *f = nnc_xmalloc_filled(n);
  memset(f, 3, n);
  CHECK(f[n - 1] == 3);
  free(f);
}

int main(void) {
  test_strmap();
  test_closest();
  test_bulk();
  return check_report();
}
