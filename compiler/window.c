/*
 * window.c - convolutions and pooling, and their gradients, in compiled
 * code (see window.h).
 *
 * A convolution is a matrix product (im2col): for one row of the batch,
 * the input's taps are laid out as cols[c*kk + t][o] (kk taps per channel,
 * o the output position), and
 *
 *   conv     y[K, P]      = W[K, C*kk] cols[C*kk, P]
 *   conv_dx  cols[C*kk,P] = W^T dy[K, P], then each column added back
 *            into the input position it came from (col2im)
 *   conv_dw  dW[K, C*kk]  = dy[K, P] cols^T[P, C*kk]; summed over the batch
 *            it is one accumulating GEMM per row into the sum (window_batch_dw)
 *
 * each product a call of gemm.c's packed GEMM kernel; its packed panel and
 * the cols matrix are the node's scratch in the workspace plan. Taps in
 * the padding read as 0 (max pooling: -inf). Every loop has a runtime trip
 * count, so code size does not grow with the image. Pooling is a loop over
 * the windows.
 */
#include "window.h"

#include <math.h>
#include <stdlib.h>

#include "gemm.h"

typedef struct Geo {
  const Window *w;
  int64_t C, K;      /* input and output channels (pooling: C == K) */
  int64_t hw, oh, ow, P, kk;
  int64_t cols_rows; /* rows of the batch the cols matrix holds (batch_cols) */
} Geo;

/* A small convolution's cols matrix holds every row of the batch (at
 * most this many bytes), so that one kernel call lays out or adds back
 * the batch's windows; a larger one holds one row, a call a row. */
enum { BATCH_COLS_BYTES = 256 * 1024 };

static int64_t cols_rows(const Node *n, int64_t ckkp, int elem_size, int max_batch) {
  bool batch = n->batched && max_batch > 1 && ckkp * max_batch * elem_size <= BATCH_COLS_BYTES;
  return batch ? max_batch : 1;
}

static Geo geo_of(const Node *n) {
  const Window *w = &n->attr.win;
  Geo g = {.w = w, .hw = w->in[0] * w->in[1], .oh = window_out(w, 0), .ow = window_out(w, 1),
           .kk = w->k[0] * w->k[1], .cols_rows = 1};
  g.P = g.oh * g.ow;
  switch ((int)n->op) {
  case OP_CONV: g.C = n->in[0]->shape.dim[0], g.K = n->shape.dim[0]; break;
  case OP_CONV_DX: g.C = n->shape.dim[0], g.K = n->in[0]->shape.dim[0]; break;
  case OP_CONV_DW: g.C = n->in[0]->shape.dim[0], g.K = n->in[1]->shape.dim[0]; break;
  default: g.C = g.K = n->shape.dim[0]; break;
  }
  return g;
}

/* Is the convolution's product computed transposed (gemm_swap_pays)?
 * The forward pass stored transposed per row (the GEMM's trans); the
 * weight gradient summed over the batch as dW^T, put back once. */
static bool conv_trans(const Node *n, const Geo *g) {
  int64_t ckk = g->C * g->kk;
  if (n->op == OP_CONV) return gemm_swap_pays(g->K, g->P, ckk, g->K * g->P);
  return n->op == OP_CONV_DW && gemm_swap_pays(g->K, ckk, g->P, 0);
}

static bool has_padding(const Window *w);

/* Implicit im2col: a transposed product (conv_trans) whose A is the
 * matrix of windows reads it from the image instead (gemm.h's indexed A):
 * A(m, k) of the forward product (m an output position, k a tap) and of
 * the weight gradient (m a tap, k a position) is the image element at
 * pos[position] + tap[tap] (Img below): the input itself, or with padding
 * a copy of a row's input inside zeros. With stride 1 the input gradient
 * is a convolution too, of dy padded by k - 1 - pad with the weights
 * flipped and transposed (W'[c][k, kh-1-i, kw-1-j] = W[k][c, i, j]),
 * computed the same way (dx_implicit) instead of W^T dy and col2im. */
static bool implicit(const Node *n, const Geo *g) {
  if (!conv_trans(n, g)) return false;
  return n->op == OP_CONV ? !n->in[1]->batched : n->op == OP_CONV_DW;
}

/* Does the input gradient as a convolution (16-wide vectors of channels
 * by 6 positions over K*kk taps, dy's padded copy and dx's transposed
 * tiles) cost less than W^T dy (packing dy, 6 taps by 16-wide vectors of
 * positions over K) and col2im (in vectors: half a cycle an element), by
 * gemm_swap_pays's measure (FMAs at 32 a cycle, copies a cycle an
 * element)? Stride 1, padding at most k - 1 (dy inside the padded
 * image). fashion_cnn's second convolution (C 32, K 64, 5 x 5, 196
 * positions): 335,616 against 425,408. */
static bool dx_implicit(const Node *n, const Geo *g) {
  const Window *w = g->w;
  if (n->op != OP_CONV_DX || n->in[1]->batched) return false;
  for (int d = 0; d < 2; d++)
    if (w->s[d] != 1 || w->pad[d] > w->k[d] - 1 || w->pad_end[d] > w->k[d] - 1) return false;
  int64_t ckk = g->C * g->kk;
  double conv = (double)((g->hw + 5) / 6 * 6) * (double)((g->C + 15) / 16 * 16) * (double)(g->K * g->kk) / 32 +
                (double)(g->C * g->hw) + (double)(g->K * g->P);
  double cols = (double)(g->K * g->P) + (double)((ckk + 5) / 6 * 6) * (double)((g->P + 15) / 16 * 16) * (double)g->K / 32 +
                (double)(ckk * g->P) / 2;
  return conv < cols;
}

/* The image an implicit product reads: C channels of h x w (the
 * operand's) inside hp x wp at (top, left) (a copy when `copy`, else the
 * operand itself), windows kh x kw of strides sh, sw over oh x ow
 * outputs; the product's positions are the outputs, its taps (c, i, j). */
typedef struct Img {
  int64_t C, h, w, hp, wp, top, left, kh, kw, sh, sw, oh, ow;
  bool copy;
} Img;

static Img img_of(const Node *n, const Geo *g) {
  const Window *w = g->w;
  if (n->op == OP_CONV_DX) /* dy inside the padding of a full convolution */
    return (Img){g->K, g->oh, g->ow, w->in[0] + w->k[0] - 1, w->in[1] + w->k[1] - 1, w->k[0] - 1 - w->pad[0],
                 w->k[1] - 1 - w->pad[1], w->k[0], w->k[1], 1, 1, w->in[0], w->in[1], true};
  Img im = {g->C, w->in[0], w->in[1], w->in[0], w->in[1], w->pad[0], w->pad[1], w->k[0], w->k[1], w->s[0], w->s[1],
            g->oh, g->ow, has_padding(w)};
  if (im.copy) im.hp = (g->oh - 1) * w->s[0] + w->k[0], im.wp = (g->ow - 1) * w->s[1] + w->k[1];
  return im;
}

/* A convolution's scratch, byte offsets after the GEMM's packed B: the
 * matrix of windows (cols, C*kk x P; none for an implicit forward
 * product or input gradient), copies of W, of one row of dy and of one
 * row of x for operands that are not in memory, then, transposed
 * (conv_trans), W^T packed (implicit) or dW^T, or the input gradient's
 * packed flipped weights, and the flipped weights; implicit, the padded
 * image (the offset tables are constants, offset_tables). */
typedef struct Scr {
  int64_t cols, w, dy, x, wt, wf, img, end;
} Scr;

static int64_t cols_rows(const Node *n, int64_t ckkp, int elem_size, int max_batch);

static Scr scr_of(const Node *n, const Geo *g, int es, int max_batch) {
  int64_t ckk = g->C * g->kk;
  bool dx = dx_implicit(n, g), imp = dx || implicit(n, g);
  Img im = img_of(n, g);
  Scr s = {0};
  int64_t cols = (n->op == OP_CONV && imp) || dx ? 0 : ckk * g->P * cols_rows(n, ckk * g->P, es, max_batch);
  s.w = s.cols + cols * es;
  s.dy = s.w + g->K * ckk * es;
  s.x = s.dy + g->K * g->P * es;
  s.wt = s.x + g->C * g->hw * es;
  int64_t wt = dx ? gemm_pack_bytes(g->C, g->K * g->kk, es)
               : !conv_trans(n, g) ? 0
               : n->op == OP_CONV && imp ? gemm_pack_bytes(g->K, ckk, es)
                                         : g->K * ckk * es;
  s.wf = s.wt + wt;
  s.img = s.wf + (dx ? ckk * g->K * es : 0);
  s.end = s.img + (imp && im.copy ? im.C * im.hp * im.wp * es : 0);
  return s;
}

/* The GEMM's packed B (and a transposed product's partial sums). */
static int64_t pack_part(const Node *n, const Geo *g, int elem_size) {
  int64_t N = n->op == OP_CONV_DW ? g->C * g->kk : g->P;
  if (conv_trans(n, g) && n->op == OP_CONV_DW && g->K > N) N = g->K; /* dy^T, when summed over the batch */
  int64_t kb = n->op == OP_CONV ? g->C * g->kk : n->op == OP_CONV_DX ? g->K : g->P;
  int64_t bytes = n->op == OP_CONV && conv_trans(n, g) ? gemm_trans_bytes(g->P, g->K, kb, elem_size)
                  : dx_implicit(n, g) ? gemm_trans_bytes(g->hw, g->C, g->K * g->kk, elem_size)
                                      : gemm_pack_bytes(N, kb < GEMM_KC ? kb : GEMM_KC, elem_size);
  return (bytes + 63) / 64 * 64;
}

int64_t window_pack_bytes(const Node *n, int elem_size) {
  if (n->op != OP_CONV && n->op != OP_CONV_DX && n->op != OP_CONV_DW) return 0;
  Geo g = geo_of(n);
  return pack_part(n, &g, elem_size);
}

int64_t window_scratch_bytes(const Node *n, int elem_size, int max_batch) {
  if (n->op != OP_CONV && n->op != OP_CONV_DX && n->op != OP_CONV_DW) return 0;
  Geo g = geo_of(n);
  return pack_part(n, &g, elem_size) + scr_of(n, &g, elem_size, max_batch).end;
}

static LLVMValueRef gep(CG *cg, LLVMValueRef base, LLVMValueRef off) {
  return LLVMBuildInBoundsGEP2(cg->b, cg->T, base, &off, 1, "");
}

/* The node's scratch at byte `at` of its Scr. */
static LLVMValueRef scratch(CG *cg, const Node *n, const Geo *g, int64_t at) {
  LLVMValueRef off = ci(cg, cg->pack_off[n->id] + pack_part(n, g, cg->L->elem_size) + at);
  return LLVMBuildInBoundsGEP2(cg->b, LLVMInt8TypeInContext(cg->ctx), cg->ws, &off, 1, "scratch");
}

/* Row `row` of node n in memory: its element 0, seen through reshapes (same
 * elements, same order); NULL when n is not in memory. */
static LLVMValueRef mem_row(CG *cg, const Node *n, LLVMValueRef row) {
  n = cg_stored(cg, n);
  const Store *s = &cg->st[n->id];
  if (s->kind != ST_MEM) return NULL;
  LLVMValueRef off = ci(cg, s->off);
  if (n->batched && s->row_stride) off = iadd(cg, off, imul(cg, row, ci(cg, s->row_stride)));
  return gep(cg, s->base, off);
}

/* Is n in memory, itself or through reshapes (mem_row's pointer)? */
static bool in_memory(const CG *cg, const Node *n) {
  return cg->st[cg_stored(cg, n)->id].kind == ST_MEM;
}

static void flush_mem(CG *cg, const Node *n) {
  n = cg_stored(cg, n);
  if (cg->st[n->id].kind == ST_MEM) cg_flush(cg, n);
}

/* Row `row` of operand n as a pointer: its memory, or a copy of it made in
 * `copy` (views such as a broadcast zero gradient). */
static LLVMValueRef operand_row(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef copy) {
  LLVMValueRef p = mem_row(cg, n, row);
  if (p) return p;
  Loop lp;
  int64_t numel = shape_numel(&n->shape);
  LLVMValueRef e = cg_loop_begin(cg, &lp, ci(cg, numel));
  LLVMValueRef idx[MAX_RANK];
  LLVMValueRef rest = e;
  for (int d = n->shape.rank - 1; d >= 0; d--) {
    idx[d] = LLVMBuildSRem(cg->b, rest, ci(cg, n->shape.dim[d]), "");
    rest = LLVMBuildSDiv(cg->b, rest, ci(cg, n->shape.dim[d]), "");
  }
  LLVMBuildStore(cg->b, cg_load_elem(cg, n, row, idx), gep(cg, copy, e));
  cg_loop_end(cg, &lp);
  return copy;
}

/* Input position of tap (i, j) at output (oy, ox) along both axes, clamped
 * into the input, and whether it is inside (else it is padding). */
typedef struct TapPos {
  LLVMValueRef y, x, inside;
} TapPos;

static TapPos tap_pos(CG *cg, const Window *w, LLVMValueRef oy, LLVMValueRef ox, LLVMValueRef i, LLVMValueRef j) {
  LLVMValueRef y = LLVMBuildNSWSub(cg->b, iadd(cg, imul(cg, oy, ci(cg, w->s[0])), i), ci(cg, w->pad[0]), "");
  LLVMValueRef x = LLVMBuildNSWSub(cg->b, iadd(cg, imul(cg, ox, ci(cg, w->s[1])), j), ci(cg, w->pad[1]), "");
  TapPos p = {y, x, LLVMConstInt(cg->i1, 1, 0)};
  if (w->pad[0] + w->pad_end[0] + w->pad[1] + w->pad_end[1] == 0) return p; /* every tap is inside */
  LLVMValueRef in_y = LLVMBuildICmp(cg->b, LLVMIntULT, y, ci(cg, w->in[0]), "");
  LLVMValueRef in_x = LLVMBuildICmp(cg->b, LLVMIntULT, x, ci(cg, w->in[1]), "");
  p.inside = LLVMBuildAnd(cg->b, in_y, in_x, "inside");
  LLVMValueRef zero = ci(cg, 0);
  p.y = sel(cg, in_y, y, zero);
  p.x = sel(cg, in_x, x, zero);
  return p;
}

/* Element (c, y, x) of a window op's input-shaped operand n. */
static LLVMValueRef load_in(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef c, const TapPos *p) {
  LLVMValueRef idx[3] = {c, p->y, p->x};
  if (n->shape.rank == 2) idx[1] = p->x; /* [C, L] */
  return cg_load_elem(cg, n, row, idx);
}

static LLVMValueRef imax(CG *cg, LLVMValueRef a, LLVMValueRef b) {
  return sel(cg, LLVMBuildICmp(cg->b, LLVMIntSGT, a, b, ""), a, b);
}

static LLVMValueRef imin(CG *cg, LLVMValueRef a, LLVMValueRef b) {
  return sel(cg, LLVMBuildICmp(cg->b, LLVMIntSLT, a, b, ""), a, b);
}

static void zero_vec(CG *cg, LLVMValueRef i, void *p) { cg_vec_store(cg, cT(cg, 0), gep(cg, p, i)); }

/* count elements at p set to zero: a memset, not a vector loop with its
 * masked tail (three blocks of the back end's work each, and fashion_cnn's
 * training step zeroes five ranges). */
static void zero_row(CG *cg, LLVMValueRef p, int64_t count) {
  LLVMBuildMemSet(cg->b, p, LLVMConstInt(LLVMInt8TypeInContext(cg->ctx), 0, 0),
                  ci(cg, count * cg->L->elem_size), (unsigned)cg->L->elem_size);
}

/* The geometry of a window kernel (gemm.h's GEMM_IM2COL, GEMM_COL2IM) as
 * i64 values: its parameters inside the kernel, constants at a call. */
enum { WK_A, WK_B, WK_ROWS, WK_AS, WK_BS, WK_C, WK_H, WK_W, WK_KH, WK_KW, WK_SH, WK_SW, WK_PH, WK_PW, WK_OH, WK_OW, WK_COUNT };

typedef struct GeoV {
  LLVMValueRef C, H, W, kh, kw, sh, sw, ph, pw, oh, ow;
  LLVMValueRef rows, ss, cs; /* the batch's rows, the row strides of src and cols */
} GeoV;

/* The rows of cols (one per channel c and tap (i, j)) in runs of the
 * output's rows oy: a run's outputs ox in [lo, hi) read the input row
 * y = oy*s + i - pad at x = ox*s + j - pad, the ones before and after are
 * padding, and so are whole runs whose y is (oy outside [ylo, yhi)): the
 * walk skips those, the caller has zeroed cols (im2col) or they add
 * nothing (col2im). Which outputs are inside depends on (i, j) only, so
 * the runs' bounds, and for stride 1 their count of whole vectors and
 * the mask of the rest, are worked out once per tap, outside the oy loop.
 * For stride 1 a run is contiguous in both, vectors; the walk calls `run`
 * for each. */
typedef struct Runs {
  LLVMValueRef n;         /* outputs inside the run (ox in [lo, lo + n)) */
  LLVMValueRef full, mask; /* stride 1: n / vl whole vectors, then the rest under mask */
  LLVMValueRef col, in;   /* the run's first inside column (ox = lo) and its input */
} Runs;

typedef void RunFn(CG *cg, const GeoV *g, const Runs *r);

/* The outputs o whose tap t*1 + o*s - pad lies in [0, len): [lo, hi), both
 * clamped to [0, out]: o >= ceil((pad - t) / s), o <= floor((len - 1 + pad - t) / s). */
static void inside(CG *cg, LLVMValueRef t, LLVMValueRef s, LLVMValueRef pad, LLVMValueRef len, LLVMValueRef out,
                   LLVMValueRef *lo, LLVMValueRef *hi) {
  LLVMValueRef zero = ci(cg, 0), one = ci(cg, 1);
  LLVMValueRef before = imax(cg, LLVMBuildNSWSub(cg->b, pad, t, ""), zero);
  *lo = imin(cg, LLVMBuildSDiv(cg->b, iadd(cg, before, LLVMBuildNSWSub(cg->b, s, one, "")), s, ""), out);
  LLVMValueRef last = LLVMBuildNSWSub(cg->b, iadd(cg, LLVMBuildNSWSub(cg->b, len, one, ""), pad), t, "");
  LLVMValueRef h = LLVMBuildSDiv(cg->b, imax(cg, last, ci(cg, -1)), s, "");
  h = sel(cg, LLVMBuildICmp(cg->b, LLVMIntSLT, last, zero, ""), zero, iadd(cg, h, one));
  *hi = imax(cg, imin(cg, h, out), *lo);
}

static void walk_runs(CG *cg, const GeoV *g, LLVMValueRef src, LLVMValueRef cols, RunFn *run, bool vec) {
  Loop cl, il, jl, rl, yl;
  Runs r = {0};
  LLVMValueRef hw = imul(cg, g->H, g->W), P = imul(cg, g->oh, g->ow), kk = imul(cg, g->kh, g->kw);
  LLVMValueRef c = cg_loop_begin(cg, &cl, g->C);
  LLVMValueRef i = cg_loop_begin(cg, &il, g->kh);
  LLVMValueRef ylo, yhi;
  inside(cg, i, g->sh, g->ph, g->H, g->oh, &ylo, &yhi);
  LLVMValueRef j = cg_loop_begin(cg, &jl, g->kw);
  LLVMValueRef lo, hi;
  inside(cg, j, g->sw, g->pw, g->W, g->ow, &lo, &hi);
  r.n = LLVMBuildNSWSub(cg->b, hi, lo, "");
  if (vec) {
    r.full = LLVMBuildUDiv(cg->b, r.n, ci(cg, cg->vl), "");
    LLVMTypeRef i32 = LLVMInt32TypeInContext(cg->ctx);
    LLVMValueRef lane[64];
    for (int l = 0; l < cg->vl; l++) lane[l] = LLVMConstInt(i32, (unsigned)l, 0);
    LLVMValueRef rest = LLVMBuildTrunc(cg->b, LLVMBuildAnd(cg->b, r.n, ci(cg, cg->vl - 1), ""), i32, "");
    LLVMTypeRef vi = LLVMVectorType(i32, (unsigned)cg->vl);
    LLVMValueRef splat = LLVMBuildShuffleVector(cg->b, LLVMBuildInsertElement(cg->b, LLVMGetPoison(vi), rest, ci(cg, 0), ""),
                                                LLVMGetPoison(vi), LLVMConstNull(vi), "");
    r.mask = LLVMBuildICmp(cg->b, LLVMIntULT, LLVMConstVector(lane, (unsigned)cg->vl), splat, "tail");
  }
  LLVMValueRef tap = iadd(cg, imul(cg, c, kk), iadd(cg, imul(cg, i, g->kw), j));
  LLVMValueRef col0 = gep(cg, cols, iadd(cg, imul(cg, tap, P), lo));
  /* (c, i - ph, j - pw + lo*sw): the input of run oy at + (oy*sh)*W */
  LLVMValueRef at = iadd(cg, imul(cg, c, hw), iadd(cg, imul(cg, LLVMBuildNSWSub(cg->b, i, g->ph, ""), g->W),
                                                   iadd(cg, LLVMBuildNSWSub(cg->b, j, g->pw, ""), imul(cg, lo, g->sw))));
  LLVMValueRef in0 = LLVMBuildGEP2(cg->b, cg->T, src, &at, 1, "");
  LLVMValueRef row = cg_loop_begin(cg, &rl, g->rows);
  LLVMValueRef col_r = gep(cg, col0, imul(cg, row, g->cs));
  LLVMValueRef in_r = LLVMBuildGEP2(cg->b, cg->T, in0, &(LLVMValueRef){imul(cg, row, g->ss)}, 1, "");
  LLVMValueRef oy = iadd(cg, cg_loop_begin(cg, &yl, LLVMBuildNSWSub(cg->b, yhi, ylo, "")), ylo);
  r.col = gep(cg, col_r, imul(cg, oy, g->ow));
  r.in = LLVMBuildGEP2(cg->b, cg->T, in_r, &(LLVMValueRef){imul(cg, imul(cg, oy, g->sh), g->W)}, 1, "");
  run(cg, g, &r);
  cg_loop_end(cg, &yl);
  cg_loop_end(cg, &rl);
  cg_loop_end(cg, &jl);
  cg_loop_end(cg, &il);
  cg_loop_end(cg, &cl);
}

/* An im2col run of stride 1 in vectors: the whole ones, then the rest
 * under the mask of its lanes; each vector's columns at col + o, its input
 * at in + o. */
static void run_vectors(CG *cg, const Runs *r) {
  int lanes = cg->lanes;
  cg->lanes = cg->vl;
  Loop lp;
  for (int part = 0; part < 2; part++) {
    LLVMValueRef o;
    if (part == 0) {
      o = imul(cg, cg_loop_begin(cg, &lp, r->full), ci(cg, cg->vl));
    } else {
      o = imul(cg, r->full, ci(cg, cg->vl));
      cg->vmask = r->mask;
    }
    LLVMValueRef in = gep(cg, r->in, o), col = gep(cg, r->col, o);
    cg_vec_store(cg, cg_vec_load(cg, in), col);
    cg->vmask = NULL;
    if (part == 0) cg_vec_loop_end(cg, &lp);
  }
  cg->lanes = lanes;
}

/* A run of any stride element by element: column col + o, input in + o*s. */
static void run_elements(CG *cg, const GeoV *g, const Runs *r, bool add) {
  Loop lp;
  LLVMValueRef o = cg_loop_begin(cg, &lp, r->n);
  LLVMValueRef in = LLVMBuildGEP2(cg->b, cg->T, r->in, &(LLVMValueRef){imul(cg, o, g->sw)}, 1, "");
  LLVMValueRef col = gep(cg, r->col, o);
  if (add)
    LLVMBuildStore(cg->b, b_fadd(cg, LLVMBuildLoad2(cg->b, cg->T, in, ""), LLVMBuildLoad2(cg->b, cg->T, col, "")), in);
  else
    LLVMBuildStore(cg->b, LLVMBuildLoad2(cg->b, cg->T, in, ""), col);
  cg_loop_end(cg, &lp);
}

/* col2im of stride 1 in vectors along the input's rows: for each channel
 * c, tap row i and output row oy whose input row y is inside, the row of
 * dx at y is loaded a vector of its x at a time, the kw columns of the
 * taps (c, i, j) added to it in registers (lane x takes column ox = x - j
 * + pw of tap j, a masked load: no lanes where ox is outside the output),
 * and stored once. Each dx element still adds its terms in the order of
 * the walk (c, i, j), from 0 (the lanes a tap does not reach add +0, which
 * changes no sum that starts from +0), so the same bits as the runs; a
 * dx row is read and written once per (c, i), not once per tap, and no
 * tap's masked store waits on the one before. */
static void col2im_rows(CG *cg, const GeoV *g, LLVMValueRef cols, LLVMValueRef dx) {
  Loop cl, il, rl, yl, xl, jl;
  LLVMValueRef hw = imul(cg, g->H, g->W), P = imul(cg, g->oh, g->ow);
  LLVMValueRef acc = LLVMBuildAlloca(cg->alloc, LLVMVectorType(cg->T, (unsigned)cg->vl), "row");
  LLVMValueRef c = cg_loop_begin(cg, &cl, g->C);
  LLVMValueRef i = cg_loop_begin(cg, &il, g->kh);
  LLVMValueRef ylo, yhi;
  inside(cg, i, g->sh, g->ph, g->H, g->oh, &ylo, &yhi);
  /* lane x of tap (c, i, j) at output row oy: column ox = x + pw - j of
     its row, at tap0 + pw + oy*ow + j*(P - 1) + x */
  LLVMValueRef tap0 = imul(cg, iadd(cg, imul(cg, c, g->kh), i), imul(cg, g->kw, P));
  LLVMValueRef row = cg_loop_begin(cg, &rl, g->rows);
  LLVMValueRef col_r = iadd(cg, imul(cg, row, g->cs), iadd(cg, tap0, g->pw));
  LLVMValueRef dx_r = iadd(cg, imul(cg, row, g->ss), imul(cg, c, hw));
  LLVMValueRef oy = iadd(cg, cg_loop_begin(cg, &yl, LLVMBuildNSWSub(cg->b, yhi, ylo, "")), ylo);
  LLVMValueRef y = LLVMBuildNSWSub(cg->b, iadd(cg, oy, i), g->ph, "");
  LLVMValueRef dxrow = gep(cg, dx, iadd(cg, dx_r, imul(cg, y, g->W)));
  LLVMValueRef colrow = iadd(cg, col_r, imul(cg, oy, g->ow));
  LLVMValueRef nx = LLVMBuildUDiv(cg->b, iadd(cg, g->W, ci(cg, cg->vl - 1)), ci(cg, cg->vl), "");
  LLVMValueRef x0 = imul(cg, cg_loop_begin(cg, &xl, nx), ci(cg, cg->vl));
  LLVMValueRef x = cg_lane_ids(cg, x0);
  LLVMValueRef inx = LLVMBuildICmp(cg->b, LLVMIntULT, x, cg_splat_i32(cg, g->W), "in_x");
  int lanes = cg->lanes;
  cg->lanes = cg->vl;
  cg->vmask = inx;
  LLVMValueRef at = gep(cg, dxrow, x0);
  LLVMBuildStore(cg->b, cg_vec_load(cg, at), acc);
  LLVMValueRef j = cg_loop_begin(cg, &jl, g->kw);
  /* lane x reads ox = x + pw - j: inside when ox <u ow */
  LLVMValueRef ox = LLVMBuildAdd(cg->b, x, cg_splat_i32(cg, LLVMBuildNSWSub(cg->b, g->pw, j, "")), "");
  cg->vmask = LLVMBuildAnd(cg->b, inx, LLVMBuildICmp(cg->b, LLVMIntULT, ox, cg_splat_i32(cg, g->ow), ""), "tap");
  LLVMValueRef off = iadd(cg, colrow, iadd(cg, imul(cg, j, LLVMBuildNSWSub(cg->b, P, ci(cg, 1), "")), x0));
  LLVMValueRef colp = LLVMBuildGEP2(cg->b, cg->T, cols, &off, 1, "");
  LLVMValueRef col = cg_vec_load(cg, colp);
  LLVMBuildStore(cg->b, b_fadd(cg, LLVMBuildLoad2(cg->b, LLVMVectorType(cg->T, (unsigned)cg->vl), acc, ""), col), acc);
  cg_vec_loop_end(cg, &jl);
  cg->vmask = inx;
  cg_vec_store(cg, LLVMBuildLoad2(cg->b, LLVMVectorType(cg->T, (unsigned)cg->vl), acc, ""), at);
  cg->vmask = NULL;
  cg->lanes = lanes;
  cg_vec_loop_end(cg, &xl);
  cg_loop_end(cg, &yl);
  cg_loop_end(cg, &rl);
  cg_loop_end(cg, &il);
  cg_loop_end(cg, &cl);
}

static void im2col_unit(CG *cg, const GeoV *g, const Runs *r) { (void)g, run_vectors(cg, r); }
static void im2col_strided(CG *cg, const GeoV *g, const Runs *r) { run_elements(cg, g, r, false); }
static void col2im_strided(CG *cg, const GeoV *g, const Runs *r) { run_elements(cg, g, r, true); }

static void zero_range(CG *cg, LLVMValueRef p, LLVMValueRef count) { cg_vec_range(cg, count, zero_vec, p); }

/* The body of window kernel k (gemm.c makes the function and its frame):
 *
 *   im2col(const T *src, T *cols, rows, ss, cs, C, H, W, kh, kw, sh, sw, ph, pw, oh, ow)
 *     for each of `rows` rows of the batch (row r's input [C, H, W] at
 *     src + r*ss, its cols at cols + r*cs), the inside of each run of
 *     cols; which elements are padding depends on the geometry only, so
 *     the caller zeroes cols once for all the rows (im2col_begin)
 *   col2im(const T *cols, T *dx, rows, cs, ds, ...the same)
 *     dx[c, y, x] of each row = the sum of the columns of its cols that
 *     came from it, in the order of the walk (c, i, j, oy, ox)
 *
 * The rows are the innermost loop but one (around the output rows oy),
 * so a tap's bounds and masks are worked out once for all of them.
 *
 * Stride 1 (along both axes) walks runs of vectors (col2im: rows of dx in
 * vectors, col2im_rows), any other stride elements. */
static void max_pool_kernel_body(CG *cg, bool fwd, LLVMValueRef fn);

void window_kernel_body(CG *cg, int k, LLVMValueRef fn) {
  if (k == GEMM_MAX_POOL2 || k == GEMM_MAX_POOL2_DX) {
    max_pool_kernel_body(cg, k == GEMM_MAX_POOL2, fn);
    return;
  }
  LLVMValueRef P[WK_COUNT];
  for (int i = 0; i < WK_COUNT; i++) P[i] = LLVMGetParam(fn, (unsigned)i);
  bool im2col = k == GEMM_IM2COL;
  GeoV g = {P[WK_C], P[WK_H], P[WK_W], P[WK_KH], P[WK_KW], P[WK_SH], P[WK_SW], P[WK_PH], P[WK_PW], P[WK_OH], P[WK_OW],
            P[WK_ROWS], im2col ? P[WK_AS] : P[WK_BS], im2col ? P[WK_BS] : P[WK_AS]};
  LLVMValueRef src = im2col ? P[WK_A] : P[WK_B], cols = im2col ? P[WK_B] : P[WK_A];
  if (!im2col) {
    Loop rl;
    LLVMValueRef r = cg_loop_begin(cg, &rl, g.rows);
    zero_range(cg, gep(cg, P[WK_B], imul(cg, r, g.ss)), imul(cg, g.C, imul(cg, g.H, g.W)));
    cg_loop_end(cg, &rl);
  }
  LLVMBasicBlockRef unit = LLVMAppendBasicBlockInContext(cg->ctx, fn, "unit");
  LLVMBasicBlockRef strided = LLVMAppendBasicBlockInContext(cg->ctx, fn, "strided");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, fn, "done");
  LLVMValueRef one = ci(cg, 1);
  LLVMBuildCondBr(cg->b, LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntEQ, g.sw, one, ""),
                                      LLVMBuildICmp(cg->b, LLVMIntEQ, g.sh, one, ""), ""), unit, strided);
  LLVMPositionBuilderAtEnd(cg->b, unit);
  GeoV u = g;
  u.sw = u.sh = one; /* the walk's divisions by the strides fold away */
  bool vec = cg->vec_loops && cg->vl >= 2;
  if (vec && !im2col)
    col2im_rows(cg, &u, cols, src);
  else
    walk_runs(cg, &u, src, cols, !vec ? (im2col ? im2col_strided : col2im_strided) : im2col_unit, vec);
  LLVMBuildBr(cg->b, done);
  LLVMPositionBuilderAtEnd(cg->b, strided);
  walk_runs(cg, &g, src, cols, im2col ? im2col_strided : col2im_strided, false);
  LLVMBuildBr(cg->b, done);
  LLVMPositionBuilderAtEnd(cg->b, done);
}

/* A call of window kernel k on `rows` rows of a and b (row strides as
 * and bs) with g's geometry. */
static void call_window_kernel(CG *cg, int k, const Geo *g, LLVMValueRef a, LLVMValueRef b, LLVMValueRef rows,
                               int64_t as, int64_t bs) {
  LLVMTypeRef ty;
  LLVMValueRef fn = gemm_fixed_kernel(cg, k, &ty);
  const Window *w = g->w;
  LLVMValueRef args[WK_COUNT] = {a, b, rows, ci(cg, as), ci(cg, bs), ci(cg, g->C), ci(cg, w->in[0]), ci(cg, w->in[1]),
                                 ci(cg, w->k[0]), ci(cg, w->k[1]), ci(cg, w->s[0]), ci(cg, w->s[1]),
                                 ci(cg, w->pad[0]), ci(cg, w->pad[1]), ci(cg, g->oh), ci(cg, g->ow)};
  LLVMBuildCall2(cg->b, ty, fn, args, WK_COUNT, "");
}

/* im2col of one row's input src ([C, H, W] in memory) into cols: a call
 * of the kernel. */
static void im2col(CG *cg, const Geo *g, LLVMValueRef src, LLVMValueRef cols) {
  call_window_kernel(cg, GEMM_IM2COL, g, src, cols, ci(cg, 1), 0, 0);
}

static bool has_padding(const Window *w) { return w->pad[0] + w->pad[1] + w->pad_end[0] + w->pad_end[1] > 0; }

/* Zero the padding of `rows` rows of cols. */
static void im2col_begin(CG *cg, const Geo *g, LLVMValueRef cols, int64_t rows) {
  if (has_padding(g->w)) zero_row(cg, cols, g->C * g->kk * g->P * rows);
}

/* dx[c, y, x] = the sum of the columns of cols that came from it (col2im). */
static void col2im(CG *cg, const Geo *g, LLVMValueRef cols, LLVMValueRef dx) {
  call_window_kernel(cg, GEMM_COL2IM, g, cols, dx, ci(cg, 1), 0, 0);
}

/* The distance between rows of n in memory, in elements (0: one row). */
static int64_t row_stride(const CG *cg, const Node *n);

/* Does n's cols matrix hold the batch's rows, with its operand x (input
 * of im2col) or its result (col2im's) in memory? Then one kernel call
 * serves the batch. */
static bool batch_cols(CG *cg, const Node *n, Geo *g, const Node *mem) {
  g->cols_rows = cols_rows(n, g->C * g->kk * g->P, cg->L->elem_size, cg->max_batch);
  return g->cols_rows > 1 && in_memory(cg, mem) && (n->op != OP_CONV_DX || row_stride(cg, mem));
}

/* dW [K, CKK] (w) from dW^T [CKK, K] (wt), summed over the batch by a
 * transposed weight gradient: once after the rows. */
static void untranspose_weights(CG *cg, const Geo *g, LLVMValueRef w, LLVMValueRef wt) {
  Loop cl, kl;
  int64_t ckk = g->C * g->kk;
  LLVMValueRef c = cg_loop_begin(cg, &cl, ci(cg, g->K));
  LLVMValueRef k = cg_loop_begin(cg, &kl, ci(cg, ckk));
  LLVMValueRef at = gep(cg, w, iadd(cg, imul(cg, c, ci(cg, ckk)), k)), t = gep(cg, wt, iadd(cg, imul(cg, k, ci(cg, g->K)), c));
  LLVMBuildStore(cg->b, LLVMBuildLoad2(cg->b, cg->T, t, ""), at);
  cg_loop_end(cg, &kl);
  cg_loop_end(cg, &cl);
}

/* C[M,N] (+)= A B with A(i, k) at a + i*rsa + k*csa, B(k, j) at b + k*rsb
 * + j: a call of gemm.c's kernel packing B in n's scratch. */
static void gemm_at(CG *cg, const Node *n, LLVMValueRef M, LLVMValueRef N, LLVMValueRef K, GemmMat A, LLVMValueRef b,
                    LLVMValueRef rsb, LLVMValueRef c, LLVMValueRef ldc, bool accumulate) {
  gemm_emit(cg, &(Gemm){.M = M, .N = N, .K = K, .A = A, .B = {b, rsb, ci(cg, 1)}, .C = c, .ldc = ldc, .g = n,
                        .owner = n, .accumulate = accumulate});
}

/* ---- implicit im2col ---- */

/* A private constant table of n i64 values in the module. */
static LLVMValueRef const_table(CG *cg, const int64_t *v, int64_t n) {
  LLVMValueRef *c = nnc_xcalloc((size_t)n, sizeof *c);
  for (int64_t k = 0; k < n; k++) c[k] = LLVMConstInt(cg->i64, (unsigned long long)v[k], 0);
  LLVMValueRef init = LLVMConstArray2(cg->i64, c, (uint64_t)n);
  free(c);
  /* constants are uniqued: the same table of another product is this one */
  for (LLVMValueRef t = LLVMGetFirstGlobal(cg->mod); t; t = LLVMGetNextGlobal(t))
    if (LLVMIsGlobalConstant(t) && LLVMGetInitializer(t) == init) return t;
  LLVMValueRef t = LLVMAddGlobal(cg->mod, LLVMTypeOf(init), "nnc.offsets");
  LLVMSetInitializer(t, init);
  LLVMSetGlobalConstant(t, 1);
  LLVMSetLinkage(t, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(t, LLVMGlobalUnnamedAddr);
  LLVMSetAlignment(t, 64);
  return t;
}

/* The offset tables: pos[oy*ow + ox] = oy*sh*wp + ox*sw, tap[(c*kh + i)*kw
 * + j] = c*hp*wp + i*wp + j, constants of the module: the geometry is
 * known here, and as loops that filled them every step they were
 * fashion_cnn's training step's 56 more blocks for the back end (its
 * machine code 48 -> 68 ms). */
static void offset_tables(CG *cg, const Img *im, LLVMValueRef *pos, LLVMValueRef *tap) {
  int64_t np = im->oh * im->ow, nt = im->C * im->kh * im->kw;
  int64_t *v = nnc_xcalloc((size_t)(np > nt ? np : nt), sizeof *v);
  for (int64_t oy = 0; oy < im->oh; oy++)
    for (int64_t ox = 0; ox < im->ow; ox++) v[oy * im->ow + ox] = oy * im->sh * im->wp + ox * im->sw;
  *pos = const_table(cg, v, np);
  for (int64_t c = 0; c < im->C; c++)
    for (int64_t i = 0; i < im->kh; i++)
      for (int64_t j = 0; j < im->kw; j++) v[(c * im->kh + i) * im->kw + j] = c * im->hp * im->wp + i * im->wp + j;
  *tap = const_table(cg, v, nt);
  free(v);
}

/* One row's operand x ([C, h, w]) inside the padded image img, whose
 * padding zero_row made zero before the rows: a copy of each of its rows
 * (as much of it as the windows reach). */
static void pad_image(CG *cg, const Img *im, LLVMValueRef x, LLVMValueRef img) {
  int64_t rows = im->hp - im->top < im->h ? im->hp - im->top : im->h;
  int64_t len = im->wp - im->left < im->w ? im->wp - im->left : im->w;
  if (rows <= 0 || len <= 0) return;
  Loop cl, yl;
  unsigned es = (unsigned)cg->L->elem_size;
  LLVMValueRef c = cg_loop_begin(cg, &cl, ci(cg, im->C));
  LLVMValueRef y = cg_loop_begin(cg, &yl, ci(cg, rows));
  LLVMValueRef from = gep(cg, x, iadd(cg, imul(cg, c, ci(cg, im->h * im->w)), imul(cg, y, ci(cg, im->w))));
  LLVMValueRef to = gep(cg, img, iadd(cg, imul(cg, c, ci(cg, im->hp * im->wp)),
                                      iadd(cg, imul(cg, iadd(cg, y, ci(cg, im->top)), ci(cg, im->wp)), ci(cg, im->left))));
  LLVMBuildMemCpy(cg->b, to, es, from, es, ci(cg, len * es));
  cg_loop_end(cg, &yl);
  cg_loop_end(cg, &cl);
}

/* The image of row `row` of operand x: its memory (or copy), or that
 * inside the padded image. */
static LLVMValueRef image_row(CG *cg, const Node *x, const Img *im, LLVMValueRef row, LLVMValueRef xcopy,
                              LLVMValueRef img) {
  LLVMValueRef src = operand_row(cg, x, row, xcopy);
  if (!im->copy) return src;
  pad_image(cg, im, src, img);
  return img;
}

/* The tables, the padding zeroed, B packed once for the batch
 * (gemm_pack_all) of an implicit product y^T = cols^T B: positions by
 * taps, stored transposed, the row loop's GEMM then only points A and C
 * at the row. */
static void implicit_begin(CG *cg, const Node *n, const Geo *g, const Img *im, Gemm *gm, LLVMValueRef wp) {
  Scr sc = scr_of(n, g, cg->L->elem_size, cg->max_batch);
  LLVMValueRef pos, tap;
  offset_tables(cg, im, &pos, &tap);
  if (im->copy) zero_row(cg, scratch(cg, n, g, sc.img), im->C * im->hp * im->wp);
  gm->M = ci(cg, im->oh * im->ow), gm->K = ci(cg, im->C * im->kh * im->kw), gm->trans = true;
  gemm_pack_all(cg, gm, wp);
  gm->B.ptr = wp, gm->packed = true;
  gm->roff = pos, gm->koff = tap, gm->ldc = gm->M;
}

/* The rows of an implicit product (after implicit_begin): A the row's
 * image of n's first operand (copied to `copy` when not in memory), C
 * the row of `to`. */
static void implicit_rows(CG *cg, const Node *n, const Img *im, Gemm *gm, LLVMValueRef copy, LLVMValueRef img,
                          const Node *to) {
  Loop rl;
  LLVMValueRef row = cg_loop_begin(cg, &rl, n->batched ? cg->n : ci(cg, 1));
  gm->A = (GemmMat){image_row(cg, n->in[0], im, row, copy, img), ci(cg, 0), ci(cg, 0)};
  gm->C = mem_row(cg, to, row), gm->row = row;
  gemm_emit(cg, gm);
  cg_loop_end(cg, &rl);
}

/* The forward product with implicit im2col: y^T = cols^T W^T for each
 * row, cols^T indexed from the row's image, W^T packed once. */
static void emit_conv_implicit(CG *cg, const Node *n, Gemm *gm, const Node *to) {
  Geo g = geo_of(n);
  Img im = img_of(n, &g);
  Scr sc = scr_of(n, &g, cg->L->elem_size, cg->max_batch);
  int64_t ckk = g.C * g.kk;
  LLVMValueRef W = operand_row(cg, n->in[1], ci(cg, 0), scratch(cg, n, &g, sc.w));
  gm->N = ci(cg, g.K), gm->B = (GemmMat){W, ci(cg, 1), ci(cg, ckk)}; /* W^T */
  implicit_begin(cg, n, &g, &im, gm, scratch(cg, n, &g, sc.wt));
  implicit_rows(cg, n, &im, gm, scratch(cg, n, &g, sc.x), scratch(cg, n, &g, sc.img), to);
}

/* The input gradient as a convolution (dx_implicit): dx^T = cols'^T W'
 * for each row, cols' indexed from dy's padded image, W' (rows the taps
 * (k, i, j), columns the input channels) flipped and packed once. */
static void emit_conv_dx_implicit(CG *cg, const Node *n) {
  Geo g = geo_of(n);
  Img im = img_of(n, &g);
  Scr sc = scr_of(n, &g, cg->L->elem_size, cg->max_batch);
  int64_t ckk = g.C * g.kk;
  LLVMValueRef W = operand_row(cg, n->in[1], ci(cg, 0), scratch(cg, n, &g, sc.w));
  LLVMValueRef wf = scratch(cg, n, &g, sc.wf);
  Loop kl, cl, tl;
  LLVMValueRef k = cg_loop_begin(cg, &kl, ci(cg, g.K));
  LLVMValueRef c = cg_loop_begin(cg, &cl, ci(cg, g.C));
  LLVMValueRef t = cg_loop_begin(cg, &tl, ci(cg, g.kk));
  LLVMValueRef from = iadd(cg, imul(cg, k, ci(cg, ckk)), iadd(cg, imul(cg, c, ci(cg, g.kk)), t));
  LLVMValueRef flip = LLVMBuildNSWSub(cg->b, ci(cg, g.kk - 1), t, "");
  LLVMValueRef to = iadd(cg, imul(cg, iadd(cg, imul(cg, k, ci(cg, g.kk)), flip), ci(cg, g.C)), c);
  LLVMBuildStore(cg->b, LLVMBuildLoad2(cg->b, cg->T, gep(cg, W, from), ""), gep(cg, wf, to));
  cg_loop_end(cg, &tl);
  cg_loop_end(cg, &cl);
  cg_loop_end(cg, &kl);
  Gemm gm = {.g = n, .owner = n, .N = ci(cg, g.C), .B = {wf, ci(cg, g.C), ci(cg, 1)}};
  implicit_begin(cg, n, &g, &im, &gm, scratch(cg, n, &g, sc.wt));
  implicit_rows(cg, n, &im, &gm, scratch(cg, n, &g, sc.dy), scratch(cg, n, &g, sc.img), n);
}

static void emit_conv(CG *cg, const Node *n) {
  Geo g = geo_of(n);
  int64_t ckk = g.C * g.kk;
  const Node *a = n->in[0], *b = n->in[1];
  flush_mem(cg, a);
  flush_mem(cg, b);
  Gemm gm = {.g = n, .owner = n};
  const Node *to = n->op == OP_CONV ? gemm_stores(cg, &gm, n) : n; /* an epilogue's sink, or n */
  cg_forget_node(cg, n);
  if (n->op == OP_CONV && implicit(n, &g)) {
    emit_conv_implicit(cg, n, &gm, to);
    return;
  }
  if (dx_implicit(n, &g)) {
    emit_conv_dx_implicit(cg, n);
    return;
  }
  LLVMValueRef rows = n->batched ? cg->n : ci(cg, 1);
  bool batch = batch_cols(cg, n, &g, n->op == OP_CONV_DX ? to : a);
  Scr sc = scr_of(n, &g, cg->L->elem_size, cg->max_batch);
  LLVMValueRef cols0 = scratch(cg, n, &g, sc.cols);
  LLVMValueRef wcopy = scratch(cg, n, &g, sc.w), dycopy = scratch(cg, n, &g, sc.dy);
  LLVMValueRef xcopy = scratch(cg, n, &g, sc.x);
  if (n->op != OP_CONV_DX) im2col_begin(cg, &g, cols0, batch ? g.cols_rows : 1);
  if (batch && n->op != OP_CONV_DX) /* the batch's windows, one call */
    call_window_kernel(cg, GEMM_IM2COL, &g, mem_row(cg, a, ci(cg, 0)), cols0, rows, row_stride(cg, a), ckk * g.P);
  Loop rl;
  LLVMValueRef row = cg_loop_begin(cg, &rl, rows);
  LLVMValueRef out = mem_row(cg, to, row);
  LLVMValueRef cols = batch ? gep(cg, cols0, imul(cg, row, ci(cg, ckk * g.P))) : cols0;
  switch ((int)n->op) {
  case OP_CONV: { /* y[K,P] = W[K,CKK] cols[CKK,P], or its epilogue's sink (bias, relu) */
    LLVMValueRef W = operand_row(cg, b, row, wcopy);
    if (!batch) im2col(cg, &g, operand_row(cg, a, row, xcopy), cols);
    gm.M = ci(cg, g.K), gm.N = ci(cg, g.P), gm.K = ci(cg, ckk), gm.A = (GemmMat){W, ci(cg, ckk), ci(cg, 1)};
    gm.B = (GemmMat){cols, ci(cg, g.P), ci(cg, 1)}, gm.C = out, gm.ldc = ci(cg, g.P), gm.row = row;
    if (conv_trans(n, &g)) { /* weights per row: y^T = cols^T W^T, cols read in place, W^T packed */
      gm.M = ci(cg, g.P), gm.N = ci(cg, g.K), gm.trans = true;
      gm.A = (GemmMat){cols, ci(cg, 1), ci(cg, g.P)};
      gm.B = (GemmMat){W, ci(cg, 1), ci(cg, ckk)};
    }
    gemm_emit(cg, &gm);
    break;
  }
  case OP_CONV_DX: { /* cols[CKK,P] = W^T dy[K,P], then col2im */
    LLVMValueRef dy = operand_row(cg, a, row, dycopy), W = operand_row(cg, b, row, wcopy);
    gemm_at(cg, n, ci(cg, ckk), ci(cg, g.P), ci(cg, g.K), (GemmMat){W, ci(cg, 1), ci(cg, ckk)}, dy, ci(cg, g.P), cols,
            ci(cg, g.P), false);
    if (!batch) col2im(cg, &g, cols, out);
    break;
  }
  case OP_CONV_DW: { /* dW[K,CKK] = dy[K,P] cols^T, for this row */
    LLVMValueRef dy = operand_row(cg, b, row, dycopy);
    if (!batch) im2col(cg, &g, operand_row(cg, a, row, xcopy), cols);
    gemm_emit(cg, &(Gemm){.M = ci(cg, g.K), .N = ci(cg, ckk), .K = ci(cg, g.P), .A = {dy, ci(cg, g.P), ci(cg, 1)},
                          .B = {cols, ci(cg, 1), ci(cg, g.P)}, .C = out, .ldc = ci(cg, ckk), .g = n, .owner = n});
    break;
  }
  default:
    nnc_die("codegen: %s is not a convolution", op_info[n->op].name);
  }
  cg_loop_end(cg, &rl);
  if (batch && n->op == OP_CONV_DX) /* the batch's columns added back, one call */
    call_window_kernel(cg, GEMM_COL2IM, &g, cols0, mem_row(cg, to, ci(cg, 0)), rows, ckk * g.P, row_stride(cg, to));
}

bool window_dw_inline_ok(const Node *n, const Node *c) {
  return n->op == OP_CONV_DW && c->op == OP_BATCH_SUM && n->batched;
}

bool window_batch_dw_ok(const CG *cg, const Node *n) {
  const Node *d = n->in[0];
  return n->op == OP_BATCH_SUM && d->op == OP_CONV_DW && cg->st[d->id].kind == ST_INLINE;
}

/* batch_sum(conv_dw(x, dy)): dW += dy_r cols_r^T for each row r, the
 * first row's product stored, the others added to it. */
void window_batch_dw(CG *cg, const Node *n) {
  const Node *d = n->in[0], *x = d->in[0], *dyn = d->in[1];
  Geo g = geo_of(d);
  int64_t ckk = g.C * g.kk;
  flush_mem(cg, x);
  flush_mem(cg, dyn);
  cg_forget_node(cg, n);
  LLVMValueRef out = mem_row(cg, n, ci(cg, 0));
  bool imp = implicit(d, &g);
  bool batch = !imp && batch_cols(cg, d, &g, x);
  Scr sc = scr_of(d, &g, cg->L->elem_size, cg->max_batch);
  Img im = img_of(d, &g);
  LLVMValueRef cols0 = scratch(cg, d, &g, sc.cols), dycopy = scratch(cg, d, &g, sc.dy);
  LLVMValueRef xcopy = scratch(cg, d, &g, sc.x), img = scratch(cg, d, &g, sc.img);
  LLVMValueRef pos = NULL, tap = NULL;
  /* dW^T [CKK, K] += cols dy^T: cols read in place (implicit: indexed
     from the image, its rows the taps), dy^T packed */
  LLVMValueRef wt = conv_trans(d, &g) ? scratch(cg, d, &g, sc.wt) : NULL;
  zero_row(cg, wt ? wt : out, g.K * ckk);
  if (imp) {
    offset_tables(cg, &im, &pos, &tap);
    if (im.copy) zero_row(cg, img, g.C * im.hp * im.wp);
  } else {
    im2col_begin(cg, &g, cols0, batch ? g.cols_rows : 1);
  }
  if (batch) call_window_kernel(cg, GEMM_IM2COL, &g, mem_row(cg, x, ci(cg, 0)), cols0, cg->n, row_stride(cg, x), ckk * g.P);
  Loop rl;
  LLVMValueRef row = cg_loop_begin(cg, &rl, cg->n);
  LLVMValueRef dy = operand_row(cg, dyn, row, dycopy);
  LLVMValueRef cols = batch ? gep(cg, cols0, imul(cg, row, ci(cg, ckk * g.P))) : cols0;
  if (!batch && !imp) im2col(cg, &g, operand_row(cg, x, row, xcopy), cols);
  if (imp) /* cols indexed: its rows the taps, along k the positions */
    gemm_emit(cg, &(Gemm){.M = ci(cg, ckk), .N = ci(cg, g.K), .K = ci(cg, g.P),
                          .A = {image_row(cg, x, &im, row, xcopy, img), ci(cg, 0), ci(cg, 0)}, .roff = tap,
                          .koff = pos, .B = {dy, ci(cg, 1), ci(cg, g.P)}, .C = wt, .ldc = ci(cg, g.K), .g = d,
                          .owner = d, .accumulate = true});
  else if (wt)
    gemm_emit(cg, &(Gemm){.M = ci(cg, ckk), .N = ci(cg, g.K), .K = ci(cg, g.P), .A = {cols, ci(cg, g.P), ci(cg, 1)},
                          .B = {dy, ci(cg, 1), ci(cg, g.P)}, .C = wt, .ldc = ci(cg, g.K), .g = d, .owner = d,
                          .accumulate = true});
  else
    gemm_emit(cg, &(Gemm){.M = ci(cg, g.K), .N = ci(cg, ckk), .K = ci(cg, g.P), .A = {dy, ci(cg, g.P), ci(cg, 1)},
                          .B = {cols, ci(cg, 1), ci(cg, g.P)}, .C = out, .ldc = ci(cg, ckk), .g = d, .owner = d,
                          .accumulate = true});
  cg_loop_end(cg, &rl);
  if (wt) untranspose_weights(cg, &g, out, wt);
}

/* Max pooling without padding, its windows' taps unrolled (at most
 * MAX_TAPS of them), operands in memory: the forward pass, and the
 * gradient when windows do not overlap (stride >= kernel), where each
 * input element gets dy of its window when it is the window's first
 * maximum and 0 otherwise, written once (no zeroing and adding). */
enum { MAX_TAPS = 16 };

static bool fast_max_pool_ok(const CG *cg, const Node *n) {
  const Window *w = &n->attr.win;
  if (n->op != OP_MAX_POOL && n->op != OP_MAX_POOL_DX) return false;
  if (has_padding(w) || w->k[0] * w->k[1] > MAX_TAPS) return false;
  if (!in_memory(cg, n->in[0]) || !in_memory(cg, n)) return false;
  if (n->op == OP_MAX_POOL) return true;
  return w->s[0] >= w->k[0] && w->s[1] >= w->k[1] && in_memory(cg, n->in[1]);
}

/* One row of fast max pooling: x, dy and out the row's memory, the
 * geometry i64 values (constants, or a kernel's parameters), the kh x kw
 * taps unrolled. The gradient zeroes out first unless every input element
 * lies in a window (`covered`). */
typedef struct PoolV {
  LLVMValueRef x, dy, out;
  LLVMValueRef C, H, W, sh, sw, oh, ow, covered;
  LLVMValueRef relu; /* the gradient: keep_pos(x, dx) (an i1), or NULL */
} PoolV;

/* The gradient's row zeroed unless every input element lies in a window. */
static void zero_uncovered(CG *cg, const PoolV *p) {
  LLVMBasicBlockRef zero = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "zero");
  LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "pool");
  LLVMBuildCondBr(cg->b, p->covered, go, zero);
  LLVMPositionBuilderAtEnd(cg->b, zero);
  zero_range(cg, p->out, imul(cg, p->C, imul(cg, p->H, p->W)));
  LLVMBuildBr(cg->b, go);
  LLVMPositionBuilderAtEnd(cg->b, go);
}

static void max_pool_row(CG *cg, bool fwd, const PoolV *p, int kh, int kw) {
  Loop cl, yl, xl;
  if (!fwd) zero_uncovered(cg, p);
  LLVMValueRef hw = imul(cg, p->H, p->W), P = imul(cg, p->oh, p->ow);
  LLVMValueRef c = cg_loop_begin(cg, &cl, p->C);
  LLVMValueRef oy = cg_loop_begin(cg, &yl, p->oh);
  LLVMValueRef ox = cg_loop_begin(cg, &xl, p->ow);
  LLVMValueRef o = iadd(cg, imul(cg, c, P), iadd(cg, imul(cg, oy, p->ow), ox));
  LLVMValueRef corner =
      iadd(cg, imul(cg, c, hw), iadd(cg, imul(cg, imul(cg, oy, p->sh), p->W), imul(cg, ox, p->sw)));
  LLVMValueRef at[MAX_TAPS], best = NULL, best_t = NULL;
  int taps = kh * kw;
  for (int t = 0; t < taps; t++) {
    LLVMValueRef off = iadd(cg, imul(cg, ci(cg, t / kw), p->W), ci(cg, t % kw));
    at[t] = gep(cg, p->x, iadd(cg, corner, off));
    LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->T, at[t], "");
    if (t == 0) {
      best = v, best_t = ci(cg, 0);
      continue;
    }
    LLVMValueRef wins = fgt(cg, v, best); /* a later tap only when strictly greater */
    best = sel(cg, wins, v, best);
    best_t = sel(cg, wins, ci(cg, t), best_t);
  }
  if (fwd) {
    LLVMBuildStore(cg->b, best, gep(cg, p->out, o));
  } else {
    LLVMValueRef grad = LLVMBuildLoad2(cg->b, cg->T, gep(cg, p->dy, o), "");
    if (p->relu) /* as keep_pos(x, dx) computes it at the maximum; 0 elsewhere either way */
      grad = sel(cg, p->relu, sel(cg, fgt(cg, best, cT(cg, 0)), grad, cT(cg, 0)), grad);
    for (int t = 0; t < taps; t++) {
      LLVMValueRef mine = LLVMBuildICmp(cg->b, LLVMIntEQ, best_t, ci(cg, t), "");
      LLVMValueRef dst = gep(cg, p->out, iadd(cg, corner, iadd(cg, imul(cg, ci(cg, t / kw), p->W), ci(cg, t % kw))));
      LLVMBuildStore(cg->b, sel(cg, mine, grad, cT(cg, 0)), dst);
    }
  }
  cg_loop_end(cg, &xl);
  cg_loop_end(cg, &yl);
  cg_loop_end(cg, &cl);
}

/* A shuffle of a and b (vectors of vl lanes) by lane indices f(l). */
static LLVMValueRef shuffle2(CG *cg, LLVMValueRef a, LLVMValueRef b, int (*f)(int l, int vl)) {
  LLVMTypeRef i32 = LLVMInt32TypeInContext(cg->ctx);
  LLVMValueRef m[64];
  for (int l = 0; l < cg->vl; l++) m[l] = LLVMConstInt(i32, (unsigned)f(l, cg->vl), 0);
  return LLVMBuildShuffleVector(cg->b, a, b, LLVMConstVector(m, (unsigned)cg->vl), "");
}

static int even_lane(int l, int vl) { return (void)vl, 2 * l; }
static int odd_lane(int l, int vl) { return (void)vl, 2 * l + 1; }
static int lo_lane(int l, int vl) { return l % 2 ? vl + l / 2 : l / 2; }
static int hi_lane(int l, int vl) { return l % 2 ? vl + vl / 2 + l / 2 : vl / 2 + l / 2; }

/* Max pooling of kh x 2 windows of stride 2 along x, VL windows of an
 * output row at a time: the window's column pairs are two vectors of the
 * input row, split into even and odd lanes (and the gradient's put back
 * together the same way); the last vector of a row under masks. Each lane
 * computes what max_pool_row computes for its window, the same compares
 * in the same order, so the same bits. */
static void max_pool_row_vec(CG *cg, bool fwd, const PoolV *p, int kh) {
  Loop cl, yl, xl;
  int vl = cg->vl, lanes = cg->lanes;
  LLVMValueRef hw = imul(cg, p->H, p->W), P = imul(cg, p->oh, p->ow);
  LLVMValueRef c = cg_loop_begin(cg, &cl, p->C);
  LLVMValueRef oy = cg_loop_begin(cg, &yl, p->oh);
  LLVMValueRef nv = LLVMBuildUDiv(cg->b, iadd(cg, p->ow, ci(cg, vl - 1)), ci(cg, vl), "");
  LLVMValueRef ox = imul(cg, cg_loop_begin(cg, &xl, nv), ci(cg, vl));
  LLVMValueRef rem = imin(cg, ci(cg, vl), LLVMBuildNSWSub(cg->b, p->ow, ox, ""));
  LLVMValueRef lane = cg_lane_ids(cg, ci(cg, 0));
  /* the lanes of the row's windows, of their first and second vectors of input */
  LLVMValueRef m_out = LLVMBuildICmp(cg->b, LLVMIntSLT, lane, cg_splat_i32(cg, rem), "");
  LLVMValueRef m_lo = LLVMBuildICmp(cg->b, LLVMIntSLT, lane, cg_splat_i32(cg, imul(cg, rem, ci(cg, 2))), "");
  LLVMValueRef m_hi =
      LLVMBuildICmp(cg->b, LLVMIntSLT, lane, cg_splat_i32(cg, LLVMBuildNSWSub(cg->b, imul(cg, rem, ci(cg, 2)), ci(cg, vl), "")), "");
  LLVMValueRef o = iadd(cg, imul(cg, c, P), iadd(cg, imul(cg, oy, p->ow), ox));
  LLVMValueRef corner = iadd(cg, imul(cg, c, hw), iadd(cg, imul(cg, imul(cg, oy, p->sh), p->W), imul(cg, ox, ci(cg, 2))));
  cg->lanes = vl;
  LLVMValueRef at[2], best = NULL, best_t = NULL;
  for (int i = 0; i < kh; i++) {
    at[i] = gep(cg, p->x, iadd(cg, corner, imul(cg, ci(cg, i), p->W)));
    cg->vmask = m_lo;
    LLVMValueRef a = cg_vec_load(cg, at[i]);
    cg->vmask = m_hi;
    LLVMValueRef b = cg_vec_load(cg, gep(cg, at[i], ci(cg, vl)));
    LLVMValueRef tap[2] = {shuffle2(cg, a, b, even_lane), shuffle2(cg, a, b, odd_lane)};
    for (int j = 0; j < 2; j++) {
      LLVMValueRef v = tap[j], tv = cg_splat_i32(cg, ci(cg, 2 * i + j));
      if (!best) {
        best = v, best_t = tv;
        continue;
      }
      LLVMValueRef wins = fgt(cg, v, best); /* a later tap only when strictly greater */
      best = sel(cg, wins, v, best);
      best_t = sel(cg, wins, tv, best_t);
    }
  }
  cg->vmask = m_out;
  if (fwd) {
    cg_vec_store(cg, best, gep(cg, p->out, o));
  } else {
    LLVMValueRef grad = cg_vec_load(cg, gep(cg, p->dy, o)), zero = cT(cg, 0);
    if (p->relu) /* as max_pool_row */
      grad = sel(cg, p->relu, sel(cg, fgt(cg, best, zero), grad, zero), grad);
    for (int i = 0; i < kh; i++) {
      LLVMValueRef g[2];
      for (int j = 0; j < 2; j++)
        g[j] = sel(cg, LLVMBuildICmp(cg->b, LLVMIntEQ, best_t, cg_splat_i32(cg, ci(cg, 2 * i + j)), ""), grad, zero);
      LLVMValueRef dst = gep(cg, p->out, iadd(cg, corner, imul(cg, ci(cg, i), p->W)));
      cg->vmask = m_lo;
      cg_vec_store(cg, shuffle2(cg, g[0], g[1], lo_lane), dst);
      cg->vmask = m_hi;
      cg_vec_store(cg, shuffle2(cg, g[0], g[1], hi_lane), gep(cg, dst, ci(cg, vl)));
    }
  }
  cg->vmask = NULL;
  cg->lanes = lanes;
  cg_vec_loop_end(cg, &xl);
  cg_loop_end(cg, &yl);
  cg_loop_end(cg, &cl);
}

/* The fixed max pooling kernels (GEMM_MAX_POOL2, GEMM_MAX_POOL2_DX): the
 * rows of a batch (row r of x at x + r*xs, and so on) of kh x 2 windows,
 * kh 1 (pooling along one axis) or 2, the geometry as arguments:
 *   fn(x, dy, out, rows, xs, dys, outs, C, H, W, kh, sh, sw, oh, ow)
 * (dy unused forward) */
static void max_pool_kernel_body(CG *cg, bool fwd, LLVMValueRef fn) {
  LLVMValueRef P[POOL_KERNEL_PARAMS];
  for (int i = 0; i < POOL_KERNEL_PARAMS; i++) P[i] = LLVMGetParam(fn, (unsigned)i);
  LLVMValueRef kh = P[10];
  PoolV p = {NULL, NULL, NULL, P[7], P[8], P[9], P[11], P[12], P[13], P[14], NULL, NULL};
  if (!fwd) p.relu = LLVMBuildICmp(cg->b, LLVMIntNE, P[15], ci(cg, 0), "relu");
  if (!fwd) {
    LLVMValueRef cov = LLVMBuildAnd(cg->b, LLVMBuildICmp(cg->b, LLVMIntEQ, imul(cg, p.oh, p.sh), p.H, ""),
                                    LLVMBuildICmp(cg->b, LLVMIntEQ, imul(cg, p.ow, p.sw), p.W, ""), "");
    cov = LLVMBuildAnd(cg->b, cov, LLVMBuildICmp(cg->b, LLVMIntEQ, p.sh, kh, ""), "");
    p.covered = LLVMBuildAnd(cg->b, cov, LLVMBuildICmp(cg->b, LLVMIntEQ, p.sw, ci(cg, 2), ""), "covered");
  }
  LLVMBasicBlockRef one = LLVMAppendBasicBlockInContext(cg->ctx, fn, "one");
  LLVMBasicBlockRef two = LLVMAppendBasicBlockInContext(cg->ctx, fn, "two");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, fn, "done");
  LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntEQ, kh, ci(cg, 1), ""), one, two);
  for (int h = 1; h <= 2; h++) {
    LLVMPositionBuilderAtEnd(cg->b, h == 1 ? one : two);
    Loop rl;
    LLVMValueRef r = cg_loop_begin(cg, &rl, P[3]);
    p.x = gep(cg, P[0], imul(cg, r, P[4]));
    p.dy = fwd ? P[1] : gep(cg, P[1], imul(cg, r, P[5]));
    p.out = gep(cg, P[2], imul(cg, r, P[6]));
    if (cg->vec_loops && cg->vl >= 2) { /* stride 2 along x: VL windows at a time */
      LLVMBasicBlockRef vec = LLVMAppendBasicBlockInContext(cg->ctx, fn, "vec");
      LLVMBasicBlockRef any = LLVMAppendBasicBlockInContext(cg->ctx, fn, "any");
      LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(cg->ctx, fn, "next");
      LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntEQ, p.sw, ci(cg, 2), ""), vec, any);
      LLVMPositionBuilderAtEnd(cg->b, vec);
      if (!fwd) zero_uncovered(cg, &p);
      max_pool_row_vec(cg, fwd, &p, h);
      LLVMBuildBr(cg->b, next);
      LLVMPositionBuilderAtEnd(cg->b, any);
      max_pool_row(cg, fwd, &p, h, 2);
      LLVMBuildBr(cg->b, next);
      LLVMPositionBuilderAtEnd(cg->b, next);
    } else {
      max_pool_row(cg, fwd, &p, h, 2);
    }
    cg_loop_end(cg, &rl);
    LLVMBuildBr(cg->b, done);
  }
  LLVMPositionBuilderAtEnd(cg->b, done);
}

/* The distance between rows of n in memory, in elements (0: one row). */
static int64_t row_stride(const CG *cg, const Node *n) {
  n = cg_stored(cg, n);
  return n->batched ? cg->st[n->id].row_stride : 0;
}

/* Max pooling n, or its gradient into out times relu's mask (relu). */
static void fast_max_pool_into(CG *cg, const Node *n, const Node *out, bool relu) {
  Geo g = geo_of(n);
  const Window *w = g.w;
  bool fwd = n->op == OP_MAX_POOL;
  flush_mem(cg, n->in[0]);
  if (!fwd) flush_mem(cg, n->in[1]);
  cg_forget_node(cg, out);
  /* every input element lies in a window (else the rest is zeroed first) */
  bool covered = g.oh * w->s[0] == w->in[0] && g.ow * w->s[1] == w->in[1] && w->s[0] == w->k[0] && w->s[1] == w->k[1];
  /* the common 2x2 and 2 (one axis): a call of the fixed kernel */
  bool kernel = (w->k[0] == 1 || w->k[0] == 2) && w->k[1] == 2;
  LLVMValueRef rows = n->batched ? cg->n : ci(cg, 1);
  if (kernel) { /* one call for all the rows */
    LLVMTypeRef ty;
    LLVMValueRef fn = gemm_fixed_kernel(cg, fwd ? GEMM_MAX_POOL2 : GEMM_MAX_POOL2_DX, &ty);
    LLVMValueRef zero = ci(cg, 0);
    LLVMValueRef args[POOL_KERNEL_PARAMS] = {
        mem_row(cg, n->in[0], zero), fwd ? LLVMConstPointerNull(cg->ptr) : mem_row(cg, n->in[1], zero),
        mem_row(cg, out, zero), rows, ci(cg, row_stride(cg, n->in[0])), ci(cg, fwd ? 0 : row_stride(cg, n->in[1])),
        ci(cg, row_stride(cg, out)), ci(cg, g.C), ci(cg, w->in[0]), ci(cg, w->in[1]), ci(cg, w->k[0]),
        ci(cg, w->s[0]), ci(cg, w->s[1]), ci(cg, g.oh), ci(cg, g.ow), ci(cg, relu)};
    LLVMBuildCall2(cg->b, ty, fn, args, POOL_KERNEL_PARAMS, "");
    return;
  }
  Loop rl;
  LLVMValueRef row = cg_loop_begin(cg, &rl, rows);
  LLVMValueRef x = mem_row(cg, n->in[0], row), po = mem_row(cg, out, row);
  LLVMValueRef dy = fwd ? NULL : mem_row(cg, n->in[1], row);
  PoolV p = {x, dy, po, ci(cg, g.C), ci(cg, w->in[0]), ci(cg, w->in[1]), ci(cg, w->s[0]), ci(cg, w->s[1]),
             ci(cg, g.oh), ci(cg, g.ow), LLVMConstInt(cg->i1, covered, 0),
             relu ? LLVMConstInt(cg->i1, 1, 0) : NULL};
  max_pool_row(cg, fwd, &p, (int)w->k[0], (int)w->k[1]);
  cg_loop_end(cg, &rl);
}

static void fast_max_pool(CG *cg, const Node *n) { fast_max_pool_into(cg, n, n, false); }

/* ---- max pooling's gradient times relu's mask ---- */

/* n is the gradient of 2-wide windows of stride 2 that cover the input
 * (each input element in one window: the kernel writes it once, so out
 * may be written over x), with x and dy in memory */
static bool pool_relu_grad(const CG *cg, const Node *n) {
  if (n->op != OP_MAX_POOL_DX || !n->batched) return false;
  const Window *w = &n->attr.win;
  Geo g = geo_of(n);
  if (has_padding(w) || !(w->k[0] == 1 || w->k[0] == 2) || w->k[1] != 2) return false;
  if (w->s[0] != w->k[0] || w->s[1] != w->k[1] || g.oh * w->s[0] != w->in[0] || g.ow * w->s[1] != w->in[1])
    return false;
  return in_memory(cg, n->in[0]) && in_memory(cg, n->in[1]);
}

/* c = keep_pos(x, n), x the pooled input of n: relu's gradient */
static bool relu_mask_of(const Node *n, const Node *c) {
  return c->op == OP_KEEP_POS && c->batched && shape_eq(&c->shape, &n->shape) && c->in[1] == n &&
         c->in[0] == n->in[0];
}

bool window_pool_relu_inline_ok(const CG *cg, const Node *n, const Node *c) {
  return pool_relu_grad(cg, n) && relu_mask_of(n, c) && cg->st[c->id].kind == ST_MEM && !cg->fused_into[c->id];
}

bool window_pool_relu_ok(const CG *cg, const Node *c) {
  if (c->op != OP_KEEP_POS) return false;
  const Node *n = c->in[1];
  return n->op == OP_MAX_POOL_DX && cg->st[n->id].kind == ST_INLINE && relu_mask_of(n, c) &&
         in_memory(cg, c);
}

void window_pool_relu(CG *cg, const Node *c) {
  fast_max_pool_into(cg, c->in[1], c, true);
}

/* max_pool, avg_pool and their gradients: a loop over the windows. The
 * gradients add into the input-shaped result; max pooling's goes to the
 * first maximal element of each window, as the interpreter's. */
static void emit_pool(CG *cg, const Node *n) {
  Geo g = geo_of(n);
  const Window *w = g.w;
  bool is_max = n->op == OP_MAX_POOL || n->op == OP_MAX_POOL_DX;
  bool fwd = n->op == OP_MAX_POOL || n->op == OP_AVG_POOL;
  const Node *x = n->op == OP_AVG_POOL_DX ? NULL : n->in[0];
  const Node *dy = n->op == OP_MAX_POOL_DX ? n->in[1] : n->op == OP_AVG_POOL_DX ? n->in[0] : NULL;
  cg_forget_node(cg, n);
  Loop rl, cl, yl, xl, il, jl;
  LLVMValueRef row = cg_loop_begin(cg, &rl, n->batched ? cg->n : ci(cg, 1));
  LLVMValueRef out = mem_row(cg, n, row);
  if (!fwd) zero_row(cg, out, g.C * g.hw);
  LLVMValueRef c = cg_loop_begin(cg, &cl, ci(cg, g.C));
  LLVMValueRef oy = cg_loop_begin(cg, &yl, ci(cg, g.oh));
  LLVMValueRef ox = cg_loop_begin(cg, &xl, ci(cg, g.ow));
  LLVMValueRef o = iadd(cg, imul(cg, c, ci(cg, g.P)), iadd(cg, imul(cg, oy, ci(cg, g.ow)), ox));
  LLVMValueRef grad = NULL;
  if (dy) {
    LLVMValueRef idx[3] = {c, oy, ox};
    if (w->rank == 1) idx[1] = ox;
    grad = cg_load_elem(cg, dy, row, idx);
  }
  LLVMValueRef best = LLVMBuildAlloca(cg->alloc, cg->T, "best");
  LLVMValueRef best_at = LLVMBuildAlloca(cg->alloc, cg->i64, "best_at");
  LLVMBuildStore(cg->b, cT(cg, is_max ? -INFINITY : 0), best);
  LLVMBuildStore(cg->b, ci(cg, -1), best_at);
  LLVMValueRef i = cg_loop_begin(cg, &il, ci(cg, w->k[0]));
  LLVMValueRef j = cg_loop_begin(cg, &jl, ci(cg, w->k[1]));
  TapPos p = tap_pos(cg, w, oy, ox, i, j);
  LLVMValueRef at = iadd(cg, imul(cg, c, ci(cg, g.hw)), iadd(cg, imul(cg, p.y, ci(cg, w->in[1])), p.x));
  if (is_max) {
    /* the first maximum: a later tap wins only when strictly greater (the
       first tap inside always wins) */
    LLVMValueRef v = load_in(cg, x, row, c, &p);
    LLVMValueRef cur = LLVMBuildLoad2(cg->b, cg->T, best, "");
    LLVMValueRef first = LLVMBuildICmp(cg->b, LLVMIntSLT, LLVMBuildLoad2(cg->b, cg->i64, best_at, ""), ci(cg, 0), "");
    LLVMValueRef wins = LLVMBuildAnd(cg->b, p.inside, LLVMBuildOr(cg->b, first, fgt(cg, v, cur), ""), "");
    LLVMBuildStore(cg->b, sel(cg, wins, v, cur), best);
    LLVMBuildStore(cg->b, sel(cg, wins, at, LLVMBuildLoad2(cg->b, cg->i64, best_at, "")), best_at);
  } else if (fwd) {
    LLVMValueRef v = sel(cg, p.inside, load_in(cg, x, row, c, &p), cT(cg, 0));
    LLVMBuildStore(cg->b, b_fadd(cg, LLVMBuildLoad2(cg->b, cg->T, best, ""), v), best);
  } else { /* avg_pool_dx: every tap gets dy / kk */
    LLVMValueRef v = sel(cg, p.inside, b_fdiv(cg, grad, cT(cg, (double)g.kk)), cT(cg, 0));
    LLVMValueRef ptr = gep(cg, out, at);
    LLVMBuildStore(cg->b, b_fadd(cg, LLVMBuildLoad2(cg->b, cg->T, ptr, ""), v), ptr);
  }
  cg_loop_end(cg, &jl);
  cg_loop_end(cg, &il);
  if (n->op == OP_MAX_POOL) {
    LLVMBuildStore(cg->b, LLVMBuildLoad2(cg->b, cg->T, best, ""), gep(cg, out, o));
  } else if (n->op == OP_AVG_POOL) {
    LLVMValueRef v = b_fdiv(cg, LLVMBuildLoad2(cg->b, cg->T, best, ""), cT(cg, (double)g.kk));
    LLVMBuildStore(cg->b, v, gep(cg, out, o));
  } else if (n->op == OP_MAX_POOL_DX) {
    LLVMValueRef ptr = gep(cg, out, LLVMBuildLoad2(cg->b, cg->i64, best_at, ""));
    LLVMBuildStore(cg->b, b_fadd(cg, LLVMBuildLoad2(cg->b, cg->T, ptr, ""), grad), ptr);
  }
  cg_loop_end(cg, &xl);
  cg_loop_end(cg, &yl);
  cg_loop_end(cg, &cl);
  cg_loop_end(cg, &rl);
}

void window_emit(CG *cg, const Node *n) {
  if (n->op == OP_CONV || n->op == OP_CONV_DX || n->op == OP_CONV_DW)
    emit_conv(cg, n);
  else if (fast_max_pool_ok(cg, n))
    fast_max_pool(cg, n);
  else
    emit_pool(cg, n);
}
