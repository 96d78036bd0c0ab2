/*
 * layout_values.h - for the unit tests that run a model's update functions
 * on a buffer of their own: numbers that are not round, written in the
 * layout's dtype.
 */
#ifndef NNC_TESTS_LAYOUT_VALUES_H
#define NNC_TESTS_LAYOUT_VALUES_H

#include <math.h>
#include <stdint.h>
#include "update.h"

/* buf[at] = v, in the layout's dtype. */
static void put(const Layout *L, void *buf, int64_t at, double v) {
  if (L->elem_size == 8)
    ((double *)buf)[at] = v;
  else
    ((float *)buf)[at] = (float)v;
}

/* Every element of buf a number that is not round, then the states at
 * their starting values (the tests set the moments they need after it). */
static void fill_values(const Graph *g, const Layout *L, void *buf) {
  for (int64_t i = 0; i < L->total; i++) put(L, buf, i, sin((double)i * 0.37 + 0.1) * 0.5);
  layout_init_states(g, L, buf);
}

/* Another thread's gradients: a buffer of the layout, other numbers. */
static void fill_grad2(const Layout *L, void *g2) {
  for (int64_t i = 0; i < L->total; i++) put(L, g2, i, cos((double)i * 0.23 + 0.4) * 0.3);
}

#endif
