/*
 * engine.c - what both engines share: the row widths of the data and the
 * parameter buffer.
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

static int64_t leaf_cols(const PtrVec *leaves) {
  int64_t n = 0;
  for (int i = 0; i < leaves->len; i++) n += shape_numel(&((Node *)leaves->items[i])->shape);
  return n;
}

int64_t engine_input_cols(const Graph *g) { return leaf_cols(&g->inputs); }
int64_t engine_target_cols(const Graph *g) { return leaf_cols(&g->targets); }

int64_t engine_input_column(const Graph *g, const Node *in) {
  int64_t col = 0;
  for (int k = 0; k < g->inputs.len && g->inputs.items[k] != in; k++)
    col += shape_numel(&((const Node *)g->inputs.items[k])->shape);
  return col;
}

Engine *engine_new(const Engine *ops, const Graph *g, const Layout *layout, int max_batch, void *impl) {
  Engine *e = nnc_xmalloc(sizeof *e);
  *e = *ops;
  e->g = g;
  e->layout = layout;
  e->max_batch = max_batch;
  e->rows_per_step = max_batch;
  e->impl = impl;
  e->buf = nnc_xaligned((size_t)layout->total * (size_t)layout->elem_size);
  layout_init_states(g, layout, e->buf);
  return e;
}

void engine_free(Engine *e) {
  free(e->buf);
  free(e);
}
