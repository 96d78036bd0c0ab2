/*
 * train.h - the work around the compiled functions: loading data sources,
 * initializing and checkpointing parameters, the training loop with its
 * progress display and report, --grad, --check-grad and --predict.
 *
 * Everything here goes through an Engine (engine.h), so the interpreter and
 * compiled code share one driver and print the same lines.
 */
#ifndef NNC_TRAIN_H
#define NNC_TRAIN_H

#include <stdatomic.h>
#include <stdio.h>

#include "check.h"
#include "engine.h"
#include "lower.h"
#include "nnc.h"
#include "runtime.h"

/* The training and validation sets of the train block (data, valid,
 * split). Errors are printed (one line naming the file); returns -1. */
int rt_load_data(const Program *p, const Graph *g, NncData *train, NncData *valid);

/* Rows of inputs drawn from N(0, 1) (an embedding's indices: whole rows of
 * its table, uniformly) and targets from U(0, 1), from the train block's
 * seed: what --grad and --check-grad use when the train block has no data
 * (as torch.autograd.gradcheck on random inputs). True when some input
 * holds embedding indices. */
bool rt_random_data(const Program *p, const Graph *g, int64_t rows, NncData *out);

/* Fill the parameters in e->buf from the initializers (train block `init`,
 * biases zero, a `param`'s own initializer). */
void rt_init_params(const Program *p, const ParamInit *inits, Engine *e);

/* Where a training run stands (what a checkpoint keeps besides the
 * buffer): zero for a fresh run. */
typedef struct TrainState {
  int64_t epoch;      /* epochs trained */
  int64_t steps;      /* optimizer steps taken */
  NncRng shuffle;     /* the generator that shuffles each epoch's rows */
  bool has_shuffle;   /* shuffle holds it (else rt_train seeds it) */
  int64_t epoch_rows; /* rows of epoch + 1 trained before a signal stopped the run within it (0:
                         none); shuffle then holds the generator as that epoch began */
  double epoch_loss;  /* the sum of those rows' losses */
  int64_t best_epoch; /* early stopping: the epoch of the lowest valid loss so far, or 0 */
  double best_loss;   /* that loss */
  void *best;         /* that epoch's buffer (nnc_xaligned, owned here), or NULL */
} TrainState;

/* Checkpoints in safetensors (checkpoint.c has the format); errors
 * printed, return -1.
 * rt_load_params (--load): the parameters (and layer states) into e->buf;
 *   the file's optimizer state is not read.
 * rt_resume (--resume): the parameters, the optimizer state and *st, so
 *   that rt_train goes on from there bit for bit.
 * rt_save_checkpoint (--save): e->buf's parameters; the optimizer state of
 *   `last` (NULL: e->buf), and its parameters as last.NAME when they differ
 *   (early stopping saves the best epoch's parameters and goes on from the
 *   last); *st in the metadata. */
int rt_load_params(const char *path, Engine *e);
int rt_resume(const char *path, Engine *e, TrainState *st);
int rt_save_checkpoint(const char *path, Engine *e, const char *model, const TrainState *st, const void *last);

/* A dataset's x or t as a row-major array in the model's dtype (malloc). */
void *rt_data_cast(const NncData *d, bool targets, DType dt);

typedef struct TrainOptions {
  const char *save; /* checkpoint path or NULL */
  const char *plot; /* report path or NULL */
  const char *model_name;
  bool plot_linear;   /* the report's loss axis is linear (default log) */
  const char *engine; /* for the report's header: "jit -O2", "interpreter" */
  bool quiet;         /* print nothing (errors go to the diagnostics) */
  NncFitResult *result; /* when set: the per-epoch losses and final figures */
  const char *resumed;  /* the checkpoint *st came from (for messages), or NULL */
  bool catch_signals;   /* the command line's: SIGINT and SIGTERM stop training */
  /* set (by another thread, or a signal handler) to stop at the next step
     boundary as a signal would, or NULL (nnc_model_stop's flag) */
  const atomic_int *stop;
} TrainOptions;

/* The learning rate of epoch `epoch` (from 0) under the train block's
 * schedule: warm-up epochs lr (e + 1) / warmup, then the schedule's rate of
 * that epoch (constant lr; step lr gamma^floor(e / every); cosine min_lr +
 * (lr - min_lr) (1 + cos(pi e / epochs)) / 2). */
double rt_schedule_lr(const TrainConfig *tc, int64_t epoch);

/* Train with p's settings from where *st says (epoch 0 for a fresh run)
 * to the train block's epochs, or until early stopping; prints progress,
 * `best epoch E` with early stopping, and the spec's final lines; *st is
 * where the run ended. Returns the exit status. */
int rt_train(const Program *p, Engine *e, const NncData *train, const NncData *valid, const TrainOptions *o,
             TrainState *st);

/* Training health (health.c): notes, on standard error at a .nn line,
 * when every unit of a relu is dead for every training row (checked
 * after the first and the last epoch) and when the training loss has not
 * moved from initial_loss (the train set's before training; NAN: unknown)
 * after the first epochs. */
typedef struct Health Health;
/* The epoch after which the loss is compared with initial_loss. */
enum { HEALTH_LOSS_EPOCH = 3 };
Health *health_new(const Program *p, const Graph *g, const NncData *train, double initial_loss);
void health_check_units(Health *h, const Engine *e, int64_t epoch);
/* Does the loss check want the train set's loss after this epoch? */
bool health_wants_loss(const Health *h, int64_t epoch);
void health_check_loss(Health *h, int64_t epoch, double loss);
void health_free(Health *h);

/* --eval: the final loss and accuracy lines of --train for the parameters
 * in e->buf, without training. Returns the exit status. */
int rt_eval(Engine *e, const NncData *train, const NncData *valid);

/* A batch_norm whose channels get one value from a row cannot train on a
 * batch of 1 row (its variance is no statistic; PyTorch refuses it too):
 * an error at the layer in src when `rows` in batches of `batch` would
 * give one. task: "--grad" or "--check-grad" (the first batch alone), or
 * NULL for training (every batch, the last included). Returns 0, or -1
 * after the error. */
int rt_batch_stats_rows(const Graph *g, const Source *src, int64_t rows, int64_t batch, const char *task);

/* --grad: loss and gradients for the first batch rows of train. */
int rt_print_grad(Engine *e, const NncData *train, int64_t batch);

/* --check-grad: the engine's gradients against central differences of the
 * f64 interpreter on the first batch rows; a gradient that is not finite
 * fails. Failures are named on standard error too, after path. Returns the
 * exit status. */
int rt_check_grad(Engine *e, const NncData *train, int64_t batch, const char *path);

/* --predict: outputs for each row of the CSV file, whose rows hold the
 * inputs, then nothing, the targets or (label_column: the training data has
 * one) a class label. Returns the exit status. */
int rt_predict(Engine *e, const char *csv_path, bool label_column);

#endif
