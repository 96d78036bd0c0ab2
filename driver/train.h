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

#include <stdio.h>

#include "check.h"
#include "engine.h"
#include "lower.h"
#include "nnc.h"
#include "runtime.h"

/* The training and validation sets of the train block (data, valid,
 * split). Errors are printed (one line naming the file); returns -1. */
int rt_load_data(const Program *p, const Graph *g, NncData *train, NncData *valid);

/* Fill the parameters in e->buf from the initializers (train block `init`,
 * biases zero, a `param`'s own initializer). */
void rt_init_params(const Program *p, const ParamInit *inits, Engine *e);

/* Checkpoints in safetensors; errors printed, return -1. */
int rt_load_params(const char *path, Engine *e);
int rt_save_params(const char *path, Engine *e, const char *model, int64_t epoch);

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
} TrainOptions;

/* Train with p's settings; prints progress and the spec's final lines.
 * Returns the exit status. */
int rt_train(const Program *p, Engine *e, const NncData *train, const NncData *valid,
             const TrainOptions *o);

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
