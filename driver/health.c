/*
 * health.c - notes on a training run that is not going anywhere (see
 * train.h): a ReLU layer whose units are dead, a loss that has not moved.
 *
 * A relu unit whose input is <= 0 for every training row outputs 0 and
 * passes no gradient, so nothing moves it again: with few units per layer
 * a bad initialization or too large a step leaves the network crippled
 * (the seed's own 2-4-4-4-1 network, per-sample SGD at lr 0.05, starts so
 * in about one initialization of five). After the first epoch and after
 * the last, the check runs the forward graph in the interpreter over
 * training rows spread evenly over the set, and notes each relu once, at
 * its .nn line, when all of its units were dead for every row: then
 * nothing before it learns. (Some dead units are common in runs that end
 * well; measured on the seed's data over 40 seeds, every run with a whole
 * layer dead ended near 0.5 accuracy.)
 *
 * The interpreter is slow (some 0.3 G multiply-adds a second: a convnet's
 * 1024 rows took 45 s), so the check takes as many rows as HEALTH_MACS
 * multiply-adds of the forward pass allow, at least HEALTH_MIN_ROWS and
 * at most HEALTH_ROWS. It holds its own copy of the parameters in double,
 * so models of more than HEALTH_PARAMS parameters are not checked (the
 * copy would be 15 MiB for the MLP 784-1024-1024-10, beside a buffer of
 * 14 MiB); a layer that wide rarely dies whole without the loss showing it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interp.h"
#include "train.h"

enum { HEALTH_ROWS = 1024, HEALTH_MIN_ROWS = 8, HEALTH_CHUNK = 128 };
#define HEALTH_MACS 1e8
#define HEALTH_PARAMS (1 << 20)

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

/* Multiply-adds per row of the forward graph, roughly: a matrix product or
 * convolution costs its result times its reduction, other ops their size. */
static double forward_macs_per_row(const Graph *g) {
  double macs = 0;
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    if (n->role != ROLE_FORWARD || !n->batched) continue;
    double size = (double)shape_numel(&n->shape), reduce = 1;
    if (n->op == OP_MATMUL || n->op == OP_CONV) {
      const Shape *s = n->op == OP_MATMUL ? &n->in[0]->shape : &n->in[1]->shape;
      reduce = (double)s->dim[s->rank - 1];
    }
    macs += size * reduce;
  }
  return macs;
}

/* How many training rows the check looks at (see the top of the file). */
static size_t checked_rows(const Health *h) {
  double by_cost = HEALTH_MACS / (forward_macs_per_row(h->g) + 1);
  size_t rows = by_cost < HEALTH_MIN_ROWS ? HEALTH_MIN_ROWS : by_cost > HEALTH_ROWS ? HEALTH_ROWS : (size_t)by_cost;
  return rows < h->train->rows ? rows : h->train->rows;
}

/* Per relu node, its units that were > 0 for one of `want` rows (alive). */
static void find_alive(const Health *h, const Engine *e, size_t want, bool **alive) {
  const Graph *g = h->g;
  size_t total = h->train->rows;
  int64_t widest = engine_input_cols(g) > engine_target_cols(g) ? engine_input_cols(g) : engine_target_cols(g);
  double *scratch = nnc_xmalloc(sizeof(double) * (size_t)(widest * HEALTH_CHUNK + 1));
  size_t rows[HEALTH_CHUNK];
  Interp *in = interp_new(g, HEALTH_CHUNK, false);
  size_t es = (size_t)e->layout->elem_size;
  for (int i = 0; i < g->params.len; i++)
    interp_give_elems(in, g->params.items[i], (char *)e->buf + (size_t)e->layout->param_off[i] * es,
                      e->layout->elem_size);
  for (int j = 0; j < g->states.len; j++) /* dropout's step, batch_norm's statistics */
    interp_give_elems(in, g->states.items[j], (char *)e->buf + (size_t)e->layout->state_off[j] * es,
                      e->layout->elem_size);
  for (size_t next = 0; next < want;) {
    int n = 0;
    for (; n < HEALTH_CHUNK && next < want; next++) rows[n++] = next * total / want; /* evenly spread */
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

static int64_t parameter_count(const Graph *g) {
  int64_t n = 0;
  for (int i = 0; i < g->params.len; i++) n += shape_numel(&((Node *)g->params.items[i])->shape);
  return n;
}

void health_check_units(Health *h, const Engine *e, int64_t epoch) {
  const Graph *g = h->g;
  if (parameter_count(g) > HEALTH_PARAMS) return;
  bool **alive = nnc_xcalloc((size_t)g->len, sizeof(bool *));
  bool any = false;
  for (int i = 0; i < g->len; i++)
    if (is_relu(g->nodes[i]) && !h->noted[i]) {
      alive[i] = nnc_xcalloc((size_t)shape_numel(&g->nodes[i]->shape) + 1, 1);
      any = true;
    }
  size_t checked = checked_rows(h);
  if (any) find_alive(h, e, checked, alive);
  char rows[64] = "every training row";
  if (checked < h->train->rows) snprintf(rows, sizeof rows, "each of %zu training rows spread over the set", checked);
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
  return !h->loss_noted && epoch == HEALTH_LOSS_EPOCH && isfinite(h->initial_loss) && h->initial_loss != 0;
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
