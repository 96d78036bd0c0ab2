/*
 * ast.h - the syntax tree the parser builds (grammar/parser.y) and the
 * checker annotates (check.c). Every node keeps the location of the token
 * that represents it, so any later stage can point at the .nn source.
 *
 * Chains are desugared by the parser: `a -> f(b)` is a call of f with
 * arguments (a, b) and `chained` set, so dumps can still show the arrow.
 */
#ifndef NNC_AST_H
#define NNC_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "diag.h"
#include "util.h"

typedef enum ExprKind {
  E_NUM,   /* 4, 0.05, 1e-8 */
  E_STR,   /* "data/x.csv" */
  E_NAME,  /* x, relu, true */
  E_CALL,  /* f(args) or a -> f(args) */
  E_BINOP, /* a + b, a @ b, a ^ b */
  E_NEG,   /* -a */
  E_LIST   /* [3, 5]: an argument's value; its elements are `args` (unnamed) */
} ExprKind;

typedef struct Arg Arg;
typedef struct Expr Expr;

/* A call argument: positional (name == NULL) or named (`seed: 42`). */
struct Arg {
  const char *name;
  Loc name_loc;
  Expr *value;
  Arg *next;
};

/* Filled in by the checker. */
typedef struct Type Type;
typedef struct Symbol Symbol;

struct Expr {
  ExprKind kind;
  Loc loc;
  double num;       /* E_NUM */
  bool is_int;      /* E_NUM written without '.' or exponent */
  const char *text; /* E_NUM source text, E_STR contents, E_NAME/E_CALL name */
  char op;          /* E_BINOP: + - * / @ ^ */
  Expr *lhs, *rhs;  /* E_BINOP; E_NEG uses lhs */
  Arg *args;        /* E_CALL */
  bool chained;     /* E_CALL written as `first -> f(...)` */
  Type *type;         /* checker's result (NULL before checking) */
  struct Call *call;  /* E_CALL after checking: callee and arguments */
  Symbol *sym;        /* E_NAME after checking: the binding it names */
};

typedef enum StmtKind {
  S_DTYPE,  /* dtype f64 */
  S_INPUT,  /* input x[2] */
  S_TARGET, /* target t[1] */
  S_PARAM,  /* param w[4] = normal(std: 0.1) */
  S_LET,    /* y = expr */
  S_LOSS,   /* loss expr */
  S_OUTPUT, /* output y */
  S_SETTING /* train block: KEY value */
} StmtKind;

enum { NNC_MAX_RANK = 4 };

typedef struct Stmt Stmt;
struct Stmt {
  StmtKind kind;
  Loc loc;        /* the keyword, or the name for S_LET */
  const char *name; /* declared/bound name, dtype name, setting key */
  Loc name_loc;
  int rank;         /* S_INPUT/S_TARGET/S_PARAM: -1 when no brackets given */
  Expr *dims[NNC_MAX_RANK + 1]; /* dimension expressions (checked later) */
  int ndims;
  Expr *value; /* S_PARAM init (may be NULL), S_LET, S_LOSS, S_SETTING */
  Symbol *sym; /* after checking: the binding of S_INPUT, S_TARGET, S_PARAM
                  and S_LET, the one S_OUTPUT names */
  Stmt *next;
};

typedef struct Block {
  bool is_model; /* model NAME { } or train { } */
  const char *name;
  Loc loc;      /* the keyword */
  Loc name_loc; /* the model's NAME */
  Stmt *stmts;
  struct Block *next;
} Block;

typedef struct Ast {
  Block *blocks;
} Ast;

/* Constructors used by the parser's actions; all allocate in the arena. */
Expr *ast_num(Arena *a, Loc loc, const char *text);
Expr *ast_str(Arena *a, Loc loc, const char *text);
Expr *ast_name(Arena *a, Loc loc, const char *name);
Expr *ast_call(Arena *a, Loc loc, const char *name, Arg *args);
Expr *ast_list(Arena *a, Loc loc, Arg *elems);
Expr *ast_chain(Arena *a, Expr *first, Expr *callee);
Expr *ast_binop(Arena *a, Loc loc, char op, Expr *lhs, Expr *rhs);
Expr *ast_neg(Arena *a, Loc loc, Expr *operand);
Arg *ast_arg(Arena *a, const char *name, Loc name_loc, Expr *value);
Stmt *ast_stmt(Arena *a, StmtKind kind, Loc loc, const char *name);
Block *ast_block(Arena *a, bool is_model, Loc loc, const char *name,
                 Stmt *stmts);

/* --emit ast: an indented tree, one node per line, with line:col. */
void ast_dump(const Ast *ast, StrBuf *out);

#endif
