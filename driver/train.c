/*
 * train.c - data and parameters for a run, the training loop, and the
 * --grad / --check-grad / --predict reports (see train.h).
 */
#include "train.h"

#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"
#include "interp.h"
#include "parallel.h"
#include "report.h"

/* ---- data ---- */

/* Permute the rows of d once (csv(..., shuffle: true)), e.g. so a split
 * takes a random part of a file stored in some order. */
static void shuffle_data(NncData *d, uint64_t seed) {
  NncRng rng;
  nnc_rng_seed(&rng, seed);
  size_t *perm = nnc_xmalloc(sizeof(size_t) * (d->rows + 1));
  nnc_rng_permutation(&rng, d->rows, perm);
  double *x = nnc_xmalloc_filled(sizeof(double) * (d->rows * (size_t)d->in_cols + 1));
  double *t = nnc_xmalloc_filled(sizeof(double) * (d->rows * (size_t)d->tgt_cols + 1));
  for (size_t r = 0; r < d->rows; r++) {
    memcpy(x + r * (size_t)d->in_cols, d->x + perm[r] * (size_t)d->in_cols, sizeof(double) * (size_t)d->in_cols);
    memcpy(t + r * (size_t)d->tgt_cols, d->t + perm[r] * (size_t)d->tgt_cols, sizeof(double) * (size_t)d->tgt_cols);
  }
  free(d->x);
  free(d->t);
  d->x = x;
  d->t = t;
  free(perm);
  nnc_data_drop_lines(d); /* the rows are no longer the file's order */
}

/* An error at value `col` (1-based) of data row `row` (0-based) of d: at
 * its line and column of a CSV file (FILE:LINE:COL), else naming the row. */
__attribute__((format(printf, 5, 6))) static void data_error(const NncData *d, const char *source, size_t row,
                                                             size_t col, const char *fmt, ...) {
  StrBuf msg = {0};
  va_list ap;
  va_start(ap, fmt);
  sb_vprintf(&msg, fmt, ap);
  va_end(ap);
  size_t line = nnc_data_line(d, row);
  if (line && line <= INT_MAX && col <= INT_MAX)
    diag_file_error_at(source, (Loc){(int)line, (int)col}, "%s", msg.data);
  else
    diag_file_error(source, "data row %zu, column %zu: %s", row + 1, col, msg.data);
  sb_free(&msg);
}

/* Every value an embedding reads from an input must be a row of its table:
 * an error naming the data row and column otherwise. */
static int check_indices(const Graph *g, const NncData *d, const char *source) {
  int n;
  IndexInput *ix = engine_index_inputs(g, &n);
  for (int i = 0; i < n; i++)
    for (size_t r = 0; r < d->rows; r++)
      for (int64_t k = 0; k < ix[i].count; k++) {
        double v = d->x[r * (size_t)d->in_cols + (size_t)(ix[i].column + k)];
        if (v >= 0 && v < (double)ix[i].rows && v == floor(v)) continue;
        data_error(d, source, r, (size_t)(ix[i].column + k + 1),
                   "%s[%" PRId64 "] is %.17g, which is not a row of %s (an integer in [0, %" PRId64 "))",
                   ix[i].input->name, k, v, ix[i].table->name, ix[i].rows);
        free(ix);
        return -1;
      }
  free(ix);
  return 0;
}

/* An f32 model's data within f32's range (1e39 is finite as read, and
 * infinite as the model holds it): an error naming the row and column. */
static int check_f32_range(const Graph *g, const NncData *d, const char *source) {
  if (g->dtype != DT_F32) return 0;
  for (size_t r = 0; r < d->rows; r++)
    for (int part = 0; part < 2; part++) {
      size_t cols = part ? (size_t)d->tgt_cols : (size_t)d->in_cols;
      const double *v = (part ? d->t : d->x) + r * cols;
      for (size_t k = 0; k < cols; k++) {
        if (fabs(v[k]) <= FLT_MAX) continue;
        char got[32];
        fmt_number(got, sizeof got, v[k]);
        data_error(d, source, r, (part ? (size_t)d->in_cols : 0) + k + 1,
                   "%s is beyond the range of f32, the model's dtype (at most %g in magnitude)", got,
                   (double)FLT_MAX);
        return -1;
      }
    }
  return 0;
}

/* What the model cannot take from data it reads (training data,
 * --predict's rows): an error naming the first such value. */
static int check_data(const Graph *g, const NncData *d, const char *source) {
  return check_indices(g, d, source) != 0 || check_f32_range(g, d, source) != 0 ? -1 : 0;
}

static const char *source_name(const DataSpec *d) {
  switch (d->kind) {
  case DATA_MOONS: return "moons";
  case DATA_CIRCLES: return "circles";
  case DATA_CSV: case DATA_IDX: return d->path; /* idx: the images file */
  case DATA_NONE: break;
  }
  return "data";
}

static int load_source(const Program *p, const Graph *g, const DataSpec *d, int64_t in_cols,
                       int64_t tgt_cols, NncData *out) {
  char err[1024];
  int rc = -1;
  switch (d->kind) {
  case DATA_MOONS:
    rc = nnc_data_moons(out, (size_t)d->samples, d->noise, d->seed, (int)in_cols, (int)tgt_cols,
                        err, sizeof err);
    break;
  case DATA_CIRCLES:
    rc = nnc_data_circles(out, (size_t)d->samples, d->noise, d->factor, d->seed, (int)in_cols,
                          (int)tgt_cols, err, sizeof err);
    break;
  case DATA_CSV:
    rc = nnc_data_csv(out, d->path, (int)in_cols, (int)tgt_cols, d->onehot ? (int)tgt_cols : 0, 0,
                      err, sizeof err);
    break;
  case DATA_IDX:
    rc = nnc_data_idx(out, d->path, d->labels, d->scale, (int)in_cols, (int)tgt_cols, err, sizeof err);
    break;
  case DATA_NONE:
    diag_file_error(p->src->path, "no training data: add `data` to the train block");
    return -1;
  }
  if (rc != 0) {
    diag_error_line(err);
    return rc;
  }
  if (check_data(g, out, source_name(d)) != 0) {
    nnc_data_free(out);
    return -1;
  }
  if (d->shuffle) shuffle_data(out, d->seed);
  return 0;
}

int rt_load_data(const Program *p, const Graph *g, NncData *train, NncData *valid) {
  const TrainConfig *tc = &p->train;
  int64_t in_cols = engine_input_cols(g), tgt_cols = engine_target_cols(g);
  memset(train, 0, sizeof *train);
  memset(valid, 0, sizeof *valid);
  NncData all = {0};
  if (load_source(p, g, &tc->data, in_cols, tgt_cols, &all) != 0) return -1;
  if (tc->has_split) {
    size_t rows = tc->split_fraction ? (size_t)floor(tc->split * (double)all.rows) : (size_t)tc->split;
    if (rows < 1 || rows >= all.rows) {
      diag_file_error(p->src->path, "split %g leaves no rows on one side (the data has %zu rows)",
                      tc->split, all.rows);
      nnc_data_free(&all);
      return -1;
    }
    nnc_data_split(&all, rows, train, valid);
  } else {
    *train = all;
  }
  if (tc->valid.kind != DATA_NONE) {
    nnc_data_free(valid);
    if (load_source(p, g, &tc->valid, in_cols, tgt_cols, valid) != 0) {
      nnc_data_free(train);
      return -1;
    }
  }
  return 0;
}

/* rows[c]: for a data column an embedding reads, the rows of the smallest
 * table it indexes; 0 for every other column. */
static int64_t *index_limits(const Graph *g, int64_t in_cols) {
  int64_t *rows = nnc_xcalloc((size_t)in_cols + 1, sizeof *rows);
  int n;
  IndexInput *ix = engine_index_inputs(g, &n);
  for (int i = 0; i < n; i++)
    for (int64_t c = ix[i].column; c < ix[i].column + ix[i].count; c++)
      if (!rows[c] || ix[i].rows < rows[c]) rows[c] = ix[i].rows;
  free(ix);
  return rows;
}

bool rt_random_data(const Program *p, const Graph *g, int64_t rows, NncData *out) {
  NncRng rng;
  /* a stream of its own: the initializers draw from the init seed, by
     default the same number, and inputs equal to the weights' draws
     would put every layer's sums far out (a saturated softmax) */
  nnc_rng_seed(&rng, p->train.seed ^ 0x9E3779B97F4A7C15ull);
  memset(out, 0, sizeof *out);
  out->rows = (size_t)rows;
  out->in_cols = (int)engine_input_cols(g);
  out->tgt_cols = (int)engine_target_cols(g);
  out->x = nnc_xmalloc_filled(sizeof(double) * (out->rows * (size_t)out->in_cols + 1));
  out->t = nnc_xmalloc_filled(sizeof(double) * (out->rows * (size_t)out->tgt_cols + 1));
  int64_t *limit = index_limits(g, out->in_cols);
  bool indices = false;
  for (size_t k = 0; k < out->rows * (size_t)out->in_cols; k++) {
    int64_t table = limit[k % (size_t)out->in_cols];
    /* an embedding's indices: whole rows of its table, uniformly */
    out->x[k] = table ? floor(nnc_rng_uniform(&rng) * (double)table) : nnc_rng_normal(&rng);
    indices |= table != 0;
  }
  free(limit);
  for (size_t k = 0; k < out->rows * (size_t)out->tgt_cols; k++) out->t[k] = nnc_rng_uniform(&rng);
  return indices;
}

void *rt_data_cast(const NncData *d, bool targets, DType dt) {
  size_t n = d->rows * (size_t)(targets ? d->tgt_cols : d->in_cols);
  const double *src = targets ? d->t : d->x;
  if (dt == DT_F64) {
    double *out = nnc_xmalloc_filled(sizeof(double) * (n + 1));
    if (n) memcpy(out, src, sizeof(double) * n);
    return out;
  }
  float *out = nnc_xmalloc_filled(sizeof(float) * (n + 1));
  for (size_t i = 0; i < n; i++) out[i] = (float)src[i];
  return out;
}

/* ---- parameters ---- */

static void buf_write(Engine *e, int64_t off, const double *v, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    if (e->layout->elem_size == 8)
      ((double *)e->buf)[off + i] = v[i];
    else
      ((float *)e->buf)[off + i] = (float)v[i];
  }
}

static double buf_read(const Engine *e, int64_t off) {
  return e->layout->elem_size == 8 ? ((double *)e->buf)[off] : ((float *)e->buf)[off];
}

void rt_init_params(const Program *p, const ParamInit *inits, Engine *e) {
  const Graph *g = e->g;
  const InitSpec *init = &p->train.init;
  NncRng shared;
  nnc_rng_seed(&shared, init->seed);
  for (int i = 0; i < g->params.len; i++) {
    const Node *prm = g->params.items[i];
    int64_t n = shape_numel(&prm->shape);
    double *v = nnc_xcalloc((size_t)n + 1, sizeof(double));
    const ParamInit *pi = &inits[i];
    if (pi->kind == PINIT_TRAIN) {
      nnc_init_fill(init->kind, init->arg, &shared, prm->shape.rank, prm->shape.dim, v);
    } else if (pi->kind == PINIT_OWN) {
      NncRng own;
      nnc_rng_seed(&own, pi->own.has_seed ? pi->own.seed : p->train.seed ^ str_hash(prm->name));
      nnc_init_fill(pi->own.kind, pi->own.arg, &own, prm->shape.rank, prm->shape.dim, v);
    }
    buf_write(e, e->layout->param_off[i], v, n);
    free(v);
  }
}

/* ---- printing ---- */

/* One value as the spec prints it: %.17g for f64, %.9g for f32. */
static void rt_print_value(FILE *f, double v, DType dt) {
  /* -0 and 0 are the same number; the sign of a zero depends on the order of
     sums, so printing it would make equal results print differently */
  if (v == 0) v = 0;
  fprintf(f, dt == DT_F64 ? "%.17g" : "%.9g", v);
}

/* ---- evaluation over a whole set ---- */

typedef enum LabelKind { LABELS_NONE, LABELS_BINARY, LABELS_ONEHOT } LabelKind;

/* Targets are labels when every row is 0/1 (one output) or one-hot. */
static LabelKind label_kind(const Graph *g, const NncData *d) {
  int64_t outw = shape_numel(&g->output->shape);
  if (d->tgt_cols < 1 || d->tgt_cols != outw || !d->rows) return LABELS_NONE;
  for (size_t r = 0; r < d->rows; r++) {
    const double *t = d->t + r * (size_t)d->tgt_cols;
    int ones = 0;
    for (int k = 0; k < d->tgt_cols; k++) {
      if (t[k] != 0 && t[k] != 1) return LABELS_NONE;
      ones += t[k] == 1;
    }
    if (d->tgt_cols > 1 && ones != 1) return LABELS_NONE;
  }
  return d->tgt_cols == 1 ? LABELS_BINARY : LABELS_ONEHOT;
}

/* A single output as the probability of class 1: a logit (the operand of
 * bce_logits, with no output of its own) through the sigmoid, any other
 * output as it is. Accuracy and --plot's surface read this. */
static double class1_probability(const Graph *g, double y) { return g->output_is_logit ? 1 / (1 + exp(-y)) : y; }

static int argmax(const double *v, int n) {
  int best = 0;
  for (int k = 1; k < n; k++)
    if (v[k] > v[best]) best = k;
  return best;
}

typedef struct SetEval {
  const NncData *src;
  void *x, *t; /* in the model's dtype */
  size_t rows;
  LabelKind labels;
} SetEval;

static void set_prepare(SetEval *s, const Graph *g, const NncData *d) {
  s->src = d;
  s->x = rt_data_cast(d, false, g->dtype);
  s->t = rt_data_cast(d, true, g->dtype);
  s->rows = d->rows;
  s->labels = label_kind(g, d);
}

static void set_free(SetEval *s) {
  free(s->x);
  free(s->t);
}

/* Rows per forward call when a data set is evaluated (forward takes any
 * number; this bounds the memory for its outputs). */
enum { EVAL_ROWS = 4096 };

/* Mean per-row loss over the set (and accuracy when the targets are labels)
 * with the current parameters; with pred, the predicted class of each row
 * too. */
static double set_loss(Engine *e, const SetEval *s, double *accuracy, int *pred) {
  const Graph *g = e->g;
  size_t es = (size_t)e->layout->elem_size;
  int64_t xc = engine_input_cols(g), tc = engine_target_cols(g), yw = shape_numel(&g->output->shape);
  int64_t chunk = (int64_t)s->rows < EVAL_ROWS ? (int64_t)(s->rows ? s->rows : 1) : EVAL_ROWS;
  void *y = nnc_xmalloc(es * (size_t)(chunk * yw + 1));
  void *loss = nnc_xmalloc(es * (size_t)(chunk + 1));
  double total = 0, yd[64], td[64];
  size_t correct = 0;
  for (size_t r = 0; r < s->rows; r += (size_t)chunk) {
    int64_t n = (int64_t)(s->rows - r) < chunk ? (int64_t)(s->rows - r) : chunk;
    const char *xp = (const char *)s->x + r * (size_t)xc * es;
    const char *tp = (const char *)s->t + r * (size_t)tc * es;
    e->forward(e, xp, tp, n, y, loss);
    for (int64_t i = 0; i < n; i++) {
      total += es == 8 ? ((double *)loss)[i] : ((float *)loss)[i];
      if (s->labels == LABELS_NONE || yw > 64) continue;
      for (int64_t k = 0; k < yw; k++) {
        yd[k] = es == 8 ? ((double *)y)[i * yw + k] : ((float *)y)[i * yw + k];
        td[k] = es == 8 ? ((const double *)tp)[i * tc + k] : ((const float *)tp)[i * tc + k];
      }
      int guess = s->labels == LABELS_BINARY ? class1_probability(g, yd[0]) > 0.5 : argmax(yd, (int)yw);
      int truth = s->labels == LABELS_BINARY ? td[0] > 0.5 : argmax(td, (int)yw);
      correct += guess == truth;
      if (pred) pred[r + (size_t)i] = guess;
    }
  }
  free(y);
  free(loss);
  if (accuracy) *accuracy = s->rows ? (double)correct / (double)s->rows : 0;
  return s->rows ? total / (double)s->rows : 0;
}

/* ---- training steps ---- */

double rt_schedule_lr(const TrainConfig *tc, int64_t epoch) {
  const ScheduleSpec *s = &tc->schedule;
  double lr = tc->optim.lr, e = (double)epoch;
  if (epoch < s->warmup) return lr * (e + 1) / (double)s->warmup;
  switch (s->kind) {
  case SCHED_CONSTANT: return lr;
  case SCHED_STEP: return lr * pow(s->gamma, (double)(epoch / s->every));
  case SCHED_COSINE:
    return s->min_lr + (lr - s->min_lr) * (1 + cos(M_PI * e / (double)(tc->epochs > 0 ? tc->epochs : 1))) / 2;
  }
  return lr;
}

/* Does the learning rate change during the run (then progress lines show it)? */
static bool lr_scheduled(const TrainConfig *tc) {
  return tc->schedule.kind != SCHED_CONSTANT || tc->schedule.warmup > 0;
}

/* The learning rate the compiled step reads (update.h: optimizer.lr). */
static void set_lr(Engine *e, double lr) {
  if (e->layout->lr_off >= 0) buf_write(e, e->layout->lr_off, &lr, 1);
}

static void shuffle_rows(NncRng *rng, size_t rows, const void *x, const void *t, void *xs, void *ts,
                         size_t xbytes, size_t tbytes, size_t *perm) {
  nnc_rng_permutation(rng, rows, perm);
  for (size_t r = 0; r < rows; r++) {
    memcpy((char *)xs + r * xbytes, (const char *)x + perm[r] * xbytes, xbytes);
    memcpy((char *)ts + r * tbytes, (const char *)t + perm[r] * tbytes, tbytes);
  }
}

static void format_duration(char *buf, size_t n, double s) {
  if (s < 60)
    snprintf(buf, n, "%.1fs", s);
  else if (s < 3600)
    snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
  else
    snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

static bool params_finite(const Engine *e) {
  const Graph *g = e->g;
  const Layout *L = e->layout;
  for (int i = 0; i < g->params.len; i++) {
    int64_t len = shape_numel(&((Node *)g->params.items[i])->shape);
    for (int64_t k = 0; k < len; k++)
      if (!isfinite(buf_read(e, L->param_off[i] + k))) return false;
  }
  for (int j = 0; j < g->states.len; j++) {
    int64_t len = shape_numel(&((Node *)g->states.items[j])->shape);
    for (int64_t k = 0; k < len; k++)
      if (!isfinite(buf_read(e, L->state_off[j] + k))) return false;
  }
  return true;
}

/* The domain an op's input left when its value is not finite, as text, or
 * NULL when the input was inside it (an overflow, a NaN that came in). */
static const char *outside_domain(const Node *n, double x) {
  if (!isfinite(x)) return NULL;
  if (n->op == OP_LOG && x <= 0) return "x > 0";
  if (n->op == OP_SQRT && x < 0) return "x >= 0";
  if (n->op == OP_POW && x < 0 && n->attr.value != floor(n->attr.value))
    return "x >= 0 for a power that is not a whole number";
  if (n->op == OP_POW && x == 0 && n->attr.value < 0) return "x != 0 for a negative power";
  return NULL;
}

/* Where an epoch stopped being finite: its step (from 0), the first node
 * of that step whose value is not finite (NULL when the interpreter finds
 * none) and the operand that left its domain (interp_first_nonfinite). */
typedef struct Fault {
  int64_t step;
  const Node *bad;
  double operand;
} Fault;

/* The epoch went non-finite: `e->buf` holds the parameters from before it.
 * Re-run it step by step to find the step, then that step in the
 * interpreter to find the first non-finite value: true, with the fault in
 * *f and the last finite parameters in e->buf. When every step stays
 * finite, only the sum of the epoch's losses overflowed (in an f32 model's
 * compiled train_epoch, which adds them in f32): false, with the epoch
 * trained and *sum its losses added in double. */
static bool rerun_epoch(Engine *e, const void *x, const void *t, int64_t rows, Fault *f, double *sum) {
  const Graph *g = e->g;
  size_t es = (size_t)e->layout->elem_size, bytes = (size_t)e->layout->total * es;
  size_t xbytes = (size_t)engine_input_cols(g) * es, tbytes = (size_t)engine_target_cols(g) * es;
  void *before = nnc_xmalloc(bytes);
  int64_t step_rows = e->rows_per_step; /* MPI: all ranks' rows */
  bool failed = false;
  *f = (Fault){.operand = NAN};
  *sum = 0;
  for (int64_t r = 0; r < rows; r += step_rows, f->step++) {
    int64_t n = rows - r < step_rows ? rows - r : step_rows;
    const char *xb = (const char *)x + (size_t)r * xbytes, *tb = (const char *)t + (size_t)r * tbytes;
    memcpy(before, e->buf, bytes);
    double loss = e->train_epoch(e, xb, tb, n);
    *sum += loss;
    if (isfinite(loss) && params_finite(e)) continue;
    failed = true;
    /* (not where the interpreter's step would not fit the memory limit:
       a model compiled code runs in far less, a workspace planned by
       liveness; the error then names the epoch alone) */
    if (interp_bytes(g, e->layout, n) <= NNC_MAX_MEMORY)
      f->bad = interp_first_nonfinite(g, e->layout, before, xb, tb, n, &f->operand);
    memcpy(e->buf, before, bytes);
    break;
  }
  free(before);
  return failed;
}

/* The error for the fault of an epoch: the step, the op and its line, and
 * why when it is known (a domain left, a division by 0). */
static void report_fault(const Program *p, const Fault *f, int64_t epoch) {
  const Node *bad = f->bad;
  int64_t step = f->step;
  double operand = f->operand;
  Diag d = {.src = p->src};
  if (!bad) {
    diag_error(&d, (Loc){0, 0}, "training produced a non-finite value in epoch %" PRId64 " (try a smaller --lr)",
               epoch);
    return;
  }
  const char *what = bad->role == ROLE_FORWARD ? "the forward pass"
                     : bad->role == ROLE_BACKWARD ? "the backward pass" : "the optimizer update";
  char label[160];
  if (bad->name)
    snprintf(label, sizeof label, "'%s' (%s)", bad->name, op_info[bad->op].name);
  else
    snprintf(label, sizeof label, "a %s", op_info[bad->op].name);
  Loc loc = bad->role == ROLE_BACKWARD && bad->via.set ? bad->via.loc : bad->loc;
  const char *domain = outside_domain(bad, operand);
  bool first = epoch == 1 && step == 0; /* the initial parameters: no step of --lr taken yet */
  /* a backward node's trouble is a derivative's: name the op it is of
     (sqrt's at 0 divides by 0) */
  char rule[64] = "";
  if (bad->role == ROLE_BACKWARD && bad->via.set)
    snprintf(rule, sizeof rule, " of %s", op_info[bad->via.op].name);
  if (bad->op == OP_DIV && operand == 0) {
    diag_error(&d, loc, "training diverged in epoch %" PRId64 ", step %" PRId64 ": %s in %s%s divides by 0", epoch,
               step + 1, label, what, rule);
    return;
  }
  if (domain) {
    char shown[32];
    fmt_number(shown, sizeof shown, operand);
    diag_error(&d, loc,
               "training diverged in epoch %" PRId64 ", step %" PRId64 ": %s in %s%s is not finite: its input %s is "
               "outside the domain of %s (%s)%s",
               epoch, step + 1, label, what, rule, shown, op_info[bad->op].name, domain,
               first ? "" : "; try a smaller --lr");
    return;
  }
  diag_error(&d, loc,
             "training diverged in epoch %" PRId64 ", step %" PRId64 ": %s in %s is the first "
             "value that is not finite; try a smaller --lr",
             epoch, step + 1, label, what);
}

/* The model's outputs at n points of two inputs, for the report. */
static void predict_points(void *ctx, const double *points, int64_t n, double *out) {
  Engine *e = ctx;
  size_t es = (size_t)e->layout->elem_size;
  int64_t yw = shape_numel(&e->g->output->shape);
  void *x = nnc_xmalloc(es * (size_t)(2 * n + 1));
  void *y = nnc_xmalloc(es * (size_t)(yw * n + 1));
  for (int64_t i = 0; i < 2 * n; i++) {
    if (es == 8)
      ((double *)x)[i] = points[i];
    else
      ((float *)x)[i] = (float)points[i];
  }
  e->forward(e, x, NULL, n, y, NULL);
  for (int64_t i = 0; i < n * yw; i++) out[i] = class1_probability(e->g, es == 8 ? ((double *)y)[i] : ((float *)y)[i]);
  free(x);
  free(y);
}

/* ---- the --plot report ---- */

static const char *init_name(NncInitKind k) {
  switch (k) {
  case NNC_INIT_XAVIER_NORMAL: return "xavier_normal";
  case NNC_INIT_XAVIER_UNIFORM: return "xavier_uniform";
  case NNC_INIT_HE_NORMAL: return "he_normal";
  case NNC_INIT_NORMAL: return "normal";
  case NNC_INIT_UNIFORM: return "uniform";
  case NNC_INIT_ZEROS: return "zeros";
  case NNC_INIT_CONSTANT: return "constant";
  }
  return "?";
}

static void data_text(StrBuf *sb, const DataSpec *d) {
  switch (d->kind) {
  case DATA_MOONS:
    sb_printf(sb, "moons(samples %" PRId64 ", noise %g, seed %" PRIu64 ")", d->samples, d->noise, d->seed);
    break;
  case DATA_CIRCLES:
    sb_printf(sb, "circles(samples %" PRId64 ", noise %g, factor %g, seed %" PRIu64 ")", d->samples, d->noise,
              d->factor, d->seed);
    break;
  case DATA_CSV: {
    const char *base = strrchr(d->path, '/');
    sb_printf(sb, "csv(%s%s)", base ? base + 1 : d->path, d->onehot ? ", onehot" : "");
    break;
  }
  case DATA_IDX: { /* the images file names the pair: the line stays within the page */
    const char *images = strrchr(d->path, '/');
    sb_printf(sb, "idx(%s)", images ? images + 1 : d->path);
    break;
  }
  case DATA_NONE:
    sb_puts(sb, "none");
    break;
  }
}

/* The header's settings lines. */
static char *report_settings(const Program *p, const Graph *g, const TrainOptions *o, size_t train_rows,
                             size_t valid_rows) {
  const TrainConfig *tc = &p->train;
  StrBuf sb = {0};
  const OptimSpec *op = &tc->optim;
  switch (op->kind) {
  case OPTIM_SGD:
    sb_printf(&sb, "optimizer sgd(lr %g", op->lr);
    if (op->momentum != 0) sb_printf(&sb, ", momentum %g%s", op->momentum, op->nesterov ? ", nesterov" : "");
    break;
  case OPTIM_ADAM: case OPTIM_ADAMW:
    sb_printf(&sb, "optimizer %s(lr %g, betas %g %g, eps %g", op->kind == OPTIM_ADAM ? "adam" : "adamw", op->lr,
              op->beta1, op->beta2, op->eps);
    break;
  case OPTIM_RMSPROP:
    sb_printf(&sb, "optimizer rmsprop(lr %g, alpha %g, eps %g", op->lr, op->alpha, op->eps);
    if (op->momentum != 0) sb_printf(&sb, ", momentum %g", op->momentum);
    if (op->centered) sb_puts(&sb, ", centered");
    break;
  }
  if (op->weight_decay != 0) sb_printf(&sb, ", weight decay %g", op->weight_decay);
  sb_puts(&sb, ")");
  const ScheduleSpec *sc = &tc->schedule;
  if (sc->kind == SCHED_STEP) sb_printf(&sb, ", schedule step(every %" PRId64 ", gamma %g", sc->every, sc->gamma);
  if (sc->kind == SCHED_COSINE) sb_printf(&sb, ", schedule cosine(min_lr %g", sc->min_lr);
  if (sc->kind == SCHED_CONSTANT && sc->warmup) sb_puts(&sb, ", schedule constant(");
  if (sc->warmup) sb_printf(&sb, "%swarmup %" PRId64, sc->kind == SCHED_CONSTANT ? "" : ", ", sc->warmup);
  if (lr_scheduled(tc)) sb_puts(&sb, ")");
  if (op->clip_norm > 0) sb_printf(&sb, ", clip_norm %g", op->clip_norm);
  if (tc->early_stop) sb_printf(&sb, ", early_stop %" PRId64, tc->early_stop);
  sb_printf(&sb, "\nbatch %" PRId64 ", %" PRId64 " epochs, shuffle %s, %s, seed %" PRIu64 ", %s\n",
            tc->batch, tc->epochs, tc->shuffle ? "on" : "off", dtype_name(g->dtype), tc->seed,
            o->engine ? o->engine : "?");
  sb_puts(&sb, "data ");
  data_text(&sb, &tc->data);
  if (tc->valid.kind != DATA_NONE) {
    sb_puts(&sb, ", valid ");
    data_text(&sb, &tc->valid);
  }
  sb_printf(&sb, ": %zu train rows, %zu valid rows; init %s", train_rows, valid_rows, init_name(tc->init.kind));
  if (tc->init.has_seed) sb_printf(&sb, "(seed %" PRIu64 ")", tc->init.seed);
  return sb.data;
}

/* The report draws the inputs as images when the model has one input of
 * shape [C, H, W] with 1 (grey) or 3 (RGB) channels, [H, W], or [N] with N
 * the square of 8 or more (a flattened square image, as x[784] for 28x28);
 * else *c = 0. */
static void image_shape(const Graph *g, int *c, int *h, int *w) {
  *c = *h = *w = 0;
  if (g->inputs.len != 1) return;
  const Shape *s = &((const Node *)g->inputs.items[0])->shape;
  if (s->rank == 3 && (s->dim[0] == 1 || s->dim[0] == 3) && s->dim[1] > 1 && s->dim[2] > 1) {
    *c = (int)s->dim[0], *h = (int)s->dim[1], *w = (int)s->dim[2];
  } else if (s->rank == 2 && s->dim[0] > 1 && s->dim[1] > 1) {
    *c = 1, *h = (int)s->dim[0], *w = (int)s->dim[1];
  } else if (s->rank == 1) {
    int64_t side = (int64_t)llround(sqrt((double)s->dim[0]));
    if (side >= 8 && side * side == s->dim[0]) *c = 1, *h = *w = (int)side;
  }
}

/* Targets as the report colours them: classes > 1 for labels. */
static int report_classes(const Graph *g, const NncData *d) {
  switch (label_kind(g, d)) {
  case LABELS_BINARY: return 2;
  case LABELS_ONEHOT: return d->tgt_cols;
  case LABELS_NONE: return 0;
  }
  return 0;
}

/* ---- stopping on SIGINT and SIGTERM ---- */

/* The first SIGINT or SIGTERM asks training to stop at the next step
 * boundary (the run then ends as if it had been that long: final lines,
 * --save); a second ends the process at once, as the signal would have,
 * unless a file is being written (--save, --plot): then as soon as it is
 * whole (deferred_signal), so that no half-written file is left. */
static volatile sig_atomic_t stop_signal, deferred_signal;

static void on_stop_signal(int sig) {
  if (stop_signal) {
    if (nnc_out_busy()) {
      deferred_signal = sig;
      return;
    }
    signal(sig, SIG_DFL);
    raise(sig); /* delivered when this handler returns */
    return;
  }
  stop_signal = sig;
}

/* A second signal that came while a file was written ends the process now. */
static void end_if_deferred(void) {
  int sig = deferred_signal;
  if (!sig) return;
  signal(sig, SIG_DFL);
  raise(sig);
}

typedef struct StopHandlers {
  struct sigaction old_int, old_term;
} StopHandlers;

/* A signal the process was started with ignored stays ignored: a shell
 * without job control ignores SIGINT in background jobs (`nnc ... &` in a
 * script), and nohup-like launchers ignore signals on purpose. */
static void catch_stop_signals(StopHandlers *h) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &h->old_int);
  if (h->old_int.sa_handler == SIG_IGN) sigaction(SIGINT, &h->old_int, NULL);
  sigaction(SIGTERM, &sa, &h->old_term);
  if (h->old_term.sa_handler == SIG_IGN) sigaction(SIGTERM, &h->old_term, NULL);
}

static void release_stop_signals(StopHandlers *h) {
  sigaction(SIGINT, &h->old_int, NULL);
  sigaction(SIGTERM, &h->old_term, NULL);
}

/* Whether to stop now; under MPI every rank asks at the same steps and
 * they stop together when any was signalled (mpirun forwards signals, but
 * not at the same instant). */
static bool stop_requested(const atomic_int *flag) {
  bool asked = stop_signal != 0 || (flag && atomic_load_explicit(flag, memory_order_relaxed));
  return par_size() > 1 ? par_any(asked) : asked;
}

/* Rows per train_epoch call: whole steps worth about 2^22 values of work
 * (a few milliseconds), so a signal is seen soon after the step it came
 * in; the same on every rank. A step's work is its rows' values and the
 * update's pass over the buffer (parameters, gradients, optimizer state),
 * which a model of few values a row and a large table (an embedding) is
 * mostly made of. */
static int64_t chunk_rows(const Engine *e, int64_t rows) {
  int64_t per_step = graph_row_values(e->g) * e->rows_per_step + e->layout->total;
  int64_t steps = per_step > 0 ? ((int64_t)1 << 22) / per_step : 1;
  if (steps < 1) steps = 1;
  int64_t chunk = steps * e->rows_per_step;
  return chunk < rows ? chunk : rows;
}

/* One epoch, or its first rows when a stop was asked for on the way (then
 * *stop is set, on every rank alike): returns the sum of the rows' losses;
 * *done gets the rows trained. */
static double train_rows(Engine *e, const void *x, const void *t, int64_t rows, size_t xbytes, size_t tbytes,
                         int64_t *done, const atomic_int *flag, bool *stop) {
  int64_t chunk = chunk_rows(e, rows);
  double sum = 0;
  *done = 0;
  while (*done < rows && !*stop) {
    int64_t n = rows - *done < chunk ? rows - *done : chunk;
    sum += e->train_epoch(e, (const char *)x + (size_t)*done * xbytes, (const char *)t + (size_t)*done * tbytes, n);
    *done += n;
    *stop = stop_requested(flag);
  }
  return sum;
}

/* ---- training: the loop, its progress lines, the final lines and report ---- */

/* A training run: the sets, the shuffled copies, the curves, the timings. */
typedef struct Run {
  const Program *p;
  const TrainConfig *tc;
  Engine *e;
  const TrainOptions *o;
  TrainState *st;
  SetEval tr, va;
  bool has_valid, tty, early;
  size_t xbytes, tbytes, buf_bytes;
  void *xs, *ts; /* this epoch's shuffled rows */
  size_t *perm;
  void *snapshot; /* parameters and state before the epoch (a diverging epoch is undone) */
  int64_t start, every, steps_per_epoch, run_epochs;
  int64_t run_steps; /* steps of this run, of a last epoch cut short too */
  bool stop;         /* a signal asked training to stop (every rank agrees) */
  double train_time, wall_start, loop_time;
  /* per epoch of this run (--plot; the running loss and the valid loss for
     a caller's result too): the running train loss, the loss and accuracy
     of both sets at the end of the epoch, the learning rate */
  double *hist_run, *hist_train, *hist_tacc, *hist_valid, *hist_vacc, *hist_lr;
  /* --plot: each row's predicted class, from the final evaluation */
  int *pred_train, *pred_valid;
  Health *health;
} Run;

/* The parameters and optimizer state, which lie before and after the
 * gradients in the buffer: all a step reads that it did not compute, so all
 * that undoing an epoch needs (the gradients are recomputed). */
static size_t snapshot_bytes(const Layout *L) {
  return (size_t)(L->grad_lo + L->total - L->grad_hi) * (size_t)L->elem_size;
}

static void snapshot_take(const Layout *L, const void *buf, void *snap) {
  size_t es = (size_t)L->elem_size, head = (size_t)L->grad_lo * es;
  memcpy(snap, buf, head);
  memcpy((char *)snap + head, (const char *)buf + (size_t)L->grad_hi * es, (size_t)(L->total - L->grad_hi) * es);
}

static void snapshot_restore(const Layout *L, void *buf, const void *snap) {
  size_t es = (size_t)L->elem_size, head = (size_t)L->grad_lo * es;
  memcpy(buf, snap, head);
  memcpy((char *)buf + (size_t)L->grad_hi * es, (const char *)snap + head, (size_t)(L->total - L->grad_hi) * es);
}

static double *hist_new(const Run *r, bool want) {
  int64_t n = r->tc->epochs > r->start ? r->tc->epochs - r->start : 0;
  return want ? nnc_xcalloc((size_t)n + 1, sizeof(double)) : NULL;
}

static void run_open(Run *r) {
  const Graph *g = r->e->g;
  set_prepare(&r->tr, g, r->tr.src);
  if (r->has_valid) set_prepare(&r->va, g, r->va.src);
  size_t es = (size_t)r->e->layout->elem_size;
  r->xbytes = (size_t)engine_input_cols(g) * es, r->tbytes = (size_t)engine_target_cols(g) * es;
  r->buf_bytes = (size_t)r->e->layout->total * es;
  /* the shuffled copies and the snapshot are written in full every epoch:
     their pages are set up at once when there is an epoch to run */
  void *(*alloc)(size_t) = r->tc->epochs > r->st->epoch ? nnc_xmalloc_filled : nnc_xmalloc;
  if (r->tc->shuffle) {
    r->xs = alloc(r->xbytes * r->tr.rows + 1);
    r->ts = alloc(r->tbytes * r->tr.rows + 1);
    r->perm = alloc(sizeof(size_t) * r->tr.rows + 1);
  }
  if (!r->st->has_shuffle) {
    nnc_rng_seed(&r->st->shuffle, r->tc->seed ^ 0x5DEECE66Dull);
    r->st->has_shuffle = true;
  }
  r->snapshot = alloc(snapshot_bytes(r->e->layout) + 1);
  r->start = r->st->epoch;
  r->every = r->tc->epochs >= 10 ? r->tc->epochs / 10 : 1;
  r->steps_per_epoch = ((int64_t)r->tr.rows + r->e->rows_per_step - 1) / r->e->rows_per_step;
  r->early = r->tc->early_stop > 0 && r->has_valid;
  if (r->early && !r->st->best) r->st->best = nnc_xaligned(r->buf_bytes);
  bool plot = r->o->plot != NULL, curves = plot || r->o->result;
  r->hist_run = hist_new(r, curves);
  r->hist_train = hist_new(r, plot);
  r->hist_tacc = hist_new(r, plot && r->tr.labels != LABELS_NONE);
  r->hist_valid = hist_new(r, curves && r->has_valid);
  r->hist_vacc = hist_new(r, curves && r->has_valid && r->va.labels != LABELS_NONE);
  r->hist_lr = hist_new(r, plot && lr_scheduled(r->tc));
  /* training-health notes go with the progress lines; the loss before
     training (a forward pass over the whole train set, as long as the
     final train loss's) only when the run gets to the epoch it is
     compared at */
  bool initial = r->start == 0 && r->tc->epochs >= HEALTH_LOSS_EPOCH;
  if (!r->o->quiet) r->health = health_new(r->p, g, r->tr.src, initial ? set_loss(r->e, &r->tr, NULL, NULL) : NAN);
}

static void run_close(Run *r) {
  health_free(r->health);
  free(r->hist_run);
  free(r->hist_train);
  free(r->hist_tacc);
  free(r->hist_valid);
  free(r->hist_vacc);
  free(r->hist_lr);
  free(r->pred_train);
  free(r->pred_valid);
  free(r->snapshot);
  free(r->xs);
  free(r->ts);
  free(r->perm);
  set_free(&r->tr);
  if (r->has_valid) set_free(&r->va);
}

/* Early stopping: has the validation loss not improved for `patience`
 * epochs after `epoch`? */
static bool patience_out(const Run *r, int64_t epoch) {
  return r->early && r->st->best_epoch && epoch - r->st->best_epoch >= r->tc->early_stop;
}

/* A progress line: the epoch's running train loss, the valid loss and,
 * when the targets are labels, the valid accuracy (NAN: none). */
static void progress(Run *r, int64_t epoch, double running, double vloss, double vacc, double lr) {
  const TrainConfig *tc = r->tc;
  double done = (double)(epoch - r->start) / (double)(tc->epochs - r->start);
  double elapsed = nnc_now() - r->wall_start;
  char left[32];
  format_duration(left, sizeof left, elapsed / done - elapsed);
  double sps = r->train_time > 0 ? (double)((epoch - r->start) * r->steps_per_epoch) / r->train_time : 0;
  printf("%sepoch %" PRId64 "/%" PRId64 "  train loss %.6g", r->tty ? "\r" : "", epoch, tc->epochs, running);
  if (r->has_valid) printf("  valid loss %.6g", vloss);
  if (r->has_valid && !isnan(vacc)) printf("  valid accuracy %.4f", vacc);
  if (lr_scheduled(tc)) printf("  lr %.6g", lr);
  printf("  %.0f steps/s  %s left%s", sps, left, r->tty ? "   " : "\n");
  fflush(stdout);
}

/* One epoch, or what a run stopped within it left of it (st->epoch_rows);
 * false when it diverged (reported; the buffer as before it). */
static bool run_epoch(Run *r, int64_t epoch) {
  Engine *e = r->e;
  const TrainConfig *tc = r->tc;
  const void *x = r->tr.x, *t = r->tr.t;
  NncRng shuffle_before = r->st->shuffle; /* a diverging epoch leaves no trace */
  int64_t first = r->st->epoch_rows; /* the rows a stopped run trained already */
  double carried = r->st->epoch_loss;
  if (tc->shuffle) {
    shuffle_rows(&r->st->shuffle, r->tr.rows, r->tr.x, r->tr.t, r->xs, r->ts, r->xbytes, r->tbytes, r->perm);
    x = r->xs;
    t = r->ts;
  }
  double lr = rt_schedule_lr(tc, epoch - 1);
  set_lr(e, lr);
  snapshot_take(e->layout, e->buf, r->snapshot);
  double t0 = nnc_now();
  int64_t rows_done;
  double sum = carried + train_rows(e, (const char *)x + (size_t)first * r->xbytes,
                                    (const char *)t + (size_t)first * r->tbytes, (int64_t)r->tr.rows - first,
                                    r->xbytes, r->tbytes, &rows_done, r->o->stop, &r->stop);
  int64_t steps = (rows_done + e->rows_per_step - 1) / e->rows_per_step;
  rows_done += first;
  double running = sum / (double)(rows_done > 0 ? rows_done : 1);
  r->train_time += nnc_now() - t0;
  if (!isfinite(running) || !params_finite(e)) {
    snapshot_restore(e->layout, e->buf, r->snapshot);
    Fault f;
    double again;
    if (rerun_epoch(e, (const char *)x + (size_t)first * r->xbytes, (const char *)t + (size_t)first * r->tbytes,
                    rows_done - first, &f, &again)) {
      if (r->tty) printf("\n");
      if (!r->o->quiet) fflush(stdout);
      report_fault(r->p, &f, epoch);
      r->st->shuffle = shuffle_before;
      return false;
    }
    sum = carried + again; /* every step was finite: the sum overflowed f32 */
    running = sum / (double)(rows_done > 0 ? rows_done : 1);
  }
  r->st->steps += steps;
  r->run_steps += steps;
  r->st->epoch_rows = 0, r->st->epoch_loss = 0;
  if (rows_done < (int64_t)r->tr.rows) { /* stopped by a signal within the epoch: */
    r->st->epoch_rows = rows_done;       /* a checkpoint goes on from its next row */
    r->st->epoch_loss = sum;
    r->st->shuffle = shuffle_before; /* (and draws the same order of the rows again) */
    return true;
  }
  r->st->epoch = epoch;
  r->run_epochs++;
  bool show = r->tty || epoch % r->every == 0 || epoch == tc->epochs || epoch == r->start + 1;
  int64_t h = epoch - r->start - 1;
  double vloss = 0, acc = 0;
  if (r->hist_run) r->hist_run[h] = running;
  if (r->hist_train) r->hist_train[h] = set_loss(e, &r->tr, &acc, NULL);
  if (r->hist_tacc) r->hist_tacc[h] = acc;
  if (r->hist_valid) r->hist_valid[h] = set_loss(e, &r->va, &acc, NULL);
  if (r->hist_vacc) r->hist_vacc[h] = acc;
  if (r->hist_lr) r->hist_lr[h] = lr;
  show &= !r->o->quiet;
  double vacc = NAN;
  if (r->has_valid && (show || r->early)) {
    bool labels = r->va.labels != LABELS_NONE;
    if (r->hist_valid)
      vloss = r->hist_valid[h], vacc = r->hist_vacc ? r->hist_vacc[h] : NAN;
    else
      vloss = set_loss(e, &r->va, labels ? &acc : NULL, NULL), vacc = labels ? acc : NAN;
  }
  if (r->early && (!r->st->best_epoch || vloss < r->st->best_loss)) {
    r->st->best_epoch = epoch;
    r->st->best_loss = vloss;
    memcpy(r->st->best, e->buf, r->buf_bytes);
  }
  if (show) progress(r, epoch, running, vloss, vacc, lr);
  if (r->health && health_wants_loss(r->health, epoch))
    health_check_loss(r->health, epoch, r->hist_train ? r->hist_train[h] : set_loss(e, &r->tr, NULL, NULL));
  if (r->health && epoch == r->start + 1) health_check_units(r->health, e, epoch);
  return true;
}

/* The final losses and accuracies for the parameters in e->buf, and their
 * lines unless quiet. */
static void final_lines(Engine *e, const SetEval *tr, const SetEval *va, bool quiet, double *tl, double *acc,
                        double *vl, double *vacc, int *pred_train, int *pred_valid) {
  DType dt = e->g->dtype;
  *tl = set_loss(e, tr, acc, pred_train);
  *vl = va ? set_loss(e, va, vacc, pred_valid) : 0;
  if (quiet) return;
  printf("final train loss ");
  rt_print_value(stdout, *tl, dt);
  printf("\n");
  if (va) {
    printf("final valid loss ");
    rt_print_value(stdout, *vl, dt);
    printf("\n");
  }
  if (tr->labels != LABELS_NONE) printf("final train accuracy %.9g\n", *acc);
  if (va && va->labels != LABELS_NONE) printf("final valid accuracy %.9g\n", *vacc);
}

int rt_eval(Engine *e, const NncData *train, const NncData *valid) {
  SetEval tr, va;
  bool has_valid = valid && valid->rows > 0;
  set_prepare(&tr, e->g, train);
  if (has_valid) set_prepare(&va, e->g, valid);
  double tl, acc = 0, vl, vacc = 0;
  final_lines(e, &tr, has_valid ? &va : NULL, false, &tl, &acc, &vl, &vacc, NULL, NULL);
  set_free(&tr);
  if (has_valid) set_free(&va);
  return fflush(stdout) == 0 ? 0 : 1;
}

/* A caller's result (TrainOptions.result): the curves (the caller's once
 * rt_train returns) and the figures of the run; the final ones are NaN
 * until run_report sets them. */
static void run_result(Run *r) {
  NncFitResult *res = r->o->result;
  if (!res) return;
  res->epochs = r->run_epochs;
  res->train_loss = r->hist_run;
  res->valid_loss = r->hist_valid;
  res->final_train_loss = res->final_valid_loss = NAN;
  res->final_train_accuracy = res->final_valid_accuracy = NAN;
  res->train_time = r->train_time;
  res->steps = r->run_steps;
}

/* The final lines, a caller's final figures and the report, for the
 * parameters in e->buf. */
static int run_report(Run *r) {
  Engine *e = r->e;
  const Graph *g = e->g;
  const TrainOptions *o = r->o;
  double tl, acc = 0, vl, vacc = 0;
  /* the report's predicted classes, from this evaluation */
  bool classify = o->plot && shape_numel(&g->output->shape) <= 64; /* as set_loss's accuracy */
  if (classify && r->tr.labels != LABELS_NONE) r->pred_train = nnc_xcalloc(r->tr.rows + 1, sizeof(int));
  if (classify && r->has_valid && r->va.labels != LABELS_NONE)
    r->pred_valid = nnc_xcalloc(r->va.rows + 1, sizeof(int));
  final_lines(e, &r->tr, r->has_valid ? &r->va : NULL, o->quiet, &tl, &acc, &vl, &vacc, r->pred_train,
              r->pred_valid);
  NncFitResult *res = o->result;
  if (res) {
    res->final_train_loss = tl;
    if (r->has_valid) res->final_valid_loss = vl;
    if (r->tr.labels != LABELS_NONE) res->final_train_accuracy = acc;
    if (r->has_valid && r->va.labels != LABELS_NONE) res->final_valid_accuracy = vacc;
  }
  int64_t steps = r->run_steps;
  if (!o->quiet) {
    printf("train time %.6f s\n", r->train_time);
    printf("steps/s %.0f\n", r->train_time > 0 ? (double)steps / r->train_time : 0.0);
    fflush(stdout);
  }
  if (!o->plot) return 0; /* (a run of no epochs gets the report too, its curves empty) */
  char *settings = report_settings(r->p, g, o, r->tr.rows, r->has_valid ? r->va.rows : 0);
  StrBuf fig = {0};
  sb_printf(&fig, "final train loss %.6g", tl);
  if (r->tr.labels != LABELS_NONE) sb_printf(&fig, ", accuracy %.4f", acc);
  if (r->has_valid) {
    sb_printf(&fig, "; final valid loss %.6g", vl);
    if (r->va.labels != LABELS_NONE) sb_printf(&fig, ", accuracy %.4f", vacc);
  }
  if (r->early && r->st->best_epoch) sb_printf(&fig, " (best epoch %" PRId64 ")", r->st->best_epoch);
  if (steps == 0)
    sb_puts(&fig, "\nno step trained");
  else
    sb_printf(&fig, "\ntrain time %.4g s (%" PRId64 " steps, %.0f steps/s); the epochs with this report's "
              "evaluation after each %.4g s",
              r->train_time, steps, r->train_time > 0 ? (double)steps / r->train_time : 0.0, r->loop_time);
  /* where the curves begin and end, when not at the run's first and last epochs */
  int64_t reached = r->start + r->run_epochs;
  if (r->start > 0) sb_printf(&fig, "; resumed after epoch %" PRId64, r->start);
  if (r->stop)
    sb_printf(&fig, "; stopped by a signal after epoch %" PRId64 " of %" PRId64, reached, r->tc->epochs);
  else if (reached < r->tc->epochs)
    sb_printf(&fig, "; stopped early after epoch %" PRId64 " of %" PRId64, reached, r->tc->epochs);
  const NncData *train = r->tr.src, *valid = r->va.src;
  ReportData rd = {.model = o->model_name, .source = g->source_name, .settings = settings, .figures = fig.data,
                   .epochs = r->run_epochs, .epoch0 = r->start, .running_loss = r->hist_run,
                   .train_loss = r->hist_train, .valid_loss = r->hist_valid, .train_acc = r->hist_tacc,
                   .valid_acc = r->hist_vacc, .lr = r->hist_lr, .log_scale = !o->plot_linear,
                   .in_cols = train->in_cols, .tgt_cols = train->tgt_cols, .classes = report_classes(g, train),
                   .train = {train->rows, train->x, train->t, r->pred_train},
                   .out_cols = (int)shape_numel(&g->output->shape)};
  if (r->has_valid) rd.valid = (ReportSet){valid->rows, valid->x, valid->t, r->pred_valid};
  image_shape(g, &rd.img_channels, &rd.img_h, &rd.img_w);
  if (engine_input_cols(g) == 2 && train->in_cols == 2 && !graph_output_needs_targets(g)) {
    rd.predict = predict_points;
    rd.ctx = e;
  }
  int status = report_write(o->plot, &rd) != 0;
  free(settings);
  sb_free(&fig);
  return status;
}

int rt_batch_stats_rows(const Graph *g, const Source *src, int64_t rows, int64_t batch, const char *task) {
  if (graph_min_train_rows(g) < 2) return 0;
  char line[512];
  if (task && (rows < batch ? rows : batch) == 1)
    snprintf(line, sizeof line, "%s gets one value per channel from a batch of 1 row, and the variance of one value "
             "is no statistic (PyTorch refuses it too); %s needs a batch of at least 2 rows", g->stat_layer, task);
  else if (!task && batch == 1)
    snprintf(line, sizeof line, "%s gets one value per channel from a training batch of 1 row, and the variance of "
             "one value is no statistic (PyTorch refuses it too); train with batches of at least 2 rows",
             g->stat_layer);
  else if (!task && rows % batch == 1)
    snprintf(line, sizeof line, "the last training batch of each epoch has 1 row (%" PRId64 " rows in batches of "
             "%" PRId64 "), which gives %s one value per channel (PyTorch refuses it too); choose a batch that "
             "leaves no row or at least 2", rows, batch, g->stat_layer);
  else
    return 0;
  Diag at_layer = {.src = src}; /* the batch_norm in the model's source */
  diag_error(&at_layer, g->stat_loc, "%s", line);
  return -1;
}

/* A checkpoint of a run stopped within an epoch goes on from the row after
 * the last it trained, which must be the first row of a step of this run
 * too. Returns 0, or -1 after the error. */
static int cut_epoch_fits(const TrainState *st, const Engine *e, size_t rows, const char *path) {
  if (st->epoch_rows == 0) return 0;
  if (st->epoch_rows < (int64_t)rows && st->epoch_rows % e->rows_per_step == 0) return 0;
  char what[160];
  snprintf(what, sizeof what, "the checkpoint stopped within epoch %" PRId64 " after %" PRId64 " rows, where ",
           st->epoch + 1, st->epoch_rows);
  if (st->epoch_rows >= (int64_t)rows)
    diag_file_error(path ? path : "--resume", "%sa training set of %zu rows has no more (is it the run's data?)", what,
                    rows);
  else
    diag_file_error(path ? path : "--resume", "%sno step of %" PRId64 " rows begins (resume with the batch of the run it came from)",
                    what, e->rows_per_step);
  return -1;
}

int rt_train(const Program *p, Engine *e, const NncData *train, const NncData *valid, const TrainOptions *o,
             TrainState *st) {
  if (train->rows == 0) {
    diag_file_error(p->src->path, "the training set is empty");
    return 1;
  }
  if (rt_batch_stats_rows(e->g, p->src, (int64_t)train->rows, p->train.batch, NULL) != 0) return 1;
  if (cut_epoch_fits(st, e, train->rows, o->resumed) != 0) return 1;
  Run r = {.p = p, .tc = &p->train, .e = e, .o = o, .st = st, .tty = !o->quiet && isatty(STDOUT_FILENO)};
  r.tr.src = train;
  r.va.src = valid;
  r.has_valid = valid && valid->rows > 0;
  run_open(&r);
  if (o->resumed && !o->quiet && r.start >= r.tc->epochs) {
    Source checkpoint = {.path = o->resumed}; /* (diag shows the path as it shows a model's) */
    Diag at_checkpoint = {.src = &checkpoint};
    diag_note(&at_checkpoint, (Loc){0, 0}, "the checkpoint reached epoch %" PRId64 ", and the run has %" PRId64
              " epoch%s: none is left to train (the final lines are for its parameters)", r.start, r.tc->epochs,
              r.tc->epochs == 1 ? "" : "s");
  }
  int status = 0;
  /* (the command line's: a library leaves its host's signals alone) */
  StopHandlers handlers;
  stop_signal = 0;
  if (o->catch_signals) catch_stop_signals(&handlers);
  r.wall_start = nnc_now();
  for (int64_t epoch = r.start + 1; epoch <= r.tc->epochs && !patience_out(&r, epoch - 1); epoch++) {
    if (!run_epoch(&r, epoch)) {
      status = 1;
      break;
    }
    if (r.stop) break; /* within the epoch or as it ended */
    if (patience_out(&r, epoch) && !o->quiet) {
      if (r.tty) printf("\n");
      printf("stopped early after epoch %" PRId64 ": the valid loss has not improved for %" PRId64 " epochs\n", epoch,
             r.tc->early_stop);
    }
  }
  if (status == 0 && r.health && r.st->epoch > r.start + 1) health_check_units(r.health, e, r.st->epoch);
  r.loop_time = nnc_now() - r.wall_start;
  if (r.tty && r.run_epochs > 0 && status == 0 && !patience_out(&r, r.st->epoch)) printf("\n");
  /* (under MPI a rank may stop for another's signal) */
  int stopped_by = status == 0 && r.stop && o->catch_signals ? (stop_signal ? stop_signal : SIGTERM) : 0;
  if (status == 0 && r.stop && (stopped_by || !o->quiet)) { /* a signal, or the caller's flag */
    fflush(stdout);
    fprintf(stderr, "nnc: stopped%s after %" PRId64 " of %" PRId64 " epochs and %" PRId64
                    " steps; the final lines are for the parameters reached\n",
            !stopped_by ? "" : stopped_by == SIGINT ? " by SIGINT" : " by SIGTERM", r.st->epoch, r.tc->epochs,
            r.st->steps);
  }
  /* early stopping: the best epoch's parameters for the final lines and
     the checkpoint's NAME tensors; the last epoch's state goes on */
  void *last = NULL;
  if (r.early && st->best_epoch) {
    last = nnc_xaligned(r.buf_bytes);
    memcpy(last, e->buf, r.buf_bytes);
    memcpy(e->buf, st->best, r.buf_bytes);
    if (status == 0 && !o->quiet) printf("best epoch %" PRId64 "\n", st->best_epoch);
  }
  run_result(&r);
  if (status == 0) status = run_report(&r);
  if (o->save && rt_save_checkpoint(o->save, e, o->model_name, st, last) != 0) status = 1;
  /* the handlers stay until the files are written: a signal meanwhile
     waits for them (on_stop_signal) */
  if (o->catch_signals) {
    release_stop_signals(&handlers);
    end_if_deferred();
  }
  if (status == 0 && !stopped_by && o->catch_signals && stop_signal) { /* after the last step */
    stopped_by = stop_signal;
    fprintf(stderr, "nnc: %s came after training; the final lines and the files written are complete\n",
            stopped_by == SIGINT ? "SIGINT" : "SIGTERM");
  }
  free(last);
  if (o->result) r.hist_run = r.hist_valid = NULL; /* the caller's */
  run_close(&r);
  return status == 0 && stopped_by ? 128 + stopped_by : status; /* as the shell reports a signal */
}

/* ---- --grad ---- */

static void print_shape(FILE *f, const Shape *s) {
  fputc('[', f);
  for (int k = 0; k < s->rank; k++) fprintf(f, "%s%" PRId64, k ? "," : "", s->dim[k]);
  fputc(']', f);
}

/* Gradients into e->buf for the first `batch` rows of train (--grad and
 * --check-grad): *n gets the row count, *loss the batch loss. The caller
 * has checked the rows (rt_batch_stats_rows; the data loaders refuse an
 * empty set). */
static int first_batch_backward(Engine *e, const NncData *train, int64_t batch, int64_t *n, double *loss) {
  *n = (int64_t)train->rows < batch ? (int64_t)train->rows : batch;
  if (*n < 1) return -1; /* (no data set is empty) */
  void *x = rt_data_cast(train, false, e->g->dtype), *t = rt_data_cast(train, true, e->g->dtype);
  *loss = e->backward(e, x, t, *n);
  free(x);
  free(t);
  return 0;
}

int rt_print_grad(Engine *e, const NncData *train, int64_t batch) {
  const Graph *g = e->g;
  int64_t n;
  double loss;
  if (first_batch_backward(e, train, batch, &n, &loss) != 0) return 1;
  printf("loss ");
  rt_print_value(stdout, loss, g->dtype);
  printf("\n");
  for (int i = 0; i < g->params.len; i++) {
    const Node *prm = g->params.items[i];
    printf("%s ", prm->name);
    print_shape(stdout, &prm->shape);
    int64_t len = shape_numel(&prm->shape);
    for (int64_t k = 0; k < len; k++) {
      putchar(' ');
      rt_print_value(stdout, buf_read(e, e->layout->grad_off[i] + k), g->dtype);
    }
    printf("\n");
  }
  return 0;
}

/* ---- --check-grad ---- */

static bool is_kink_op(Op op) {
  return op == OP_RELU || op == OP_ABS || op == OP_LEAKY_RELU || op == OP_MAXC || op == OP_BCE;
}

/* Which side of its kink each input element of each kink op is on. */
static void kink_sides(Interp *in, const Graph *g, int nfwd, int64_t rows, signed char *sides, int64_t cap) {
  int64_t k = 0;
  for (int i = 0; i < nfwd && k < cap; i++) {
    const Node *n = g->nodes[i];
    if (!is_kink_op(n->op) || n->role != ROLE_FORWARD) continue;
    const Node *a = n->in[0];
    const double *v = interp_peek(in, a);
    if (!v) continue;
    double at = n->op == OP_MAXC ? n->attr.value : 0;
    int64_t len = shape_numel(&a->shape) * (a->batched ? rows : 1);
    for (int64_t e = 0; e < len && k < cap; e++)
      sides[k++] = n->op == OP_BCE ? (v[e] > 0 && v[e] < 1) : (v[e] > at) - (v[e] < at);
  }
}

/* Rows 0..n-1 of data (cols values a row) to the leaves, each its columns. */
static void give_leaf_rows(Interp *in, const PtrVec *leaves, const double *data, int64_t cols, int64_t n) {
  int64_t col = 0;
  for (int i = 0; i < leaves->len; i++) {
    const Node *leaf = leaves->items[i];
    int64_t w = shape_numel(&leaf->shape);
    double *v = nnc_xmalloc(sizeof(double) * (size_t)(n * w + 1));
    for (int64_t r = 0; r < n; r++)
      for (int64_t k = 0; k < w; k++) v[r * w + k] = data[r * cols + col + k];
    interp_give(in, leaf, v);
    free(v);
    col += w;
  }
}

/* The tolerance of one element, as torch.autograd.gradcheck's
 * atol + rtol * |numerical|, with atol scaled by the largest gradient of the
 * tensor (an element much smaller than its neighbours carries their
 * rounding) and widened by the rounding of the loss itself: central
 * differences of a loss L with step h are uncertain by about ulp(L) / h,
 * which matters when the loss is large. */
typedef struct GradTolerance {
  double atol, rtol;
  int loss_ulps;
} GradTolerance;

static double element_tolerance(const GradTolerance *t, double numeric, double largest, double loss, double h) {
  return t->atol * fmax(1, largest) + t->rtol * fabs(numeric) + t->loss_ulps * DBL_EPSILON * fabs(loss) / h;
}

/* One parameter tensor: its checked elements and how they fared. */
typedef struct ParamCheck {
  int checked, kinks, bad, nonfinite;
  int64_t first_nonfinite;
  double worst_abs, worst_rel;
} ParamCheck;

int rt_check_grad(Engine *e, const NncData *train, int64_t batch, const char *path) {
  const Graph *g = e->g;
  int64_t n;
  double loss;
  if (first_batch_backward(e, train, batch, &n, &loss) != 0) return 1;
  /* the reference: the same graph in the interpreter, in f64 */
  Interp *in = interp_new(g, (int)n, true);
  give_leaf_rows(in, &g->inputs, train->x, train->in_cols, n);
  give_leaf_rows(in, &g->targets, train->t, train->tgt_cols, n);
  double **pv = nnc_xcalloc((size_t)g->params.len + 1, sizeof(double *));
  for (int i = 0; i < g->params.len; i++) {
    const Node *prm = g->params.items[i];
    int64_t len = shape_numel(&prm->shape);
    pv[i] = nnc_xmalloc(sizeof(double) * (size_t)(len + 1));
    for (int64_t k = 0; k < len; k++) pv[i][k] = buf_read(e, e->layout->param_off[i] + k);
    interp_give(in, prm, pv[i]);
  }
  /* the state the forward graph reads (dropout's step: one mask throughout) */
  for (int j = 0; j < g->states.len; j++) {
    const Node *s = g->states.items[j];
    int64_t len = shape_numel(&s->shape);
    double *v = nnc_xmalloc(sizeof(double) * (size_t)(len + 1));
    for (int64_t k = 0; k < len; k++) v[k] = buf_read(e, e->layout->state_off[j] + k);
    interp_give(in, s, v);
    free(v);
  }
  /* the forward nodes end at the last one (a layer's states and their
     updates may come between them) */
  int nfwd = g->len;
  while (nfwd > 0 && g->nodes[nfwd - 1]->role != ROLE_FORWARD) nfwd--;
  int64_t kcap = 0;
  for (int i = 0; i < nfwd; i++)
    if (is_kink_op(g->nodes[i]->op) && g->nodes[i]->role == ROLE_FORWARD) kcap += shape_numel(&g->nodes[i]->in[0]->shape) * n;
  signed char *s_plus = nnc_xcalloc((size_t)kcap + 1, 1), *s_minus = nnc_xcalloc((size_t)kcap + 1, 1);
  /* the analytic side is computed in the model's dtype, the numeric in f64 */
  GradTolerance tol = g->dtype == DT_F64 ? (GradTolerance){1e-8, 1e-5, 32} : (GradTolerance){1e-4, 1e-3, 32};
  enum { MAX_CHECKED = 64 }; /* elements per tensor; evenly spread when larger */
  double numeric[MAX_CHECKED], analytic[MAX_CHECKED], losses[MAX_CHECKED], steps[MAX_CHECKED];
  StrBuf failed = {0};
  for (int i = 0; i < g->params.len; i++) {
    const Node *prm = g->params.items[i];
    int64_t len = shape_numel(&prm->shape);
    int64_t picks = len < MAX_CHECKED ? len : MAX_CHECKED; /* (a stride of 2 took 33 of 65) */
    ParamCheck pc = {.first_nonfinite = -1};
    double largest = 0;
    for (int64_t j = 0; j < picks; j++) {
      int64_t k = j * len / picks; /* evenly spread, from element 0 */
      double orig = pv[i][k], h = 6e-6 * (fabs(orig) > 1 ? fabs(orig) : 1);
      pv[i][k] = orig + h;
      interp_give(in, prm, pv[i]);
      interp_forget(in);
      double lp = interp_get(in, g->batch_loss)[0];
      kink_sides(in, g, nfwd, n, s_plus, kcap);
      pv[i][k] = orig - h;
      interp_give(in, prm, pv[i]);
      interp_forget(in);
      double lm = interp_get(in, g->batch_loss)[0];
      kink_sides(in, g, nfwd, n, s_minus, kcap);
      pv[i][k] = orig;
      interp_give(in, prm, pv[i]);
      double a = buf_read(e, e->layout->grad_off[i] + k), d = (lp - lm) / (2 * h);
      if (!isfinite(a) || !isfinite(d)) { /* a NaN gradient is never right, kink or not */
        if (pc.nonfinite++ == 0) pc.first_nonfinite = k;
        continue;
      }
      if (memcmp(s_plus, s_minus, (size_t)kcap) != 0) {
        pc.kinks++; /* the step crosses a kink: the difference is meaningless */
        continue;
      }
      numeric[pc.checked] = d;
      analytic[pc.checked] = a;
      losses[pc.checked] = fmax(fabs(lp), fabs(lm));
      steps[pc.checked] = h;
      pc.checked++;
      largest = fmax(largest, fabs(d));
    }
    for (int c = 0; c < pc.checked; c++) {
      double abs_err = fabs(numeric[c] - analytic[c]);
      double scale = fmax(fabs(numeric[c]), fabs(analytic[c]));
      double rel_err = scale > 0 ? abs_err / scale : 0;
      pc.worst_abs = fmax(pc.worst_abs, abs_err);
      pc.worst_rel = fmax(pc.worst_rel, rel_err);
      if (abs_err > element_tolerance(&tol, numeric[c], largest, losses[c], steps[c])) pc.bad++;
    }
    bool fails = pc.bad || pc.nonfinite;
    printf("%s max abs err %.3g max rel err %.3g  %s (%d checked", prm->name, pc.worst_abs, pc.worst_rel,
           fails ? "FAILED" : "ok", pc.checked);
    if (pc.kinks) printf(", %d skipped at a kink", pc.kinks);
    if (pc.nonfinite)
      printf(", %d not finite, the first at element %" PRId64, pc.nonfinite, pc.first_nonfinite);
    printf(")\n");
    if (fails) sb_printf(&failed, "%s%s%s", failed.len ? ", " : "", prm->name, pc.nonfinite ? " (not finite)" : "");
  }
  printf("gradient check %s (tolerance: %g x max(1, largest |gradient|) + %g x |gradient| + rounding of the loss)\n",
         failed.len ? "FAILED" : "passed", tol.atol, tol.rtol);
  fflush(stdout);
  if (failed.len) diag_file_error(path, "gradient check failed for %s", failed.data);
  bool ok = failed.len == 0;
  sb_free(&failed);
  for (int i = 0; i < g->params.len; i++) free(pv[i]);
  free(pv);
  free(s_plus);
  free(s_minus);
  interp_free(in);
  return ok ? 0 : 1;
}

/* ---- --predict ---- */

int rt_predict(Engine *e, const char *csv_path, bool label_column) {
  const Graph *g = e->g;
  NncData d = {0};
  char err[1024];
  int tgt = (int)engine_target_cols(g);
  if (nnc_data_csv(&d, csv_path, (int)engine_input_cols(g), tgt, label_column ? tgt : 0, 1, err, sizeof err) != 0) {
    diag_error_line(err);
    return 1;
  }
  if (check_data(g, &d, csv_path) != 0) {
    nnc_data_free(&d);
    return 1;
  }
  const Node *out = g->output;
  const char *name = out->name ? out->name : "output";
  int64_t yw = shape_numel(&out->shape);
  if (yw == 1)
    printf("%s\n", name);
  else
    for (int64_t k = 0; k < yw; k++) printf("%s%s[%" PRId64 "]", k ? "," : "", name, k);
  if (yw != 1) printf("\n");
  size_t es = (size_t)e->layout->elem_size;
  void *x = rt_data_cast(&d, false, g->dtype);
  void *y = nnc_xmalloc(es * (size_t)(EVAL_ROWS * yw + 1));
  for (size_t r = 0; r < d.rows; r += EVAL_ROWS) {
    int64_t n = d.rows - r < EVAL_ROWS ? (int64_t)(d.rows - r) : EVAL_ROWS;
    e->forward(e, (const char *)x + r * (size_t)engine_input_cols(g) * es, NULL, n, y, NULL);
    for (int64_t i = 0; i < n; i++) {
      for (int64_t k = 0; k < yw; k++) {
        if (k) putchar(',');
        double v = es == 8 ? ((double *)y)[i * yw + k] : ((float *)y)[i * yw + k];
        rt_print_value(stdout, v, g->dtype);
      }
      putchar('\n');
    }
  }
  free(x);
  free(y);
  nnc_data_free(&d);
  return fflush(stdout) == 0 ? 0 : 1;
}
