/*
 * health.c - notes on a training run that is not going anywhere (see
 * train.h): a ReLU layer whose units are dead, a loss that has not moved.
 *
 * A relu unit whose input is <= 0 for every training row outputs 0 and
 * passes no gradient, so nothing moves it again: with few units per layer
 * a bad initialization or too large a step leaves the network crippled
 * (the seed's own 2-4-4-4-1 network, per-sample SGD at lr 0.05, starts so
 * in about one initialization of five). The check runs the forward graph
 * in the interpreter over the training rows (at most HEALTH_ROWS of them,
 * evenly spread) after the first epoch and after the last, and notes each
 * relu once, at its .nn line, when all of its units were dead for every
 * row: then nothing before it learns. (Some dead units are common in runs
 * that end well; measured on the seed's data over 40 seeds, every run with
 * a whole layer dead ended near 0.5 accuracy.)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interp.h"
#include "train.h"

enum { HEALTH_ROWS = 1024, HEALTH_CHUNK = 128, LOSS_EPOCHS = 3 };

struct Health {
  const Program *p;
  const Graph *g;
  const NncData *train;
  bool *noted;          /* per node: its note is out */
  bool loss_noted;
  double initial_loss;  /* the train set's loss before training, or NAN */
};

Health *health_new(const Program *p, const Graph *g, const NncData *train, double initial_loss) {
  Health *h = nnc_xcalloc(1, sizeof *h);
  h->p = p;
  h->g = g;
  h->train = train;
  h->noted = nnc_xcalloc((size_t)g->len + 1, 1);
  h->initial_loss = initial_loss;
  return h;
}

void health_free(Health *h) {
  if (!h) return;
  free(h->noted);
  free(h);
}

static void note(const Health *h, Loc loc, const char *msg) {
  if (isatty(STDOUT_FILENO)) printf("\n"); /* off the progress line */
  fflush(stdout);
  Diag d = {.src = h->p->src};
  diag_note(&d, loc, "%s", msg);
}

/* Rows r of the data into the leaves (each its columns), as doubles. */
static void give_rows(Interp *in, const PtrVec *leaves, const double *data, int cols, const size_t *rows, int n,
                      double *scratch) {
  int64_t col = 0;
  for (int i = 0; i < leaves->len; i++) {
    const Node *leaf = leaves->items[i];
    int64_t w = shape_numel(&leaf->shape);
    for (int r = 0; r < n; r++)
      for (int64_t k = 0; k < w; k++) scratch[r * w + k] = data[rows[r] * (size_t)cols + (size_t)(col + k)];
    interp_give(in, leaf, scratch);
    col += w;
  }
}

static bool is_relu(const Node *n) { return n->op == OP_RELU && n->role == ROLE_FORWARD; }

/* Per relu node, its units that were > 0 for some checked row (alive). */
static void find_alive(const Health *h, const Engine *e, bool **alive) {
  const Graph *g = h->g;
  size_t total = h->train->rows, step = total > HEALTH_ROWS ? (total + HEALTH_ROWS - 1) / HEALTH_ROWS : 1;
  int64_t widest = engine_input_cols(g) > engine_target_cols(g) ? engine_input_cols(g) : engine_target_cols(g);
  for (int i = 0; i < g->params.len; i++) {
    int64_t n = shape_numel(&((Node *)g->params.items[i])->shape);
    if (n > widest) widest = n;
  }
  double *scratch = nnc_xmalloc(sizeof(double) * (size_t)(widest * HEALTH_CHUNK + 1));
  size_t rows[HEALTH_CHUNK];
  Interp *in = interp_new(g, HEALTH_CHUNK, false);
  for (int i = 0; i < g->params.len; i++) {
    const Node *prm = g->params.items[i];
    for (int64_t k = 0; k < shape_numel(&prm->shape); k++) {
      int64_t off = e->layout->param_off[i] + k;
      scratch[k] = e->layout->elem_size == 8 ? ((double *)e->buf)[off] : ((float *)e->buf)[off];
    }
    interp_give(in, prm, scratch);
  }
  for (size_t r0 = 0; r0 < total;) {
    int n = 0;
    for (; n < HEALTH_CHUNK && r0 < total; r0 += step) rows[n++] = r0;
    interp_set_rows(in, n);
    give_rows(in, &g->inputs, h->train->x, h->train->in_cols, rows, n, scratch);
    if (g->targets.len) give_rows(in, &g->targets, h->train->t, h->train->tgt_cols, rows, n, scratch);
    for (int i = 0; i < g->len; i++) {
      const Node *relu = g->nodes[i];
      if (!alive[i]) continue; /* not a relu, or noted already */
      const Node *a = relu->in[0];
      const double *v = interp_get(in, a);
      int64_t w = shape_numel(&a->shape);
      for (int r = 0; r < (a->batched ? n : 1); r++)
        for (int64_t k = 0; k < w; k++) alive[i][k] |= v[r * w + k] > 0;
    }
  }
  interp_free(in);
  free(scratch);
}

void health_check_units(Health *h, const Engine *e, int64_t epoch) {
  const Graph *g = h->g;
  bool **alive = nnc_xcalloc((size_t)g->len, sizeof(bool *));
  bool any = false;
  for (int i = 0; i < g->len; i++)
    if (is_relu(g->nodes[i]) && !h->noted[i]) {
      alive[i] = nnc_xcalloc((size_t)shape_numel(&g->nodes[i]->shape) + 1, 1);
      any = true;
    }
  if (any) find_alive(h, e, alive);
  char rows[64] = "every training row";
  if (h->train->rows > HEALTH_ROWS) snprintf(rows, sizeof rows, "each of %d training rows spread over the set", HEALTH_ROWS);
  for (int i = 0; i < g->len; i++) {
    if (!alive[i]) continue;
    int64_t units = shape_numel(&g->nodes[i]->shape), dead = 0;
    for (int64_t k = 0; k < units; k++) dead += !alive[i][k];
    if (dead == units) {
      h->noted[i] = true;
      char msg[512];
      snprintf(msg, sizeof msg,
               "every unit of this relu (%lld) gave 0 for %s after epoch %lld: the layer is dead, no gradient "
               "passes it and nothing before it learns; another init seed, leaky_relu or a smaller learning rate "
               "usually helps",
               (long long)units, rows, (long long)epoch);
      note(h, g->nodes[i]->loc, msg);
    }
    free(alive[i]);
  }
  free(alive);
}

bool health_wants_loss(const Health *h, int64_t epoch) {
  return !h->loss_noted && epoch == LOSS_EPOCHS && isfinite(h->initial_loss) && h->initial_loss != 0;
}

void health_check_loss(Health *h, int64_t epoch, double loss) {
  if (!health_wants_loss(h, epoch)) return;
  if (fabs(loss - h->initial_loss) > 1e-4 * fabs(h->initial_loss)) return;
  h->loss_noted = true;
  char msg[512];
  snprintf(msg, sizeof msg,
           "the training loss is %.6g after %lld epochs, where it started (%.6g): nothing is learning; a larger "
           "learning rate, another init or leaky_relu instead of relu usually helps",
           loss, (long long)epoch, h->initial_loss);
  note(h, h->p->loss->loc, msg);
}
