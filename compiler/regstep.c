/*
 * regstep.c - register tiles: train_epoch, forward and predict for tiny
 * per-sample steps (see regstep.h; the loop-nest code is codegen.c).
 *
 * When every batch is one row and every axis of every tensor in the step
 * fits one vector register (at most `lanes` elements: 4 f64 with AVX2, 8
 * with AVX-512), each step depends on the one before through the weights,
 * and what counts is the latency of that chain. codegen.c's loop-nest code
 * leaves it to LLVM's SLP vectorizer to find vectors in scalar code, which
 * it does with dozens of shuffles on the chain (and most of the compile
 * time). Here train_epoch (and forward, predict) are written in vectors
 * directly:
 *
 *  - a tensor of one element is a vector with it in every lane (RF_UNI);
 *  - a [n] tensor is one vector (RF_VEC); lanes n.. hold 0;
 *  - an [m,n] matrix is its rows (RF_ROW) and/or its columns (RF_COL),
 *    each one vector, each computed only if something reads it;
 *  - W x is sum_k x[k] (in every lane) * column k of W, W^T g is
 *    sum_i g[i] * row i of W, so no horizontal sum or transpose is on
 *    the chain; a dot product is a butterfly that leaves it in every lane;
 *  - a parameter matrix that both W x and W^T g read, and that has more
 *    rows + columns than lanes, is kept as L "xor diagonals" (RF_DIAG:
 *    D_d[i] = W[i][i ^ d]), half the registers of rows + columns. With
 *    P_d(v)[i] = v[i ^ d] (its own inverse; within 128-bit halves for
 *    d < 128 bits, the cheap shuffles): W x = sum_d D_d * P_d(x),
 *    W^T g = sum_d P_d(D_d * g), and g x^T is D_d = g * P_d(x);
 *  - parameters and optimizer state stay in registers for the whole epoch:
 *    loop phis, one per part the step reads, loaded before the loop and
 *    stored after it.
 *
 * Every value is computed when first read (RVal memoizes it), so the step
 * holds only what the loss and the updates need. A row and a column of an
 * updated matrix come from the same products in the same order, so its
 * two forms stay bit-identical.
 */
#include "regstep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"

enum { RT_MAX = 16 };
typedef enum RForm { RF_VEC, RF_ROW, RF_COL, RF_DIAG, RF_UNI, RF_FORMS } RForm;

typedef struct RVal {
  LLVMValueRef part[RF_FORMS][RT_MAX]; /* [form][row, column, diagonal or 0] */
  LLVMValueRef perm[RT_MAX];           /* a vector permuted: lane i holds i ^ d */
  LLVMValueRef *splat;                 /* per element: it in every lane */
} RVal;

typedef struct RPhi {
  const Node *leaf;
  RForm form;
  int idx, slot;      /* the part, and its slot in the scratch */
  LLVMValueRef phi;
  LLVMValueRef latch; /* its value after a step */
} RPhi;

typedef struct Regs {
  CG *cg;
  int L; /* lanes */
  LLVMTypeRef VT, i32;
  LLVMBuilderRef pre; /* the block before the loop, before its branch */
  LLVMBuilderRef top; /* the loop header, before its first phi */
  LLVMBasicBlockRef pre_bb;
  LLVMValueRef xrow, trow; /* this step's row of inputs and of targets */
  RVal *val;
  int *users;        /* readers of each node in the step */
  bool *early;       /* known before the step's chain: no updated state in it */
  bool *diag;        /* per matrix leaf: kept as xor diagonals */
  const Node **next; /* per PARAM/STATE: its value after a step, or NULL */
  RPhi *phi;
  int nphi, cap;
  LLVMBasicBlockRef latch_bb; /* the loop's last block */
  int saved_lanes;            /* cg->lanes outside */
  /* the state's parts go through a scratch on the stack: slot k holds L
     elements, lane l from buf[slot_map[k L + l]] (-1: a 0) */
  LLVMValueRef scratch;
  int64_t *slot_map;
  int nslots, max_slots;
  LLVMValueRef map;           /* slot_map as a constant table */
  LLVMBasicBlockRef start_bb; /* the function's first block: the copy in */
} Regs;

static LLVMValueRef r_get(Regs *r, const Node *n, RForm form, int idx);

static int64_t numel(const Node *n) { return shape_numel(&n->shape); }

/* A matrix under its transposes: the leaf, and whether it is transposed. */
static const Node *r_base(const Node *m, bool *flip) {
  *flip = false;
  for (; m->op == OP_TRANSPOSE; m = m->in[0]) *flip = !*flip;
  return m;
}

/* Elements of a vector (rank 0 or 1). */
static int r_len(const Node *n) { return n->shape.rank == 0 ? 1 : (int)n->shape.dim[0]; }

/* Does lane l of a part hold an element? The other lanes hold 0. */
static bool r_valid(const Regs *r, const Node *n, RForm form, int idx, int l) {
  const int64_t *d = n->shape.dim;
  switch (form) {
  case RF_VEC: return l < r_len(n);
  case RF_ROW: return l < d[1];
  case RF_COL: return l < d[0];
  case RF_DIAG: return l < d[0] && (l ^ idx) < d[1];
  case RF_UNI: case RF_FORMS: break;
  }
  return true;
}

/* Parts of a form: rows, columns, diagonals or 1. */
static int r_parts(const Regs *r, const Node *n, RForm form) {
  return form == RF_ROW ? (int)n->shape.dim[0] : form == RF_COL ? (int)n->shape.dim[1] : form == RF_DIAG ? r->L : 1;
}

/* The linear element index of (valid) lane l of a part. */
static int64_t r_lane_elem(const Regs *r, const Node *n, RForm form, int idx, int l) {
  switch (form) {
  case RF_ROW: return idx * n->shape.dim[1] + l;
  case RF_COL: return l * n->shape.dim[1] + idx;
  case RF_DIAG: return l * n->shape.dim[1] + (l ^ idx);
  case RF_VEC: return l;
  case RF_UNI: case RF_FORMS: break;
  }
  return 0;
}

static LLVMValueRef r_lane(Regs *r, int l) { return LLVMConstInt(r->i32, (unsigned long long)l, 0); }

/* v in lanes < cnt, 0 in the others: a constant */
static LLVMValueRef r_const(Regs *r, double v, int cnt) {
  LLVMValueRef e[RT_MAX];
  for (int l = 0; l < r->L; l++) e[l] = LLVMConstReal(r->cg->T, l < cnt ? v : 0.0);
  return LLVMConstVector(e, (unsigned)r->L);
}

/* lanes of a (0..L-1) and b (L..2L-1) */
static LLVMValueRef r_shuffle(Regs *r, LLVMValueRef a, LLVMValueRef b, const int *lane) {
  LLVMValueRef m[RT_MAX];
  for (int l = 0; l < r->L; l++) m[l] = r_lane(r, lane[l]);
  return LLVMBuildShuffleVector(r->cg->b, a, b ? b : LLVMGetPoison(r->VT), LLVMConstVector(m, (unsigned)r->L), "");
}

/* v with lanes cnt.. replaced by those of `fill` */
static LLVMValueRef r_pad(Regs *r, LLVMValueRef v, int cnt, LLVMValueRef fill) {
  if (cnt >= r->L) return v;
  int lane[RT_MAX];
  for (int l = 0; l < r->L; l++) lane[l] = l < cnt ? l : r->L + l;
  return r_shuffle(r, v, fill, lane);
}

static LLVMValueRef r_mask(Regs *r, LLVMValueRef v, int cnt) { return r_pad(r, v, cnt, r_const(r, 0, 0)); }

/* v with the lanes that are not valid in n's part set to 0 */
static LLVMValueRef r_vmask(Regs *r, LLVMValueRef v, const Node *n, RForm form, int idx) {
  int lane[RT_MAX];
  bool all = true;
  for (int l = 0; l < r->L; l++) {
    bool ok = r_valid(r, n, form, idx, l);
    lane[l] = ok ? l : r->L + l;
    all &= ok;
  }
  return all ? v : r_shuffle(r, v, r_const(r, 0, 0), lane);
}

/* c in the valid lanes of n's part, 0 in the others */
static LLVMValueRef r_vconst(Regs *r, double c, const Node *n, RForm form, int idx) {
  LLVMValueRef e[RT_MAX];
  for (int l = 0; l < r->L; l++) e[l] = LLVMConstReal(r->cg->T, r_valid(r, n, form, idx, l) ? c : 0.0);
  return LLVMConstVector(e, (unsigned)r->L);
}

/* P_d(v): lane i of the result holds lane i ^ d of v. Swapping the 128-bit
 * halves of a 256-bit vector is vperm2f128 (3 cycles on Zen 3), but LLVM
 * writes every lane-crossing shuffle as vpermpd (6 cycles), and merges
 * shuffles until they are one: when the target is x86 with AVX, the swap
 * is that one instruction (inline assembly, which LLVM leaves as it is),
 * and the in-half rest is a shuffle LLVM writes as vpermilpd (1). */
static LLVMValueRef r_permute(Regs *r, LLVMValueRef v, int d) {
  CG *cg = r->cg;
  if (cg->avx_lane_swap && r->L * cg->L->elem_size == 32 && d >= r->L / 2) {
    static const char text[] = "vperm2f128 $$1, $1, $1, $0", constraints[] = "=x,x";
    LLVMTypeRef ty = LLVMFunctionType(r->VT, &r->VT, 1, 0);
    LLVMValueRef swap = LLVMGetInlineAsm(ty, text, sizeof text - 1, constraints, sizeof constraints - 1, 0, 0,
                                         LLVMInlineAsmDialectATT, 0);
    v = LLVMBuildCall2(cg->b, ty, swap, &v, 1, "");
    d -= r->L / 2;
  }
  if (d == 0) return v;
  int lane[RT_MAX];
  for (int l = 0; l < r->L; l++) lane[l] = l ^ d;
  return r_shuffle(r, v, NULL, lane);
}

/* lane l of v in every lane */
static LLVMValueRef r_bcast(Regs *r, LLVMValueRef v, int l) {
  int lane[RT_MAX];
  for (int k = 0; k < r->L; k++) lane[k] = l;
  return r_shuffle(r, v, NULL, lane);
}

/* The sum (or max) of all lanes, in every lane: log2(L) swaps and adds.
 * Lane k adds the same two numbers as its partner, so all lanes agree. */
static LLVMValueRef r_across(Regs *r, LLVMValueRef v, bool max) {
  for (int s = 1; s < r->L; s *= 2) {
    LLVMValueRef w = r_permute(r, v, s);
    v = max ? sel(r->cg, fgt(r->cg, w, v), w, v) : b_fadd(r->cg, v, w);
  }
  return v;
}

/* Load the elements of a part from p[0..] (lane l at p[r_lane_elem]): an
 * input or target row. */
static LLVMValueRef r_load(Regs *r, LLVMValueRef p, const Node *n, RForm form, int idx) {
  CG *cg = r->cg;
  LLVMValueRef v = r_const(r, 0, 0);
  for (int l = 0; l < (form == RF_UNI ? 1 : r->L); l++) {
    if (!r_valid(r, n, form, idx, l)) continue;
    LLVMValueRef off = ci(cg, r_lane_elem(r, n, form, idx, l));
    LLVMValueRef e = LLVMBuildLoad2(cg->b, cg->T, LLVMBuildInBoundsGEP2(cg->b, cg->T, p, &off, 1, ""), "");
    v = LLVMBuildInsertElement(cg->b, v, e, r_lane(r, l), "");
  }
  return form == RF_UNI ? r_bcast(r, v, 0) : v;
}

static int64_t r_buf_off(Regs *r, const Node *leaf) {
  return leaf->op == OP_PARAM ? r->cg->L->param_off[leaf->param_index] : r->cg->L->state_off[leaf->state_index];
}

/* Slot k of the scratch, loaded before the loop. The freeze (a no-op on a
 * loaded number) keeps LLVM's register allocator from treating the loop
 * phi that starts from it as a value living in the scratch: without it the
 * same loop came out 10% slower on Zen 3 (W1, measured). */
static LLVMValueRef r_load_slot(Regs *r, int slot) {
  LLVMValueRef at = ci(r->cg, (int64_t)slot * r->L);
  LLVMValueRef v = LLVMBuildLoad2(r->pre, r->VT, LLVMBuildInBoundsGEP2(r->pre, r->cg->T, r->scratch, &at, 1, ""), "");
  LLVMSetAlignment(v, (unsigned)r->cg->L->elem_size);
  return LLVMBuildFreeze(r->pre, v, "");
}

/* A parameter or optimizer state: a loop phi when the step changes it,
 * else loaded once before the loop. */
static LLVMValueRef r_leaf(Regs *r, const Node *n, RForm form, int idx) {
  /* its part's slot in the scratch (r_copy_state) */
  int slot = r->nslots++;
  if (slot >= r->max_slots) nnc_die("codegen: register step: out of state slots");
  for (int l = 0; l < r->L; l++) {
    bool ok = form == RF_UNI || r_valid(r, n, form, idx, l);
    r->slot_map[(int64_t)slot * r->L + l] = ok ? r_buf_off(r, n) + r_lane_elem(r, n, form, idx, l) : -1;
  }
  LLVMValueRef init = r_load_slot(r, slot);
  if (!r->next[n->id]) return init;
  char name[160];
  const char *what = n->name ? n->name : "state";
  if (form == RF_ROW || form == RF_COL || form == RF_DIAG)
    snprintf(name, sizeof name, "%s.%s%d", what, form == RF_ROW ? "row" : form == RF_COL ? "col" : "diag", idx);
  else
    snprintf(name, sizeof name, "%s", what);
  LLVMValueRef phi = LLVMBuildPhi(r->top, r->VT, name);
  LLVMAddIncoming(phi, &init, &r->pre_bb, 1);
  if (r->nphi == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 32;
    r->phi = nnc_xrealloc(r->phi, (size_t)r->cap * sizeof(RPhi));
  }
  r->phi[r->nphi++] = (RPhi){n, form, idx, slot, phi, NULL};
  return phi;
}

/* Where element e of matrix n is read from: a row, column or diagonal that
 * exists already, else its row. */
static void r_locate(const Regs *r, const Node *n, int64_t e, RForm *form, int *part, int *lane) {
  int i = (int)(e / n->shape.dim[1]), j = (int)(e % n->shape.dim[1]), d = i ^ j;
  const RVal *v = &r->val[n->id];
  if (!v->part[RF_ROW][i] && v->part[RF_COL][j])
    *form = RF_COL, *part = j, *lane = i;
  else if (!v->part[RF_ROW][i] && v->part[RF_DIAG][d])
    *form = RF_DIAG, *part = d, *lane = i;
  else
    *form = RF_ROW, *part = i, *lane = j;
}

/* Element e (linear index) of n, as a scalar. */
static LLVMValueRef r_elem(Regs *r, const Node *n, int64_t e) {
  if (numel(n) == 1) return LLVMBuildExtractElement(r->cg->b, r_get(r, n, RF_UNI, 0), r_lane(r, 0), "");
  if (n->shape.rank <= 1) return LLVMBuildExtractElement(r->cg->b, r_get(r, n, RF_VEC, 0), r_lane(r, (int)e), "");
  RForm f;
  int part, lane;
  r_locate(r, n, e, &f, &part, &lane);
  return LLVMBuildExtractElement(r->cg->b, r_get(r, n, f, part), r_lane(r, lane), "");
}

/* Element e of n in every lane. */
static LLVMValueRef r_splat(Regs *r, const Node *n, int64_t e) {
  if (numel(n) == 1) return r_get(r, n, RF_UNI, 0);
  RVal *v = &r->val[n->id];
  if (!v->splat) v->splat = nnc_xcalloc((size_t)numel(n), sizeof(LLVMValueRef));
  if (v->splat[e]) return v->splat[e];
  if (n->shape.rank <= 1) {
    v->splat[e] = r_bcast(r, r_get(r, n, RF_VEC, 0), (int)e);
  } else {
    RForm f;
    int part, lane;
    r_locate(r, n, e, &f, &part, &lane);
    v->splat[e] = r_bcast(r, r_get(r, n, f, part), lane);
  }
  return v->splat[e];
}

/* The element of `from` that element e of shape `to` reads under numpy
 * broadcasting (from's axes aligned to the right, size-1 axes repeat). */
static int64_t r_bcast_elem(const Shape *from, const Shape *to, int64_t e) {
  int64_t idx[MAX_RANK], lin = 0;
  for (int d = to->rank - 1; d >= 0; d--) {
    idx[d] = e % to->dim[d];
    e /= to->dim[d];
  }
  for (int d = 0; d < from->rank; d++) {
    int j = to->rank - from->rank + d;
    lin = lin * from->dim[d] + (from->dim[d] == 1 ? 0 : idx[j]);
  }
  return lin;
}

/* Build a part lane by lane from scalars: elem(e) for each valid lane. */
typedef LLVMValueRef (*ElemFn)(Regs *r, const Node *n, int64_t e);

static LLVMValueRef r_by_lane(Regs *r, const Node *n, RForm form, int idx, ElemFn elem) {
  LLVMValueRef v = r_const(r, 0, 0);
  for (int l = 0; l < (form == RF_UNI ? 1 : r->L); l++)
    if (r_valid(r, n, form, idx, l))
      v = LLVMBuildInsertElement(r->cg->b, v, elem(r, n, r_lane_elem(r, n, form, idx, l)), r_lane(r, l), "");
  return form == RF_UNI ? r_bcast(r, v, 0) : v;
}

/* P_d of vector n (memoized: the forward's permutations of an activation
 * serve its weight's gradient too). */
static LLVMValueRef r_perm(Regs *r, const Node *n, int d) {
  LLVMValueRef *slot = &r->val[n->id].perm[d];
  if (!*slot) {
    int half = r->L / 2; /* P_d = P_(d - half) of P_half: one swap of halves for all */
    *slot = d > half ? r_permute(r, r_perm(r, n, half), d - half) : r_permute(r, r_get(r, n, RF_VEC, 0), d);
  }
  return *slot;
}

/* Operand a of node out, laid out as out's part (broadcasting a). */
static LLVMValueRef r_operand(Regs *r, const Node *a, const Node *out, RForm form, int idx) {
  if (form == RF_UNI) return r_get(r, a, RF_UNI, 0);
  if (numel(a) == 1)
    return a->op == OP_CONST ? r_vconst(r, a->attr.value, out, form, idx)
                             : r_vmask(r, r_get(r, a, RF_UNI, 0), out, form, idx);
  if (shape_eq(&a->shape, &out->shape)) return r_get(r, a, form, idx);
  if (out->shape.rank == 2 && a->shape.rank == 1 && a->shape.dim[0] == out->shape.dim[1]) {
    if (form == RF_ROW) return r_get(r, a, RF_VEC, 0);
    if (form == RF_COL) return r_vmask(r, r_splat(r, a, idx), out, form, idx);
    return r_vmask(r, r_perm(r, a, idx), out, form, idx);
  }
  LLVMValueRef v = r_const(r, 0, 0);
  for (int l = 0; l < r->L; l++) {
    if (!r_valid(r, out, form, idx, l)) continue;
    int64_t e = r_bcast_elem(&a->shape, &out->shape, r_lane_elem(r, out, form, idx, l));
    v = LLVMBuildInsertElement(r->cg->b, v, r_elem(r, a, e), r_lane(r, l), "");
  }
  return v;
}

/* init + sum_k s[k] * v[k], as two chains added at the end (the step is
 * latency-bound: half the FMAs in a row) */
static LLVMValueRef r_dot_chains(Regs *r, LLVMValueRef *s, LLVMValueRef *v, int k, LLVMValueRef init) {
  CG *cg = r->cg;
  LLVMValueRef c[2] = {init, NULL};
  for (int i = 0; i < k; i++) {
    LLVMValueRef p = b_fmul(cg, s[i], v[i]);
    c[i & 1] = c[i & 1] ? b_fadd(cg, c[i & 1], p) : p;
  }
  return c[1] ? b_fadd(cg, c[0], c[1]) : c[0];
}

/* matmul: [m,k]@[k] -> sum x[k] * column k; [k]@[k,n] -> sum x[k] * row k;
 * [m,k]@[k,n] -> rows or columns the same way; one output element -> a
 * butterfly dot product. init: a same-shaped addend (a bias), or NULL. */
static LLVMValueRef r_matmul(Regs *r, const Node *n, RForm form, int idx, LLVMValueRef init) {
  CG *cg = r->cg;
  const Node *A = n->in[0], *B = n->in[1];
  int ra = A->shape.rank, rb = B->shape.rank;
  int K = (int)A->shape.dim[ra - 1];
  LLVMValueRef s[RT_MAX], v[RT_MAX], out;
  if (form == RF_UNI) {
    if (K == 1) {
      out = b_fmul(cg, r_get(r, A, RF_UNI, 0), r_get(r, B, RF_UNI, 0));
    } else {
      LLVMValueRef a = ra == 1 ? r_get(r, A, RF_VEC, 0) : r_get(r, A, RF_ROW, 0);
      LLVMValueRef b = rb == 1 ? r_get(r, B, RF_VEC, 0) : r_get(r, B, RF_COL, 0);
      /* the addend joins lane 0 of the products (an FMA), not the sum */
      out = b_fmul(cg, a, b);
      if (init) out = b_fadd(cg, out, r_mask(r, init, 1)), init = NULL;
      out = r_across(r, out, false);
    }
    return init ? b_fadd(cg, out, init) : out;
  }
  bool flip;
  const Node *w = ra == 2 && rb == 1 ? r_base(A, &flip) : ra == 1 && rb == 2 ? r_base(B, &flip) : NULL;
  if (w && r->diag[w->id]) {
    /* W x (A = W or B = W^T) or W^T x (A = W^T or B = W) from diagonals */
    const Node *x = ra == 1 ? A : B;
    bool wx = (ra == 2) != flip;
    LLVMValueRef c[2] = {init, NULL};
    for (int d = 0; d < r->L; d++) {
      LLVMValueRef t;
      if (wx)
        t = b_fmul(cg, r_get(r, w, RF_DIAG, d), r_perm(r, x, d));
      else
        t = r_permute(r, b_fmul(cg, r_get(r, w, RF_DIAG, d), r_get(r, x, RF_VEC, 0)), d);
      c[d & 1] = c[d & 1] ? b_fadd(cg, c[d & 1], t) : t;
    }
    return c[1] ? b_fadd(cg, c[0], c[1]) : c[0];
  }
  for (int k = 0; k < K; k++) {
    if (ra == 2 && rb == 1) {
      s[k] = r_splat(r, B, k), v[k] = r_get(r, A, RF_COL, k);
    } else if (ra == 1) {
      s[k] = r_splat(r, A, k), v[k] = r_get(r, B, RF_ROW, k);
    } else if (form == RF_ROW) {
      s[k] = r_splat(r, A, (int64_t)idx * K + k), v[k] = r_get(r, B, RF_ROW, k);
    } else {
      s[k] = r_splat(r, B, (int64_t)k * B->shape.dim[1] + idx), v[k] = r_get(r, A, RF_COL, k);
    }
  }
  return r_dot_chains(r, s, v, K, init);
}

/* outer(a, b), or outer(a, c * b) when scale (c in every lane) is given:
 * row i = a[i] * b, column j = a * b[j]; the same products either way. */
static LLVMValueRef r_outer(Regs *r, const Node *n, LLVMValueRef scale, RForm form, int idx) {
  CG *cg = r->cg;
  const Node *a = n->in[0], *b = n->in[1];
  LLVMValueRef av, bv;
  if (form == RF_UNI) {
    av = r_get(r, a, RF_UNI, 0), bv = r_get(r, b, RF_UNI, 0);
  } else if (form == RF_ROW) {
    av = r_splat(r, a, idx), bv = r_get(r, b, RF_VEC, 0);
  } else if (form == RF_DIAG) {
    av = r_get(r, a, RF_VEC, 0), bv = r_perm(r, b, idx);
  } else {
    av = r_get(r, a, RF_VEC, 0), bv = r_splat(r, b, idx);
  }
  if (scale) bv = b_fmul(cg, scale, bv);
  return b_fmul(cg, av, bv);
}

/* n = c * x (a negation, or a product with a constant, x of n's shape):
 * x and c, else NULL. */
static const Node *r_scaling(const Node *n, double *c) {
  if (n->op == OP_NEG) return *c = -1, n->in[0];
  if (n->op != OP_MUL) return NULL;
  for (int side = 0; side < 2; side++) {
    const Node *k = n->in[side], *x = n->in[1 - side];
    if (k->op == OP_CONST && shape_eq(&x->shape, &n->shape)) return *c = k->attr.value, x;
  }
  return NULL;
}

/* c * n, with c distributed through constant factors, negations and a
 * difference whose left side is known before the step's chain (a target, an
 * input): c (a - b) is c a - c b, one FMA after b instead of a subtraction
 * and a multiplication (a loss's derivative: -2 (t - y) is 2 y - 2 t). */
static LLVMValueRef r_scaled(Regs *r, const Node *n, double c, RForm form, int idx) {
  CG *cg = r->cg;
  double k;
  const Node *x = r_scaling(n, &k);
  if (x) return r_scaled(r, x, c * k, form, idx);
  if (n->op == OP_SUB && shape_eq(&n->in[0]->shape, &n->shape) && shape_eq(&n->in[1]->shape, &n->shape) &&
      r->early[n->in[0]->id] && !r->early[n->in[1]->id])
    return b_fadd(cg, b_fmul(cg, cT(cg, -c), r_get(r, n->in[1], form, idx)),
                  b_fmul(cg, cT(cg, c), r_get(r, n->in[0], form, idx)));
  LLVMValueRef v = r_get(r, n, form, idx);
  return c == 1 ? v : b_fmul(cg, cT(cg, c), v);
}

/* What a batch_sum / batch_mean over one row reads: itself. */
static const Node *r_unbatch(const Node *n) {
  while (n->op == OP_BATCH_SUM || n->op == OP_BATCH_MEAN) n = n->in[0];
  return n;
}

static LLVMValueRef r_elementwise(Regs *r, const Node *n, RForm form, int idx) {
  CG *cg = r->cg;
  const Node *a = n->in[0], *b = op_info[n->op].nin == 2 ? n->in[1] : NULL;
  if (n->op == OP_MUL)
    for (int side = 0; side < 2; side++) {
      const Node *m = n->in[side], *o = n->in[1 - side];
      /* x * step(y, c): a select (clamp_min's gradient; relu's is keep_pos, a select already) */
      if (m->op == OP_STEP && shape_eq(&m->shape, &n->shape))
        return sel(cg, fgt(cg, r_get(r, m->in[0], form, idx), cT(cg, m->attr.value)), r_operand(r, o, n, form, idx),
                   r_const(r, 0, 0));
      /* c * outer(a, b) (a gradient times a learning rate): outer(a, c b),
         so the scaling is off the chain of a */
      const Node *u = r_unbatch(m);
      if (u->op == OP_OUTER && numel(o) == 1 && shape_eq(&u->shape, &n->shape))
        return r_outer(r, u, r_get(r, o, RF_UNI, 0), form, idx);
    }
  double k;
  if (r_scaling(n, &k)) return r_scaled(r, n, 1, form, idx);
  if (n->op == OP_ADD)
    for (int side = 0; side < 2; side++) {
      /* matmul + bias: the bias starts the first chain */
      const Node *m = n->in[side], *o = n->in[1 - side];
      if (m->op == OP_MATMUL && r->users[m->id] == 1 && shape_eq(&m->shape, &n->shape) && !r->val[m->id].part[form][idx])
        return r_matmul(r, m, form, idx, r_operand(r, o, n, form, idx));
    }
  LLVMValueRef v = cg_scalar(cg, n->op, r_operand(r, a, n, form, idx), b ? r_operand(r, b, n, form, idx) : NULL,
                          n->attr.value);
  /* padding lanes read 0 (and 0); keep them 0 */
  double pad = op_scalar(n->op, 0, 0, n->attr.value);
  if (form != RF_UNI && !(pad == 0)) v = r_vmask(r, v, n, form, idx);
  return v;
}

/* sum / mean: of everything into one element, or of a matrix's rows
 * (axis 0) or columns (axis 1) into a vector */
static LLVMValueRef r_reduce(Regs *r, const Node *n, RForm form) {
  CG *cg = r->cg;
  const Node *a = n->in[0];
  LLVMValueRef v;
  int64_t count = numel(a) / numel(n);
  if (form == RF_UNI) {
    if (numel(a) == 1) {
      v = r_get(r, a, RF_UNI, 0);
    } else if (a->shape.rank == 1) {
      v = r_across(r, r_get(r, a, RF_VEC, 0), false);
    } else {
      v = r_get(r, a, RF_ROW, 0);
      for (int i = 1; i < a->shape.dim[0]; i++) v = b_fadd(cg, v, r_get(r, a, RF_ROW, i));
      v = r_across(r, v, false);
    }
  } else {
    RForm f = n->attr.axis == 0 ? RF_ROW : RF_COL; /* rank 2 into rank 1 */
    v = r_get(r, a, f, 0);
    for (int i = 1; i < r_parts(r, a, f); i++) v = b_fadd(cg, v, r_get(r, a, f, i));
  }
  return n->op == OP_MEAN ? b_fmul(cg, v, cT(cg, 1.0 / (double)count)) : v;
}

/* logsumexp, softmax, log_softmax of a vector (or of one element) */
static LLVMValueRef r_lastaxis(Regs *r, const Node *n) {
  CG *cg = r->cg;
  const Node *a = n->in[0];
  bool one = numel(a) == 1;
  int cnt = one ? r->L : r_len(a);
  LLVMValueRef x = r_get(r, a, one ? RF_UNI : RF_VEC, 0);
  LLVMValueRef m = one ? x : r_across(r, r_pad(r, x, cnt, r_const(r, -INFINITY, r->L)), true);
  LLVMValueRef d = b_fsub(cg, x, m);
  LLVMValueRef e = r_mask(r, cg_scalar(cg, OP_EXP, d, NULL, 0), cnt);
  LLVMValueRef s = one ? e : r_across(r, e, false);
  LLVMValueRef out;
  if (n->op == OP_LOGSUMEXP)
    out = b_fadd(cg, m, cg_scalar(cg, OP_LOG, s, NULL, 0));
  else if (n->op == OP_SOFTMAX)
    out = b_fdiv(cg, e, s);
  else
    out = r_mask(r, b_fsub(cg, d, cg_scalar(cg, OP_LOG, s, NULL, 0)), cnt);
  return out;
}

static LLVMValueRef r_broadcast_elem(Regs *r, const Node *n, int64_t e) {
  return r_elem(r, n->in[0], r_bcast_elem(&n->in[0]->shape, &n->shape, e));
}
/* element e of a slice or a concat: its operand's at the index along the
 * axis shifted (a slice's start; a concat's second operand) */
static LLVMValueRef r_pieces_elem(Regs *r, const Node *n, int64_t e) {
  int ax = n->attr.axis;
  int64_t inner = 1;
  for (int i = ax + 1; i < n->shape.rank; i++) inner *= n->shape.dim[i];
  int64_t o = e / (n->shape.dim[ax] * inner), k = e / inner % n->shape.dim[ax], i = e % inner;
  const Node *a = n->in[0];
  if (n->op == OP_SLICE) k += (int64_t)n->attr.value;
  if (n->op == OP_CONCAT && k >= a->shape.dim[ax]) {
    a = n->in[1];
    k -= n->in[0]->shape.dim[ax];
  }
  return r_elem(r, a, (o * a->shape.dim[ax] + k) * inner + i);
}
static LLVMValueRef r_reshape_elem(Regs *r, const Node *n, int64_t e) { return r_elem(r, n->in[0], e); }
static LLVMValueRef r_sum_to_elem(Regs *r, const Node *n, int64_t e) {
  const Node *a = n->in[0];
  LLVMValueRef s = NULL;
  for (int64_t k = 0; k < numel(a); k++)
    if (r_bcast_elem(&n->shape, &a->shape, k) == e) {
      LLVMValueRef v = r_elem(r, a, k);
      s = s ? b_fadd(r->cg, s, v) : v;
    }
  return s ? s : LLVMConstReal(r->cg->T, 0);
}

/* One part of node n. By op class, so that a new elementwise op needs
 * nothing here (cg_scalar has its semantics). */
static LLVMValueRef r_compute(Regs *r, const Node *n, RForm form, int idx) {
  CG *cg = r->cg;
  switch (op_info[n->op].cls) {
  case OPC_LEAF:
    if (n->op == OP_INPUT || n->op == OP_TARGET) {
      bool in = n->op == OP_INPUT;
      int64_t col = cg_leaf_column(in ? &cg->g->inputs : &cg->g->targets, n);
      LLVMValueRef p = LLVMBuildInBoundsGEP2(cg->b, cg->T, in ? r->xrow : r->trow, (LLVMValueRef[]){ci(cg, col)}, 1, "");
      return r_load(r, p, n, form, idx);
    }
    if (n->op == OP_PARAM || n->op == OP_STATE) return r_leaf(r, n, form, idx);
    /* a constant, or 1/n for batches of one row */
    return r_const(r, n->op == OP_CONST ? n->attr.value : 1.0, r->L);
  case OPC_UNARY: case OPC_BINARY: return r_elementwise(r, n, form, idx);
  case OPC_REDUCE: return r_reduce(r, n, form);
  case OPC_LASTREDUCE: case OPC_LASTAXIS: return r_lastaxis(r, n);
  case OPC_MATMUL: return r_matmul(r, n, form, idx, NULL);
  case OPC_OUTER: return r_outer(r, n, NULL, form, idx);
  case OPC_TRANSPOSE:
    /* diagonal d of W^T is diagonal d of W, permuted by d */
    if (form == RF_DIAG) return r_permute(r, r_get(r, n->in[0], RF_DIAG, idx), idx);
    return r_get(r, n->in[0], form == RF_ROW ? RF_COL : form == RF_COL ? RF_ROW : form, idx);
  case OPC_BATCH: return r_get(r, n->in[0], form, idx); /* one row: sum and mean are the row */
  case OPC_BROADCAST: return r_by_lane(r, n, form, idx, r_broadcast_elem);
  case OPC_RESHAPE: return r_by_lane(r, n, form, idx, r_reshape_elem);
  case OPC_SUM_TO: return r_by_lane(r, n, form, idx, r_sum_to_elem);
  case OPC_DROPOUT: case OPC_MODE: break; /* register_lanes refuses them */
  case OPC_CONCAT: case OPC_SLICE: return r_by_lane(r, n, form, idx, r_pieces_elem);
  case OPC_GATHER: case OPC_SCATTER:
    break; /* register_lanes leaves them to loop nests */
  case OPC_WINDOW: case OPC_WINDOW2: case OPC_MOMENTS: break; /* register_lanes refuses them */
  }
  nnc_die("codegen: bad op in a register step");
}

/* Part idx of n in the given form, computed on first use. A one-element
 * tensor is kept in every lane; its other forms are that, masked. */
static LLVMValueRef r_get(Regs *r, const Node *n, RForm form, int idx) {
  if (numel(n) == 1 && form != RF_UNI) return r_vmask(r, r_get(r, n, RF_UNI, 0), n, form, idx);
  if (form == RF_UNI && numel(n) != 1) nnc_die("codegen: register step: %s is not one element", op_info[n->op].name);
  LLVMValueRef *slot = &r->val[n->id].part[form][idx];
  if (!*slot) {
    *slot = r_compute(r, n, form, idx);
    size_t len;
    LLVMGetValueName2(*slot, &len);
    if (len == 0) cg_name_value(r->cg, *slot, n); /* a transpose's is its operand's */
  }
  return *slot;
}

/* Can the nodes that roots read be computed in registers (register
 * tiles)? Fills need[] with them and returns the lanes to use, or 0. */
static int register_lanes(const CG *cg, Node *const *roots, int nroots, bool *need) {
  const Graph *g = cg->g;
  const char *env = getenv("NNC_REGISTER_STEP"); /* 0: the loop-nest code, for comparison */
  if (cg->max_batch != 1 || (env && strcmp(env, "0") == 0)) return 0;
  memset(need, 0, (size_t)g->len);
  for (int k = 0; k < nroots; k++) need[roots[k]->id] = true;
  int64_t widest = 2;
  for (int i = g->len - 1; i >= 0; i--) {
    if (!need[i]) continue;
    const Node *n = g->nodes[i];
    if (n->shape.rank > 2) return 0;
    for (int d = 0; d < n->shape.rank; d++) widest = n->shape.dim[d] > widest ? n->shape.dim[d] : widest;
    OpClass c = op_info[n->op].cls;
    if ((c == OPC_LASTAXIS || c == OPC_LASTREDUCE) && n->in[0]->shape.rank > 1) return 0;
    /* the reductions r_reduce knows; another one: loop nests */
    if (c == OPC_REDUCE && n->op != OP_SUM && n->op != OP_MEAN) return 0;
    if (c == OPC_DROPOUT) return 0; /* its masks: loop nests */
    if (c == OPC_MODE) return 0;    /* batch statistics: loop nests */
    if (c == OPC_GATHER || c == OPC_SCATTER) return 0; /* rows chosen by data */
    if (c == OPC_WINDOW || c == OPC_WINDOW2) return 0; /* loop nests around GEMMs (window.c) */
    if (c == OPC_MOMENTS) return 0;                    /* a kernel call (channel.c) */
    for (int k = 0; k < op_info[n->op].nin; k++) need[n->in[k]->id] = true;
  }
  int lanes = 2;
  while (lanes < widest) lanes *= 2;
  return lanes <= cg->vl && lanes <= RT_MAX ? lanes : 0;
}

/* The roots of a function built in registers: train_epoch's loss and
 * updates (and their targets, stored at the end), forward's output and
 * loss, predict's output. Returns their number. */
static int register_roots(const Graph *g, FnKind kind, Node **roots) {
  int n = 0;
  if (kind == FN_TRAIN_EPOCH) {
    roots[n++] = g->batch_loss;
    for (int u = 0; u < g->nupdates; u++) roots[n++] = g->updates[u].value, roots[n++] = g->updates[u].target;
  } else {
    roots[n++] = g->output;
    if (kind == FN_FORWARD) roots[n++] = g->loss;
  }
  return n;
}

/* Does n have every part of a form? */
static bool r_complete(const Regs *r, const Node *n, RForm form) {
  for (int k = 0; k < r_parts(r, n, form); k++)
    if (!r->val[n->id].part[form][k]) return false;
  return true;
}

/* The form a matrix is stored back from: one the step has completely, else
 * its rows. */
static RForm r_stored_form(const Regs *r, const Node *n) {
  return r_complete(r, n, RF_COL) ? RF_COL : r_complete(r, n, RF_DIAG) ? RF_DIAG : RF_ROW;
}

/* Copy the state between the buffer and the scratch, a loop over the
 * slots' lanes (slot_map): in before the loop (lanes without an element
 * get 0), and out after it (one complete form of every updated tensor is
 * among the slots, and a tensor's forms hold the same numbers). A loop,
 * not unrolled code: gathering diagonals and columns with shuffles made
 * instruction selection take most of the compile time. Ends in `to`. */
static void r_copy_state(Regs *r, bool in, LLVMBasicBlockRef to) {
  CG *cg = r->cg;
  int64_t count = (int64_t)r->nslots * r->L;
  if (!r->map) { /* one table per function, for both copies */
    LLVMTypeRef map_ty = LLVMArrayType2(cg->i64, (uint64_t)(count ? count : 1));
    LLVMValueRef *e = nnc_xcalloc((size_t)(count ? count : 1), sizeof(LLVMValueRef));
    for (int64_t k = 0; k < (count ? count : 1); k++) e[k] = ci(cg, k < count ? r->slot_map[k] : -1);
    r->map = LLVMAddGlobal(cg->mod, map_ty, "nnc.state_map");
    LLVMSetInitializer(r->map, LLVMConstArray2(cg->i64, e, (uint64_t)(count ? count : 1)));
    LLVMSetGlobalConstant(r->map, 1);
    LLVMSetLinkage(r->map, LLVMPrivateLinkage);
    free(e);
  }
  LLVMValueRef map = r->map;
  LLVMBasicBlockRef from = LLVMGetInsertBlock(cg->b);
  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, in ? "state_in" : "state_out");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, in ? "state_in.lane" : "state_out.lane");
  LLVMBasicBlockRef store = in ? NULL : LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "state_out.store");
  LLVMBasicBlockRef next = in ? body : LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "state_out.next");
  LLVMBuildBr(cg->b, head);
  LLVMPositionBuilderAtEnd(cg->b, head);
  LLVMValueRef j = LLVMBuildPhi(cg->b, cg->i64, "lane");
  LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, j, ci(cg, count), ""), body, to);
  LLVMPositionBuilderAtEnd(cg->b, body);
  LLVMValueRef m = LLVMBuildLoad2(cg->b, cg->i64, LLVMBuildInBoundsGEP2(cg->b, cg->i64, map, &j, 1, ""), "");
  LLVMValueRef has = LLVMBuildICmp(cg->b, LLVMIntSGE, m, ci(cg, 0), "");
  LLVMValueRef slot = LLVMBuildInBoundsGEP2(cg->b, cg->T, r->scratch, &j, 1, "");
  if (in) {
    LLVMValueRef at = sel(cg, has, m, ci(cg, 0)); /* buf[0] exists: read it, use 0 */
    LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->T, LLVMBuildInBoundsGEP2(cg->b, cg->T, cg->buf, &at, 1, ""), "");
    LLVMBuildStore(cg->b, sel(cg, has, v, LLVMConstReal(cg->T, 0)), slot);
  } else {
    LLVMBuildCondBr(cg->b, has, store, next);
    LLVMPositionBuilderAtEnd(cg->b, store);
    LLVMBuildStore(cg->b, LLVMBuildLoad2(cg->b, cg->T, slot, ""), LLVMBuildInBoundsGEP2(cg->b, cg->T, cg->buf, &m, 1, ""));
    LLVMBuildBr(cg->b, next);
    LLVMPositionBuilderAtEnd(cg->b, next);
  }
  LLVMValueRef j1 = LLVMBuildNUWAdd(cg->b, j, ci(cg, 1), "");
  LLVMBuildBr(cg->b, head);
  LLVMValueRef zero = ci(cg, 0);
  LLVMAddIncoming(j, &zero, &from, 1);
  LLVMAddIncoming(j, &j1, &next, 1);
  LLVMPositionBuilderAtEnd(cg->b, to);
}

/* After the loop: each phi's final value into its slot, then the slots to
 * the buffer (r_copy_state). */
static void r_store_state(Regs *r) {
  CG *cg = r->cg;
  for (int k = 0; k < r->nphi; k++) {
    const RPhi *ph = &r->phi[k];
    LLVMValueRef at = ci(cg, (int64_t)ph->slot * r->L);
    LLVMValueRef st = LLVMBuildStore(cg->b, ph->phi, LLVMBuildInBoundsGEP2(cg->b, cg->T, r->scratch, &at, 1, ""));
    LLVMSetAlignment(st, (unsigned)cg->L->elem_size);
  }
  LLVMBasicBlockRef ret = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "stored");
  r_copy_state(r, false, ret);
}

/* Which updated matrices to keep as diagonals: those that W x and W^T g
 * both read (columns and rows) with more rows + columns than lanes. */
static void r_plan_diagonals(Regs *r, const bool *need) {
  const Graph *g = r->cg->g;
  bool *cols = nnc_xcalloc((size_t)g->len, 1), *rows = nnc_xcalloc((size_t)g->len, 1);
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    if (!need[i] || n->op != OP_MATMUL || numel(n) == 1) continue;
    int ra = n->in[0]->shape.rank, rb = n->in[1]->shape.rank;
    bool flip;
    if (ra == 2 && rb == 1) { /* W x: columns of W (rows of a transposed W) */
      const Node *w = r_base(n->in[0], &flip);
      (flip ? rows : cols)[w->id] = true;
    } else if (ra == 1 && rb == 2) { /* x W: rows of W */
      const Node *w = r_base(n->in[1], &flip);
      (flip ? cols : rows)[w->id] = true;
    }
  }
  for (int u = 0; u < g->nupdates; u++) {
    const Node *w = g->updates[u].target;
    if (w->shape.rank == 2 && cols[w->id] && rows[w->id] && w->shape.dim[0] + w->shape.dim[1] > r->L)
      r->diag[w->id] = true;
  }
  free(cols);
  free(rows);
}

/* Start a register-tile function fn over `rows` rows of x (and t): the
 * per-node tables (updates: the state changes each row), then the blocks:
 * the one before the loop (loads), the loop header `step` (phis), its body
 * (one row: the builder is left there) and `done`. Returns the row index. */
static LLVMValueRef r_open(Regs *r, CG *cg, int L, const bool *need, bool updates, LLVMValueRef fn, LLVMValueRef rows,
                           LLVMValueRef x, LLVMValueRef t, LLVMBasicBlockRef *header, LLVMBasicBlockRef *exit) {
  const Graph *g = cg->g;
  *r = (Regs){.cg = cg, .L = L, .i32 = LLVMInt32TypeInContext(cg->ctx)};
  r->VT = LLVMVectorType(cg->T, (unsigned)L);
  r->val = nnc_xcalloc((size_t)g->len, sizeof(RVal));
  r->users = nnc_xcalloc((size_t)g->len, sizeof(int));
  r->next = nnc_xcalloc((size_t)g->len, sizeof(Node *));
  r->diag = nnc_xcalloc((size_t)g->len, 1);
  r->early = nnc_xcalloc((size_t)g->len, 1);
  for (int i = 0; i < g->len; i++)
    if (need[i])
      for (int k = 0; k < op_info[g->nodes[i]->op].nin; k++) r->users[g->nodes[i]->in[k]->id]++;
  if (updates)
    for (int u = 0; u < g->nupdates; u++) r->next[g->updates[u].target->id] = g->updates[u].value;
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    bool early = op_info[n->op].cls != OPC_LEAF || !r->next[i];
    for (int k = 0; k < op_info[n->op].nin; k++) early &= r->early[n->in[k]->id];
    r->early[i] = early;
  }
  r_plan_diagonals(r, need);

  cg_begin_body(cg, fn);
  cg->buf = LLVMGetParam(fn, 0);
  /* the scratch: at most every part of every leaf the roots read */
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    if (need[i] && (n->op == OP_PARAM || n->op == OP_STATE))
      r->max_slots += n->shape.rank == 2 ? (int)(n->shape.dim[0] + n->shape.dim[1]) + L + 1 : 2;
  }
  r->slot_map = nnc_xcalloc((size_t)(r->max_slots * L + 1), sizeof(int64_t));
  r->scratch = LLVMBuildAlloca(cg->alloc, LLVMArrayType2(cg->T, (uint64_t)(r->max_slots * L + 1)), "state");
  LLVMSetAlignment(r->scratch, (unsigned)cg->L->elem_size);
  r->start_bb = LLVMGetInsertBlock(cg->b);
  r->pre_bb = LLVMAppendBasicBlockInContext(cg->ctx, fn, "loaded");
  LLVMPositionBuilderAtEnd(cg->b, r->pre_bb);
  *header = LLVMAppendBasicBlockInContext(cg->ctx, fn, "step");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cg->ctx, fn, "body");
  *exit = LLVMAppendBasicBlockInContext(cg->ctx, fn, "done");
  r->pre = LLVMCreateBuilderInContext(cg->ctx);
  r->top = LLVMCreateBuilderInContext(cg->ctx);
  LLVMPositionBuilderBefore(r->pre, LLVMBuildBr(cg->b, *header));
  LLVMPositionBuilderAtEnd(cg->b, *header);
  LLVMValueRef i = LLVMBuildPhi(cg->b, cg->i64, "i");
  LLVMPositionBuilderBefore(r->top, i);
  LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, i, rows, ""), body, *exit);
  LLVMPositionBuilderAtEnd(cg->b, body);
  LLVMValueRef xo = imul(cg, i, ci(cg, cg_cols(&g->inputs)));
  r->xrow = LLVMBuildInBoundsGEP2(cg->b, cg->T, x, &xo, 1, "xrow");
  if (t) {
    LLVMValueRef to = imul(cg, i, ci(cg, cg_cols(&g->targets)));
    r->trow = LLVMBuildInBoundsGEP2(cg->b, cg->T, t, &to, 1, "trow");
  }
  r->saved_lanes = cg->lanes;
  cg->lanes = L; /* cT() splats */
  return i;
}

/* The loop's latch: the row index (and the other phis' values) go back. */
static void r_next_row(Regs *r, LLVMValueRef i, LLVMBasicBlockRef header) {
  CG *cg = r->cg;
  LLVMValueRef next = LLVMBuildNUWAdd(cg->b, i, ci(cg, 1), "");
  r->latch_bb = LLVMGetInsertBlock(cg->b);
  LLVMBuildBr(cg->b, header);
  LLVMValueRef zero = ci(cg, 0);
  LLVMAddIncoming(i, &zero, &r->pre_bb, 1);
  LLVMAddIncoming(i, &next, &r->latch_bb, 1);
}

static void r_close(Regs *r) {
  CG *cg = r->cg;
  /* the copy in, now that every slot is known, ahead of the loads */
  LLVMPositionBuilderAtEnd(cg->b, r->start_bb);
  r_copy_state(r, true, r->pre_bb);
  cg_end_body(cg);
  cg->lanes = r->saved_lanes;
  LLVMDisposeBuilder(r->pre);
  LLVMDisposeBuilder(r->top);
  for (int k = 0; k < cg->g->len; k++) free(r->val[k].splat);
  free(r->slot_map);
  free(r->val);
  free(r->users);
  free(r->next);
  free(r->diag);
  free(r->early);
  free(r->phi);
}

/* train_epoch(buf, x, t, rows) with the step in registers, L lanes wide
 * (register_lanes, which filled need). */
static void build_register_epoch(CG *cg, int L, const bool *need) {
  const Graph *g = cg->g;
  LLVMTypeRef p = cg->ptr, I = cg->i64;
  LLVMTypeRef ps[] = {p, p, p, I};
  const char *names[] = {"buf", "x", "t", "rows"};
  LLVMValueRef fn = cg_declare(cg, "train_epoch", cg->T, ps, 4, names, 0x6);
  Regs r;
  LLVMBasicBlockRef header, exit;
  LLVMValueRef i = r_open(&r, cg, L, need, true, fn, LLVMGetParam(fn, 3), LLVMGetParam(fn, 1), LLVMGetParam(fn, 2),
                          &header, &exit);
  LLVMValueRef total = LLVMBuildPhi(r.top, cg->T, "total");
  LLVMValueRef loss = LLVMBuildExtractElement(cg->b, r_get(&r, g->batch_loss, RF_UNI, 0), r_lane(&r, 0), "loss");
  /* each phi takes its update's same part; reading those may read more
     parts of the state (new phis), and each updated tensor needs a
     complete form to be stored from at the end */
  int done = 0;
  for (;;) {
    for (; done < r.nphi; done++) {
      RPhi ph = r.phi[done]; /* a copy: r_get may add phis (and move the array) */
      LLVMValueRef latch = r_get(&r, r.next[ph.leaf->id], ph.form, ph.idx);
      r.phi[done].latch = latch;
    }
    int before = r.nphi;
    for (int u = 0; u < g->nupdates; u++) {
      const Node *leaf = g->updates[u].target;
      if (numel(leaf) == 1)
        r_get(&r, leaf, RF_UNI, 0);
      else if (leaf->shape.rank <= 1)
        r_get(&r, leaf, RF_VEC, 0);
      else if (r_stored_form(&r, leaf) == RF_ROW)
        for (int k = 0; k < leaf->shape.dim[0]; k++) r_get(&r, leaf, RF_ROW, k);
    }
    if (r.nphi == before) break;
  }
  LLVMValueRef next_total = b_fadd(cg, total, loss);
  r_next_row(&r, i, header);
  LLVMValueRef zero = LLVMConstReal(cg->T, 0);
  LLVMAddIncoming(total, &zero, &r.pre_bb, 1);
  LLVMAddIncoming(total, &next_total, &r.latch_bb, 1);
  for (int k = 0; k < r.nphi; k++) LLVMAddIncoming(r.phi[k].phi, &r.phi[k].latch, &r.latch_bb, 1);

  /* after the last step: the state back to the buffer */
  LLVMPositionBuilderAtEnd(cg->b, exit);
  r_store_state(&r);
  LLVMBuildRet(cg->b, total);
  r_close(&r);
}

/* Store node n's value for this row at p, row by row (y of forward). */
static void r_store_value(Regs *r, const Node *n, LLVMValueRef p) {
  CG *cg = r->cg;
  RForm f = numel(n) == 1 ? RF_UNI : n->shape.rank <= 1 ? RF_VEC : RF_ROW;
  int rows = f == RF_ROW ? (int)n->shape.dim[0] : 1, len = (int)(numel(n) / rows);
  LLVMValueRef m[RT_MAX];
  for (int j = 0; j < len; j++) m[j] = r_lane(r, j);
  for (int k = 0; k < rows; k++) {
    LLVMValueRef v = r_get(r, n, f, k);
    LLVMValueRef row = LLVMBuildShuffleVector(cg->b, v, LLVMGetPoison(r->VT), LLVMConstVector(m, (unsigned)len), "");
    LLVMValueRef at = ci(cg, (int64_t)k * len);
    LLVMValueRef st = LLVMBuildStore(cg->b, row, LLVMBuildInBoundsGEP2(cg->b, cg->T, p, &at, 1, ""));
    LLVMSetAlignment(st, (unsigned)cg->L->elem_size);
  }
}

/* forward(buf, x, t, n, y, loss) or predict(buf, x, n, y) in registers:
 * the parameters loaded once, then each row's output (and loss). */
static void build_register_eval(CG *cg, FnKind kind, int L, const bool *need) {
  const Graph *g = cg->g;
  LLVMTypeRef p = cg->ptr, I = cg->i64, V = LLVMVoidTypeInContext(cg->ctx);
  bool fwd = kind == FN_FORWARD;
  LLVMTypeRef ps_f[] = {p, p, p, I, p, p}, ps_p[] = {p, p, I, p};
  const char *names_f[] = {"buf", "x", "t", "n", "y", "loss"}, *names_p[] = {"buf", "x", "n", "y"};
  LLVMValueRef fn = fwd ? cg_declare(cg, "forward", V, ps_f, 6, names_f, 0x6) : cg_declare(cg, "predict", V, ps_p, 4, names_p, 0x2);
  LLVMValueRef x = LLVMGetParam(fn, 1), t = fwd ? LLVMGetParam(fn, 2) : NULL;
  LLVMValueRef rows = LLVMGetParam(fn, fwd ? 3 : 2), y = LLVMGetParam(fn, fwd ? 4 : 3);
  Regs r;
  LLVMBasicBlockRef header, exit;
  LLVMValueRef i = r_open(&r, cg, L, need, false, fn, rows, x, t, &header, &exit);
  LLVMValueRef yo = imul(cg, i, ci(cg, numel(g->output)));
  r_store_value(&r, g->output, LLVMBuildInBoundsGEP2(cg->b, cg->T, y, &yo, 1, "yrow"));
  if (fwd) {
    LLVMValueRef l = LLVMBuildExtractElement(cg->b, r_get(&r, g->loss, RF_UNI, 0), r_lane(&r, 0), "");
    LLVMBuildStore(cg->b, l, LLVMBuildInBoundsGEP2(cg->b, cg->T, LLVMGetParam(fn, 5), &i, 1, ""));
  }
  r_next_row(&r, i, header);
  LLVMPositionBuilderAtEnd(cg->b, exit);
  LLVMBuildRetVoid(cg->b);
  r_close(&r);
}

int regstep_lanes(const CG *cg, FnKind kind, bool *need) {
  const Graph *g = cg->g;
  Node **roots = nnc_xcalloc((size_t)(2 * g->nupdates + 2), sizeof(Node *));
  int lanes = register_lanes(cg, roots, register_roots(g, kind, roots), need);
  free(roots);
  return lanes;
}

void regstep_build(CG *cg, FnKind kind, int lanes, const bool *need) {
  if (kind == FN_TRAIN_EPOCH)
    build_register_epoch(cg, lanes, need);
  else
    build_register_eval(cg, kind, lanes, need);
}
