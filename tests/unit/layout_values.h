/*
 * layout_values.h - for the unit tests that run a model's update functions
 * on a buffer of their own: the model they build, and numbers that are
 * not round, written in the layout's dtype.
 */
#ifndef NNC_TESTS_LAYOUT_VALUES_H
#define NNC_TESTS_LAYOUT_VALUES_H

#include <math.h>
#include <stdint.h>
#include "update.h"

/* The model's text, an MLP with tensors of 10 (shorter than a vector), 33
   and 7x33 (not whole lines), 40x24; its dtype, optimizer and other train
   settings given. */
#define MLP(DTYPE, OPT, EXTRA)                                                                                  \
  "model m {\n dtype " DTYPE "\n input x[24]\n target t[10]\n"                                                \
  " z = x -> linear(40) -> relu -> linear(33) -> tanh -> linear(10)\n loss cross_entropy(z, t)\n}\n"          \
  "train {\n optimizer " OPT "\n batch 8\n" EXTRA "}\n"

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
