/*
 * expect.h - the unit tests' check: EXPECT(c) counts and prints a failed
 * condition with its line, and the test goes on; main returns failures
 * != 0 at its end.
 */
#ifndef NNC_TESTS_EXPECT_H
#define NNC_TESTS_EXPECT_H

#include <stdio.h>

static int failures;
#define EXPECT(c)                                                                                                     \
  do {                                                                                                                \
    if (!(c)) {                                                                                                       \
      failures++;                                                                                                     \
      printf("FAILED: %s (line %d)\n", #c, __LINE__);                                                                 \
    }                                                                                                                 \
  } while (0)

#endif
