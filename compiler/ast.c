/*
 * ast.c - syntax tree constructors (called from parser.y's actions) and the
 * --emit ast dump.
 */
#include "ast.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

Expr *ast_num(Arena *a, Loc loc, const char *text) {
  Expr *e = ARENA_NEW(a, Expr);
  e->kind = E_NUM;
  e->loc = loc;
  e->text = arena_strdup(a, text);
  e->num = strtod(text, NULL); /* the lexer checked the range */
  e->is_int = strpbrk(text, ".eE") == NULL;
  return e;
}

Expr *ast_str(Arena *a, Loc loc, const char *text) {
  Expr *e = ARENA_NEW(a, Expr);
  e->kind = E_STR;
  e->loc = loc;
  e->text = text;
  return e;
}

Expr *ast_name(Arena *a, Loc loc, const char *name) {
  Expr *e = ARENA_NEW(a, Expr);
  e->kind = E_NAME;
  e->loc = loc;
  e->text = name;
  return e;
}

Expr *ast_call(Arena *a, Loc loc, const char *name, Arg *args) {
  Expr *e = ARENA_NEW(a, Expr);
  e->kind = E_CALL;
  e->loc = loc;
  e->text = name;
  e->args = args;
  return e;
}

Expr *ast_list(Arena *a, Loc loc, Arg *elems) {
  Expr *e = ARENA_NEW(a, Expr);
  e->kind = E_LIST;
  e->loc = loc;
  e->args = elems;
  return e;
}

/* `first -> callee`: callee is a name (relu) or a call (linear(4)); the
 * result calls it with `first` prepended to its arguments. */
Expr *ast_chain(Arena *a, Expr *first, Expr *callee) {
  Expr *call = callee;
  if (callee->kind == E_NAME) call = ast_call(a, callee->loc, callee->text, NULL);
  Arg *head = ast_arg(a, NULL, first->loc, first);
  head->next = call->args;
  call->args = head;
  call->chained = true;
  return call;
}

Expr *ast_binop(Arena *a, Loc loc, char op, Expr *lhs, Expr *rhs) {
  Expr *e = ARENA_NEW(a, Expr);
  e->kind = E_BINOP;
  e->loc = loc;
  e->op = op;
  e->lhs = lhs;
  e->rhs = rhs;
  return e;
}

Expr *ast_neg(Arena *a, Loc loc, Expr *operand) {
  Expr *e = ARENA_NEW(a, Expr);
  e->kind = E_NEG;
  e->loc = loc;
  e->lhs = operand;
  return e;
}

Arg *ast_arg(Arena *a, const char *name, Loc name_loc, Expr *value) {
  Arg *g = ARENA_NEW(a, Arg);
  g->name = name;
  g->name_loc = name_loc;
  g->value = value;
  return g;
}

Stmt *ast_stmt(Arena *a, StmtKind kind, Loc loc, const char *name) {
  Stmt *s = ARENA_NEW(a, Stmt);
  s->kind = kind;
  s->loc = loc;
  s->name = name;
  s->name_loc = loc;
  s->rank = -1;
  return s;
}

Block *ast_block(Arena *a, bool is_model, Loc loc, const char *name,
                 Stmt *stmts) {
  Block *b = ARENA_NEW(a, Block);
  b->is_model = is_model;
  b->loc = loc;
  b->name = name;
  b->stmts = stmts;
  return b;
}

/* ---- dump ---- */

static void line_start(StrBuf *out, int depth) {
  for (int i = 0; i < depth; i++) sb_puts(out, "  ");
}

static void loc_end(StrBuf *out, Loc loc) {
  sb_printf(out, "  @%d:%d\n", loc.line, loc.col);
}

static void dump_expr(const Expr *e, int depth, StrBuf *out);

static void dump_args(const Arg *g, int depth, StrBuf *out) {
  for (; g; g = g->next) {
    if (g->name) {
      line_start(out, depth);
      sb_printf(out, "arg %s:", g->name);
      loc_end(out, g->name_loc);
      dump_expr(g->value, depth + 1, out);
    } else {
      dump_expr(g->value, depth, out);
    }
  }
}

static void dump_expr(const Expr *e, int depth, StrBuf *out) {
  line_start(out, depth);
  switch (e->kind) {
  case E_NUM:
    sb_printf(out, "num %s", e->text);
    break;
  case E_STR:
    sb_printf(out, "str \"%s\"", e->text);
    break;
  case E_NAME:
    sb_printf(out, "name %s", e->text);
    break;
  case E_CALL:
    sb_printf(out, "%s %s", e->chained ? "chain" : "call", e->text);
    break;
  case E_BINOP:
    sb_printf(out, "binop %c", e->op);
    break;
  case E_NEG:
    sb_puts(out, "neg");
    break;
  case E_LIST:
    sb_puts(out, "list");
    break;
  }
  loc_end(out, e->loc);
  if (e->kind == E_CALL || e->kind == E_LIST) dump_args(e->args, depth + 1, out);
  if (e->kind == E_BINOP) {
    dump_expr(e->lhs, depth + 1, out);
    dump_expr(e->rhs, depth + 1, out);
  }
  if (e->kind == E_NEG) dump_expr(e->lhs, depth + 1, out);
}

static const char *stmt_keyword(StmtKind k) {
  switch (k) {
  case S_DTYPE: return "dtype";
  case S_INPUT: return "input";
  case S_TARGET: return "target";
  case S_PARAM: return "param";
  case S_LET: return "let";
  case S_LOSS: return "loss";
  case S_OUTPUT: return "output";
  case S_SETTING: return "set";
  }
  return "?";
}

static void dump_stmt(const Stmt *s, StrBuf *out) {
  line_start(out, 1);
  sb_puts(out, stmt_keyword(s->kind));
  if (s->name) sb_printf(out, " %s", s->name);
  if (s->rank >= 0) {
    sb_puts(out, " [");
    /* the parser keeps at most NNC_MAX_RANK + 1 dimensions (one too many
       is enough for the checker's message) */
    for (int i = 0; i < s->ndims; i++) {
      const Expr *d = i <= NNC_MAX_RANK ? s->dims[i] : NULL;
      sb_printf(out, "%s%s", i ? "," : "", d && d->kind == E_NUM ? d->text : "?");
    }
    sb_puts(out, "]");
  }
  loc_end(out, s->loc);
  if (s->value) dump_expr(s->value, 2, out);
}

void ast_dump(const Ast *ast, StrBuf *out) {
  for (const Block *b = ast->blocks; b; b = b->next) {
    if (b->is_model)
      sb_printf(out, "model %s", b->name);
    else
      sb_puts(out, "train");
    loc_end(out, b->loc);
    for (const Stmt *s = b->stmts; s; s = s->next) dump_stmt(s, out);
  }
}
