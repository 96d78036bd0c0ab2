/*
 * parse.h - the front end's entry point: .nn source text to an AST.
 *
 * grammar/lexer.l (reentrant Flex) and grammar/parser.y (pure Bison with
 * %locations) do the work; this header is what they share and what the rest
 * of nnc calls. Syntax errors are reported through the Diag and counted;
 * the parser recovers at the end of each statement.
 */
#ifndef NNC_PARSE_H
#define NNC_PARSE_H

#include "ast.h"
#include "diag.h"
#include "util.h"

/* State shared by the scanner (as yyextra) and the parser's actions. */
typedef struct ParseState {
  Arena *arena;
  Diag *diag;
  Ast *ast;
  int line, col;   /* position of the next character */
  int paren_depth; /* newlines inside ( ) and [ ] do not end a statement */
  int last_token;  /* to drop redundant newlines and end the last line */
  const char *last_text; /* text of the last token, for syntax errors */
  bool after_lex_error; /* a lexical error in this statement: its syntax
                           errors would only repeat it */
} ParseState;

/* Parse src into ast (allocated in arena). Returns the number of errors. */
int nnc_parse(const Source *src, Arena *arena, Diag *diag, Ast *ast);

#endif
