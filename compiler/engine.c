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

IndexInput *engine_index_inputs(const Graph *g, int *n) {
  IndexInput *out = nnc_xcalloc((size_t)g->len + 1, sizeof *out);
  *n = 0;
  for (int i = 0; i < g->len; i++) {
    const Node *gather = g->nodes[i], *ids = gather->in[1];
    if (gather->op != OP_GATHER || ids->op != OP_INPUT) continue;
    int64_t col = 0; /* where ids begins in a row of inputs */
    for (int k = 0; k < g->inputs.len && g->inputs.items[k] != ids; k++)
      col += shape_numel(&((const Node *)g->inputs.items[k])->shape);
    out[(*n)++] = (IndexInput){.input = ids, .table = gather->in[0], .column = col,
                               .count = shape_numel(&ids->shape), .rows = gather->in[0]->shape.dim[0]};
  }
  return out;
}

Engine *engine_new(const Engine *ops, const Graph *g, const Layout *layout, int max_batch, void *impl) {
  Engine *e = nnc_xmalloc(sizeof *e);
  *e = *ops;
  e->g = g;
  e->layout = layout;
  e->max_batch = max_batch;
  e->rows_per_step = max_batch;
  e->part_rows = max_batch;
  e->impl = impl;
  e->buf = nnc_xaligned((size_t)layout->total * (size_t)layout->elem_size);
  layout_init_states(g, layout, e->buf);
  return e;
}

void engine_free(Engine *e) {
  free(e->buf);
  free(e);
}
