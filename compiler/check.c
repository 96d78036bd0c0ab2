/*
 * check.c - names, arguments, shapes and train settings (see check.h).
 *
 * The model block is checked statement by statement, in order, so a name
 * must be bound before it is used (single assignment). Each expression's
 * shape comes from the op table's shape rule (op_infer_shape), so the
 * checker and the IR can never disagree about a shape.
 */
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- the builtins: everything a .nn file can call by name ---- */

#define INF HUGE_VAL
#define NUM(n, t, d, l, h) {n, t, d, false, l, h, false}
#define REQ(n, t, l, h) {n, t, 0, true, l, h, false}
#define POS(n, t, d, h) {n, t, d, false, 0, h, true} /* > 0 */
#define SEED {"seed", P_SEED, 0, false, 0, 9.2e18, false}

/* ops: the rows of ops.def (see there for the call column) */
#define ARG_REAL(n, d, l, h) {n, P_REAL, d, false, l, h, false}
#define ARG_AXIS(n) {n, P_INT, AXIS_ALL, false, -MAX_RANK, MAX_RANK - 1, false}

#define CALL(...) {__VA_ARGS__}
#define NOCALL {{0}}
static const Builtin op_builtins[] = {
#define OP(e, name, nin, cls, attr, call) [OP_##e] = {name, B_OP, OP_##e, nin, call},
#include "ops.def"
#undef OP
};
#undef CALL
#undef NOCALL

#define CALL(...) true
#define NOCALL false
static const bool op_callable[] = {
#define OP(e, name, nin, cls, attr, call) [OP_##e] = call,
#include "ops.def"
#undef OP
};
#undef CALL
#undef NOCALL

_Static_assert(sizeof op_builtins / sizeof op_builtins[0] == OP_COUNT, "op_builtins: one per op");
_Static_assert(sizeof op_callable / sizeof op_callable[0] == OP_COUNT, "op_callable: one per op");

/* A call's arguments become the op's attribute (op_attr): one number for a
 * value or an axis, nothing for the others. */
#define CALL(...) (sizeof((ParamSpec[]){{0}, __VA_ARGS__}) / sizeof(ParamSpec) - 1)
#define NOCALL 0
#define OP(e, name, nin, cls, attr, call) \
  _Static_assert(call <= ((attr) == A_VALUE || (attr) == A_AXIS ? 1 : 0), \
                 "ops.def: " name " takes arguments its attribute cannot hold");
#include "ops.def"
#undef OP
#undef CALL
#undef NOCALL

/* the others */
#define NAME_ARG {"name", P_STRING, 0, false, 0, 0, false}
/* a size per spatial axis (default d; 0: as the kernel) of at least lo */
#define SIZES(n, d, lo) {n, P_SIZES, d, false, lo, (double)NNC_MAX_DIM, false}
#define SIZES_REQ(n, lo) {n, P_SIZES, 0, true, lo, (double)NNC_MAX_DIM, false}
#define CONV_ARGS \
  {[CONV_CHANNELS] = REQ("channels", P_INT, 1, (double)NNC_MAX_DIM), [CONV_KERNEL] = SIZES_REQ("kernel", 1), \
   [CONV_STRIDE] = SIZES("stride", 1, 1), \
   [CONV_PADDING] = {"padding", P_PADDING, 0, false, 0, (double)NNC_MAX_DIM, false}, \
   [CONV_BIAS] = NUM("bias", P_BOOL, 1, 0, 1), [CONV_NAME] = NAME_ARG}
static const Builtin builtins[] = {
    /* layers */
    {"linear", B_LAYER, LAYER_LINEAR, 1,
     {[LINEAR_UNITS] = REQ("units", P_INT, 1, (double)NNC_MAX_DIM),
      [LINEAR_BIAS] = NUM("bias", P_BOOL, 1, 0, 1),
      [LINEAR_NAME] = {"name", P_STRING, 0, false, 0, 0, false}}},
    {"layer_norm", B_LAYER, LAYER_LAYER_NORM, 1,
     {[LAYER_NORM_EPS] = POS("eps", P_REAL, 1e-5, 1),
      [LAYER_NORM_NAME] = {"name", P_STRING, 0, false, 0, 0, false}}},
    {"batch_norm", B_LAYER, LAYER_BATCH_NORM, 1,
     {[BATCH_NORM_MOMENTUM] = NUM("momentum", P_REAL, 0.1, 0, 1),
      [BATCH_NORM_EPS] = POS("eps", P_REAL, 1e-5, 1),
      [BATCH_NORM_NAME] = {"name", P_STRING, 0, false, 0, 0, false}}},
    /* ops with their own argument checks (check_pieces) */
    {"concat", B_OP, OP_CONCAT, 2, {NUM("axis", P_INT, 0, -MAX_RANK, MAX_RANK - 1)}, true},
    {"slice", B_OP, OP_SLICE, 1,
     {[SLICE_START] = NUM("start", P_INT, 0, -(double)NNC_MAX_DIM, (double)NNC_MAX_DIM),
      [SLICE_END] = NUM("end", P_INT, 0, -(double)NNC_MAX_DIM, (double)NNC_MAX_DIM),
      [SLICE_AXIS] = NUM("axis", P_INT, 0, -MAX_RANK, MAX_RANK - 1)}},
    {"dropout", B_OP, OP_DROPOUT, 1, {{"rate", P_REAL, 0, true, 0, 1, false, true}}},
    {"embedding", B_LAYER, LAYER_EMBEDDING, 1,
     {[EMBEDDING_VOCAB] = REQ("vocab", P_INT, 1, (double)NNC_MAX_DIM),
      [EMBEDDING_DIM] = REQ("dim", P_INT, 1, (double)NNC_MAX_DIM),
      [EMBEDDING_NAME] = {"name", P_STRING, 0, false, 0, 0, false}}},
    /* where(c, a, b): keep_pos(c, a) + keep_nonpos(c, b) */
    {"where", B_WHERE, 0, 3, {{0}}},
    {"conv2d", B_LAYER, LAYER_CONV2D, 1, CONV_ARGS},
    {"conv1d", B_LAYER, LAYER_CONV1D, 1, CONV_ARGS},
    {"max_pool2d", B_LAYER, LAYER_MAX_POOL2D, 1,
     {[POOL_KERNEL] = SIZES_REQ("kernel", 1), [POOL_STRIDE] = SIZES("stride", 0, 1),
      [POOL_PADDING] = SIZES("padding", 0, 0)}},
    {"max_pool1d", B_LAYER, LAYER_MAX_POOL1D, 1,
     {[POOL_KERNEL] = SIZES_REQ("kernel", 1), [POOL_STRIDE] = SIZES("stride", 0, 1),
      [POOL_PADDING] = SIZES("padding", 0, 0)}},
    {"avg_pool2d", B_LAYER, LAYER_AVG_POOL2D, 1,
     {[POOL_KERNEL] = SIZES_REQ("kernel", 1), [POOL_STRIDE] = SIZES("stride", 0, 1)}},
    {"avg_pool1d", B_LAYER, LAYER_AVG_POOL1D, 1,
     {[POOL_KERNEL] = SIZES_REQ("kernel", 1), [POOL_STRIDE] = SIZES("stride", 0, 1)}},
    {"flatten", B_LAYER, LAYER_FLATTEN, 1, {{0}}},
    {"reshape", B_LAYER, LAYER_RESHAPE, 1,
     {[RESHAPE_SHAPE] = {"shape", P_SHAPE, 0, true, -1, (double)NNC_MAX_DIM, false}}},
    /* losses: (prediction, target) */
    {"squared", B_LOSS, LOSS_SQUARED, 2, {{0}}},
    {"mse", B_LOSS, LOSS_MSE, 2, {{0}}},
    {"bce", B_LOSS, LOSS_BCE, 2, {{0}}},
    {"bce_logits", B_LOSS, LOSS_BCE_LOGITS, 2, {{0}}},
    {"cross_entropy", B_LOSS, LOSS_CROSS_ENTROPY, 2, {{0}}},
    /* initializers */
    {"xavier_normal", B_INIT, NNC_INIT_XAVIER_NORMAL, 0, {SEED}},
    {"xavier_uniform", B_INIT, NNC_INIT_XAVIER_UNIFORM, 0, {SEED}},
    {"he_normal", B_INIT, NNC_INIT_HE_NORMAL, 0, {SEED}},
    {"normal", B_INIT, NNC_INIT_NORMAL, 0, {NUM("std", P_REAL, 1, 0, 1e300), SEED}},
    {"uniform", B_INIT, NNC_INIT_UNIFORM, 0, {NUM("limit", P_REAL, 1, 0, 1e300), SEED}},
    {"zeros", B_INIT, NNC_INIT_ZEROS, 0, {{0}}},
    {"constant", B_INIT, NNC_INIT_CONSTANT, 0, {REQ("value", P_REAL, -1e300, 1e300)}},
    /* data sources */
    {"moons", B_DATA, DATA_MOONS, 0,
     {NUM("samples", P_INT, 100, 2, (double)NNC_DATA_MAX_ROWS),
      NUM("noise", P_REAL, 0, 0, 1e6), SEED}},
    {"circles", B_DATA, DATA_CIRCLES, 0,
     {NUM("samples", P_INT, 100, 2, (double)NNC_DATA_MAX_ROWS),
      NUM("noise", P_REAL, 0, 0, 1e6), {"factor", P_REAL, 0.8, false, 0, 1, true, true},
      SEED}},
    {"csv", B_DATA, DATA_CSV, 0,
     {{"path", P_STRING, 0, true, 0, 0, false}, NUM("onehot", P_BOOL, 0, 0, 1),
      NUM("shuffle", P_BOOL, 0, 0, 1), SEED}},
    {"idx", B_DATA, DATA_IDX, 0,
     {{"images", P_STRING, 0, true, 0, 0, false}, {"labels", P_STRING, 0, true, 0, 0, false},
      {"scale", P_REAL, 0, false, 0, 1e300, true}}},
    /* optimizers: torch.optim's arguments and defaults */
    {"sgd", B_OPTIM, OPTIM_SGD, 0,
     {POS("lr", P_REAL, 0.01, 1e6), NUM("momentum", P_REAL, 0, 0, 1),
      NUM("weight_decay", P_REAL, 0, 0, 1e6), NUM("nesterov", P_BOOL, 0, 0, 1)}},
    {"adam", B_OPTIM, OPTIM_ADAM, 0,
     {POS("lr", P_REAL, 0.001, 1e6), NUM("beta1", P_REAL, 0.9, 0, 1),
      NUM("beta2", P_REAL, 0.999, 0, 1), POS("eps", P_REAL, 1e-8, 1),
      NUM("weight_decay", P_REAL, 0, 0, 1e6)}},
    {"adamw", B_OPTIM, OPTIM_ADAMW, 0,
     {POS("lr", P_REAL, 0.001, 1e6), NUM("beta1", P_REAL, 0.9, 0, 1),
      NUM("beta2", P_REAL, 0.999, 0, 1), POS("eps", P_REAL, 1e-8, 1),
      NUM("weight_decay", P_REAL, 0.01, 0, 1e6)}},
    {"rmsprop", B_OPTIM, OPTIM_RMSPROP, 0,
     {POS("lr", P_REAL, 0.01, 1e6), NUM("alpha", P_REAL, 0.99, 0, 1), POS("eps", P_REAL, 1e-8, 1),
      NUM("momentum", P_REAL, 0, 0, 1), NUM("weight_decay", P_REAL, 0, 0, 1e6),
      NUM("centered", P_BOOL, 0, 0, 1)}},
    /* learning-rate schedules */
    {"constant", B_SCHEDULE, SCHED_CONSTANT, 0, {NUM("warmup", P_INT, 0, 0, NNC_MAX_EPOCHS)}},
    {"step", B_SCHEDULE, SCHED_STEP, 0,
     {REQ("every", P_INT, 1, NNC_MAX_EPOCHS), POS("gamma", P_REAL, 0.1, 1e6),
      NUM("warmup", P_INT, 0, 0, NNC_MAX_EPOCHS)}},
    {"cosine", B_SCHEDULE, SCHED_COSINE, 0,
     {NUM("min_lr", P_REAL, 0, 0, 1e6), NUM("warmup", P_INT, 0, 0, NNC_MAX_EPOCHS)}},
};

static const char *kind_noun(BuiltinKind k) {
  switch (k) {
  case B_OP: case B_WHERE: return "an op";
  case B_LAYER: return "a layer";
  case B_LOSS: return "a loss";
  case B_INIT: return "an initializer";
  case B_DATA: return "a data source";
  case B_OPTIM: return "an optimizer";
  case B_SCHEDULE: return "a schedule";
  }
  return "?";
}

/* The builtin called `name` (any kind), or NULL. */
static const Builtin *builtin_lookup(const char *name) {
  for (int op = 0; op < OP_COUNT; op++)
    if (op_callable[op] && strcmp(op_builtins[op].name, name) == 0) return &op_builtins[op];
  for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
    if (builtins[i].kind != B_SCHEDULE && strcmp(builtins[i].name, name) == 0) return &builtins[i];
  return NULL;
}

/* The builtin of that kind with that name (schedules share names with an
 * initializer and with words users bind), or NULL. */
static const Builtin *builtin_of_kind(const char *name, BuiltinKind kind) {
  for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
    if (builtins[i].kind == kind && strcmp(builtins[i].name, name) == 0) return &builtins[i];
  return NULL;
}

/* The slot of b's argument called `name`, or -1. */
static int builtin_param(const Builtin *b, const char *name) {
  for (int i = 0; i < MAX_PARAMS && b->params[i].name; i++)
    if (strcmp(b->params[i].name, name) == 0) return i;
  return -1;
}

static int nparams(const Builtin *b) {
  int n = 0;
  while (n < MAX_PARAMS && b->params[n].name) n++;
  return n;
}

/* The slot of b's seed argument, or -1. */
static int seed_slot(const Builtin *b) {
  for (int i = 0; i < nparams(b); i++)
    if (b->params[i].type == P_SEED) return i;
  return -1;
}

InitSpec init_spec(const Call *call) {
  InitSpec spec = {.kind = (NncInitKind)call->b->sub};
  /* the first argument is the std, limit or value, unless it is the seed */
  const ParamSpec *first = &call->b->params[0];
  if (first->name && first->type != P_SEED) spec.arg = call->num[0];
  int seed = seed_slot(call->b);
  spec.has_seed = seed >= 0 && call->given[seed];
  spec.seed = spec.has_seed ? (uint64_t)call->num[seed] : 0;
  return spec;
}

/* ---- the checker's state ---- */

typedef struct Checker {
  Arena *arena;
  Diag *diag;
  const Source *src;
  PtrVec syms;       /* Symbol *, in the order of binding */
  StrMap sym_index;  /* name -> Symbol * */
  StrMap layer_names; /* names given with linear(..., name: "x") -> the name */
  int unnamed_layers;
  const Block *model;
  const Stmt *dtype; /* the dtype statement, once seen */
} Checker;

static Type *new_type(Checker *c, TypeKind kind) {
  Type *t = ARENA_NEW(c->arena, Type);
  t->kind = kind;
  return t;
}

static Type *tensor_type(Checker *c, Shape shape) {
  Type *t = new_type(c, TY_TENSOR);
  t->shape = shape;
  return t;
}

static Symbol *find_sym(Checker *c, const char *name) { return strmap_get(&c->sym_index, name); }

/* The closest builtin of one of the kinds in `mask` (1 << kind), or a
 * bound name when values is set; "" when nothing is close. */
static const char *suggest(Checker *c, const char *name, unsigned mask,
                           bool values) {
  /* a message that will not be printed needs no hint (and a file with
     thousands of wrong names would make the search quadratic) */
  int limit = c->diag->max_errors ? c->diag->max_errors : 20;
  if (c->diag->quiet || c->diag->errors >= limit) return "";
  Closest best = closest_start(name, strlen(name) <= 3 ? 1 : 2);
  for (int op = 0; op < OP_COUNT && (mask & (1u << B_OP)); op++)
    if (op_callable[op]) closest_offer(&best, op_builtins[op].name);
  for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
    if (mask & (1u << builtins[i].kind)) closest_offer(&best, builtins[i].name);
  if (values)
    for (int i = 0; i < c->syms.len; i++) closest_offer(&best, ((Symbol *)c->syms.items[i])->name);
  if (!best.best) return "";
  return arena_printf(c->arena, " (did you mean '%s'?)", best.best);
}

/* The message for a name that is not bound (yet): it may be bound by a
 * later statement, or be a misspelling. */
static void undefined_name(Checker *c, Loc loc, const char *name) {
  int limit = c->diag->max_errors ? c->diag->max_errors : 20;
  if (c->model && !c->diag->quiet && c->diag->errors < limit)
    for (const Stmt *s = c->model->stmts; s; s = s->next)
      if ((s->kind == S_LET || s->kind == S_INPUT || s->kind == S_TARGET ||
           s->kind == S_PARAM) && s->name && strcmp(s->name, name) == 0 &&
          (s->loc.line > loc.line || (s->loc.line == loc.line && s->loc.col > loc.col))) {
        diag_error(c->diag, loc, "'%s' is used before it is defined (on line %d); names are bound in order",
                   name, s->loc.line);
        return;
      }
  diag_error(c->diag, loc, "undefined name '%s'%s", name, suggest(c, name, 0, true));
}

static Symbol *add_sym(Checker *c, const char *name, StmtKind kind, Loc loc, const Type *t) {
  Symbol *sym = ARENA_NEW(c->arena, Symbol);
  *sym = (Symbol){name, *t, kind, loc, c->syms.len};
  ptrvec_push(&c->syms, sym);
  strmap_put(&c->sym_index, name, sym);
  return sym;
}

/* A new name must not shadow a binding or a builtin. */
static bool check_new_name(Checker *c, const char *name, Loc loc) {
  Symbol *old = find_sym(c, name);
  if (old) {
    diag_error(c->diag, loc, "'%s' is already defined (on line %d); names are bound once",
               name, old->loc.line);
    return false;
  }
  const Builtin *b = builtin_lookup(name);
  bool reserved = strcmp(name, "true") == 0 || strcmp(name, "false") == 0;
  if (b)
    diag_error(c->diag, loc, "'%s' is the name of %s; choose another name", name,
               kind_noun(b->kind));
  else if (reserved)
    diag_error(c->diag, loc, "'%s' is reserved; choose another name", name);
  else
    return true;
  /* bound as an error, so that its uses are not reported again (calls of
     the builtin still work: they look up builtins first) */
  add_sym(c, name, S_LET, loc, new_type(c, TY_ERROR));
  return false;
}

/* ---- constants ---- */

/* The value of a constant number expression (literals, unary minus and
 * arithmetic on them); false when e is not one. */
static bool const_value(const Expr *e, double *out) {
  double a, b;
  switch (e->kind) {
  case E_NUM:
    *out = e->num;
    return true;
  case E_NEG:
    if (!const_value(e->lhs, &a)) return false;
    *out = -a;
    return true;
  case E_BINOP:
    if (!const_value(e->lhs, &a) || !const_value(e->rhs, &b)) return false;
    switch (e->op) {
    case '+': *out = a + b; break;
    case '-': *out = a - b; break;
    case '*': *out = a * b; break;
    case '/': *out = a / b; break;
    case '^': *out = pow(a, b); break;
    default: return false;
    }
    return isfinite(*out);
  case E_STR: case E_NAME: case E_CALL: case E_LIST:
    return false;
  }
  return false;
}

/* ---- arguments ---- */

static const char *type_noun(ParamType t) {
  switch (t) {
  case P_INT: case P_SEED: return "a whole number";
  case P_REAL: return "a number";
  case P_BOOL: return "true or false";
  case P_STRING: return "a string";
  case P_SIZES: return "a whole number or a list of them";
  case P_PADDING: return "a whole number, a list of them or \"same\"";
  case P_SHAPE: return "a list of whole numbers";
  }
  return "?";
}

/* The range of p's values, for a message about the value v: a bound of
 * 1e299 or more (a guard against overflow, no real limit) only when v is
 * past it. */
static void fmt_range(char *buf, size_t n, const ParamSpec *p, double v) {
  char lo[32], hi[32];
  fmt_number(lo, sizeof lo, p->lo);
  fmt_number(hi, sizeof hi, p->hi);
  bool no_top = p->hi >= 1e299 && v <= p->hi;
  if (p->lo_open && p->hi_open)
    snprintf(buf, n, "between %s and %s, both excluded", lo, hi);
  else if (p->lo_open && no_top)
    snprintf(buf, n, "greater than %s", lo);
  else if (p->lo_open)
    snprintf(buf, n, "greater than %s and at most %s", lo, hi);
  else if (no_top)
    snprintf(buf, n, "at least %s", lo);
  else if (p->hi_open)
    snprintf(buf, n, "at least %s and less than %s", lo, hi);
  else
    snprintf(buf, n, "between %s and %s", lo, hi);
}

/* A list argument (kernel: [3, 5], padding: "same", shape: [7, 7, 64]) into
 * slot i: its numbers in call->list[i]; a single number is a list of one. */
static void list_param(Checker *c, Call *call, int i, const Expr *e) {
  const ParamSpec *p = &call->b->params[i];
  const char *f = call->b->name;
  if (p->type == P_PADDING && e->kind == E_STR) {
    if (strcmp(e->text, "same") != 0) {
      diag_error(c->diag, e->loc, "%s: padding is a number, a list of numbers or \"same\", got \"%s\"", f,
                 e->text);
      return;
    }
    call->str[i] = "same";
    return;
  }
  if (e->kind != E_LIST && p->type == P_SHAPE) {
    diag_error(c->diag, e->loc, "%s: '%s' must be a list of whole numbers, like [7, 7, 64]", f, p->name);
    return;
  }
  int n = 0;
  const Arg *one = &(Arg){.value = (Expr *)e};
  for (const Arg *a = e->kind == E_LIST ? e->args : one; a; a = a->next, n++) {
    double v;
    if (n == MAX_RANK) {
      diag_error(c->diag, e->loc, "%s: '%s' has more than %d numbers", f, p->name, MAX_RANK);
      return;
    }
    if (!const_value(a->value, &v) || v != floor(v)) {
      diag_error(c->diag, a->value->loc, "%s: '%s' must be %s", f, p->name, type_noun(p->type));
      return;
    }
    bool minus_one = p->type == P_SHAPE && v == -1;
    double lo = p->type == P_SHAPE ? 1 : p->lo;
    if (!minus_one && (v < lo || v > p->hi)) {
      char low[32], high[32], got[32];
      fmt_number(low, sizeof low, lo);
      fmt_number(high, sizeof high, p->hi);
      fmt_number(got, sizeof got, v);
      if (v > p->hi)
        diag_error(c->diag, a->value->loc, "%s: each number of '%s' must be at most %s, got %s", f, p->name, high,
                   got);
      else
        diag_error(c->diag, a->value->loc, "%s: each number of '%s' must be %s %s, got %s", f, p->name,
                   p->type == P_SHAPE ? "-1 or at least" : "at least", low, got);
      return;
    }
    call->list[i][n] = (int64_t)v;
  }
  if (n == 0) {
    diag_error(c->diag, e->loc, "%s: '%s' is an empty list", f, p->name);
    return;
  }
  call->nlist[i] = n;
}

/* Store one non-tensor argument into slot i of call. */
static void set_param(Checker *c, Call *call, int i, const Expr *e) {
  const ParamSpec *p = &call->b->params[i];
  call->given[i] = true;
  if (p->type == P_STRING) {
    if (e->kind != E_STR) {
      diag_error(c->diag, e->loc, "%s: '%s' must be a string", call->b->name, p->name);
      return;
    }
    call->str[i] = e->text;
    return;
  }
  if (p->type == P_BOOL) {
    if (e->kind != E_NAME || (strcmp(e->text, "true") && strcmp(e->text, "false"))) {
      diag_error(c->diag, e->loc, "%s: '%s' must be true or false", call->b->name, p->name);
      return;
    }
    call->num[i] = strcmp(e->text, "true") == 0;
    return;
  }
  if (p->type == P_SIZES || p->type == P_PADDING || p->type == P_SHAPE) {
    list_param(c, call, i, e);
    return;
  }
  double v;
  if (!const_value(e, &v)) {
    diag_error(c->diag, e->loc, "%s: '%s' must be %s", call->b->name, p->name,
               type_noun(p->type));
    return;
  }
  if ((p->type == P_INT || p->type == P_SEED) && v != floor(v)) {
    diag_error(c->diag, e->loc, "%s: '%s' must be a whole number, got %g",
               call->b->name, p->name, v);
    return;
  }
  if (v < p->lo || v > p->hi || (p->lo_open && v == p->lo) || (p->hi_open && v == p->hi)) {
    char range[96];
    char got[32];
    fmt_range(range, sizeof range, p, v);
    fmt_number(got, sizeof got, v);
    diag_error(c->diag, e->loc, "%s: '%s' must be %s, got %s", call->b->name, p->name, range, got);
    return;
  }
  call->num[i] = v;
}

static Type *check_expr(Checker *c, Expr *e);

/* The tensor operands of b, as a call would name them. */
static const char *tensor_names(const Builtin *b) {
  switch (b->ntensors) {
  case 0: return "";
  case 1: return "input";
  case 2: return b->kind == B_LOSS ? "prediction, target" : "a, b";
  default: return "condition, a, b";
  }
}

/* "input, units, bias, name": what b takes (with tensors: the tensor
 * operands too), for messages about arguments. */
static const char *arg_list(Checker *c, const Builtin *b, bool tensors) {
  StrBuf sb = {0};
  if (tensors && b->variadic) sb_puts(&sb, "tensors...");
  else if (tensors) sb_puts(&sb, tensor_names(b));
  for (int i = 0; i < nparams(b); i++)
    sb_printf(&sb, "%s%s", sb.len ? ", " : "", b->params[i].name);
  const char *out = arena_strdup(c->arena, sb.data ? sb.data : "");
  sb_free(&sb);
  return out;
}

/* Sort a call's arguments into tensor operands and parameter slots, check
 * the tensor operands and then the parameter values. NULL when anything
 * about the call is wrong (everything wrong is reported). */
static Call *resolve_call(Checker *c, Expr *e, const Builtin *b,
                          bool check_tensors) {
  Call *call = ARENA_NEW(c->arena, Call);
  call->b = b;
  int errors_before = c->diag->errors;
  int np = nparams(b), pos = 0, npositional = 0;
  int most_tensors = b->variadic ? MAX_CALL_TENSORS : b->ntensors;
  const Expr *value[MAX_PARAMS] = {0};
  bool seen_named = false;
  for (Arg *a = e->args; a; a = a->next) {
    if (a->name) {
      seen_named = true;
      int i = builtin_param(b, a->name);
      if (i < 0) {
        if (np == 0) {
          diag_error(c->diag, a->name_loc, "%s takes no named arguments", b->name);
        } else {
          Closest best = closest_start(a->name, 2);
          for (int k = 0; k < np; k++) closest_offer(&best, b->params[k].name);
          if (best.best)
            diag_error(c->diag, a->name_loc, "%s has no argument '%s' (did you mean '%s'?)",
                       b->name, a->name, best.best);
          else
            diag_error(c->diag, a->name_loc, "%s has no argument '%s' (its named arguments: %s)",
                       b->name, a->name, arg_list(c, b, false));
        }
        continue;
      }
      if (call->given[i]) {
        diag_error(c->diag, a->name_loc, "%s: '%s' is given twice", b->name, a->name);
        continue;
      }
      call->given[i] = true;
      value[i] = a->value;
      continue;
    }
    if (seen_named) {
      diag_error(c->diag, a->value->loc,
                 "%s: positional arguments must come before named ones", b->name);
      continue;
    }
    npositional++;
    if (pos < most_tensors) {
      call->tensor[pos++] = a->value;
      continue;
    }
    if (b->variadic) continue; /* a tensor too many (reported below); its other arguments are named */
    int i = pos - most_tensors;
    if (i >= np) continue; /* reported below, once */
    pos++;
    call->given[i] = true;
    value[i] = a->value;
  }
  call->ntensors = pos < most_tensors ? pos : most_tensors;
  int most = most_tensors + np;
  if (b->variadic && npositional > most_tensors) {
    diag_error(c->diag, e->loc, "%s takes at most %d tensors, got %d%s", b->name, most_tensors, npositional,
               e->chained ? ", counting the value chained into it" : "");
  } else if (npositional > most) {
    const char *chained = e->chained ? ", counting the value chained into it" : "";
    if (np == 0)
      diag_error(c->diag, e->loc, "%s takes %d argument%s, got %d%s", b->name, most,
                 most == 1 ? "" : "s", npositional, chained);
    else
      diag_error(c->diag, e->loc, "%s takes at most %d argument%s (%s), got %d%s", b->name,
                 most, most == 1 ? "" : "s", arg_list(c, b, true), npositional, chained);
  }
  /* the operands first (they are evaluated before the call) */
  if (check_tensors)
    for (int i = 0; i < call->ntensors; i++) {
      Type *t = check_expr(c, call->tensor[i]);
      if (t->kind != TY_TENSOR && t->kind != TY_ERROR)
        diag_error(c->diag, call->tensor[i]->loc, "%s: argument %d must be a tensor",
                   b->name, i + 1);
    }
  if (pos < b->ntensors) {
    if (b->variadic)
      diag_error(c->diag, e->loc, "%s needs at least %d tensors, got %d (write a -> %s(b) or %s(a, b, c))",
                 b->name, b->ntensors, pos, b->name, b->name);
    else if (b->ntensors == 1)
      diag_error(c->diag, e->loc, "%s needs 1 tensor argument, got 0 (write x -> %s or %s(x))",
                 b->name, b->name, b->name);
    else
      diag_error(c->diag, e->loc, "%s needs %d tensor arguments, got %d (write %s(%s))",
                 b->name, b->ntensors, pos, b->name,
                 b->kind == B_LOSS ? "y, t" : b->ntensors == 2 ? "a, b" : "c, a, b");
  }
  for (int i = 0; i < np; i++) {
    if (value[i]) {
      set_param(c, call, i, value[i]);
    } else if (b->params[i].required) {
      diag_error(c->diag, e->loc, "%s needs the argument '%s'", b->name, b->params[i].name);
    } else {
      call->num[i] = b->params[i].def;
    }
  }
  if (check_tensors)
    for (int i = 0; i < call->ntensors; i++)
      if (call->tensor[i]->type->kind != TY_TENSOR) return NULL;
  return c->diag->errors == errors_before ? call : NULL;
}

/* ---- expressions ---- */

static Type *error_type(Checker *c) { return new_type(c, TY_ERROR); }

/* The op's attribute from the call's arguments (ops.def: a CALL's one
 * argument fills the attribute); false after reporting a wrong one. */
static bool op_attr(Checker *c, Expr *e, Call *call, const Shape *x) {
  OpAttr *attr = &call->attr;
  attr->axis = AXIS_ALL;
  if (nparams(call->b) == 0) return true;
  switch (op_info[call->b->sub].attr) {
  case A_VALUE:
    attr->value = call->num[0];
    return true;
  case A_AXIS: {
    if (call->num[0] == AXIS_ALL) return true;
    int given = (int)call->num[0];
    int axis = given < 0 ? given + x->rank : given;
    if (axis < 0 || axis >= x->rank) {
      char sh[64];
      diag_error(c->diag, e->loc, "%s: axis %d is out of range for a tensor of shape %s%s",
                 call->b->name, given, shape_str(x, false, sh, sizeof sh),
                 x->rank == 0 ? " (a scalar has no axes)" : "");
      return false;
    }
    attr->axis = axis;
    return true;
  }
  case A_NONE: case A_SHAPE: case A_RANGE: case A_MASK: case A_WINDOW:
    break;
  }
  return true;
}

/* An axis argument of x (negative counts from the end), or -1 after
 * reporting one out of range. */
static int axis_of(Checker *c, Expr *e, const Call *call, int slot, const Shape *x) {
  int given = (int)call->num[slot];
  int axis = given < 0 ? given + x->rank : given;
  if (axis >= 0 && axis < x->rank) return axis;
  char sh[64];
  diag_error(c->diag, e->loc, "%s: axis %d is out of range for a tensor of shape %s%s",
             call->b->name, given, shape_str(x, false, sh, sizeof sh),
             x->rank == 0 ? " (a scalar has no axes)" : "");
  return -1;
}

/* concat(a, b, ...): every tensor joins the ones before it along the axis. */
static Type *check_concat(Checker *c, Expr *e, Call *call) {
  Shape out = call->tensor[0]->type->shape;
  int axis = axis_of(c, e, call, 0, &out);
  if (axis < 0) return error_type(c);
  call->attr.axis = axis;
  for (int i = 1; i < call->ntensors; i++) {
    Shape joined;
    const Shape *in[MAX_OPERANDS] = {&out, &call->tensor[i]->type->shape};
    char msg[256];
    if (op_infer_shape(OP_CONCAT, in, &call->attr, &joined, msg, sizeof msg) != 0) {
      diag_error(c->diag, call->tensor[i]->loc, "concat: %s", msg);
      return error_type(c);
    }
    out = joined;
  }
  if (shape_numel(&out) > NNC_MAX_NUMEL) {
    diag_error(c->diag, e->loc, "concat: the result is too large");
    return error_type(c);
  }
  return tensor_type(c, out);
}

/* slice(x, start, end, axis): Python's x[start:end] along the axis
 * (negative indices count from the end, bounds clamp), never empty. */
static Type *check_slice(Checker *c, Expr *e, Call *call) {
  const Shape *x = &call->tensor[0]->type->shape;
  int axis = axis_of(c, e, call, SLICE_AXIS, x);
  if (axis < 0) return error_type(c);
  int64_t len = x->dim[axis];
  int64_t at[2] = {(int64_t)call->num[SLICE_START],
                   call->given[SLICE_END] ? (int64_t)call->num[SLICE_END] : len};
  for (int k = 0; k < 2; k++) {
    if (at[k] < 0) at[k] += len;
    at[k] = at[k] < 0 ? 0 : at[k] > len ? len : at[k];
  }
  if (at[1] <= at[0]) {
    char sh[64];
    diag_error(c->diag, e->loc,
               "slice: start %lld and end %lld leave nothing of axis %d of %s (its indices are 0 to %lld)",
               (long long)call->num[SLICE_START],
               (long long)(call->given[SLICE_END] ? call->num[SLICE_END] : (double)len), axis,
               shape_str(x, false, sh, sizeof sh), (long long)len - 1);
    return error_type(c);
  }
  call->attr.axis = axis;
  call->attr.value = (double)at[0];
  call->attr.shape = *x;
  call->attr.shape.dim[axis] = at[1] - at[0];
  return tensor_type(c, call->attr.shape);
}

static Type *check_op_call(Checker *c, Expr *e, Call *call) {
  Op op = (Op)call->b->sub;
  if (op == OP_CONCAT) return check_concat(c, e, call);
  if (op == OP_SLICE) return check_slice(c, e, call);
  if (op == OP_DROPOUT) { /* the lowering makes the mask's key and step */
    call->attr.value = call->num[0];
    return tensor_type(c, call->tensor[0]->type->shape);
  }
  const Shape *in[MAX_OPERANDS] = {0};
  for (int k = 0; k < op_info[op].nin; k++) in[k] = &call->tensor[k]->type->shape;
  if (!op_attr(c, e, call, in[0])) return error_type(c);
  Shape out;
  char msg[256];
  if (op_infer_shape(op, in, &call->attr, &out, msg, sizeof msg) != 0) {
    /* the op table's messages may already start with the op's name */
    size_t n = strlen(call->b->name);
    if (strncmp(msg, call->b->name, n) == 0 && msg[n] == ' ')
      diag_error(c->diag, e->loc, "%s", msg);
    else
      diag_error(c->diag, e->loc, "%s: %s", call->b->name, msg);
    return error_type(c);
  }
  return tensor_type(c, out);
}

/* Is `name` how unnamed layers of some kind are numbered (linear2,
 * layer_norm1, conv1)? Such a name would collide with their parameters. */
static bool is_numbered_layer_name(const char *name) {
  for (size_t i = 0; i <= sizeof builtins / sizeof builtins[0]; i++) {
    /* the builtins' layers, and conv (conv1d and conv2d count together) */
    const char *prefix = i < sizeof builtins / sizeof builtins[0] ? builtins[i].name : "conv";
    if (i < sizeof builtins / sizeof builtins[0] && builtins[i].kind != B_LAYER) continue;
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) == 0 && name[n] && strspn(name + n, "0123456789") == strlen(name + n))
      return true;
  }
  return false;
}

/* A layer's name: given (an identifier no other layer has) or numbered. */
static bool check_layer_name(Checker *c, Expr *e, Call *call) {
  const char *kind = call->b->name;
  int slot = builtin_param(call->b, "name");
  const char *name = slot >= 0 ? call->str[slot] : NULL;
  if (!name) {
    c->unnamed_layers++;
    return true;
  }
  bool ok = name[0] != 0;
  for (const char *p = name; *p; p++)
    if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (p > name && *p >= '0' && *p <= '9')))
      ok = false;
  if (!ok) {
    diag_error(c->diag, e->loc, "%s: name \"%s\" must be an identifier", kind, name);
    return false;
  }
  if (is_numbered_layer_name(name)) {
    diag_error(c->diag, e->loc,
               "%s: the name \"%s\" is how unnamed layers are numbered; choose another", kind, name);
    return false;
  }
  if (strcmp(name, "optimizer") == 0) { /* its states would pass for the optimizer's (update.h) */
    diag_error(c->diag, e->loc,
               "%s: the name \"optimizer\" is kept for the optimizer's state in checkpoints (optimizer.*); "
               "choose another", kind);
    return false;
  }
  if (strmap_get(&c->layer_names, name)) {
    diag_error(c->diag, e->loc, "%s: a layer named \"%s\" already exists", kind, name);
    return false;
  }
  strmap_put(&c->layer_names, name, (void *)name);
  return true;
}

static Type *check_linear(Checker *c, Expr *e, Call *call) {
  const Type *x = call->tensor[0]->type;
  char s[64];
  int64_t in = x->shape.dim[x->shape.rank - 1];
  int64_t units = (int64_t)call->num[LINEAR_UNITS];
  if (units * in > NNC_MAX_NUMEL) {
    diag_error(c->diag, e->loc, "linear: a weight of %lld x %lld is too large (limit %lld elements)",
               (long long)units, (long long)in, (long long)NNC_MAX_NUMEL);
    return error_type(c);
  }
  Shape out = x->shape;
  out.dim[out.rank - 1] = units;
  if (shape_numel(&out) > NNC_MAX_NUMEL) {
    diag_error(c->diag, e->loc, "linear: output %s is too large",
               shape_str(&out, false, s, sizeof s));
    return error_type(c);
  }
  return tensor_type(c, out);
}

/* embedding(vocab, dim) on the indices of an input: the data's values,
 * checked row by row when the data is read (train.c), select the rows. */
static Type *check_embedding(Checker *c, Expr *e, Call *call) {
  const Expr *ids = call->tensor[0];
  const Type *x = ids->type;
  char s[64];
  if (ids->kind != E_NAME || !ids->sym || ids->sym->kind != S_INPUT) {
    diag_error(c->diag, ids->loc,
               "embedding: the indices must be an input (integers read from the data), not a computed value");
    return error_type(c);
  }
  if (x->shape.rank + 1 > MAX_RANK) {
    diag_error(c->diag, e->loc, "embedding: indices %s leave no axis for the rows (rank %d at most)",
               shape_str(&x->shape, false, s, sizeof s), MAX_RANK - 1);
    return error_type(c);
  }
  if (!check_layer_name(c, e, call)) return error_type(c);
  int64_t vocab = (int64_t)call->num[EMBEDDING_VOCAB], dim = (int64_t)call->num[EMBEDDING_DIM];
  Shape out = x->shape;
  out.dim[out.rank++] = dim;
  if (vocab * dim > NNC_MAX_NUMEL || shape_numel(&out) > NNC_MAX_NUMEL) {
    diag_error(c->diag, e->loc, "embedding: a table of %lld x %lld is too large (limit %lld elements)",
               (long long)vocab, (long long)dim, (long long)NNC_MAX_NUMEL);
    return error_type(c);
  }
  return tensor_type(c, out);
}

/* Slot i's numbers spread over the window's axes (one number: every
 * axis), into v[0..1] (a rank-1 window uses v[1]); false after an error. */
static bool window_sizes(Checker *c, Expr *e, const Call *call, int i, int rank, int64_t v[2]) {
  int n = call->nlist[i];
  if (n == 0) return true; /* not given: the caller's default */
  if (n != 1 && n != rank) {
    diag_error(c->diag, e->loc, "%s: '%s' takes one number or %d (one per spatial axis), got %d",
               call->b->name, call->b->params[i].name, rank, n);
    return false;
  }
  for (int d = 0; d < rank; d++) v[2 - rank + d] = call->list[i][n == 1 ? 0 : d];
  return true;
}

/* conv2d, conv1d, the poolings: the window over x from the arguments, with
 * the errors a user can make (rank, sizes, padding, an empty output). */
static Type *check_window_layer(Checker *c, Expr *e, Call *call, const Type *x) {
  LayerKind kind = (LayerKind)call->b->sub;
  bool conv = kind == LAYER_CONV2D || kind == LAYER_CONV1D;
  bool maxp = kind == LAYER_MAX_POOL2D || kind == LAYER_MAX_POOL1D;
  int rank = kind == LAYER_CONV2D || kind == LAYER_MAX_POOL2D || kind == LAYER_AVG_POOL2D ? 2 : 1;
  const char *f = call->b->name;
  char s0[64];
  shape_str(&x->shape, false, s0, sizeof s0);
  if (x->shape.rank != rank + 1) {
    diag_error(c->diag, e->loc, "%s needs a %s input (channels first), got %s%s", f,
               rank == 2 ? "[C, H, W]" : "[C, L]", s0,
               x->shape.rank == rank ? (rank == 2 ? "; for one channel declare it [1, H, W] or reshape it"
                                                  : "; for one channel declare it [1, L] or reshape it")
                                     : "");
    return error_type(c);
  }
  if (conv && !check_layer_name(c, e, call)) return error_type(c);
  int ki = conv ? CONV_KERNEL : POOL_KERNEL, si = conv ? CONV_STRIDE : POOL_STRIDE;
  int pi = conv ? CONV_PADDING : maxp ? POOL_PADDING : -1;
  Window w = {.rank = rank, .in = {1, 1}, .k = {1, 1}, .s = {1, 1}};
  for (int d = 0; d < rank; d++) w.in[2 - rank + d] = x->shape.dim[1 + d];
  if (!window_sizes(c, e, call, ki, rank, w.k)) return error_type(c);
  /* a pooling's stride defaults to its kernel */
  if (!conv && call->nlist[si] == 0) memcpy(w.s, w.k, sizeof w.s);
  if (!window_sizes(c, e, call, si, rank, w.s)) return error_type(c);
  bool same = pi >= 0 && call->str[pi];
  if (same) {
    if (w.s[0] != 1 || w.s[1] != 1) {
      diag_error(c->diag, e->loc,
                 "%s: padding \"same\" needs stride 1: with a stride above 1 the output is smaller than the "
                 "input whatever the padding; give the padding as a number",
                 f);
      return error_type(c);
    }
    for (int d = 0; d < 2; d++) { /* PyTorch's: an odd total puts the extra one at the end */
      w.pad[d] = (w.k[d] - 1) / 2;
      w.pad_end[d] = w.k[d] - 1 - w.pad[d];
    }
  } else if (pi >= 0) {
    if (!window_sizes(c, e, call, pi, rank, w.pad)) return error_type(c);
    memcpy(w.pad_end, w.pad, sizeof w.pad);
  }
  for (int d = 2 - rank; d < 2; d++) {
    const char *axis = rank == 1 ? "L" : d == 0 ? "H" : "W";
    if (maxp && 2 * w.pad[d] > w.k[d]) {
      diag_error(c->diag, e->loc, "%s: padding %lld is more than half the kernel %lld (windows would hold only padding)",
                 f, (long long)w.pad[d], (long long)w.k[d]);
      return error_type(c);
    }
    int64_t padded = w.in[d] + w.pad[d] + w.pad_end[d];
    if (w.k[d] > padded) {
      diag_error(c->diag, e->loc,
                 "%s: the kernel (%lld) is larger than the padded input along %s (%lld + %lld padding = %lld): "
                 "the output size would be floor((%lld - %lld) / %lld) + 1 = %lld; use a smaller kernel or more "
                 "padding",
                 f, (long long)w.k[d], axis, (long long)w.in[d], (long long)(w.pad[d] + w.pad_end[d]),
                 (long long)padded, (long long)padded, (long long)w.k[d], (long long)w.s[d],
                 (long long)((padded - w.k[d]) >= 0 ? (padded - w.k[d]) / w.s[d] + 1
                                                    : -((w.k[d] - padded + w.s[d] - 1) / w.s[d]) + 1));
      return error_type(c);
    }
  }
  call->attr.win = w;
  int64_t channels = conv ? (int64_t)call->num[CONV_CHANNELS] : x->shape.dim[0];
  /* (sizes in double: their products can overflow 64 bits) */
  double weight = conv ? (double)channels * (double)x->shape.dim[0] * (double)w.k[0] * (double)w.k[1] : 0;
  double out_numel = (double)channels * (double)window_out(&w, 0) * (double)window_out(&w, 1);
  /* the compiled code's im2col matrix: every tap at every output position */
  double cols = conv ? (double)x->shape.dim[0] * (double)w.k[0] * (double)w.k[1] * out_numel / (double)channels : 0;
  if (weight > (double)NNC_MAX_NUMEL || out_numel > (double)NNC_MAX_NUMEL || cols > (double)NNC_MAX_NUMEL) {
    diag_error(c->diag, e->loc, "%s: the %s is too large (limit %lld elements)", f,
               weight > (double)NNC_MAX_NUMEL ? "weight"
               : out_numel > (double)NNC_MAX_NUMEL ? "output"
                                                  : "matrix of its windows (input channels x kernel x output positions)",
               (long long)NNC_MAX_NUMEL);
    return error_type(c);
  }
  return tensor_type(c, window_shape(&w, channels, true));
}

/* reshape(x, shape: [...]) with one -1 filled in; flatten is reshape to [n]. */
static Type *check_reshape(Checker *c, Expr *e, Call *call, const Type *x) {
  int64_t numel = shape_numel(&x->shape);
  Shape out = shape1(numel);
  if (call->b->sub == LAYER_RESHAPE) {
    out.rank = call->nlist[RESHAPE_SHAPE];
    int64_t known = 1, unknown = -1;
    for (int d = 0; d < out.rank; d++) {
      out.dim[d] = call->list[RESHAPE_SHAPE][d];
      if (out.dim[d] >= 0) {
        known *= out.dim[d];
        if (known > NNC_MAX_NUMEL) known = NNC_MAX_NUMEL + 1;
      } else if (unknown >= 0) {
        diag_error(c->diag, e->loc, "reshape: only one entry of the shape may be -1");
        return error_type(c);
      } else {
        unknown = d;
      }
    }
    char s0[64], s1[96];
    shape_str(&x->shape, false, s0, sizeof s0);
    shape_str(&out, false, s1, sizeof s1);
    if (unknown >= 0) {
      if (numel % known) {
        diag_error(c->diag, e->loc, "reshape: %s holds %lld elements, which is not a multiple of %lld (the "
                   "product of %s without the -1)", s0, (long long)numel, (long long)known, s1);
        return error_type(c);
      }
      out.dim[unknown] = numel / known;
    } else if (known != numel) {
      diag_error(c->diag, e->loc, "reshape: the shape %s holds %lld elements, the input %s holds %lld", s1,
                 (long long)known, s0, (long long)numel);
      return error_type(c);
    }
  }
  call->attr.shape = out;
  return tensor_type(c, out);
}

static Type *check_layer_call(Checker *c, Expr *e, Call *call) {
  const Type *x = call->tensor[0]->type;
  if ((LayerKind)call->b->sub == LAYER_EMBEDDING) return check_embedding(c, e, call);
  switch ((LayerKind)call->b->sub) {
  case LAYER_CONV2D: case LAYER_CONV1D: case LAYER_MAX_POOL2D: case LAYER_MAX_POOL1D: case LAYER_AVG_POOL2D:
  case LAYER_AVG_POOL1D:
    return check_window_layer(c, e, call, x);
  case LAYER_FLATTEN: case LAYER_RESHAPE:
    return check_reshape(c, e, call, x);
  case LAYER_LINEAR: case LAYER_LAYER_NORM: case LAYER_BATCH_NORM: case LAYER_EMBEDDING: case LAYER_KINDS:
    break;
  }
  if (x->shape.rank < 1) {
    diag_error(c->diag, e->loc, "%s needs a vector or matrix input, got a scalar", call->b->name);
    return error_type(c);
  }
  if (!check_layer_name(c, e, call)) return error_type(c);
  switch ((LayerKind)call->b->sub) {
  case LAYER_LINEAR: return check_linear(c, e, call);
  case LAYER_LAYER_NORM: return tensor_type(c, x->shape); /* normalizes the last axis */
  case LAYER_BATCH_NORM: return tensor_type(c, x->shape); /* normalizes each channel (axis 0) */
  case LAYER_EMBEDDING: case LAYER_KINDS: break;
  case LAYER_CONV2D: case LAYER_CONV1D: case LAYER_MAX_POOL2D: case LAYER_MAX_POOL1D: case LAYER_AVG_POOL2D:
  case LAYER_AVG_POOL1D: case LAYER_FLATTEN: case LAYER_RESHAPE:
    break;
  }
  return error_type(c);
}

/* where(c, a, b): the three shapes broadcast together. */
static Type *check_where_call(Checker *c, Expr *e, Call *call) {
  const Shape *cond = &call->tensor[0]->type->shape;
  const Shape *pick[2] = {cond, &call->tensor[1]->type->shape};
  Shape first, out;
  char msg[256], s0[64], s1[64], s2[64];
  if (op_infer_shape(OP_KEEP_POS, pick, &(OpAttr){0}, &first, msg, sizeof msg) != 0 ||
      op_infer_shape(OP_KEEP_NONPOS, (const Shape *[]){&first, &call->tensor[2]->type->shape},
                     &(OpAttr){0}, &out, msg, sizeof msg) != 0) {
    diag_error(c->diag, e->loc, "where: shapes %s, %s and %s do not broadcast",
               shape_str(cond, false, s0, sizeof s0),
               shape_str(&call->tensor[1]->type->shape, false, s1, sizeof s1),
               shape_str(&call->tensor[2]->type->shape, false, s2, sizeof s2));
    return error_type(c);
  }
  return tensor_type(c, out);
}

static Type *check_loss_call(Checker *c, Expr *e, Call *call) {
  const Type *y = call->tensor[0]->type, *t = call->tensor[1]->type;
  char s0[64], s1[64];
  /* a one-element tensor stands for a scalar: mse(sum(h), t) with t[1] */
  bool one = shape_numel(&y->shape) == 1 && shape_numel(&t->shape) == 1;
  if (!shape_eq(&y->shape, &t->shape) && !one) {
    diag_error(c->diag, e->loc, "%s: prediction %s and target %s must have the same shape",
               call->b->name, shape_str(&y->shape, false, s0, sizeof s0),
               shape_str(&t->shape, false, s1, sizeof s1));
    return error_type(c);
  }
  if (call->b->sub == LOSS_CROSS_ENTROPY && y->shape.rank < 1) {
    diag_error(c->diag, e->loc, "cross_entropy needs logits with at least one axis");
    return error_type(c);
  }
  return tensor_type(c, shape0());
}

static Type *check_call(Checker *c, Expr *e) {
  const Builtin *b = builtin_lookup(e->text);
  if (!b) {
    if (find_sym(c, e->text))
      diag_error(c->diag, e->loc, "'%s' is a value, not an op; it cannot be called", e->text);
    else
      diag_error(c->diag, e->loc, "unknown op '%s'%s", e->text,
                 suggest(c, e->text, 1u << B_OP | 1u << B_WHERE | 1u << B_LAYER | 1u << B_LOSS, false));
    for (Arg *a = e->args; a; a = a->next)
      if (!a->name) check_expr(c, a->value);
    return error_type(c);
  }
  if (b->kind != B_OP && b->kind != B_WHERE && b->kind != B_LAYER && b->kind != B_LOSS) {
    diag_error(c->diag, e->loc, "'%s' is %s; it belongs in the train block", e->text,
               kind_noun(b->kind));
    return error_type(c);
  }
  Call *call = resolve_call(c, e, b, true);
  if (!call) return error_type(c);
  e->call = call;
  switch (b->kind) {
  case B_OP: return check_op_call(c, e, call);
  case B_WHERE: return check_where_call(c, e, call);
  case B_LAYER: return check_layer_call(c, e, call);
  case B_LOSS: return check_loss_call(c, e, call);
  case B_INIT: case B_DATA: case B_OPTIM: case B_SCHEDULE: break;
  }
  return error_type(c);
}

static Type *check_binop(Checker *c, Expr *e) {
  Type *a = check_expr(c, e->lhs);
  Type *b = check_expr(c, e->rhs);
  if (a->kind == TY_ERROR || b->kind == TY_ERROR) return error_type(c);
  if (a->kind != TY_TENSOR || b->kind != TY_TENSOR) {
    diag_error(c->diag, e->loc, "'%c' needs numbers or tensors on both sides", e->op);
    return error_type(c);
  }
  if (e->op == '^') {
    if (!b->is_const || !isfinite(b->value)) {
      diag_error(c->diag, e->rhs->loc, "the exponent of ^ must be a constant number");
      return error_type(c);
    }
    Type *t = tensor_type(c, a->shape);
    /* fold constants (when the result is a finite number, as const_value) */
    if (a->is_const && isfinite(pow(a->value, b->value))) {
      t->is_const = true;
      t->value = pow(a->value, b->value);
    }
    return t;
  }
  Op op = e->op == '+' ? OP_ADD : e->op == '-' ? OP_SUB : e->op == '*' ? OP_MUL
        : e->op == '/' ? OP_DIV : OP_MATMUL;
  const Shape *in[2] = {&a->shape, &b->shape};
  Shape out;
  char msg[256];
  if (op_infer_shape(op, in, &(OpAttr){0}, &out, msg, sizeof msg) != 0) {
    diag_error(c->diag, e->loc, "%s", msg);
    return error_type(c);
  }
  Type *t = tensor_type(c, out);
  double v;
  if (a->is_const && b->is_const && const_value(e, &v)) {
    t->is_const = true;
    t->value = v;
  }
  return t;
}

static Type *check_expr_kind(Checker *c, Expr *e) {
  switch (e->kind) {
  case E_NUM: {
    Type *t = tensor_type(c, shape0());
    t->is_const = true;
    t->value = e->num;
    return t;
  }
  case E_STR:
    diag_error(c->diag, e->loc, "a string is not a tensor");
    return error_type(c);
  case E_LIST:
    diag_error(c->diag, e->loc, "a list is not a tensor (lists are argument values, as in kernel: [3, 5])");
    return error_type(c);
  case E_NAME: {
    Symbol *s = find_sym(c, e->text);
    /* a name whose definition was wrong is already reported: stay quiet */
    if (s) {
      e->sym = s;
      return s->type.kind == TY_ERROR ? error_type(c) : tensor_type(c, s->type.shape);
    }
    const Builtin *b = builtin_lookup(e->text);
    if (b && (b->kind == B_OP || b->kind == B_WHERE || b->kind == B_LAYER || b->kind == B_LOSS))
      diag_error(c->diag, e->loc, "'%s' is %s: call it, as %s(x) or x -> %s", e->text,
                 kind_noun(b->kind), e->text, e->text);
    else if (b)
      diag_error(c->diag, e->loc, "'%s' is %s; it belongs in the train block", e->text,
                 kind_noun(b->kind));
    else
      undefined_name(c, e->loc, e->text);
    return error_type(c);
  }
  case E_CALL:
    return check_call(c, e);
  case E_BINOP:
    return check_binop(c, e);
  case E_NEG: {
    Type *a = check_expr(c, e->lhs);
    if (a->kind != TY_TENSOR) return a;
    Type *t = tensor_type(c, a->shape);
    t->is_const = a->is_const;
    t->value = -a->value;
    return t;
  }
  }
  return error_type(c);
}

static Type *check_expr(Checker *c, Expr *e) {
  if (!e->type) e->type = check_expr_kind(c, e);
  return e->type;
}

/* ---- model statements ---- */

static const char *const train_keys[] = {"data",   "valid",  "split",   "init",     "optimizer",
                                         "epochs", "batch",  "shuffle", "seed",     "schedule",
                                         "clip_norm", "early_stop"};

/* The shape written in a declaration: `x[2, 3]`, `s` (scalar) or `s[]`. */
static bool decl_shape(Checker *c, Stmt *s, Shape *out) {
  *out = shape0();
  if (s->rank < 0) return true;
  if (s->ndims > MAX_RANK) {
    diag_error(c->diag, s->dims[MAX_RANK]->loc, "'%s' has %d dimensions; at most %d are supported",
               s->name, s->ndims, MAX_RANK);
    return false;
  }
  out->rank = s->ndims;
  int64_t numel = 1;
  for (int i = 0; i < s->ndims; i++) {
    Expr *d = s->dims[i];
    if (!d->is_int && d->num != floor(d->num)) {
      diag_error(c->diag, d->loc, "a dimension must be a whole number, got %s", d->text);
      return false;
    }
    if (d->num < 1) {
      diag_error(c->diag, d->loc, "a dimension must be at least 1, got %s", d->text);
      return false;
    }
    if (d->num > (double)NNC_MAX_DIM) {
      diag_error(c->diag, d->loc, "dimension %s is too large (limit %lld)", d->text,
                 (long long)NNC_MAX_DIM);
      return false;
    }
    out->dim[i] = (int64_t)d->num;
    numel *= out->dim[i];
    if (numel > NNC_MAX_NUMEL) {
      diag_error(c->diag, d->loc, "'%s' has too many elements (limit %lld)", s->name,
                 (long long)NNC_MAX_NUMEL);
      return false;
    }
  }
  return true;
}

static void check_init_expr(Checker *c, Expr *e, Call **out) {
  const char *name = e->kind == E_NAME || e->kind == E_CALL ? e->text : NULL;
  const Builtin *b = name ? builtin_lookup(name) : NULL;
  if (!b || b->kind != B_INIT) {
    if (name)
      diag_error(c->diag, e->loc,
                 "'%s' is not an initializer; use one such as normal(std: 0.1) or xavier_normal%s",
                 name, suggest(c, name, 1u << B_INIT, false));
    else
      diag_error(c->diag, e->loc, "expected an initializer such as normal(std: 0.1) or xavier_normal");
    return;
  }
  *out = e->kind == E_CALL ? resolve_call(c, e, b, false) : resolve_call(c, &(Expr){.kind = E_CALL, .loc = e->loc, .text = name}, b, false);
  e->call = *out;
}

static void check_model_stmt(Checker *c, Program *p, Stmt *s) {
  Shape shape;
  switch (s->kind) {
  case S_DTYPE:
    if (c->dtype) {
      diag_error(c->diag, s->loc, "the dtype is already set (on line %d)", c->dtype->loc.line);
      return;
    }
    c->dtype = s;
    if (strcmp(s->name, "f32") == 0)
      p->dtype = DT_F32;
    else if (strcmp(s->name, "f64") == 0)
      p->dtype = DT_F64;
    else
      diag_error(c->diag, s->name_loc, "unknown dtype '%s' (use f32 or f64)", s->name);
    return;
  case S_INPUT: case S_TARGET: case S_PARAM: {
    bool ok = decl_shape(c, s, &shape);
    if (ok && s->kind == S_PARAM && s->value) {
      Call *call = NULL;
      int before = c->diag->errors;
      check_init_expr(c, s->value, &call);
      ok = c->diag->errors == before;
    }
    if (!check_new_name(c, s->name, s->name_loc)) return;
    /* a wrong declaration still binds the name (as an error), so its uses
       are not reported again as undefined */
    s->sym = add_sym(c, s->name, s->kind, s->name_loc, ok ? tensor_type(c, shape) : error_type(c));
    return;
  }
  case S_LET: {
    Type *t = check_expr(c, s->value);
    if (!check_new_name(c, s->name, s->loc)) return;
    /* an erroneous value is bound as such: its uses stay quiet */
    s->sym = add_sym(c, s->name, S_LET, s->loc, t);
    return;
  }
  case S_LOSS: {
    if (p->loss) {
      diag_error(c->diag, s->loc, "a model has exactly one loss (the first is on line %d)",
                 p->loss->loc.line);
      return;
    }
    p->loss = s;
    Type *t = check_expr(c, s->value);
    char sh[64];
    if (t->kind == TY_TENSOR && shape_numel(&t->shape) != 1)
      diag_error(c->diag, s->value->loc,
                 "the loss must be a scalar per sample, got shape %s (reduce it with sum or mean)",
                 shape_str(&t->shape, false, sh, sizeof sh));
    return;
  }
  case S_OUTPUT:
    if (p->output) {
      diag_error(c->diag, s->loc, "the output is already set to '%s'", p->output->name);
      return;
    }
    s->sym = find_sym(c, s->name);
    if (!s->sym) {
      undefined_name(c, s->name_loc, s->name);
      return;
    }
    p->output = s->sym;
    return;
  case S_SETTING:
    for (size_t i = 0; i < sizeof train_keys / sizeof train_keys[0]; i++)
      if (strcmp(s->name, train_keys[i]) == 0) {
        diag_error(c->diag, s->loc, "'%s' is a train setting; it belongs in the train block",
                   s->name);
        return;
      }
    diag_error(c->diag, s->loc, "'%s' is not a model statement (did you mean '%s = ...'?)",
               s->name, s->name);
    return;
  }
}

/* ---- the train block ---- */


static Call *setting_call(Checker *c, Stmt *s, BuiltinKind kind, const char *example) {
  Expr *e = s->value;
  const char *name = e->kind == E_NAME || e->kind == E_CALL ? e->text : NULL;
  const Builtin *b = name ? builtin_of_kind(name, kind) : NULL;
  if (!b) {
    /* the kind's names, "sgd, adam, adamw or rmsprop" */
    char all[256] = "";
    size_t count = 0, len = 0, total = 0;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) total += builtins[i].kind == kind;
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0] && len < sizeof all; i++)
      if (builtins[i].kind == kind)
        len += (size_t)snprintf(all + len, sizeof all - len, "%s%s", count++ == 0 ? "" : count == total ? " or " : ", ",
                                builtins[i].name);
    if (name)
      diag_error(c->diag, e->loc, "'%s' expects %s (%s) such as %s, got '%s'%s", s->name, kind_noun(kind), all,
                 example, name, !builtin_lookup(name) ? suggest(c, name, 1u << kind, false) : "");
    else
      diag_error(c->diag, e->loc, "'%s' expects %s (%s) such as %s", s->name, kind_noun(kind), all, example);
    return NULL;
  }
  Expr call_expr = {.kind = E_CALL, .loc = e->loc, .text = name};
  Call *call = resolve_call(c, e->kind == E_CALL ? e : &call_expr, b, false);
  e->call = call;
  return call;
}

static bool setting_int(Checker *c, Stmt *s, int64_t lo, int64_t hi, int64_t *out) {
  double v;
  if (!const_value(s->value, &v)) {
    diag_error(c->diag, s->value->loc, "'%s' must be a whole number", s->name);
    return false;
  }
  if (v != floor(v)) {
    diag_error(c->diag, s->value->loc, "'%s' must be a whole number, got %g", s->name, v);
    return false;
  }
  if (v < (double)lo || v > (double)hi) {
    char shown[32];
    fmt_number(shown, sizeof shown, v); /* (%g showed 100000001 as 1e+08, the limit itself) */
    diag_error(c->diag, s->value->loc, "'%s' must be between %lld and %lld, got %s", s->name,
               (long long)lo, (long long)hi, shown);
    return false;
  }
  *out = (int64_t)v;
  return true;
}

/* A data file's path relative to the .nn file's directory dir (absolute
 * paths as they are); NULL, reported, when it is empty. */
static const char *data_path(Checker *c, Stmt *s, const char *dir, const char *what, const char *path) {
  if (!path || !path[0]) {
    diag_error(c->diag, s->value->loc, "%s is empty", what);
    return NULL;
  }
  return path[0] == '/' || !dir[0] ? path : arena_printf(c->arena, "%s/%s", dir, path);
}

static void data_setting(Checker *c, Stmt *s, DataSpec *d, const char *dir) {
  Call *call = setting_call(c, s, B_DATA, "moons(samples: 1000, noise: 0.1) or csv(\"file.csv\")");
  if (!call) return;
  d->kind = (DataKind)call->b->sub;
  d->loc = s->value->loc;
  switch (d->kind) {
  case DATA_MOONS: case DATA_CIRCLES:
    d->samples = (int64_t)call->num[0];
    d->noise = call->num[1];
    if (d->kind == DATA_CIRCLES) d->factor = call->num[2];
    d->seed = (uint64_t)call->num[seed_slot(call->b)];
    d->has_seed = call->given[seed_slot(call->b)];
    break;
  case DATA_CSV: {
    d->path = data_path(c, s, dir, "csv: the path", call->str[0]);
    if (!d->path) return;
    d->onehot = call->num[1] != 0;
    d->shuffle = call->num[2] != 0;
    d->has_seed = call->given[seed_slot(call->b)];
    d->seed = (uint64_t)call->num[seed_slot(call->b)];
    break;
  }
  case DATA_IDX:
    d->path = data_path(c, s, dir, "idx: the images path", call->str[0]);
    d->labels = data_path(c, s, dir, "idx: the labels path", call->str[1]);
    d->scale = call->given[2] ? call->num[2] : NAN;
    break;
  case DATA_NONE:
    break;
  }
}

/* `optimizer NAME(...)`: the slots by name, so each optimizer's own list. */
static void optimizer_setting(Checker *c, Stmt *s, OptimSpec *o) {
  Call *call = setting_call(c, s, B_OPTIM, "sgd(lr: 0.05) or adamw(lr: 0.001)");
  if (!call) return;
  const Builtin *b = call->b;
  double clip = o->clip_norm; /* its own key */
  memset(o, 0, sizeof *o);
  o->clip_norm = clip;
  o->kind = (OptimKind)b->sub;
  int i;
#define SLOT(field, name) if ((i = builtin_param(b, name)) >= 0) o->field = call->num[i]
  SLOT(lr, "lr");
  SLOT(momentum, "momentum");
  SLOT(weight_decay, "weight_decay");
  SLOT(nesterov, "nesterov");
  SLOT(beta1, "beta1");
  SLOT(beta2, "beta2");
  SLOT(eps, "eps");
  SLOT(alpha, "alpha");
  SLOT(centered, "centered");
#undef SLOT
  if ((o->kind == OPTIM_ADAM || o->kind == OPTIM_ADAMW) && (o->beta1 >= 1 || o->beta2 >= 1))
    diag_error(c->diag, s->value->loc, "%s: beta1 and beta2 must be below 1", b->name);
  if (o->nesterov && o->momentum == 0)
    diag_error(c->diag, s->value->loc, "sgd: nesterov needs a momentum above 0 (as torch.optim.SGD)");
  if (o->kind == OPTIM_RMSPROP && o->alpha >= 1)
    diag_error(c->diag, s->value->loc, "rmsprop: alpha must be below 1 (the square average would stay 0)");
}

static void check_setting(Checker *c, Program *p, Stmt *s, const char *dir) {
  TrainConfig *tc = &p->train;
  const char *k = s->name;
  if (strcmp(k, "data") == 0) {
    data_setting(c, s, &tc->data, dir);
  } else if (strcmp(k, "valid") == 0) {
    data_setting(c, s, &tc->valid, dir);
  } else if (strcmp(k, "split") == 0) {
    double v;
    if (!const_value(s->value, &v) || v <= 0 || (v >= 1 && v != floor(v)) ||
        v > (double)NNC_DATA_MAX_ROWS) {
      diag_error(c->diag, s->value->loc,
                 "'split' must be a number of rows (like 320) or a fraction between 0 and 1 (like 0.8)");
      return;
    }
    tc->has_split = true;
    tc->split = v;
    tc->split_fraction = v < 1;
  } else if (strcmp(k, "init") == 0) {
    Call *call = setting_call(c, s, B_INIT, "xavier_normal(seed: 0)");
    if (!call) return;
    tc->init = init_spec(call);
  } else if (strcmp(k, "optimizer") == 0) {
    optimizer_setting(c, s, &tc->optim);
  } else if (strcmp(k, "schedule") == 0) {
    Call *call = setting_call(c, s, B_SCHEDULE, "cosine(min_lr: 0) or step(every: 10, gamma: 0.5)");
    if (!call) return;
    ScheduleSpec *sc = &tc->schedule;
    sc->kind = (ScheduleKind)call->b->sub;
    sc->warmup = (int64_t)call->num[builtin_param(call->b, "warmup")];
    if (sc->kind == SCHED_STEP) sc->every = (int64_t)call->num[0], sc->gamma = call->num[1];
    if (sc->kind == SCHED_COSINE) sc->min_lr = call->num[0];
  } else if (strcmp(k, "clip_norm") == 0) {
    double v;
    if (!const_value(s->value, &v) || !(v > 0) || v > 1e300) {
      diag_error(c->diag, s->value->loc, "'clip_norm' must be a positive number (the largest gradient norm a step keeps)");
      return;
    }
    tc->optim.clip_norm = v;
  } else if (strcmp(k, "early_stop") == 0) {
    setting_int(c, s, 1, NNC_MAX_EPOCHS, &tc->early_stop);
  } else if (strcmp(k, "epochs") == 0) {
    setting_int(c, s, 0, NNC_MAX_EPOCHS, &tc->epochs);
  } else if (strcmp(k, "batch") == 0) {
    setting_int(c, s, 1, NNC_MAX_BATCH, &tc->batch);
  } else if (strcmp(k, "seed") == 0) {
    int64_t v;
    if (setting_int(c, s, 0, INT64_MAX / 2, &v)) {
      tc->seed = (uint64_t)v;
      tc->has_seed_key = true;
    }
  } else if (strcmp(k, "shuffle") == 0) {
    const Expr *e = s->value;
    if (e->kind != E_NAME || (strcmp(e->text, "true") && strcmp(e->text, "false"))) {
      diag_error(c->diag, e->loc, "'shuffle' must be true or false");
      return;
    }
    tc->shuffle = strcmp(e->text, "true") == 0;
  }
}

static void check_train_block(Checker *c, Program *p, Block *b, const char *dir) {
  const char *seen[16] = {0};
  int nseen = 0;
  const Stmt *early_stop = NULL;
  for (Stmt *s = b->stmts; s; s = s->next) {
    if (s->kind != S_SETTING) {
      const char *kw = s->kind == S_LET ? NULL : s->kind == S_DTYPE ? "dtype"
                     : s->kind == S_INPUT ? "input" : s->kind == S_TARGET ? "target"
                     : s->kind == S_PARAM ? "param" : s->kind == S_LOSS ? "loss" : "output";
      if (kw)
        diag_error(c->diag, s->loc, "'%s' belongs in the model block, not the train block", kw);
      else
        diag_error(c->diag, s->loc, "bindings belong in the model block, not the train block");
      continue;
    }
    bool known = false;
    for (size_t i = 0; i < sizeof train_keys / sizeof train_keys[0]; i++)
      if (strcmp(s->name, train_keys[i]) == 0) known = true;
    if (!known) {
      Closest best = closest_start(s->name, 2);
      for (size_t i = 0; i < sizeof train_keys / sizeof train_keys[0]; i++)
        closest_offer(&best, train_keys[i]);
      diag_error(c->diag, s->loc, "unknown train setting '%s'%s%s%s", s->name,
                 best.best ? " (did you mean '" : "", best.best ? best.best : "",
                 best.best ? "'?)" : "");
      continue;
    }
    bool dup = false;
    for (int i = 0; i < nseen; i++)
      if (strcmp(seen[i], s->name) == 0) dup = true;
    if (dup) {
      diag_error(c->diag, s->loc, "'%s' is set twice", s->name);
      continue;
    }
    if (nseen < 16) seen[nseen++] = s->name;
    check_setting(c, p, s, dir);
    if (strcmp(s->name, "early_stop") == 0) early_stop = s;
  }
  const TrainConfig *tc = &p->train;
  if (early_stop && tc->early_stop && !tc->has_split && tc->valid.kind == DATA_NONE)
    diag_error(c->diag, early_stop->loc,
               "early_stop watches the validation loss: add `valid` or `split` to the train block");
}

/* Data generators make 2 inputs and a 0/1 label (or its one-hot pair); the
 * idx source needs an input for its images and a target for its labels
 * (their sizes are in the files, checked when they are read). */
static void check_data_fits(Checker *c, const DataSpec *d) {
  if (d->kind != DATA_MOONS && d->kind != DATA_CIRCLES && d->kind != DATA_IDX) return;
  int64_t in = 0, tg = 0;
  for (int i = 0; i < c->syms.len; i++) {
    const Symbol *s = c->syms.items[i];
    if (s->type.kind == TY_ERROR) return; /* a wrong declaration: reported */
    if (s->kind == S_INPUT) in += shape_numel(&s->type.shape);
    if (s->kind == S_TARGET) tg += shape_numel(&s->type.shape);
  }
  if (d->kind == DATA_IDX) {
    if (in == 0 || tg == 0)
      diag_error(c->diag, d->loc, "idx reads an image and a label per row; the model needs an input and a target");
    return;
  }
  const char *name = d->kind == DATA_MOONS ? "moons" : "circles";
  if (in != 2)
    diag_error(c->diag, d->loc, "%s makes 2 input values per row; the model's inputs hold %lld",
               name, (long long)in);
  else if (tg != 1 && tg != 2)
    diag_error(c->diag, d->loc,
               "%s makes a 0/1 label per row (target [1], or [2] one-hot); the model's targets hold %lld",
               name, (long long)tg);
}

static void set_defaults(Program *p) {
  TrainConfig *tc = &p->train;
  memset(tc, 0, sizeof *tc);
  tc->init.kind = NNC_INIT_XAVIER_NORMAL;
  tc->optim.kind = OPTIM_SGD;
  tc->optim.lr = 0.01;
  tc->epochs = 1;
  tc->batch = 1;
}

int check_program(const Ast *ast, const Source *src, Diag *diag, Arena *arena,
                  Program *out) {
  int errors_before = diag->errors;
  memset(out, 0, sizeof *out);
  out->src = src;
  out->dtype = DT_F32;
  set_defaults(out);
  /* A file that did not parse is not checked: error recovery drops
     statements, and checking what is left would report their absence
     (undefined names, a missing loss or model) as more errors. */
  if (diag->errors > 0) return 0;
  Checker c = {.arena = arena, .diag = diag, .src = src};

  /* the .nn file's directory, for csv paths */
  const char *slash = strrchr(src->path, '/');
  const char *dir = slash ? arena_strndup(arena, src->path, (size_t)(slash - src->path)) : "";
  if (slash == src->path) dir = "/";

  Block *train = NULL;
  for (Block *b = ast->blocks; b; b = b->next) {
    if (b->is_model) {
      if (out->model) {
        diag_error(diag, b->loc, "a file holds one model block (the first is on line %d)",
                   out->model->loc.line);
        continue;
      }
      out->model = b;
      out->model_name = b->name;
      c.model = b;
    } else {
      if (train) {
        diag_error(diag, b->loc, "a file holds one train block (the first is on line %d)",
                   train->loc.line);
        continue;
      }
      train = b;
    }
  }
  if (!out->model) {
    if (diag->errors == errors_before)
      diag_error(diag, (Loc){0, 0}, "no model block: a .nn file needs `model NAME { ... }`");
    return diag->errors - errors_before;
  }
  for (Stmt *s = out->model->stmts; s; s = s->next) check_model_stmt(&c, out, s);
  if (!out->loss)
    diag_error(diag, out->model->loc, "model '%s' has no loss statement (e.g. `loss squared(y, t)`)",
               out->model_name);
  if (train) {
    out->has_train_block = true;
    check_train_block(&c, out, train, dir);
    check_data_fits(&c, &out->train.data);
    check_data_fits(&c, &out->train.valid);
  }
  out->nsymbols = c.syms.len;
  ptrvec_free(&c.syms);
  strmap_free(&c.sym_index);
  strmap_free(&c.layer_names);
  return diag->errors - errors_before;
}
