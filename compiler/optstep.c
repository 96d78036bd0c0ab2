/*
 * optstep.c - Adam's step of a parameter as one call of a fixed kernel
 * (optstep.h).
 */
#include "optstep.h"

#include "gemm.h"
#include "fork.h"

/* ---- the match ---- */

static bool is_op(const Node *n, Op op) { return n && n->op == op; }

/* n = mul(constant, x): the constant's value, x in *x. */
static bool const_times(const Node *n, double *k, const Node **x) {
  if (!is_op(n, OP_MUL) || !is_op(n->in[0], OP_CONST)) return false;
  *k = n->in[0]->attr.value;
  *x = n->in[1];
  return true;
}

static bool scalar(const Node *n) { return !n->batched && shape_numel(&n->shape) == 1; }

/* The update of g whose value is `value`, if its target is a state. */
static const Node *state_updated_to(const Graph *g, const Node *value) {
  for (int i = 0; i < g->nupdates; i++)
    if (g->updates[i].value == value && g->updates[i].target->op == OP_STATE) return g->updates[i].target;
  return NULL;
}

bool adam_step_match(const Graph *g, const Update *u, AdamStep *a) {
  const Node *P = u->value, *X, *Q, *D, *E, *S, *mb, *mg, *vb, *vg, *gg;
  if (u->from_batch || u->target->op != OP_PARAM || !is_op(P, OP_SUB) || P->in[0] != u->target) return false;
  if (!is_op(X = P->in[1], OP_MUL) || !is_op(Q = X->in[1], OP_DIV) || !is_op(D = Q->in[1], OP_ADD) ||
      !is_op(E = D->in[0], OP_DIV) || !is_op(S = E->in[0], OP_SQRT) || !is_op(D->in[1], OP_CONST))
    return false;
  *a = (AdamStep){.p_new = P, .p = u->target, .ss = X->in[0], .bc = E->in[1], .m_new = Q->in[0], .v_new = S->in[0],
                  .eps = D->in[1]->attr.value};
  const Node *M = a->m_new, *V = a->v_new;
  if (!is_op(M, OP_ADD) || !is_op(V, OP_ADD) || !const_times(mb = M->in[0], &a->b1, &a->m) ||
      !const_times(mg = M->in[1], &a->c1, &a->grad) || !const_times(vb = V->in[0], &a->b2, &a->v) ||
      !const_times(vg = V->in[1], &a->c2, &gg) || !is_op(gg, OP_MUL) || gg->in[0] != a->grad ||
      gg->in[1] != a->grad)
    return false;
  if (state_updated_to(g, M) != a->m || state_updated_to(g, V) != a->v || !scalar(a->ss) || !scalar(a->bc))
    return false;
  const Node *inner[ADAM_INNER] = {X, Q, D, E, S, mb, mg, vb, vg, gg};
  const Node *all[] = {P, M, V, a->m, a->v, a->grad};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    if (all[i]->batched || !shape_eq(&all[i]->shape, &a->p->shape)) return false;
  for (int i = 0; i < ADAM_INNER; i++) {
    if (inner[i]->batched || !shape_eq(&inner[i]->shape, &a->p->shape)) return false;
    a->inner[i] = inner[i];
  }
  return true;
}

/* ---- the kernel ---- */

typedef struct AdamArgs {
  LLVMValueRef at[AD_COUNT]; /* the pointers; the constants and scalars splat */
  bool g2, nt;               /* this loop's: the gradient g + g2; p stored non-temporally */
} AdamArgs;

static LLVMValueRef elem(CG *cg, LLVMValueRef base, LLVMValueRef i) {
  return LLVMBuildInBoundsGEP2(cg->b, cg->T, base, &i, 1, "");
}

/* Elements i.. of the step: the operations of codegen.c's loop over m',
 * v' and p' (cg_elem_value of each node, operands in the graph's order). */
static void adam_vector(CG *cg, LLVMValueRef i, void *ctx) {
  const AdamArgs *a = ctx;
  LLVMValueRef const *k = a->at;
  LLVMValueRef g = cg_vec_load(cg, elem(cg, k[AD_G], i));
  if (a->g2) /* cgbase.c's summed gradient: one add, no contraction */
    g = LLVMBuildFAdd(cg->b, g, cg_vec_load(cg, elem(cg, k[AD_G2], i)), "grad_sum");
  LLVMValueRef m = b_fadd(cg, b_fmul(cg, k[AD_B1], cg_vec_load(cg, elem(cg, k[AD_M], i))), b_fmul(cg, k[AD_C1], g));
  cg_vec_store(cg, m, elem(cg, k[AD_M], i));
  LLVMValueRef v = b_fadd(cg, b_fmul(cg, k[AD_B2], cg_vec_load(cg, elem(cg, k[AD_V], i))),
                          b_fmul(cg, k[AD_C2], b_fmul(cg, g, g)));
  cg_vec_store(cg, v, elem(cg, k[AD_V], i));
  LLVMValueRef d = b_fadd(cg, b_fdiv(cg, cg_intrinsic1(cg, "llvm.sqrt", v), k[AD_BC]), k[AD_EPS]);
  LLVMValueRef p = b_fsub(cg, cg_vec_load(cg, elem(cg, k[AD_P], i)), b_fmul(cg, k[AD_SS], b_fdiv(cg, m, d)));
  if (a->nt && !cg->vmask) /* cgbase.c's param_store: a whole vector, aligned */
    cg_store_nontemporal(cg, p, elem(cg, k[AD_P], i));
  else
    cg_vec_store(cg, p, elem(cg, k[AD_P], i));
}

/* The loop of a, in a block of its own that ends at `done`. */
static void adam_loop(CG *cg, LLVMBasicBlockRef at, AdamArgs *a, bool g2, bool nt, LLVMBasicBlockRef done) {
  LLVMPositionBuilderAtEnd(cg->b, at);
  a->g2 = g2, a->nt = nt;
  cg_vec_range(cg, a->at[AD_N], adam_vector, a);
  LLVMBuildBr(cg->b, done);
}

void adam_kernel_body(CG *cg, LLVMValueRef fn) {
  AdamArgs a;
  for (int i = 0; i < AD_COUNT; i++) {
    a.at[i] = LLVMGetParam(fn, (unsigned)i);
    if (i > AD_N && i < AD_G2 && cg->vec_loops && cg->vl > 1) a.at[i] = cg_splat(cg, a.at[i]);
  }
  /* three loops: train_step's and update's, update_part's with and
     without non-temporal stores */
  LLVMBasicBlockRef plain = LLVMAppendBasicBlockInContext(cg->ctx, fn, "plain");
  LLVMBasicBlockRef summed = LLVMAppendBasicBlockInContext(cg->ctx, fn, "summed");
  LLVMBasicBlockRef sum_nt = LLVMAppendBasicBlockInContext(cg->ctx, fn, "summed_nt");
  LLVMBasicBlockRef sum_st = LLVMAppendBasicBlockInContext(cg->ctx, fn, "summed_st");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, fn, "done");
  LLVMBuildCondBr(cg->b, LLVMBuildIsNull(cg->b, a.at[AD_G2], ""), plain, summed);
  LLVMPositionBuilderAtEnd(cg->b, summed);
  LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntNE, a.at[AD_NT], ci(cg, 0), ""), sum_nt, sum_st);
  adam_loop(cg, plain, &a, false, false, done);
  adam_loop(cg, sum_st, &a, true, false, done);
  adam_loop(cg, sum_nt, &a, true, true, done);
  LLVMPositionBuilderAtEnd(cg->b, done);
}

void adam_step_call(CG *cg, const AdamStep *a, LLVMValueRef ss, LLVMValueRef bc) {
  const Node *mem[] = {a->p_new, cg_stored(cg, a->grad), a->m_new, a->v_new};
  const Node *old[] = {a->p, a->grad, a->m, a->v};
  int64_t n = shape_numel(&a->p->shape);
  LLVMValueRef args[AD_COUNT], lo = ci(cg, 0);
  args[AD_N] = ci(cg, n);
  if (cg->slice_part) {
    LLVMValueRef hi;
    cg_slice_bounds(cg, n, 64 / cg->L->elem_size, n, cg_slice_last(cg), &lo, &hi);
    args[AD_N] = LLVMBuildNSWSub(cg->b, hi, lo, "");
  }
  for (int i = 0; i < 4; i++) {
    cg_flush(cg, old[i]);
    cg_flush(cg, mem[i]);
    args[i] = cg_elem_ptr(cg, mem[i], ci(cg, 0), lo);
  }
  args[AD_G2] = LLVMConstPointerNull(cg->ptr), args[AD_NT] = ci(cg, 0);
  if (cg->slice_part) { /* the gradient at its offset in grad2 too */
    LLVMValueRef off = iadd(cg, lo, ci(cg, cg->st[mem[1]->id].off));
    args[AD_G2] = LLVMBuildInBoundsGEP2(cg->b, cg->T, cg->slice_grad, &off, 1, "");
    args[AD_NT] = cg->slice_nt;
  }
  double k[] = {a->b1, a->c1, a->b2, a->c2, a->eps};
  for (int i = 0; i < 5; i++) args[AD_B1 + i] = LLVMConstReal(cg->T, k[i]);
  args[AD_SS] = ss, args[AD_BC] = bc;
  for (int i = 0; i < 4; i++) {
    cg_forget_node(cg, old[i]);
    cg_forget_node(cg, mem[i]);
  }
  LLVMTypeRef ty;
  LLVMValueRef fn = gemm_fixed_kernel(cg, GEMM_OPT_ADAM, &ty);
  if (cg->fork_gemms && !cg->slice_part) { /* nnc_fork_adam(kernel, args, f64) */
    _Static_assert((int)AD_COUNT == (int)FORK_ADAM_ARGS && (int)AD_N == (int)FORK_ADAM_N &&
                       (int)AD_G2 == (int)FORK_ADAM_G2,
                   "fork.h: Adam's arguments");
    LLVMValueRef f64 = ci(cg, cg->L->elem_size == 8);
    gemm_fork_call(cg, FORK_ADAM_SYMBOL, fn, args, AD_COUNT, &f64, 1);
  } else
    LLVMBuildCall2(cg->b, ty, fn, args, AD_COUNT, "");
}
