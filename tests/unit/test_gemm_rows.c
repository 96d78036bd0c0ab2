/*
 * test_gemm_rows.c - grad_part, which a thread runs on its shard of the
 * batch, chooses a layer's GEMM orientation (gemm.c, "Transposed
 * products") by its row count at run time: W2's products that are
 * stored transposed at a batch of 64 are so in train_step (trans = 1, a
 * constant), and in grad_part only from a threshold of rows on (the
 * trans argument a value of the rows); the others (the input gradient
 * of a transposed matrix among them) are trans = 0 in both. Its scratch
 * holds either orientation's packing. A shard's rows (Graph.part_rows,
 * a thread's share of the batch) size grad_part's workspace.
 */
#include <llvm-c/Core.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "compile_text.h"
#include "expect.h"
#include "gemm.h"
#include "jit.h"
#include "util.h"

static const char W2[] = "model w {\n input x[64]\n target t[10]\n"
                         " y = x -> linear(256) -> relu -> linear(256) -> relu -> linear(10)\n"
                         " loss cross_entropy(y, t)\n}\ntrain {\n batch 64\n}\n";

/* The text of function `name` of the module built with fns. */
static char *function_text(const Graph *g, const Layout *L, unsigned fns, const char *name, CgInfo *info) {
  LLVMContextRef ctx = LLVMContextCreate();
  CgTarget target = jit_target("x86-64-v4");
  LLVMModuleRef mod = codegen_module(ctx, g, L, 64, fns, &target, info);
  char *all = LLVMPrintModuleToString(mod), *at = strstr(all, name), *out = NULL;
  if (at) {
    char *end = strstr(at, "\n}\n");
    out = nnc_xstrdup(at);
    if (end) out[end - at] = 0;
  }
  LLVMDisposeMessage(all);
  LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  return out;
}

/* The trans argument (the fifth from the end, before the part it
 * computes) of each call of the macro-kernel, in order. */
static int trans_args(const char *fn, char args[][16], int max) {
  int k = 0;
  for (const char *p = fn; k < max && (p = strstr(p, "call void @nnc.gemm(")); p++) {
    const char *eol = strchr(p, '\n'), *end = eol ? eol : p + strlen(p);
    while (end > p && *end != ')') end--; /* the call's own, after any constant expression's */
    const char *comma = end;
    for (int skip = 0; skip < 5; skip++) { /* past i1, j0, j1 and i0 to the comma before trans */
      if (skip) end = comma;
      comma = end - 1;
      while (comma > p && *comma != ',') comma--;
    }
    snprintf(args[k++], 16, "%.*s", (int)(end - comma - 2), comma + 2);
  }
  return k;
}

int main(void) {
  Source src;
  Arena arena;
  arena_init(&arena);
  Layout *L;
  Graph *g = compile_text(&src, "w2.nn", W2, &arena, 64, &L);
  if (!g) return 1;

  CgInfo step_info = {0}, part_info = {0};
  char *step = function_text(g, L, CG_TRAIN_STEP, "define float @nnc_w_train_step(", &step_info);
  char *part = function_text(g, L, CG_GRAD_PART, "define float @nnc_w_grad_part(", &part_info);
  EXPECT(step && part);
  if (!step || !part) return 1;
  char s[16][16], p[16][16];
  int ns = trans_args(step, s, 16), np = trans_args(part, p, 16);
  printf("train_step trans:");
  for (int i = 0; i < ns; i++) printf(" %s", s[i]);
  printf("\ngrad_part trans:");
  for (int i = 0; i < np; i++) printf(" %s", p[i]);
  printf("\n");
  EXPECT(ns == np && ns >= 4);
  int step_trans = 0, step_normal = 0, part_chosen = 0, part_normal = 0;
  for (int i = 0; i < ns; i++) {
    step_trans += strcmp(s[i], "i64 1") == 0;
    step_normal += strcmp(s[i], "i64 0") == 0;
  }
  for (int i = 0; i < np; i++) {
    part_chosen += strncmp(p[i], "i64 %", 5) == 0;
    part_normal += strcmp(p[i], "i64 0") == 0;
  }
  /* the forward products of the 256 x 256 and 10 x 256 layers:
     transposed at 64 rows, not at few (trans_from); the input gradient
     (dy W, a transposed matrix) never */
  EXPECT(step_trans == 2 && step_trans + step_normal == ns);
  EXPECT(part_chosen == step_trans && part_normal == step_normal);
  /* the threshold: the rows compared with a constant */
  EXPECT(strstr(part, "icmp sge i64 %n, ") != NULL);
  /* the 256 x 256 layer's forward product: grad_part's scratch holds
     either orientation's packing, train_step's the transposed one */
  const Node *fwd = NULL;
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    if (n->op == OP_MATMUL && n->batched && n->in[0]->op != OP_TRANSPOSE && n->in[0]->shape.rank == 2 &&
        n->in[0]->shape.dim[0] == 256 && n->in[0]->shape.dim[1] == 256)
      fwd = n;
  }
  EXPECT(fwd != NULL);
  if (fwd) {
    int64_t either = gemm_scratch_bytes(fwd, 4, 64, true), trans = gemm_scratch_bytes(fwd, 4, 64, false);
    EXPECT(either >= trans && either >= gemm_pack_bytes(256, 256, 4));
  }
  /* two threads: grad_part's workspace for 32 rows, its activations half
     of 64 rows' (the packing scratch does not follow the rows) */
  g->part_rows = 32;
  CgInfo half_info = {0};
  char *half = function_text(g, L, CG_GRAD_PART, "define float @nnc_w_grad_part(", &half_info);
  g->part_rows = 0;
  printf("grad_part workspace: %lld bytes at 64 rows, %lld at 32\n", (long long)part_info.part_ws_bytes,
         (long long)half_info.part_ws_bytes);
  int64_t acts = 32 * (256 + 256 + 10) * 4; /* the half that goes: at least the layers' outputs */
  EXPECT(half && half_info.part_ws_bytes > 0 && half_info.part_ws_bytes <= part_info.part_ws_bytes - acts);
  free(half);
  free(step);
  free(part);
  arena_free(&arena);
  printf("%s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
