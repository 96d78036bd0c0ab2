/*
 * checkpoint.c - checkpoints in safetensors (see train.h): the parameters,
 * the optimizer state and where a run stands, so that --resume continues
 * it bit for bit.
 *
 * A checkpoint holds, in the model's dtype:
 *   NAME              each parameter (with early stopping: the best epoch's)
 *   NAME              each state that is not optimizer state (statistics a
 *                     layer keeps): --load reads these with the parameters
 *   optimizer.*       the optimizer's state after the last epoch: momentum
 *                     buffers, Adam's moments and b^t, RMSprop's averages
 *                     (update.h names them), not the learning rate, which
 *                     the schedule gives for each epoch
 *   last.NAME         with early stopping, when the last epoch was not the
 *                     best: the last epoch's parameters and layer states,
 *                     where --resume goes on from
 * and in __metadata__: model, dtype, format "nnc", optimizer (its name in
 * the file: a checkpoint of Adam's moments is not AdamW's), epoch (epochs trained),
 * steps (optimizer steps taken), shuffle_rng (the shuffling generator's
 * state: four 64-bit words in hexadecimal), and with early stopping
 * best_epoch and best_valid_loss (a C99 hexadecimal float: exact).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "train.h"

#define LAST_PREFIX "last."
static const char *const last_prefix = LAST_PREFIX;

/* The tensors of a checkpoint a model reads or writes. */
typedef struct Tensors {
  NncTensorSpec *specs;
  int64_t *off; /* where each starts in a buffer of the layout, in elements */
  void **buf;   /* that buffer: e->buf unless the caller says otherwise */
  int n;
  int model;    /* how many of them are the model's (PART_MODEL, first) */
} Tensors;

static void tensors_add(Tensors *t, const Engine *e, const char *name, const Node *n, int64_t off) {
  NncTensorSpec *s = &t->specs[t->n];
  s->name = name;
  s->dtype = e->g->dtype == DT_F64 ? NNC_ST_F64 : NNC_ST_F32;
  s->rank = n->shape.rank;
  for (int k = 0; k < n->shape.rank; k++) s->dims[k] = n->shape.dim[k];
  t->buf[t->n] = e->buf;
  t->off[t->n++] = off;
}

static int64_t numel_of(const NncTensorSpec *s) {
  int64_t len = 1;
  for (int k = 0; k < s->rank; k++) len *= s->dims[k];
  return len;
}

typedef enum Part { PART_MODEL = 1, PART_OPTIMIZER = 2, PART_LAST = 4 } Part;

/* The parameters and layer states (PART_MODEL), the optimizer state
 * (PART_OPTIMIZER), the parameters and layer states again as last.NAME
 * (PART_LAST). Names of last.* are allocated in `arena`. */
static Tensors tensors_of(const Engine *e, unsigned parts, Arena *arena) {
  const Graph *g = e->g;
  const Layout *L = e->layout;
  Tensors t = {0};
  int cap = 2 * (g->params.len + g->states.len) + 1;
  t.specs = nnc_xcalloc((size_t)cap, sizeof *t.specs);
  t.off = nnc_xcalloc((size_t)cap, sizeof *t.off);
  t.buf = nnc_xcalloc((size_t)cap, sizeof *t.buf);
  for (int pass = 0; pass < 2; pass++) {
    unsigned part = pass == 0 ? PART_MODEL : PART_LAST;
    if (!(parts & part)) continue;
    const char *prefix = part == PART_LAST ? last_prefix : "";
    for (int i = 0; i < g->params.len; i++) {
      const Node *p = g->params.items[i];
      tensors_add(&t, e, arena_printf(arena, "%s%s", prefix, p->name), p, L->param_off[i]);
    }
    for (int j = 0; j < g->states.len; j++) {
      const Node *s = g->states.items[j];
      if (!is_run_state(s)) tensors_add(&t, e, arena_printf(arena, "%s%s", prefix, s->name), s, L->state_off[j]);
    }
    if (part == PART_MODEL) t.model = t.n;
  }
  if (parts & PART_OPTIMIZER)
    for (int j = 0; j < g->states.len; j++) {
      const Node *s = g->states.items[j];
      if (is_run_state(s) && s != g->lr) tensors_add(&t, e, s->name, s, L->state_off[j]);
    }
  return t;
}

static void tensors_free(Tensors *t) {
  free(t->specs);
  free(t->off);
  free(t->buf);
}

static void *at(const Engine *e, const Tensors *t, int i) {
  return (char *)t->buf[i] + t->off[i] * e->layout->elem_size;
}

/* Refuse a checkpoint with NaN or infinity: training on it is garbage. */
static int check_finite(const char *path, const Engine *e, const Tensors *t) {
  for (int i = 0; i < t->n; i++) {
    const void *p = at(e, t, i);
    for (int64_t k = 0; k < numel_of(&t->specs[i]); k++) {
      double v = e->layout->elem_size == 8 ? ((const double *)p)[k] : ((const float *)p)[k];
      if (!isfinite(v)) {
        diag_file_error(path, "tensor %s holds a value that is not finite (%s at element %" PRId64 ")",
                        t->specs[i].name, isnan(v) ? "nan" : "inf", k);
        return -1;
      }
    }
  }
  return 0;
}

/* Load the tensors of t into their buffers, skipping the file's tensors
 * with the given prefixes. Errors printed. */
static int load_into(const char *path, Engine *e, const Tensors *t, const char *const *skip) {
  void **dst = nnc_xcalloc((size_t)t->n + 1, sizeof(void *));
  for (int i = 0; i < t->n; i++) dst[i] = at(e, t, i);
  char err[1024];
  int rc = nnc_st_load_except(path, t->specs, dst, t->n, skip, err, sizeof err);
  if (rc != 0) diag_error_line(err);
  free(dst);
  return rc == 0 ? check_finite(path, e, t) : rc;
}

int rt_load_params(const char *path, Engine *e) {
  Arena arena;
  arena_init(&arena);
  Tensors t = tensors_of(e, PART_MODEL, &arena);
  static const char *const skip[] = {OPTIMIZER_STATE_PREFIX, DROPOUT_STEP_NAME, LAST_PREFIX, NULL};
  int rc = load_into(path, e, &t, skip);
  tensors_free(&t);
  arena_free(&arena);
  return rc;
}

/* ---- metadata ---- */

/* Metadata value `key` into out: 1 when found, 0 when absent, -1 on error
 * (printed). */
static int meta(const char *path, const char *key, char *out, size_t n) {
  char err[1024];
  int rc = nnc_st_metadata(path, key, out, n, err, sizeof err);
  if (rc < 0) diag_error_line(err);
  return rc < 0 ? -1 : rc == 0;
}

static int meta_int(const char *path, const char *key, int64_t *v, bool required) {
  char text[64], *end;
  int rc = meta(path, key, text, sizeof text);
  if (rc <= 0) {
    if (rc == 0 && required)
      diag_file_error(path, "no %s in the checkpoint's metadata: --resume continues a run that --save wrote "
                            "while training (--load reads the parameters alone)", key);
    return rc < 0 || required ? -1 : 0;
  }
  errno = 0;
  long long x = strtoll(text, &end, 10);
  /* (at most 2^53: the counts a run adds to stay far from overflowing) */
  if (end == text || *end || x < 0 || errno || x > (1LL << 53)) {
    diag_file_error(path, "metadata %s is \"%s\", not a whole number from 0 to 2^53", key, text);
    return -1;
  }
  *v = x;
  return 0;
}

/* The number of `key`, which a checkpoint with `with` in its metadata
 * has (written with %a, so read back exactly). Returns 0, or -1 after the
 * error. */
static int meta_real(const char *path, const char *key, const char *with, double *v) {
  char text[64], *end;
  if (meta(path, key, text, sizeof text) != 1 || (*v = strtod(text, &end), *end) || !isfinite(*v)) {
    diag_file_error(path, "the checkpoint has %s but no %s (a number) in its metadata", with, key);
    return -1;
  }
  return 0;
}

static int meta_rng(const char *path, NncRng *rng, bool *found) {
  char text[128];
  int rc = meta(path, "shuffle_rng", text, sizeof text);
  *found = rc == 1;
  if (rc <= 0) return rc;
  NncRng r = {0};
  int used = 0;
  if (sscanf(text, "%16" SCNx64 " %16" SCNx64 " %16" SCNx64 " %16" SCNx64 "%n", &r.s[0], &r.s[1], &r.s[2], &r.s[3],
             &used) != 4 || text[used]) {
    diag_file_error(path, "metadata shuffle_rng is \"%s\", not four hexadecimal numbers", text);
    return -1;
  }
  *rng = r;
  return 0;
}

/* ---- --resume ---- */

int rt_resume(const char *path, Engine *e, TrainState *st) {
  const Graph *g = e->g;
  memset(st, 0, sizeof *st);
  char err[1024];
  /* another optimizer's state may have the same names (Adam's and
     AdamW's): the checkpoint says whose it is (older ones do not; then
     the check of the states below) */
  char saved_with[32];
  int found = g->optimizer ? meta(path, "optimizer", saved_with, sizeof saved_with) : 0;
  if (found < 0) return -1;
  if (found && strcmp(saved_with, g->optimizer) != 0) {
    char shown[64];
    diag_file_error(path, "the checkpoint holds the state of optimizer %s, and this model trains with %s: --resume "
                          "continues a run with its own optimizer; --load reads the parameters alone",
                    diag_excerpt(shown, sizeof shown, saved_with), g->optimizer);
    return -1;
  }
  /* a checkpoint without this optimizer's state: a clear word, not a
     missing tensor */
  for (int j = 0; j < g->states.len; j++) {
    const Node *s = g->states.items[j];
    if (!is_run_state(s) || s == g->lr) continue;
    int has = nnc_st_contains(path, s->name, err, sizeof err);
    if (has < 0) {
      diag_error_line(err);
      return -1;
    }
    if (!has && !is_optimizer_state(s)) {
      diag_file_error(path, "the checkpoint has no %s (where dropout's masks stand), which --resume continues from: "
                            "--resume reads what --save writes; --load reads the parameters alone", s->name);
      return -1;
    }
    if (!has) {
      diag_file_error(path, "the checkpoint has no %s, which this optimizer keeps (was it saved with another "
                            "optimizer, or by an older nnc?); --load reads the parameters alone",
                      s->name);
      return -1;
    }
  }
  if (meta_int(path, "epoch", &st->epoch, true) || meta_int(path, "steps", &st->steps, false) ||
      meta_int(path, "best_epoch", &st->best_epoch, false) || meta_int(path, "epoch_rows", &st->epoch_rows, false) ||
      meta_rng(path, &st->shuffle, &st->has_shuffle) < 0 ||
      (st->best_epoch && meta_real(path, "best_valid_loss", "best_epoch", &st->best_loss)) ||
      (st->epoch_rows && meta_real(path, "epoch_loss", "epoch_rows", &st->epoch_loss)))
    return -1;
  Arena arena;
  arena_init(&arena);
  int has_last = 0;
  if (g->params.len) {
    const char *name = arena_printf(&arena, "%s%s", last_prefix, ((Node *)g->params.items[0])->name);
    if ((has_last = nnc_st_contains(path, name, err, sizeof err)) < 0) diag_error_line(err);
  }
  size_t bytes = (size_t)e->layout->total * (size_t)e->layout->elem_size;
  if (st->best_epoch) st->best = nnc_xaligned(bytes);
  Tensors t = tensors_of(e, PART_MODEL | PART_OPTIMIZER | (has_last == 1 ? PART_LAST : 0), &arena);
  /* with last.NAME, NAME is the best epoch's and last.NAME the state to go
     on from; without, the last epoch was the best */
  if (has_last == 1)
    for (int i = 0; i < t.model; i++) t.buf[i] = st->best;
  int rc = has_last < 0 ? -1 : load_into(path, e, &t, NULL);
  if (rc == 0 && st->best && has_last != 1) memcpy(st->best, e->buf, bytes);
  tensors_free(&t);
  arena_free(&arena);
  if (rc != 0) {
    free(st->best);
    st->best = NULL;
  }
  return rc;
}

/* ---- --save ---- */

/* Are the parameters and layer states of two buffers the same bits? */
static bool same_model(const Engine *e, const Tensors *t, const void *a, const void *b) {
  for (int i = 0; i < t->model; i++) {
    size_t off = (size_t)t->off[i] * (size_t)e->layout->elem_size;
    if (memcmp((const char *)a + off, (const char *)b + off, (size_t)numel_of(&t->specs[i]) * (size_t)e->layout->elem_size))
      return false;
  }
  return true;
}

int rt_save_checkpoint(const char *path, Engine *e, const char *model_name, const TrainState *st, const void *last) {
  const Graph *g = e->g;
  Arena arena;
  arena_init(&arena);
  Tensors t = tensors_of(e, PART_MODEL | PART_OPTIMIZER | PART_LAST, &arena);
  bool with_last = last && last != e->buf && !same_model(e, &t, e->buf, last);
  if (!last) last = e->buf;
  /* NAME from e->buf; optimizer.* and last.NAME from `last` (the PART_LAST
     tensors follow the model's; left out when they are the same bits) */
  int n = 0;
  NncTensorSpec *specs = nnc_xcalloc((size_t)t.n + 1, sizeof *specs);
  const void **src = nnc_xcalloc((size_t)t.n + 1, sizeof(void *));
  for (int i = 0; i < t.n; i++) {
    bool is_last = i >= t.model && i < 2 * t.model;
    if (is_last && !with_last) continue;
    t.buf[i] = i < t.model ? e->buf : (void *)last;
    specs[n] = t.specs[i];
    src[n++] = at(e, &t, i);
  }
  char epoch[32], steps[32], rng[80], best_epoch[32], best_loss[48], epoch_rows[32], epoch_loss[48];
  snprintf(epoch, sizeof epoch, "%" PRId64, st->epoch);
  snprintf(steps, sizeof steps, "%" PRId64, st->steps);
  snprintf(rng, sizeof rng, "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64, st->shuffle.s[0],
           st->shuffle.s[1], st->shuffle.s[2], st->shuffle.s[3]);
  snprintf(best_epoch, sizeof best_epoch, "%" PRId64, st->best_epoch);
  snprintf(best_loss, sizeof best_loss, "%a", st->best_loss);
  snprintf(epoch_rows, sizeof epoch_rows, "%" PRId64, st->epoch_rows);
  snprintf(epoch_loss, sizeof epoch_loss, "%a", st->epoch_loss);
  /* key, value pairs; the last two only with early stopping, or after a
     signal stopped the run within epoch + 1 */
  const char *best[] = {"best_epoch", best_epoch, "best_valid_loss", best_loss};
  const char *cut[] = {"epoch_rows", epoch_rows, "epoch_loss", epoch_loss};
  const char *meta[24] = {"model", model_name ? model_name : "", "epoch", epoch, "dtype", dtype_name(g->dtype),
                          "format", "nnc", "steps", steps, "shuffle_rng", rng};
  int nmeta = 6;
  if (g->optimizer) meta[2 * nmeta] = "optimizer", meta[2 * nmeta + 1] = g->optimizer, nmeta++;
  if (st->best_epoch) memcpy(meta + 2 * nmeta, best, sizeof best), nmeta += 2;
  if (st->epoch_rows) memcpy(meta + 2 * nmeta, cut, sizeof cut), nmeta += 2;
  char err[1024];
  int rc = nnc_st_save(path, specs, src, n, meta, nmeta, err, sizeof err);
  if (rc != 0) diag_error_line(err);
  free(src);
  free(specs);
  tensors_free(&t);
  arena_free(&arena);
  return rc;
}
