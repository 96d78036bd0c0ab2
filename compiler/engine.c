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

void *engine_buffer_new(const Graph *g, const Layout *layout) {
  size_t bytes = (size_t)layout->total * (size_t)layout->elem_size;
  void *buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!buf) nnc_die("out of memory (%zu bytes of parameters)", bytes);
  memset(buf, 0, bytes);
  layout_init_states(g, layout, buf);
  return buf;
}
