/*
 * fuzz_nnc.c - libFuzzer target: source text through every compile stage.
 *
 *   parse -> check -> lower -> stabilize -> autodiff -> update -> passes
 *   and, for one input in sixteen, LLVM code generation and verification.
 *
 * User errors are fine (they are counted quietly); what the fuzzer finds is
 * a crash, a sanitizer report, an internal error (nnc_die aborts) or a
 * timeout. Build with -DNNC_FUZZ=ON and clang (see README).
 */
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "check.h"
#include "codegen.h"
#include "jit.h"
#include "lower.h"
#include "parse.h"
#include "passes.h"
#include "update.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  char *text = nnc_xmalloc(size + 1);
  memcpy(text, data, size);
  text[size] = 0;
  Source src;
  source_from_text(&src, "fuzz.nn", text, size);
  Diag diag = {.src = &src, .quiet = true};
  Arena arena;
  arena_init(&arena);
  Ast ast = {0};
  Program prog;
  nnc_parse(&src, &arena, &diag, &ast);
  if (diag.errors == 0) check_program(&ast, &src, &diag, &arena, &prog);
  if (diag.errors == 0) {
    ParamInit *inits;
    Graph *g = lower_program(&prog, &arena, &inits);
    g->max_batch = (int)prog.train.batch;
    graph_verify(g, "lower");
    g = pass_stabilize(g, &diag);
    autodiff(g);
    graph_verify(g, "autodiff");
    Graph *u = pass_cse(g);
    build_updates(u, &prog.train.optim);
    graph_verify(u, "update");
    u = optimize_graph(u);
    Layout *layout = layout_make(u, &arena);
    /* code generation is slower: one input in sixteen, small models only */
    int64_t elems = 0;
    for (int i = 0; i < u->len; i++) elems += shape_numel(&u->nodes[i]->shape);
    if (size > 0 && data[0] % 16 == 0 && elems < 20000 && u->max_batch <= 64) {
      LLVMContextRef ctx = LLVMContextCreate();
      CgTarget target = jit_target("native");
      LLVMModuleRef mod = codegen_module(ctx, u, layout, u->max_batch, CG_ALL, &target, NULL);
      char *msg = NULL;
      if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) nnc_die("invalid module: %s", msg);
      LLVMDisposeMessage(msg);
      LLVMDisposeModule(mod);
      LLVMContextDispose(ctx);
    }
  }
  arena_free(&arena);
  free(text);
  return 0;
}
