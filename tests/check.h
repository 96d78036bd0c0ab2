/*
 * check.h - the C unit tests' checks: CHECK counts a condition, REQUIRE
 * also ends the calling test function when it fails, run_group prints one
 * "ok"/"FAIL" line per group of checks, and check_report prints the totals
 * and gives the exit status (1 when any check failed).
 *
 * Each test program includes this once; everything is static, so the
 * counters belong to that program.
 */
#ifndef NNC_TESTS_CHECK_H
#define NNC_TESTS_CHECK_H

#include <stdio.h>

static int check_passed, check_failed, check_group_failed;

static inline void check_at(int ok, const char *file, int line, const char *what) {
  if (ok) {
    check_passed++;
    return;
  }
  check_failed++;
  check_group_failed++;
  printf("  %s:%d: check failed: %s\n", file, line, what);
}

#define CHECK(cond) check_at((cond) != 0, __FILE__, __LINE__, #cond)

/* A check that the rest of the test function depends on: on failure the
 * function returns (what it allocated may leak; the run has failed anyway). */
#define REQUIRE(cond)                                                                                              \
  do {                                                                                                             \
    int ok_ = (cond) != 0;                                                                                         \
    check_at(ok_, __FILE__, __LINE__, #cond);                                                                      \
    if (!ok_)                                                                                                      \
      return;                                                                                                      \
  } while (0)

static inline void run_group(const char *name, void (*fn)(void)) {
  int before = check_passed + check_failed;
  check_group_failed = 0;
  fn();
  int checks = check_passed + check_failed - before;
  if (check_group_failed)
    printf("FAIL  %s (%d of %d checks failed)\n", name, check_group_failed, checks);
  else
    printf("ok    %s (%d checks)\n", name, checks);
}

static inline int check_report(void) {
  printf("%d passed, %d failed\n", check_passed, check_failed);
  return check_failed != 0;
}

#endif
