/*
 * compile_text.h - for the unit tests that build a model from a string:
 * the compiler's stages from the text to the optimized graph and its
 * layout (parse, check, lower, stabilize, autodiff, the optimizer's
 * updates, the graph passes). driver.c's own path adds the command
 * line's overrides, the stage timer and the memory limit.
 */
#ifndef NNC_TESTS_COMPILE_TEXT_H
#define NNC_TESTS_COMPILE_TEXT_H

#include <string.h>
#include "autodiff.h"
#include "check.h"
#include "lower.h"
#include "parse.h"
#include "passes.h"
#include "update.h"

/* text (not copied: it must outlive src) as the model named path, its
 * nodes in arena: the optimized graph, its layout in *layout, compiled
 * for a batch of max_batch rows (0: the train block's batch); NULL after
 * printing the errors when the text has any. */
static Graph *compile_text(Source *src, const char *path, const char *text, Arena *arena, int max_batch,
                           Layout **layout) {
  source_from_text(src, path, text, strlen(text));
  Diag diag = {.src = src};
  Ast ast = {0};
  Program prog;
  nnc_parse(src, arena, &diag, &ast);
  check_program(&ast, src, &diag, arena, &prog);
  if (diag.errors) return NULL;
  ParamInit *inits;
  Graph *g = lower_program(&prog, arena, &inits);
  g->max_batch = max_batch > 0 ? max_batch : (int)prog.train.batch;
  g = pass_stabilize(g, &diag);
  autodiff(g);
  build_updates(g, &prog.train.optim);
  g = optimize_graph(g);
  *layout = layout_make(g, arena);
  return g;
}

#endif
