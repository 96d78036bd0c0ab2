/*
 * jit.c - placeholder until the LLVM code generator lands: --jit reports
 * that compiled code is not available in this build.
 */
#include "jit.h"

#include <stdio.h>

Engine *jit_engine_new(const Graph *g, const Layout *layout, int max_batch, int opt_level,
                       bool time) {
  fprintf(stderr, "nnc: error: --jit is not available in this build yet\n");
  return NULL;
}

int jit_emit(const Graph *g, const Layout *layout, int max_batch, int opt_level, const char *kind,
             const char *path, bool time) {
  fprintf(stderr, "nnc: error: --emit %s is not available in this build yet\n", kind);
  return 1;
}
