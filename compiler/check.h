/*
 * check.h - the checker: every user error is found here, before anything
 * runs. It resolves names (values, ops, layers, losses, initializers, data
 * sources, optimizers), checks arguments, infers every static shape with the
 * op table's rules, and turns the train block into a TrainConfig.
 *
 * It annotates the AST in place: each expression gets its Type, each call
 * its Call (callee and arguments sorted into slots), which is what lowering
 * (lower.c) reads.
 */
#ifndef NNC_CHECK_H
#define NNC_CHECK_H

#include "ast.h"
#include "ir.h"
#include "runtime.h"

typedef enum TypeKind { TY_TENSOR, TY_STRING, TY_BOOL, TY_ERROR } TypeKind;

struct Type {
  TypeKind kind;
  Shape shape;   /* TY_TENSOR */
  bool is_const; /* a number known now (folded from literals) */
  double value;  /* is_const: its value */
};

/* A name the model block binds: an input, target, param or let. The
 * checker records it on its statement (Stmt.sym) and on every use of the
 * name (Expr.sym); lowering gives each its node by index. */
struct Symbol {
  const char *name;
  Type type;
  StmtKind kind; /* S_INPUT, S_TARGET, S_PARAM or S_LET */
  Loc loc;
  int index;     /* 0, 1, ... in the order of binding */
};

typedef enum BuiltinKind {
  B_OP, B_WHERE, B_LAYER, B_LOSS, B_INIT, B_DATA, B_OPTIM,
  B_SCHEDULE /* train block only: its names are not reserved in models */
} BuiltinKind;

typedef enum ParamType {
  P_INT, P_REAL, P_BOOL, P_STRING,
  P_SEED,    /* a whole number that seeds a random generator */
  P_SIZES,   /* a whole number, or a list of them (one per spatial axis) */
  P_PADDING, /* as P_SIZES, or the string "same" */
  P_SHAPE    /* a list of whole numbers (a shape; one entry may be -1) */
} ParamType;

enum { MAX_PARAMS = 6 };

typedef struct ParamSpec {
  const char *name;
  ParamType type;
  double def;     /* default when not required */
  bool required;
  double lo, hi;  /* accepted range for numbers (inclusive) */
  bool lo_open;   /* lo itself is refused */
  bool hi_open;   /* hi itself is refused */
} ParamSpec;

/* Layers: sugar that may create parameters and expands into ops. */
typedef enum LayerKind {
  LAYER_LINEAR, LAYER_LAYER_NORM, LAYER_BATCH_NORM, LAYER_EMBEDDING, LAYER_CONV2D, LAYER_CONV1D, LAYER_MAX_POOL2D,
  LAYER_MAX_POOL1D, LAYER_AVG_POOL2D, LAYER_AVG_POOL1D, LAYER_FLATTEN, LAYER_RESHAPE, LAYER_KINDS
} LayerKind;
/* the layers' argument slots (Call.num, Call.str, Call.list) */
enum { LINEAR_UNITS, LINEAR_BIAS, LINEAR_NAME };
enum { LAYER_NORM_EPS, LAYER_NORM_NAME };
enum { BATCH_NORM_MOMENTUM, BATCH_NORM_EPS, BATCH_NORM_NAME };
enum { EMBEDDING_VOCAB, EMBEDDING_DIM, EMBEDDING_NAME };
enum { CONV_CHANNELS, CONV_KERNEL, CONV_STRIDE, CONV_PADDING, CONV_BIAS, CONV_NAME };
enum { POOL_KERNEL, POOL_STRIDE, POOL_PADDING };
enum { RESHAPE_SHAPE };
typedef enum LossKind {
  LOSS_SQUARED, LOSS_MSE, LOSS_BCE, LOSS_BCE_LOGITS, LOSS_CROSS_ENTROPY
} LossKind;
typedef enum DataKind { DATA_NONE, DATA_MOONS, DATA_CIRCLES, DATA_CSV, DATA_IDX } DataKind;
typedef enum OptimKind { OPTIM_SGD, OPTIM_ADAM, OPTIM_ADAMW, OPTIM_RMSPROP } OptimKind;
typedef enum ScheduleKind { SCHED_CONSTANT, SCHED_STEP, SCHED_COSINE } ScheduleKind;

typedef struct Builtin {
  const char *name;
  BuiltinKind kind;
  int sub;      /* Op, LayerKind, LossKind, NncInitKind, DataKind, OptimKind, ScheduleKind */
  int ntensors; /* leading tensor arguments (variadic: at least these) */
  ParamSpec params[MAX_PARAMS];
  bool variadic; /* up to MAX_CALL_TENSORS tensors (concat) */
} Builtin;

enum { MAX_CALL_TENSORS = 8 };
/* slice's argument slots */
enum { SLICE_START, SLICE_END, SLICE_AXIS };

/* A checked call: tensor operands and every parameter slot filled. */
typedef struct Call {
  const Builtin *b;
  Expr *tensor[MAX_CALL_TENSORS]; /* (a loss has two, where three, concat up to all) */
  int ntensors;                   /* how many the call has */
  OpAttr attr;                /* B_OP: the op's attribute, from the arguments;
                                 conv and pool layers: their window; reshape:
                                 its shape */
  double num[MAX_PARAMS];      /* P_INT, P_REAL, P_SEED, P_BOOL (0/1) */
  const char *str[MAX_PARAMS]; /* P_STRING, P_PADDING's "same" */
  int64_t list[MAX_PARAMS][MAX_RANK]; /* P_SIZES, P_PADDING, P_SHAPE */
  int nlist[MAX_PARAMS];              /* their length (0: not given) */
  bool given[MAX_PARAMS];
} Call;

typedef struct DataSpec {
  DataKind kind;
  int64_t samples;
  double noise, factor;
  uint64_t seed;
  bool has_seed;
  const char *path;   /* csv, idx images: resolved against the .nn file's directory */
  const char *labels; /* idx labels: resolved the same way */
  double scale;       /* idx: NAN for the default of the images' element type */
  bool onehot;
  bool shuffle; /* csv: permute the rows once when loading (seeded) */
  Loc loc;
} DataSpec;

typedef struct InitSpec {
  NncInitKind kind;
  double arg; /* std, limit or constant */
  uint64_t seed;
  bool has_seed;
} InitSpec;

typedef struct OptimSpec {
  OptimKind kind;
  double lr, momentum, weight_decay, beta1, beta2, eps;
  bool nesterov;  /* sgd */
  double alpha;   /* rmsprop: the square average's decay */
  bool centered;  /* rmsprop */
  double clip_norm; /* the train key clip_norm: > 0 clips each step's gradients */
} OptimSpec;

/* The learning rate per epoch (train.c: schedule_lr). */
typedef struct ScheduleSpec {
  ScheduleKind kind;
  int64_t every;  /* step: epochs between decays */
  double gamma;   /* step: the factor of each decay */
  double min_lr;  /* cosine: the rate it ends at */
  int64_t warmup; /* epochs of linear warm-up from lr / warmup, or 0 */
} ScheduleSpec;

typedef struct TrainConfig {
  DataSpec data, valid;
  bool has_split;
  double split;       /* rows, or a fraction when split_fraction */
  bool split_fraction;
  InitSpec init;
  OptimSpec optim;
  ScheduleSpec schedule;
  int64_t early_stop; /* patience in epochs, or 0 */
  int64_t epochs, batch;
  bool shuffle;
  uint64_t seed;
  bool has_seed_key;
} TrainConfig;

/* Limits for train settings (refused above these). */
#define NNC_MAX_EPOCHS 100000000LL
#define NNC_MAX_BATCH 65536LL

typedef struct Program {
  const Source *src;
  Block *model;      /* the model block (checked) */
  const char *model_name;
  DType dtype;
  Stmt *loss;        /* the loss statement */
  const Symbol *output; /* the output statement's, or NULL for the default */
  int nsymbols;      /* Symbol.index is below this */
  TrainConfig train; /* defaults where the file is silent */
  bool has_train_block;
} Program;

/* Check the parsed file; returns the number of errors reported. */
int check_program(const Ast *ast, const Source *src, Diag *diag, Arena *arena,
                  Program *out);

/* What a checked initializer call (normal(std: 0.1), xavier_normal, ...)
 * asks for. */
InitSpec init_spec(const Call *call);

#endif
