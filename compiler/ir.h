/*
 * ir.h - the IR graph: the centre every stage reads.
 *
 * A Graph is a list of Nodes in topological order (every operand comes
 * before its users). A node is one primitive op (ops.def) with a static
 * per-sample shape, and a `batched` flag: batched values hold one tensor
 * per row of the batch (inputs, targets and everything computed from them);
 * the others (parameters, optimizer state, constants) are the same for every
 * row. The user writes per-sample math; the batch is this flag. A batched
 * value's gradient flowing into a per-batch value is summed over the rows
 * (BATCH_SUM), which is where "the batch loss is the mean of per-sample
 * losses" becomes arithmetic.
 *
 * One graph holds forward, backward and update nodes (the `role`); the
 * outputs say which node is what. Nodes are arena-allocated and never freed
 * one by one; passes build new graphs.
 *
 *   Graph *g = graph_new(arena, DT_F64);
 *   Node *x = node_leaf(g, OP_INPUT, shape1(2), "x", loc);
 *   ...
 */
#ifndef NNC_IR_H
#define NNC_IR_H

#include <stdbool.h>
#include <stdint.h>

#include "diag.h"
#include "util.h"

typedef enum Op {
#define OP(e, name, nin, cls, attr, call) OP_##e,
#include "ops.def"
#undef OP
  OP_COUNT
} Op;

typedef enum OpClass {
  OPC_LEAF,       /* no operands: the shape is the node's own */
  OPC_UNARY,      /* elementwise, one operand */
  OPC_BINARY,     /* elementwise, two operands, numpy broadcasting */
  OPC_REDUCE,     /* over `axis`, or every element */
  OPC_LASTREDUCE, /* over the last axis, from its max m and sum of exp(x - m) */
  OPC_LASTAXIS,   /* along the last axis, shape preserving, from the same */
  OPC_MATMUL, OPC_OUTER, OPC_TRANSPOSE, OPC_BROADCAST, OPC_RESHAPE, OPC_SUM_TO,
  OPC_CONCAT,     /* two operands joined along `axis` */
  OPC_SLICE,      /* a range of indices along `axis` (a view) */
  OPC_DROPOUT,    /* operand a masked at random in training (b: the step), else a */
  OPC_MODE,       /* operand a in training functions, b in evaluation functions */
  OPC_GATHER,     /* rows of a table (operand 0) at indices (operand 1) */
  OPC_SCATTER,    /* the reverse: rows added into a table, summed over the batch */
  OPC_BATCH,      /* across the rows of the batch */
  OPC_MOMENTS,    /* per-channel statistics across the rows (batch_norm) */
  OPC_WINDOW,     /* a window sliding over the spatial axes of [C,H,W] or
                     [C,L]: convolutions, pooling and their gradients */
  OPC_WINDOW2     /* the same with two operands */
} OpClass;

/* Which field of OpAttr an op reads. */
typedef enum OpAttrKind {
  A_NONE, A_VALUE, A_AXIS, A_SHAPE,
  A_RANGE, /* axis, the first index (value) and the result's shape */
  A_MASK,  /* a dropout's rate (value) and the key of its masks (axis) */
  A_WINDOW /* a window's geometry (win) */
} OpAttrKind;

/* The most operands an op has (Node.in). */
enum { MAX_OPERANDS = 2 };

typedef struct OpInfo {
  const char *name;
  int nin;
  OpClass cls;
  OpAttrKind attr;
} OpInfo;

extern const OpInfo op_info[OP_COUNT];

typedef enum DType { DT_F32, DT_F64 } DType;
const char *dtype_name(DType dt);

enum { MAX_RANK = 4, AXIS_ALL = 99 };

/* Limits that refuse absurd sizes before anything is allocated. */
#define NNC_MAX_DIM ((int64_t)1 << 24)
#define NNC_MAX_NUMEL ((int64_t)1 << 28)
/* The most memory a run may ask for: the parameter buffer and a batch of
 * intermediates (the interpreter's every node, the compiled code's
 * workspace) */
#define NNC_MAX_MEMORY (16.0 * (1 << 30))

typedef struct Shape {
  int rank;
  int64_t dim[MAX_RANK];
} Shape;

Shape shape0(void);
Shape shape1(int64_t a);
Shape shape2(int64_t a, int64_t b);
int64_t shape_numel(const Shape *s);
bool shape_eq(const Shape *a, const Shape *b);
/* "[4,2]"; with batched, "[B,4,2]". Returns buf. */
char *shape_str(const Shape *s, bool batched, char *buf, size_t n);

/* The geometry of a sliding window over the spatial axes of a per-sample
 * value: [C, H, W] (rank 2) or [C, L] (rank 1, kept as H = 1 with a
 * window of height 1, so every kernel is written once for two axes). */
typedef struct Window {
  int rank;            /* spatial axes: 1 or 2 */
  int64_t in[2];       /* the input's H, W (1, L for rank 1) */
  int64_t k[2], s[2];  /* kernel and stride per axis */
  int64_t pad[2];      /* padding before each axis */
  int64_t pad_end[2];  /* and after it (more than pad for an odd "same") */
} Window;

/* The output size of window axis d: floor((in + pads - k) / s) + 1. */
int64_t window_out(const Window *w, int d);
/* The spatial shape [H, W] or [L] of n channels of the input or output. */
Shape window_shape(const Window *w, int64_t channels, bool output);

/* Op attributes: the op's OpAttrKind says which field it reads. */
typedef struct OpAttr {
  double value; /* A_VALUE: CONST value, POW exponent, slopes, thresholds */
  int axis;     /* A_AXIS: an axis of the input or AXIS_ALL */
  Shape shape;  /* A_SHAPE: BROADCAST/RESHAPE/SUM_TO target; leaves: their shape;
                   A_RANGE: the slice's shape */
  Window win;   /* A_WINDOW */
} OpAttr;

/* Does dropout with this key, at this training step, keep element `elem`
 * (row-major, rows after each other) of its operand? The same in the
 * interpreter and compiled code: a hash of the four, as a uniform number
 * in [0, 1), at least the rate. */
bool dropout_keeps(uint32_t key, uint64_t step, uint64_t elem, double rate);
/* The hash behind it (codegen writes the same arithmetic in IR). */
uint64_t dropout_hash(uint32_t key, uint64_t step, uint64_t elem);
/* The state that holds the step: one for all of a model's dropouts. */
#define DROPOUT_STEP_NAME "dropout.step"

/* The shape rule of every op: out = shape of op(in...), or -1 with a
 * message saying what is wrong (for the checker's diagnostics). */
int op_infer_shape(Op op, const Shape *in[], const OpAttr *attr, Shape *out,
                   char *msg, size_t msglen);

typedef enum Role { ROLE_FORWARD, ROLE_BACKWARD, ROLE_UPDATE } Role;

/* Where a backward node came from, for --emit grad's "via": the forward op
 * whose derivative rule made it and that op's source. A copy, not a
 * pointer, so it outlives the forward node when a pass removes that. */
typedef struct Via {
  bool set;
  Op op;
  Loc loc;
} Via;

typedef struct Node Node;
struct Node {
  int id; /* index in graph->nodes */
  Op op;
  Node *in[MAX_OPERANDS];
  OpAttr attr;
  Shape shape;  /* per sample */
  bool batched; /* one value per batch row */
  Role role;
  const char *name; /* user binding, parameter name or d.NAME; may be NULL */
  Loc loc;          /* the .nn source this node came from */
  /* provenance of backward nodes, for --emit grad */
  Via via;       /* the rule that made this node */
  Node *grad_of; /* this node is (a contribution to) d grad_of */
  int param_index; /* OP_PARAM: index in graph->params; else -1 */
  int state_index; /* OP_STATE: index in graph->states; else -1 */
};

/* Does n read its operand k in training (evaluation false) or evaluation
 * functions? Every op reads all of them but if_training, which reads one. */
static inline bool node_reads(const Node *n, int k, bool evaluation) {
  return op_info[n->op].cls != OPC_MODE || k == (evaluation ? 1 : 0);
}

/* An optimizer update: after a step, `target` (a PARAM or STATE leaf)
 * takes the value of `value`. `from_batch`: value is computed from the
 * batch's rows (batch_norm's running statistics), so a training step
 * applies it but an optimizer step from given gradients (update) cannot. */
typedef struct Update {
  Node *target;
  Node *value;
  bool from_batch;
} Update;

typedef struct Graph {
  Arena *arena;
  DType dtype;
  const char *model_name;
  const char *source_name; /* basename of the .nn file, for comments */
  Node **nodes;
  int len, cap;
  /* leaves in creation order */
  PtrVec params, inputs, targets, states;
  /* outputs */
  Node *output;     /* what --predict prints */
  Node *loss;       /* per-sample loss (batched scalar) */
  Node *batch_loss; /* mean of loss over the batch */
  Node **grads;     /* grads[i]: d batch_loss / d params[i] (after autodiff) */
  bool *no_path;    /* no_path[i]: batch_loss does not depend on params[i] (its
                       gradient is 0 and the optimizer leaves it alone, as
                       torch.optim a parameter whose .grad is None) */
  Update *updates;
  int nupdates, cap_updates; /* (graph_add_update grows the array) */
  Node *lr; /* the learning rate state the updates read (update.h), or NULL */
  const char *optimizer; /* the updates' optimizer, as the file names it (checkpoints record it), or NULL */
  int max_batch; /* rows per batch the graph is built for (>= 1) */
  /* the steps' batch may hold more rows than one call sees: MPI ranks each
     compute a shard of it (grad_part's total), so a mean over the batch
     is not over max_batch rows even when that is 1 */
  bool batch_is_shard;
  /* the most rows a grad_part call takes (--threads: a thread's shard of
     the batch, ceil(max_batch / threads)), for which grad_part plans its
     workspace; 0: max_batch */
  int part_rows;
  /* batch statistics (batch_norm): the layer whose channels get the fewest
   * values from one row, and how many (0: the model has none) */
  const char *stat_layer;
  int64_t stat_values;
  Loc stat_loc; /* that layer in the source, for errors about its batches */
  /* the output is the logit a bce_logits loss reads: a 0/1 label is
   * predicted where it is above 0 (probability 0.5), not above 0.5 */
  bool output_is_logit;
} Graph;

/* The fewest rows a training step takes: 2 when a batch_norm gets one
 * value per channel from a row (its batch statistics need two, as in
 * PyTorch), else 1. */
static inline int graph_min_train_rows(const Graph *g) { return g->stat_values == 1 ? 2 : 1; }

Graph *graph_new(Arena *arena, DType dtype);

/* Node constructors. They compute shape and batched from the operands and
 * die on an internal shape error (the checker has caught user errors). */
Node *node_leaf(Graph *g, Op op, Shape shape, const char *name, Loc loc);
/* Append an update (the array doubles as it grows: a model of thousands of
 * layers adds thousands). */
void graph_add_update(Graph *g, Update u);
Node *node_const(Graph *g, double value, Loc loc);
Node *node_unary(Graph *g, Op op, Node *a, double value, Loc loc);
Node *node_binary(Graph *g, Op op, Node *a, Node *b, Loc loc);
Node *node_reduce(Graph *g, Op op, Node *a, int axis, Loc loc);
Node *node_shaped(Graph *g, Op op, Node *a, Shape shape, Loc loc);
/* Any op with explicit attributes. */
Node *node_make(Graph *g, Op op, Node *a, Node *b, const OpAttr *attr,
                Loc loc);

/* Does the output depend on a target (so it cannot be predicted from
 * inputs alone)? */
bool graph_output_needs_targets(const Graph *g);
/* Does g have a convolution or max pooling (or their gradients)? */
bool graph_has_windows(const Graph *g);
/* Values computed per row of a batch: the elements of every batched node
 * (how large a training step is, per row). */
int64_t graph_row_values(const Graph *g);

/* The names dumps use for each node (index by id): %name, %N or a number
 * for constants, allocated in a (the graph's own arena is not used: code
 * generation labels one graph from two threads). */
char **graph_labels(const Graph *g, Arena *a);

/* Text dump, one node per line (--emit ir, grad, opt). */
typedef enum DumpKind { DUMP_FORWARD, DUMP_GRAD, DUMP_ALL } DumpKind;
void graph_dump(const Graph *g, DumpKind kind, StrBuf *out);
/* Graphviz of forward and backward (--emit dot). */
void graph_dot(const Graph *g, StrBuf *out);

/* Check the invariants: operand counts, shapes, batched flags, topological
 * order, every parameter has a gradient (once grads exist). Dies with the
 * pass name on a violation: a failure is a bug in nnc, not in the user's
 * file. */
void graph_verify(const Graph *g, const char *after_pass);

#endif
