/*
 * rule_graph.c - the backward graph of one op a .nn file cannot write (the
 * ops only lowering and derivative rules make), as `nnc --emit grad` prints
 * it, so that each derivative rule has a golden file (tests/rules/NAME.grad).
 *
 *   rule_graph NAME.op     NAME: the op's name in dumps (ops.def)
 *
 * The graph is the op applied to parameters (or, for batch_sum, to a value
 * of each row) and summed into the loss. Exit status 1 for an op this
 * program does not build.
 */
#include <stdio.h>
#include <string.h>

#include "autodiff.h"

static Graph *g;
static const Loc here = {1, 1};

static Node *param(const char *name, Shape shape) {
  Node *n = node_leaf(g, OP_PARAM, shape, name, here);
  n->param_index = g->params.len;
  ptrvec_push_arena(g->arena, &g->params, n);
  return n;
}

/* The op's node over fresh operands, or NULL. */
static Node *build(Op op) {
  OpAttr attr = {.axis = AXIS_ALL};
  switch ((int)op) { /* a few ops, hence (int) and a default */
  case OP_MAXC: case OP_STEP: case OP_LEAKY_STEP:
    attr.value = 0.5;
    return node_make(g, op, param("w", shape1(3)), NULL, &attr, here);
  case OP_SIGN:
    return node_make(g, op, param("w", shape1(3)), NULL, &attr, here);
  case OP_OUTER: {
    Node *a = param("a", shape1(2)), *b = param("b", shape1(3));
    return node_make(g, op, a, b, &attr, here);
  }
  case OP_MAX_SHARE: {
    Node *a = param("a", shape1(3)), *b = param("b", shape1(3));
    return node_make(g, op, a, b, &attr, here);
  }
  case OP_KEEP_POS: case OP_KEEP_NONPOS: {
    Node *c = node_leaf(g, OP_INPUT, shape1(3), "c", here);
    ptrvec_push_arena(g->arena, &g->inputs, c);
    return node_make(g, op, c, param("w", shape1(3)), &attr, here);
  }
  case OP_SCATTER_ADD: {
    Node *ids = node_leaf(g, OP_INPUT, shape1(2), "ids", here);
    ptrvec_push_arena(g->arena, &g->inputs, ids);
    attr.shape = shape2(4, 3);
    return node_make(g, op, param("w", shape2(2, 3)), ids, &attr, here);
  }
  case OP_BROADCAST:
    attr.shape = shape2(2, 3);
    return node_make(g, op, param("w", shape1(3)), NULL, &attr, here);
  case OP_SUM_TO:
    attr.shape = shape1(3);
    return node_make(g, op, param("w", shape2(2, 3)), NULL, &attr, here);
  case OP_BATCH_SUM: {
    Node *x = node_leaf(g, OP_INPUT, shape1(3), "x", here);
    ptrvec_push_arena(g->arena, &g->inputs, x);
    Node *xw = node_binary(g, OP_MUL, x, param("w", shape1(3)), here);
    return node_make(g, op, xw, NULL, &attr, here);
  }
  default: /* the others have a .nn file in tests/rules */
    return NULL;
  }
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: rule_graph NAME.op\n");
    return 2;
  }
  Arena arena;
  arena_init(&arena);
  const char *dot = strrchr(argv[1], '.');
  char *name = arena_strndup(&arena, argv[1], dot ? (size_t)(dot - argv[1]) : strlen(argv[1]));
  g = graph_new(&arena, DT_F32);
  g->model_name = name;
  g->source_name = argv[1];
  Node *y = NULL;
  for (int op = 0; op < OP_COUNT && !y; op++)
    if (strcmp(op_info[op].name, name) == 0) y = build((Op)op);
  if (!y) {
    fprintf(stderr, "rule_graph: no graph for an op named '%s'\n", name);
    arena_free(&arena);
    return 1;
  }
  g->output = y;
  g->loss = node_reduce(g, OP_SUM, y, AXIS_ALL, here);
  g->loss->name = "loss";
  g->batch_loss = node_reduce(g, OP_BATCH_MEAN, g->loss, AXIS_ALL, here);
  g->batch_loss->name = "batch_loss";
  autodiff(g);
  graph_verify(g, "autodiff");
  StrBuf out = {0};
  graph_dump(g, DUMP_GRAD, &out);
  fputs(out.data, stdout);
  sb_free(&out);
  arena_free(&arena);
  return 0;
}
