/*
 * nnc.h - libnnc, the nnc compiler as a library: compile a .nn model from a
 * file or a string, get its diagnostics as data, its parameter buffer
 * layout, native functions compiled by the JIT, and the reference
 * interpreter; or run what the `nnc` command runs (nnc_run).
 *
 * A worked example (error handling shortened; build it with
 * `cc ex.c $(pkg-config --cflags --libs nnc)` or CMake's
 * `find_package(nnc)` + `target_link_libraries(ex nnc::nnc)`):
 *
 *   #include <stdio.h>
 *   #include <stdlib.h>
 *   #include <nnc.h>
 *
 *   int main(void) {
 *     const char *src =
 *         "model tiny {\n"
 *         "  dtype f64\n"
 *         "  input x[2]\n"
 *         "  target t[1]\n"
 *         "  y = x -> linear(3) -> tanh -> linear(1)\n"
 *         "  loss squared(y, t)\n"
 *         "}\n"
 *         "train {\n  optimizer sgd(lr: 0.1)\n  batch 2\n}\n";
 *     NncDiagnostics diags = {0};
 *     NncModel *m = nnc_compile_string("tiny.nn", src, NULL, &diags);
 *     for (int i = 0; i < diags.count; i++)   // errors, and notes on rewrites
 *       fputs(diags.items[i].text, stderr);    // (or .file .line .col .message)
 *     nnc_diagnostics_free(&diags);
 *     if (!m) return 1;
 *
 *     const NncLayout *L = nnc_model_layout(m);  // L->total, L->params[i].offset, ...
 *     double *buf = nnc_buffer_new(m);           // parameters, gradients, optimizer state
 *     nnc_model_init_params(m, buf);             // the file's initializers
 *     const NncFunctions *f = nnc_model_jit(m, 2);  // native code, -O2
 *     if (!f) return 1;
 *
 *     double x[4] = {0, 1, 1, 0}, t[2] = {1, -1}, y[2], loss[2], yi[2], li[2];
 *     for (int step = 0; step < 100; step++) f->f64.train_step(buf, x, t, 2);
 *     f->f64.forward(buf, x, t, 2, y, loss);
 *     nnc_interp_forward(m, buf, x, t, 2, yi, li);  // the interpreter agrees
 *     printf("%d parameters in %d tensors: y = %g %g (interpreter %g %g)\n",
 *            (int)L->param_elems, L->nparams, y[0], y[1], yi[0], yi[1]);
 *     free(buf);
 *     nnc_model_free(m);                         // also frees the compiled code
 *     return 0;
 *   }
 *
 * Data everywhere are row-major arrays in the model's dtype (double for f64,
 * float for f32): x holds n rows of layout->input_cols values (all inputs,
 * flattened, in declaration order), t n rows of target_cols, y n rows of
 * output_cols, loss n per-row losses. The compiled forward needs t and
 * loss (not NULL): predict gives the outputs alone (the interpreter's
 * nnc_interp_forward takes NULL for both). forward, predict and train_epoch
 * take any number of rows (in batches of layout->max_batch, the train
 * block's `batch`); backward and train_step take 1..max_batch
 * (min_train_rows..max_batch, and no last batch of one row for
 * train_epoch, with a batch_norm that a row gives one value per channel).
 * A model and its functions may be used from one thread at a time.
 *
 * NULL: no nnc_ call crashes on a NULL pointer. Those a call takes as NULL
 * on purpose are said at it (opts, diags, an out-parameter it then leaves
 * unfilled); any other NULL (a model, a buffer, rows, a path) makes the
 * call do nothing and return its error value (NULL, -1 or 0), with an
 * error in diags for the calls that take them ("FILE: error: nnc_model_save:
 * buf is NULL"). The compiled functions (NncFunctions, an object's) check
 * nothing: their pointers must be valid.
 */
#ifndef NNC_H
#define NNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nnc_version.h" /* NNC_VERSION "MAJOR.MINOR.PATCH", from the build */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define NNC_API __attribute__((visibility("default")))
#else
#define NNC_API
#endif

/* ---- the command line as a call ---- */

typedef struct NncOptions {
  const char *file; /* the .nn file */
  bool jit;         /* compiled code instead of the interpreter */
  bool train, grad, check_grad;
  const char *predict; /* CSV of inputs, or NULL */
  const char *emit;    /* NULL, or a stage to print: a name nnc_emit_kind knows */
  const char *load, *save, *out, *plot;
  int64_t epochs, batch, seed; /* -1: as the file says */
  double lr;                   /* < 0: as the file says */
  int dtype;                   /* -1, 0 (f32) or 1 (f64) */
  int opt_level;               /* 0..3 */
  bool time;                   /* per-stage compile times on stderr */
  int threads;                 /* --threads: 0 = as many as gain (see parallel.h), else N; for
                                  the library, 2 makes nnc_model_fit of nnc_model_jit's code split
                                  each large matrix product between two threads (the same bits) */
  bool plot_linear;            /* --plot-scale linear (default: log loss axis) */
  const char *cpu;             /* --cpu: NULL (default), "native" or a CPU name */
  const char *resume;          /* --resume: a checkpoint to continue training from, or NULL */
  bool eval;                   /* --eval: the final lines for the parameters, no training */
} NncOptions;

/* The defaults of every field (what `nnc FILE` alone runs); o NULL: nothing. */
NNC_API void nnc_options_default(NncOptions *o);
/* The library's version, NNC_VERSION as it was built (a program may have
 * been compiled with another nnc.h). */
NNC_API const char *nnc_version(void);

/* The stages --emit prints. */
typedef enum NncEmit {
  NNC_EMIT_NONE, /* no --emit: run the task */
  NNC_EMIT_AST, NNC_EMIT_IR, NNC_EMIT_GRAD, NNC_EMIT_OPT, NNC_EMIT_LAYOUT, NNC_EMIT_DOT, /* text */
  NNC_EMIT_LLVM, NNC_EMIT_ASM, NNC_EMIT_OBJ, NNC_EMIT_HEADER /* code, for a CPU (--cpu) */
} NncEmit;
/* The stage --emit NAME names ("ast", "ir", "grad", "opt", "layout", "dot",
 * "llvm", "asm", "obj", "header"), or NNC_EMIT_NONE for NULL or any other
 * name. */
NNC_API NncEmit nnc_emit_kind(const char *name);
/* Run what the options ask for, printing as the `nnc` command does; returns
 * the exit status: 0, 1, or 2 (with a message) for options out of range or
 * that do not go together, as the command's usage errors. */
NNC_API int nnc_run(const NncOptions *o);
/* Whether --cpu accepts the name ("native", x86-64, x86-64-v2, haswell, ...). */
NNC_API bool nnc_cpu_known(const char *name);

/* ---- diagnostics as data ---- */

typedef enum NncSeverity { NNC_ERROR, NNC_NOTE } NncSeverity;

typedef struct NncDiagnostic {
  const char *file;     /* the path, or the name given to nnc_compile_string */
  int line, col;        /* 1-based; 0 when the message concerns the whole file */
  NncSeverity severity; /* errors stop the compilation; notes do not */
  const char *message;  /* the message alone, one line */
  const char *text;     /* what nnc prints: "FILE:LINE:COL: error: MESSAGE\n",
                           then the source line and a caret */
} NncDiagnostic;

typedef struct NncDiagnostics {
  int count;
  NncDiagnostic *items;
} NncDiagnostics;

/* Free the items (the struct itself is the caller's) and empty it. */
NNC_API void nnc_diagnostics_free(NncDiagnostics *d);

/* ---- compiling a model ---- */

typedef struct NncModel NncModel;

/* Read, check and compile the model to its optimized graph (forward,
 * backward and optimizer step). opts: NULL, or options whose overrides
 * apply (epochs, batch, seed, lr, dtype) and whose cpu the JIT uses, and
 * whose jit says which code the caller runs for its 16 GiB limit: with
 * jit, the parameters and optimizer state (nnc_model_jit checks its
 * workspace when it plans it), else also every intermediate of a batch,
 * which the interpreter holds; the other fields are ignored. Diagnostics (errors, and notes such as the
 * stable rewrites) are appended to *diags when diags is not NULL, and
 * printed nowhere. Returns NULL when there were errors (a NULL path is
 * one). */
NNC_API NncModel *nnc_compile_file(const char *path, const NncOptions *opts, NncDiagnostics *diags);
/* The same for source text (copied; NULL is empty text); name is used in
 * diagnostics, and as the directory that relative csv() paths start from
 * (NULL: "<string>"). */
NNC_API NncModel *nnc_compile_string(const char *name, const char *source, const NncOptions *opts,
                                     NncDiagnostics *diags);
/* Free the model and all code compiled for it (NULL: nothing). */
NNC_API void nnc_model_free(NncModel *m);

/* ---- the parameter buffer ---- */

typedef enum NncDtype { NNC_F32 = 0, NNC_F64 = 1 } NncDtype;

typedef struct NncParam {
  const char *name;     /* "linear1.W", ... (checkpoint names) */
  int64_t offset;       /* where its values start in buf, in elements */
  int64_t grad_offset;  /* where its gradient starts */
  int64_t size;         /* elements */
  int rank;
  int64_t shape[4];
} NncParam;

typedef struct NncLayout {
  const char *model;     /* the model's name */
  NncDtype dtype;
  int elem_size;         /* 4 or 8 bytes */
  int64_t total;         /* elements in buf: parameters, gradients, optimizer state */
  int64_t param_elems;   /* parameter values in all */
  int max_batch;         /* rows per step (the train block's batch) */
  int64_t input_cols, target_cols, output_cols;
  bool has_predict;      /* the output does not need the targets */
  int nparams;
  const NncParam *params; /* in creation order */
  /* where the learning rate is in buf, or -1 when there is nothing to
     train: update, train_step and train_epoch read it there, so a schedule
     is a store between calls (nnc_buffer_new writes the train block's lr) */
  int64_t lr_offset;
  /* the states layers keep (batch_norm's running statistics): in buf at
     offset, saved and loaded with the parameters; train_step and
     train_epoch update them (grad_offset is -1) */
  int nstates;
  const NncParam *states;
  /* the fewest rows a training batch may have (train_step, train_epoch,
     backward): 2 when a row gives some batch_norm channel one value, whose
     variance is no statistic (one row gives an infinite running variance;
     PyTorch refuses such a batch too), else 1 */
  int min_train_rows;
} NncLayout;

/* Lives as long as the model (NULL for a NULL model). */
NNC_API const NncLayout *nnc_model_layout(const NncModel *m);

/* An input an embedding reads its rows by: values [column, column + count)
 * of a row of inputs (all inputs in order, flattened) must each be a row of
 * `table`, an integer in [0, rows). The command line checks every data row
 * (an error naming it); the functions of a model do not (an index outside
 * the table reads some row of it): a caller passing rows of its own checks
 * them, as the Python package does. */
typedef struct NncIndexInput {
  const char *input; /* the input's name */
  const char *table; /* the embedding's table, e.g. "embedding1.W" */
  int64_t column, count, rows;
} NncIndexInput;
/* How many there are; *inputs gets them (they live as long as the model)
 * unless inputs is NULL. */
NNC_API int nnc_model_index_inputs(const NncModel *m, const NncIndexInput **inputs);
/* A new buffer of layout->total elements, 64-byte aligned, zero, with the
 * optimizer state at its starting values; free it with free(). NULL when
 * memory runs out. */
NNC_API void *nnc_buffer_new(const NncModel *m);
/* Set the parameters in buf as `nnc --train` starts: the train block's init
 * for layer weights, zero biases, a param's own initializer. */
NNC_API void nnc_model_init_params(const NncModel *m, void *buf);

/* ---- native code ---- */

typedef struct NncFunctions {
  NncDtype dtype; /* which of the two sets is filled in; the other is NULL */
  struct {
    /* per-row outputs y and losses of any number of rows */
    void (*forward)(double *buf, const double *x, const double *t, int64_t n, double *y, double *loss);
    /* outputs alone (NULL unless layout->has_predict) */
    void (*predict)(double *buf, const double *x, int64_t n, double *y);
    /* gradients into buf; returns the batch loss (mean over rows) */
    double (*backward)(double *buf, const double *x, const double *t, int64_t n);
    /* one optimizer step from the gradients in buf */
    void (*update)(double *buf);
    /* backward and update; returns the batch loss before the step */
    double (*train_step)(double *buf, const double *x, const double *t, int64_t n);
    /* train_step over `rows` rows in batches of max_batch; returns the sum
       of the rows' losses */
    double (*train_epoch)(double *buf, const double *x, const double *t, int64_t rows);
  } f64;
  struct {
    void (*forward)(float *buf, const float *x, const float *t, int64_t n, float *y, float *loss);
    void (*predict)(float *buf, const float *x, int64_t n, float *y);
    float (*backward)(float *buf, const float *x, const float *t, int64_t n);
    void (*update)(float *buf);
    float (*train_step)(float *buf, const float *x, const float *t, int64_t n);
    float (*train_epoch)(float *buf, const float *x, const float *t, int64_t rows);
  } f32;
} NncFunctions;

/* Compile the model's functions with LLVM at opt_level 0..3 for the CPU of
 * the compile options (default: the host) and return pointers to them, or
 * NULL after printing an error on standard error: an internal one, or a CPU
 * this host may not run the code of (as --jit --cpu refuses it; with jit
 * in the compile options, the compile refuses it). The code lives
 * until nnc_model_free; calling again compiles again. */
NNC_API const NncFunctions *nnc_model_jit(NncModel *m, int opt_level);

/* ---- the reference interpreter, on the same buffer ---- */

/* forward: y (n rows, any number) and, when t and loss are given, per-row
 * losses; backward: gradients into buf, *loss the batch loss; train_step:
 * backward and the optimizer step. Return 0, or -1 when n is not
 * min_train_rows..max_batch for backward and train_step (or negative for
 * forward), or
 * y is asked for without targets and the output needs them, or the
 * interpreter would hold more than 16 GiB for a batch (a model compiled
 * with opts jit, which held it to compiled code's memory), or buf, x, y
 * (forward) or t (backward, train_step) is NULL. t and loss of forward and
 * loss of backward and train_step may be NULL. */
NNC_API int nnc_interp_forward(NncModel *m, void *buf, const void *x, const void *t, int64_t n, void *y,
                               void *loss);
NNC_API int nnc_interp_backward(NncModel *m, void *buf, const void *x, const void *t, int64_t n,
                                double *loss);
NNC_API int nnc_interp_train_step(NncModel *m, void *buf, const void *x, const void *t, int64_t n,
                                  double *loss);

/* ---- training, checkpoints, data and text: what `nnc` does, as calls ----
 * (what a binding such as the Python package builds on; errors are
 * appended to diags when it is not NULL, and printed nowhere) */

/* Zero buf (layout->total elements) and give the optimizer state its
 * starting values: nnc_buffer_new's work on a buffer the caller allocated
 * (64-byte aligned), or a reset of the optimizer's state. */
NNC_API void nnc_buffer_init(const NncModel *m, void *buf);

/* What `nnc --emit KIND` writes for this model: ast, ir, grad, opt, layout,
 * dot, llvm, asm, header (text) or obj (the bytes of an object file).
 * opt_level (0..3) is -O for llvm, asm and obj, and the CPU the compile
 * options' (as --cpu). Returns a malloc'd buffer with a NUL after the *len
 * bytes (len may be NULL; free it with free()), or NULL when the kind is
 * unknown (or NULL), or it is obj or header and the model's name would put
 * the object's symbols among the library's (a model named interp:
 * nnc_interp_forward; an error at the name). */
NNC_API char *nnc_model_emit(NncModel *m, const char *kind, int opt_level, size_t *len, NncDiagnostics *diags);

/* buf to and from a safetensors checkpoint, as --save and --load: save
 * writes the parameters and the optimizer state (names and shapes as
 * --emit layout's; `epoch` goes to the file's metadata), load reads the
 * parameters (and layer states), skips the file's optimizer state and sets
 * buf's back to its starting values, and starts a new run
 * (nnc_model_restart), as --load does. A load must find every parameter
 * with its dtype and shape, and finite values; it changes buf only when it
 * succeeds. Return 0 or -1 (also for a NULL buf or path, with an error). */
NNC_API int nnc_model_save(NncModel *m, const void *buf, const char *path, int64_t epoch, NncDiagnostics *diags);
NNC_API int nnc_model_load(NncModel *m, void *buf, const char *path, NncDiagnostics *diags);

/* The train block's data sets (data, valid, split) as `nnc --train` loads
 * them: rows of layout->input_cols inputs and target_cols targets in the
 * model's dtype (malloc'd). valid has 0 rows when the block has none.
 * train or valid may be NULL: that set is not kept. Returns 0, or -1 (an
 * unreadable file, a bad split). */
typedef struct NncDataset {
  int64_t rows;
  void *x, *t;
} NncDataset;
NNC_API int nnc_model_data(NncModel *m, NncDataset *train, NncDataset *valid, NncDiagnostics *diags);
NNC_API void nnc_dataset_free(NncDataset *d);

/* What a training run did. The arrays are malloc'd (nnc_fit_result_free). */
typedef struct NncFitResult {
  int64_t epochs;     /* epochs completed */
  double *train_loss; /* per epoch: the mean loss of its rows before their steps
                         (what --train's progress lines print) */
  double *valid_loss; /* per epoch: the validation set's mean loss with the
                         parameters at its end; NULL without a validation set */
  double final_train_loss, final_valid_loss;         /* --train's final lines; */
  double final_train_accuracy, final_valid_accuracy; /* NaN when not printed */
  double train_time;  /* seconds in training steps */
  int64_t steps;      /* optimizer steps taken */
} NncFitResult;

/* Train buf as `nnc --train` does: the train block's data, shuffling,
 * optimizer and epochs (epochs >= 0 replaces the count), with the code of
 * `code` (an nnc_model_jit result of m) or the interpreter (NULL), on one
 * thread. A call goes on with the run the last one left (m keeps its
 * epoch, steps and shuffling generator): fit 3 epochs twice trains as fit
 * 6 once, the schedule's epochs counted from the run's start (a cosine
 * schedule spans the run up to the end of this call); early stopping
 * watches this call's epochs. verbose: print the progress and final lines
 * as --train does.
 * r may be NULL (the figures are not kept).
 * Returns 0; -1 when training could not start (the data could not be
 * loaded, buf is NULL); 1 when it stopped at a value that is not finite (an error names
 * the step and the value; buf holds the last finite parameters, *r the
 * epochs before). */
NNC_API int nnc_model_fit(NncModel *m, void *buf, const NncFunctions *code, int64_t epochs, bool verbose,
                          NncFitResult *r, NncDiagnostics *diags);
NNC_API void nnc_fit_result_free(NncFitResult *r);
/* Ask nnc_model_fit of m to stop (stop true) at its next step boundary,
 * as SIGINT stops `nnc --train`: the fit that runs (in another thread)
 * returns 0 with the final figures for the parameters reached, and a
 * later call goes on from there (a checkpoint saved now resumes
 * mid-epoch). The request stands until withdrawn (stop false): a fit
 * started meanwhile stops after its first few milliseconds of steps.
 * Safe from any thread and from a signal handler; the library itself
 * never installs one. */
NNC_API void nnc_model_stop(NncModel *m, bool stop);
/* The next nnc_model_fit starts a new run: its first epoch of the
 * schedule, the first shuffled order (after new parameters). */
NNC_API void nnc_model_restart(NncModel *m);

/* ---- MPI ---- */

/* For a program run by mpirun: start MPI before nnc_run (a no-op when not
 * started by mpirun; exits with a message when nnc was built without MPI),
 * and shut it down after. See driver/parallel.h. */
NNC_API void nnc_parallel_init(int *argc, char ***argv);
NNC_API void nnc_parallel_finalize(void);

#ifdef __cplusplus
}
#endif

#endif
