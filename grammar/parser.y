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

/* Every later stage walks expressions recursively: a statement nested
 * deeper than this (a chain of thousands of steps) is refused here, so no
 * stage can run out of stack. */
enum { MAX_NESTING = 1000 };

/* The nesting depth of e below depth (stops counting past MAX_NESTING). */
static int nesting(const Expr *e, int depth) {
  if (!e || depth > MAX_NESTING) return depth;
  int most = depth;
  switch (e->kind) {
  case E_BINOP:
    most = nesting(e->lhs, depth + 1);
    if (most <= MAX_NESTING) {
      int r = nesting(e->rhs, depth + 1);
      if (r > most) most = r;
    }
    break;
  case E_NEG:
    most = nesting(e->lhs, depth + 1);
    break;
  case E_CALL: case E_LIST:
    for (const Arg *a = e->args; a && most <= MAX_NESTING; a = a->next) {
      int d = nesting(a->value, depth + 1);
      if (d > most) most = d;
    }
    break;
  case E_NUM: case E_STR: case E_NAME:
    break;
  }
  return most;
}

static int stmt_nesting(const Stmt *s) { return nesting(s->value, 0); }

/* Statement and argument lists are built back to front (appending would
 * make a long block or call quadratic) and put in order when complete. */
static Stmt *stmts_in_order(Stmt *s) {
  Stmt *rev = NULL;
  while (s) {
    Stmt *next = s->next;
    s->next = rev;
    rev = s;
    s = next;
  }
  return rev;
}

static Arg *args_in_order(Arg *a) {
  Arg *rev = NULL;
  while (a) {
    Arg *next = a->next;
    a->next = rev;
    rev = a;
    a = next;
  }
  return rev;
}

/* Bison's own failures (memory exhausted); syntax errors go through
 * yyreport_syntax_error below. */
static void nnc_yyerror(NNC_YYLTYPE *loc, yyscan_t scanner, const char *msg) {
  if (strcmp(msg, "memory exhausted") == 0) /* Bison's stack limit */
    diag_error(PS->diag, loc_of(*loc), "this is nested too deeply; split it into several bindings");
  else
    diag_error(PS->diag, loc_of(*loc), "%s", msg);
}
}

%define api.pure full
%define api.prefix {nnc_yy}
%define parse.error custom
%define parse.lac full
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
%type <arg> args arg elems
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
      { Block *b = ast_block(AR, true, loc_of(@1), $2, stmts_in_order($5));
        b->name_loc = loc_of(@2);
        b->next = PS->ast->blocks; PS->ast->blocks = b; }
  | TRAIN opt_nl '{' stmts '}'
      { Block *b = ast_block(AR, false, loc_of(@1), NULL, stmts_in_order($4));
        b->next = PS->ast->blocks; PS->ast->blocks = b; }
  /* a statement error can run into the block's end */
  | MODEL IDENT opt_nl '{' stmts error '}'
      { Block *b = ast_block(AR, true, loc_of(@1), $2, stmts_in_order($5));
        b->name_loc = loc_of(@2);
        b->next = PS->ast->blocks; PS->ast->blocks = b; yyerrok; }
  | TRAIN opt_nl '{' stmts error '}'
      { Block *b = ast_block(AR, false, loc_of(@1), NULL, stmts_in_order($4));
        b->next = PS->ast->blocks; PS->ast->blocks = b; yyerrok; }
  /* a block whose header is wrong is skipped whole, not line by line */
  | MODEL error '}'              { yyerrok; }
  | TRAIN error '}'              { yyerrok; }
  ;

opt_nl
  : %empty
  | NEWLINE
  ;

stmts
  : %empty                       { $$ = NULL; }
  | stmts stmt NEWLINE           { $$ = $1;
                                   if (stmt_nesting($2) > MAX_NESTING)
                                     diag_error(PS->diag, $2->loc, "this statement is nested too deeply "
                                                "(more than %d levels); split it into several bindings",
                                                MAX_NESTING);
                                   else
                                     $2->next = $1, $$ = $2; /* reversed */ }
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
  | IDENT '(' args ')'           { $$ = ast_call(AR, loc_of(@1), $1, args_in_order($3)); }
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
  | IDENT '(' args ')'           { $$ = ast_call(AR, loc_of(@1), $1, args_in_order($3)); }
  | '(' expr ')'                 { $$ = $2; }
  | '[' ']'                      { $$ = ast_list(AR, loc_of(@1), NULL); }
  | '[' elems ']'                { $$ = ast_list(AR, loc_of(@1), args_in_order($2)); }
  ;
/* a list's elements (only constant numbers mean anything: the checker) */
elems
  : expr                         { $$ = ast_arg(AR, NULL, loc_of(@1), $1); }
  | elems ',' expr               { $$ = ast_arg(AR, NULL, loc_of(@3), $3); $$->next = $1; } /* reversed */
  ;

args
  : arg
  | args ',' arg                 { $3->next = $1; $$ = $3; } /* reversed */
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

/* Set as the last token text once an error at the end of the file is
 * reported: the file's end comes as a final NEWLINE and then YYEOF, and the
 * second error there would only repeat the first. */
static const char eof_reported[] = "";

static bool is_binary_operator(yysymbol_kind_t sym) {
  static const char ops[] = "+-*/@^";
  for (const char *p = ops; *p; p++)
    if (sym == YYTRANSLATE((int)(unsigned char)*p)) return true;
  return false;
}

/* Whether only blanks come before loc on its line. */
static bool starts_line(const Source *src, Loc loc) {
  if (!src || !src->text) return false;
  const char *p = src->text, *end = src->text + src->len;
  for (int line = 1; line < loc.line && p < end; p++)
    if (*p == '\n') line++;
  for (int col = 1; col < loc.col && p < end; col++, p++)
    if (*p != ' ' && *p != '\t' && *p != '\r') return false;
  return true;
}

static int yyreport_syntax_error(const yypcontext_t *ctx, yyscan_t scanner) {
  ParseState *ps = PS;
  yysymbol_kind_t got = yypcontext_token(ctx);
  Loc loc = loc_of(*yypcontext_location(ctx));
  bool at_eof = got == YYSYMBOL_YYEOF ||
                (got == YYSYMBOL_NEWLINE && ps->last_text && ps->last_text[0] == 0);
  if (at_eof && ps->last_text == eof_reported) return 0;
  /* after a lexical error (a stray character, an unterminated string) the
     rest of its statement is noise */
  if (ps->after_lex_error) return 0;
  yysymbol_kind_t expected[YYNTOKENS];
  int n = yypcontext_expected_tokens(ctx, expected, YYNTOKENS);
  bool want_arrow = false, want_brace = false, want_paren = false, want_bracket = false;
  bool want_name = false, want_newline = false;
  bool keyword = got >= YYSYMBOL_MODEL && got <= YYSYMBOL_DTYPE;
  for (int i = 0; i < n; i++) {
    if (expected[i] == YYSYMBOL_IDENT) want_name = true;
    if (expected[i] == YYSYMBOL_NEWLINE) want_newline = true;
    if (expected[i] == YYSYMBOL_ARROW) want_arrow = true;
    if (expected[i] == YYTRANSLATE('}')) want_brace = true;
    if (expected[i] == YYTRANSLATE(')')) want_paren = true;
    if (expected[i] == YYTRANSLATE(']')) want_bracket = true;
  }
  StrBuf msg = {0};
  if (at_eof)
    sb_puts(&msg, "unexpected end of file");
  else if (got == YYSYMBOL_NEWLINE)
    sb_puts(&msg, "unexpected end of line");
  else if (got == YYSYMBOL_YYUNDEF)
    sb_puts(&msg, "unexpected input");
  else {
    char shown[200]; /* a 100,000-digit number is shown by its start */
    sb_printf(&msg, "unexpected '%s'", diag_excerpt(shown, sizeof shown, ps->last_text));
  }
  if (is_binary_operator(got) && want_arrow) {
    /* `x -> f + y`: the chain's callee cannot be followed by arithmetic */
    sb_printf(&msg, " after a chain; '->' binds loosest, so write (a -> f) %s b",
              ps->last_text);
  } else if ((got == YYSYMBOL_MODEL || got == YYSYMBOL_TRAIN) && want_brace) {
    sb_puts(&msg, "; is a '}' missing before it?");
  } else if (keyword && want_name && !starts_line(ps->diag->src, loc)) {
    /* (a keyword that starts a line is more likely a statement after an
       unfinished one) */
    sb_printf(&msg, "; '%s' is a keyword and cannot be used as a name", ps->last_text);
  } else if (got == YYTRANSLATE('}') && !want_brace) {
    sb_puts(&msg, ": no block is open here");
  } else if (at_eof && want_brace) {
    sb_puts(&msg, ", expected '}' to close the block");
  } else if (n > 5 && (want_paren || want_bracket)) {
    sb_printf(&msg, "; is a '%c' missing?", want_paren ? ')' : ']');
  } else if (n > 5 && want_newline) {
    sb_puts(&msg, ", expected an operator or end of line");
  } else if (n > 0 && n <= 6) {
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
  if (at_eof) ps->last_text = eof_reported;
  return 0;
}
