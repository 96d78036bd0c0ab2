/*
 * parser.y - the .nn grammar (spec section 2). Source text to AST, nothing
 * more: names, shapes and types are the checker's business (check.c).
 *
 * Precedence, loosest first:  ->   + -   * / @   unary -   ^ (right assoc).
 * Each level is its own nonterminal, so the grammar has no conflicts
 * (%expect 0) and the tree shape is visible in the rules.
 *
 * Statements end at a newline; the scanner drops newlines inside ( ) and
 * [ ], after an operator or `->`, and before a line that starts with `->`.
 * A syntax error skips to the end of its line, so one run reports several.
 */
%code requires {
#include "parse.h"
typedef void *yyscan_t;
}

%code provides {
int nnc_yylex(NNC_YYSTYPE *lval, NNC_YYLTYPE *lloc, yyscan_t scanner);
}

%code {
#include <stdio.h>
#include <string.h>

ParseState *nnc_yyget_extra(yyscan_t scanner);
#define PS (nnc_yyget_extra(scanner))
#define AR (PS->arena)

static Loc loc_of(NNC_YYLTYPE l) { return (Loc){l.first_line, l.first_column}; }

/* Bison's own failures (memory exhausted); syntax errors go through
 * yyreport_syntax_error below. */
static void nnc_yyerror(NNC_YYLTYPE *loc, yyscan_t scanner, const char *msg) {
  diag_error(PS->diag, loc_of(*loc), "%s", msg);
}
}

%define api.pure full
%define api.prefix {nnc_yy}
%define parse.error custom
%locations
%param {yyscan_t scanner}
%expect 0

%union {
  const char *str;
  Expr *expr;
  Arg *arg;
  Stmt *stmt;
}

%token MODEL "'model'" TRAIN "'train'" INPUT "'input'" TARGET "'target'"
%token PARAM "'param'" LOSS "'loss'" OUTPUT "'output'" DTYPE "'dtype'"
%token ARROW "'->'" NEWLINE "end of line"
%token <str> IDENT "name" NUMBER "number" STRING "string"

%type <expr> expr callee sum term unary power expo primary init dim
%type <arg> args arg
%type <stmt> stmts stmt shape_decl dims

%%

file
  : %empty
  | file block
  | file NEWLINE
  | file error NEWLINE          { yyerrok; }
  ;

block
  : MODEL IDENT opt_nl '{' stmts '}'
      { Block *b = ast_block(AR, true, loc_of(@1), $2, $5);
        b->next = PS->ast->blocks; PS->ast->blocks = b; }
  | TRAIN opt_nl '{' stmts '}'
      { Block *b = ast_block(AR, false, loc_of(@1), NULL, $4);
        b->next = PS->ast->blocks; PS->ast->blocks = b; }
  ;

opt_nl
  : %empty
  | NEWLINE
  ;

stmts
  : %empty                       { $$ = NULL; }
  | stmts stmt NEWLINE           { $$ = ast_stmts_append($1, $2); }
  | stmts error NEWLINE          { $$ = $1; yyerrok; }
  ;

stmt
  : DTYPE IDENT                  { $$ = ast_stmt(AR, S_DTYPE, loc_of(@1), $2);
                                   $$->name_loc = loc_of(@2); }
  | INPUT IDENT shape_decl       { $$ = $3; $$->kind = S_INPUT; $$->loc = loc_of(@1);
                                   $$->name = $2; $$->name_loc = loc_of(@2); }
  | TARGET IDENT shape_decl      { $$ = $3; $$->kind = S_TARGET; $$->loc = loc_of(@1);
                                   $$->name = $2; $$->name_loc = loc_of(@2); }
  | PARAM IDENT shape_decl init  { $$ = $3; $$->kind = S_PARAM; $$->loc = loc_of(@1);
                                   $$->name = $2; $$->name_loc = loc_of(@2);
                                   $$->value = $4; }
  | IDENT '=' expr               { $$ = ast_stmt(AR, S_LET, loc_of(@1), $1);
                                   $$->value = $3; }
  | LOSS expr                    { $$ = ast_stmt(AR, S_LOSS, loc_of(@1), NULL);
                                   $$->value = $2; }
  | OUTPUT IDENT                 { $$ = ast_stmt(AR, S_OUTPUT, loc_of(@1), $2);
                                   $$->name_loc = loc_of(@2); }
  | IDENT expr                   { $$ = ast_stmt(AR, S_SETTING, loc_of(@1), $1);
                                   $$->value = $2; }
  ;

/* `[2, 3]`, `[]` or nothing: a statement with rank -1 had no brackets. */
shape_decl
  : %empty                       { $$ = ast_stmt(AR, S_INPUT, loc_of(@$), NULL); }
  | '[' ']'                      { $$ = ast_stmt(AR, S_INPUT, loc_of(@1), NULL);
                                   $$->rank = 0; }
  | '[' dims ']'                 { $$ = $2; }
  ;

dims
  : dim                          { $$ = ast_stmt(AR, S_INPUT, loc_of(@1), NULL);
                                   $$->rank = 0; $$->dims[$$->ndims++] = $1;
                                   $$->rank = $$->ndims; }
  | dims ',' dim                 { $$ = $1;
                                   if ($$->ndims <= NNC_MAX_RANK) $$->dims[$$->ndims] = $3;
                                   $$->ndims++;
                                   $$->rank = $$->ndims; }
  ;

dim
  : NUMBER                       { $$ = ast_num(AR, loc_of(@1), $1); }
  ;

init
  : %empty                       { $$ = NULL; }
  | '=' expr                     { $$ = $2; }
  ;

expr
  : expr ARROW callee            { $$ = ast_chain(AR, $1, $3); }
  | sum
  ;

callee
  : IDENT                        { $$ = ast_name(AR, loc_of(@1), $1); }
  | IDENT '(' ')'                { $$ = ast_call(AR, loc_of(@1), $1, NULL); }
  | IDENT '(' args ')'           { $$ = ast_call(AR, loc_of(@1), $1, $3); }
  ;

sum
  : sum '+' term                 { $$ = ast_binop(AR, loc_of(@2), '+', $1, $3); }
  | sum '-' term                 { $$ = ast_binop(AR, loc_of(@2), '-', $1, $3); }
  | term
  ;

term
  : term '*' unary               { $$ = ast_binop(AR, loc_of(@2), '*', $1, $3); }
  | term '/' unary               { $$ = ast_binop(AR, loc_of(@2), '/', $1, $3); }
  | term '@' unary               { $$ = ast_binop(AR, loc_of(@2), '@', $1, $3); }
  | unary
  ;

unary
  : '-' unary                    { $$ = ast_neg(AR, loc_of(@1), $2); }
  | power
  ;

/* `^` binds tighter than unary minus (-x^2 is -(x^2)) and is right
 * associative; its exponent may carry a sign (x^-1). */
power
  : primary
  | primary '^' expo             { $$ = ast_binop(AR, loc_of(@2), '^', $1, $3); }
  ;

expo
  : '-' expo                     { $$ = ast_neg(AR, loc_of(@1), $2); }
  | power
  ;

primary
  : NUMBER                       { $$ = ast_num(AR, loc_of(@1), $1); }
  | STRING                       { $$ = ast_str(AR, loc_of(@1), $1); }
  | IDENT                        { $$ = ast_name(AR, loc_of(@1), $1); }
  | IDENT '(' ')'                { $$ = ast_call(AR, loc_of(@1), $1, NULL); }
  | IDENT '(' args ')'           { $$ = ast_call(AR, loc_of(@1), $1, $3); }
  | '(' expr ')'                 { $$ = $2; }
  ;

args
  : arg
  | args ',' arg                 { $$ = ast_args_append($1, $3); }
  ;

arg
  : expr                         { $$ = ast_arg(AR, NULL, loc_of(@1), $1); }
  | IDENT ':' expr               { $$ = ast_arg(AR, $1, loc_of(@1), $3); }
  ;

%%

/* Readable token names: aliases lose their quotes, keywords keep theirs. */
static const char *token_text(yysymbol_kind_t sym) {
  if (sym == YYSYMBOL_YYEOF) return "end of file";
  const char *name = yysymbol_name(sym);
  if (name[0] == '"') {
    static char buf[64];
    size_t n = strlen(name);
    if (n >= sizeof buf + 2) n = sizeof buf + 1;
    memcpy(buf, name + 1, n - 2);
    buf[n - 2] = 0;
    return buf;
  }
  return name;
}

static int yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner) {
  ParseState *ps = PS;
  yysymbol_kind_t got = yypcontext_token(ctx);
  Loc loc = loc_of(*yypcontext_location(ctx));
  StrBuf msg = {0};
  if (got == YYSYMBOL_NEWLINE || got == YYSYMBOL_YYEOF)
    sb_printf(&msg, "unexpected %s", token_text(got));
  else if (got == YYSYMBOL_YYUNDEF)
    sb_puts(&msg, "unexpected input");
  else
    sb_printf(&msg, "unexpected '%s'", ps->last_text);
  yysymbol_kind_t expected[6];
  int n = yypcontext_expected_tokens(ctx, expected, 6);
  if (n > 0 && n <= 5) {
    sb_puts(&msg, ", expected ");
    for (int i = 0; i < n; i++) {
      if (i) sb_puts(&msg, i == n - 1 ? " or " : ", ");
      /* token_text reuses one buffer: copy each name out before the next */
      char name[64];
      snprintf(name, sizeof name, "%s", token_text(expected[i]));
      sb_puts(&msg, name);
    }
  }
  diag_error(ps->diag, loc, "%s", msg.data);
  sb_free(&msg);
  return 0;
}
