/*
 * driver.c - the pipeline, in order, in one place:
 *
 *   read -> parse -> check -> lower -> [autodiff -> passes] -> interpreter
 *                                                            or codegen -> JIT
 *
 * Each stage reports user errors through the Diag; the driver stops after a
 * stage that reported any. --emit stops after the stage it names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ir.h"
#include "lower.h"
#include "nnc.h"
#include "parse.h"

void nnc_options_default(NncOptions *o) {
  memset(o, 0, sizeof *o);
  o->epochs = o->batch = o->seed = -1;
  o->lr = -1;
  o->dtype = -1;
  o->opt_level = 2;
}

typedef struct Compilation {
  const NncOptions *opt;
  Arena arena;
  Source src;
  Diag diag;
  Ast ast;
  Program prog;
  Graph *fwd;
  ParamInit *inits;
} Compilation;

/* Write text to -o FILE (through a temporary file and a rename, so a failure
 * never leaves half a file) or to standard output. */
static int write_output(const NncOptions *o, const char *text, size_t len) {
  if (!o->out) {
    fwrite(text, 1, len, stdout);
    return fflush(stdout) == 0 ? 0 : 1;
  }
  char *tmp = nnc_xmalloc(strlen(o->out) + 16);
  sprintf(tmp, "%s.tmp.XXXXXX", o->out);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    diag_file_error(o->out, "cannot write");
    free(tmp);
    return 1;
  }
  FILE *f = fdopen(fd, "wb");
  int bad = !f || fwrite(text, 1, len, f) != len || fflush(f) != 0 || fsync(fd) != 0;
  if (f) bad |= fclose(f) != 0;
  else close(fd);
  if (bad || rename(tmp, o->out) != 0) {
    unlink(tmp);
    diag_file_error(o->out, "cannot write");
    free(tmp);
    return 1;
  }
  free(tmp);
  return 0;
}

static int emit_text(const NncOptions *o, StrBuf *sb) {
  int rc = write_output(o, sb->data ? sb->data : "", sb->len);
  sb_free(sb);
  return rc;
}

/* Command-line overrides of the file's settings. --seed replaces every seed
 * of the train block (data, init, shuffle), as torch.manual_seed would. */
static void apply_overrides(Program *p, const NncOptions *o) {
  TrainConfig *tc = &p->train;
  if (o->dtype >= 0) p->dtype = o->dtype ? DT_F64 : DT_F32;
  if (o->epochs >= 0) tc->epochs = o->epochs;
  if (o->batch >= 0) tc->batch = o->batch;
  if (o->lr > 0) tc->optim.lr = o->lr;
  if (o->seed >= 0) {
    uint64_t s = (uint64_t)o->seed;
    tc->seed = s;
    tc->has_seed_key = true;
    tc->init.seed = s;
    tc->init.has_seed = true;
    tc->data.seed = tc->valid.seed = s;
    tc->data.has_seed = tc->valid.has_seed = true;
  }
  /* seeds the file leaves out come from `seed` */
  if (!tc->init.has_seed) tc->init.seed = tc->seed;
  if (!tc->data.has_seed) tc->data.seed = tc->seed;
  if (!tc->valid.has_seed) tc->valid.seed = tc->seed + 1;
}

static int frontend(Compilation *c) {
  const NncOptions *o = c->opt;
  if (source_read(&c->src, o->file) != 0) return 1;
  c->diag.src = &c->src;
  if (c->src.len == 0) {
    diag_file_error(o->file, "file is empty: a .nn file needs `model NAME { ... }`");
    return 1;
  }
  nnc_parse(&c->src, &c->arena, &c->diag, &c->ast);
  if (o->emit && strcmp(o->emit, "ast") == 0) {
    if (c->diag.errors) return 1;
    StrBuf sb = {0};
    ast_dump(&c->ast, &sb);
    return emit_text(o, &sb) ? 1 : -1;
  }
  check_program(&c->ast, &c->src, &c->diag, &c->arena, &c->prog);
  if (c->diag.errors) return 1;
  apply_overrides(&c->prog, o);
  c->fwd = lower_program(&c->prog, &c->arena, &c->inits);
  graph_verify(c->fwd, "lower");
  return 0;
}

int nnc_run(const NncOptions *o) {
  Compilation c = {.opt = o};
  arena_init(&c.arena);
  int rc = frontend(&c);
  if (rc == 0) {
    StrBuf sb = {0};
    if (o->emit && strcmp(o->emit, "ir") == 0) {
      graph_dump(c.fwd, DUMP_FORWARD, &sb);
      rc = emit_text(o, &sb);
    } else if (o->emit && strcmp(o->emit, "dot") == 0) {
      graph_dot(c.fwd, &sb);
      rc = emit_text(o, &sb);
    } else {
      fprintf(stderr, "nnc: this build stops after the front end; use --emit ast or --emit ir\n");
      rc = 1;
    }
  }
  if (rc < 0) rc = 0;
  source_free(&c.src);
  arena_free(&c.arena);
  return rc;
}
