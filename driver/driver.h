/*
 * driver.h - the pipeline's state, shared by nnc_run (driver.c) and the
 * library's compile calls (api.c). Not installed.
 */
#ifndef NNC_DRIVER_H
#define NNC_DRIVER_H

#include "check.h"
#include "diag.h"
#include "ir.h"
#include "lower.h"
#include "nnc.h"
#include "parse.h"
#include "update.h"

typedef struct Compilation {
  const NncOptions *opt;
  NncEmit emit; /* opt->emit's kind */
  Arena arena;
  Source src; /* read from opt->file, unless its text is already set */
  Diag diag;
  Ast ast;
  Program prog;
  Graph *fwd;   /* as lowered */
  Graph *grad;  /* forward + backward, as derived */
  Graph *opt_g; /* forward + backward + update, after the passes */
  Layout *layout;
  ParamInit *inits;
} Compilation;

/* Front end and middle (emit must be NNC_EMIT_NONE): c->opt_g and c->layout.
 * Returns 0, or 1 after reporting errors (through c->diag and
 * diag_file_error). */
int compilation_run(Compilation *c);

/* Whether the model's name may name the symbols of an object and a
 * header (--emit obj and header), nnc_NAME_forward and the others; if
 * not, reports an error at the name and returns false. */
bool compilation_symbols_ok(Compilation *c);

/* The text of `--emit KIND` for the kinds drawn from the compilation's
 * graphs, into out: ast (parsed), ir (lowered), grad, opt, dot and layout
 * (after the middle). Returns false for any other kind. */
bool compilation_dump(const Compilation *c, NncEmit kind, StrBuf *out);
/* The --emit kinds of code for a CPU (LLVM's: --cpu and -O apply), and
 * those of them that must go to a file (-o FILE, and the model's symbols
 * checked against libnnc's). */
static inline bool emit_for_cpu(NncEmit k) {
  return k == NNC_EMIT_LLVM || k == NNC_EMIT_ASM || k == NNC_EMIT_OBJ || k == NNC_EMIT_HEADER;
}
static inline bool emit_to_file(NncEmit k) { return k == NNC_EMIT_OBJ || k == NNC_EMIT_HEADER; }

/* The nnc command compiles once per process: after that, nnc_run drops
 * the compiler's code pages (LLVM's, above all) from the process, most of
 * its resident memory while training (util.h, nnc_release_code_pages),
 * when the run adds enough memory for that to matter. A program using
 * libnnc may compile again and keeps them. */
void driver_release_code_after_compile(void);

/* The nnc command exits once nnc_run returns: the run's engine (the JIT
 * and its code), its data and its compilation are left for the exit to
 * give back, not taken apart one by one first. Not under the sanitizers
 * (driver/main.c), whose leak check wants them freed. */
void driver_leave_run_to_exit(void);

/* What is wrong with o's overrides of the file (epochs, batch, seed, lr,
 * dtype) or its opt_level and threads (the command line's limits), or
 * NULL. */
const char *driver_overrides_error(const NncOptions *o);
/* Whether o is wrong: those limits, and the options that do not go
 * together (two modes, --save without --train, ...); then the message,
 * in the command line's words, in msg. The command reports it as a usage
 * error, nnc_run as `nnc: error: options: ...` and status 2. */
bool driver_options_error(const NncOptions *o, char *msg, size_t n);

/* Whether the code --jit compiles for `cpu` may not run on this host (an
 * unknown name's features, or a level's the host lacks); then why, with
 * the names it would run, in msg. */
bool driver_cpu_not_here(const char *cpu, char *msg, size_t n);

#endif
