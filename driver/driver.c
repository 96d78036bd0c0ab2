/*
 * driver.c - the pipeline, in order, in one place:
 *
 *   read -> parse -> check -> lower -> [autodiff -> passes] -> interpreter
 *                                                            or codegen -> JIT
 *
 * Each stage reports user errors through the Diag; the driver stops after a
 * stage that reported any. --emit stops after the stage it names.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <errno.h>

#include "autodiff.h"
#include "check.h"
#include "interp.h"
#include "codegen.h"
#include "jit.h"
#include "passes.h"
#include "report.h"
#include "train.h"
#include "update.h"
#include "ir.h"
#include "lower.h"
#include "nnc.h"
#include "parallel.h"
#include "parse.h"
#include "driver.h"

void nnc_options_default(NncOptions *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->epochs = o->batch = o->seed = -1;
  o->lr = -1;
  o->dtype = -1;
  o->opt_level = 2;
}

static int emit_text(const NncOptions *o, StrBuf *sb) {
  int rc = nnc_write_output(o->out, sb->data ? sb->data : "", sb->len);
  sb_free(sb);
  return rc;
}

static const char *const emit_names[] = {
    [NNC_EMIT_AST] = "ast", [NNC_EMIT_IR] = "ir",         [NNC_EMIT_GRAD] = "grad", [NNC_EMIT_OPT] = "opt",
    [NNC_EMIT_LAYOUT] = "layout", [NNC_EMIT_DOT] = "dot", [NNC_EMIT_LLVM] = "llvm", [NNC_EMIT_ASM] = "asm",
    [NNC_EMIT_OBJ] = "obj", [NNC_EMIT_HEADER] = "header"};
_Static_assert(sizeof emit_names / sizeof emit_names[0] == NNC_EMIT_HEADER + 1, "a name for every NncEmit");

NncEmit nnc_emit_kind(const char *name) {
  for (int k = NNC_EMIT_NONE + 1; name && k <= NNC_EMIT_HEADER; k++)
    if (strcmp(name, emit_names[k]) == 0) return (NncEmit)k;
  return NNC_EMIT_NONE;
}

/* Command-line overrides of the file's settings. --seed N replaces every seed
 * of the train block (data, init, shuffle), as torch.manual_seed would: the
 * file runs as if its train block said `seed N` and nothing had a seed of
 * its own, so a generated `valid` set gets N + 1, not the training set's. */
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
    tc->data.seed = s;
    tc->valid.seed = s + 1;
    tc->data.has_seed = tc->valid.has_seed = true;
  }
  /* seeds the file leaves out come from `seed` */
  if (!tc->init.has_seed) tc->init.seed = tc->seed;
  if (!tc->data.has_seed) tc->data.seed = tc->seed;
  if (!tc->valid.has_seed) tc->valid.seed = tc->seed + 1;
}

/* ---- the stages ---- */

static double stage_start;
static void stage_done(Compilation *c, const char *name) {
  double now = nnc_now();
  if (c->opt->time) fprintf(stderr, "time %-10s %8.3f ms\n", name, (now - stage_start) * 1e3);
  stage_start = now;
}

/* read, parse, check, lower. Returns 0 to go on, 1 on error, -1 when done. */
static int frontend(Compilation *c) {
  const NncOptions *o = c->opt;
  stage_start = nnc_now();
  if (!c->src.text && source_read(&c->src, o->file) != 0) return 1;
  c->diag.src = &c->src;
  if (c->src.len == 0) {
    diag_file_error(o->file, "file is empty: a .nn file needs `model NAME { ... }`");
    return 1;
  }
  nnc_parse(&c->src, &c->arena, &c->diag, &c->ast);
  stage_done(c, "parse");
  if (c->emit == NNC_EMIT_AST) {
    if (c->diag.errors) return 1;
    StrBuf sb = {0};
    compilation_dump(c, NNC_EMIT_AST, &sb);
    return emit_text(o, &sb) ? 1 : -1;
  }
  check_program(&c->ast, &c->src, &c->diag, &c->arena, &c->prog);
  stage_done(c, "check");
  if (c->diag.errors) return 1;
  apply_overrides(&c->prog, o);
  c->fwd = lower_program(&c->prog, &c->arena, &c->inits);
  c->fwd->max_batch = (int)c->prog.train.batch;
  c->fwd->batch_is_shard = par_size() > 1; /* each rank's batch is a shard of the step's */
  graph_verify(c->fwd, "lower");
  stage_done(c, "lower");
  return 0;
}

/* stabilize, autodiff, optimizer step, graph passes, layout. Returns 1 when
 * the model is too large to run. */
static int middle(Compilation *c) {
  Graph *g = pass_stabilize(c->fwd, &c->diag);
  autodiff(g);
  graph_verify(g, "autodiff");
  c->grad = g;
  stage_done(c, "autodiff");
  /* the update is built on a copy, so --emit grad shows the derivation alone */
  Graph *u = pass_cse(g);
  build_updates(u, &c->prog.train.optim);
  graph_verify(u, "update");
  c->opt_g = optimize_graph(u);
  c->layout = layout_make(c->opt_g, &c->arena);
  stage_done(c, "passes");
  /* the interpreter holds every node for a batch; compiled code, a
     workspace of its own size (jit.c checks it once it is planned) */
  bool every_node = !c->opt->jit && c->emit == NNC_EMIT_NONE;
  double need = every_node ? interp_bytes(c->opt_g, c->layout, c->prog.train.batch)
                           : (double)c->layout->total * c->layout->elem_size;
  if (need > NNC_MAX_MEMORY) {
    char batch[96] = "";
    if (every_node) snprintf(batch, sizeof batch, " and a batch of %lld rows of intermediates", (long long)c->prog.train.batch);
    diag_file_error(c->opt->file, "the model needs %.1f GiB for its parameters%s (limit %.0f GiB): use smaller layers%s",
                    need / (1 << 30), every_node ? batch : " and optimizer state", NNC_MAX_MEMORY / (1 << 30),
                    every_node ? " or a smaller batch" : "");
    return 1;
  }
  return 0;
}

/* Threads for a training run: --threads, else what gains (parallel.h).
 * Every thread needs a row of the batch: more are clamped, with a note
 * when `say`. */
static int train_threads(const Compilation *c, bool say) {
  const NncOptions *o = c->opt;
  if (!o->train || !o->jit) return 1;
  int64_t batch = c->prog.train.batch;
  if (o->threads <= 0) return c->opt_g->stat_values ? 1 : par_default_threads(graph_row_values(c->opt_g), batch);
  if (o->threads <= batch) return o->threads;
  if (say)
    fprintf(stderr, "nnc: note: --threads %d is more than a batch of %" PRId64 " row%s can use; training on %" PRId64
                    " thread%s\n",
            o->threads, batch, batch == 1 ? "" : "s", batch, batch == 1 ? "" : "s");
  return (int)batch;
}

bool compilation_dump(const Compilation *c, NncEmit kind, StrBuf *out) {
  switch (kind) {
  case NNC_EMIT_AST: ast_dump(&c->ast, out); return true;
  case NNC_EMIT_IR: graph_dump(c->fwd, DUMP_FORWARD, out); return true;
  case NNC_EMIT_GRAD: graph_dump(c->grad, DUMP_GRAD, out); return true;
  case NNC_EMIT_OPT: graph_dump(c->opt_g, DUMP_ALL, out); return true;
  case NNC_EMIT_DOT: graph_dot(c->grad, out); return true;
  case NNC_EMIT_LAYOUT: layout_dump(c->opt_g, c->layout, out); return true;
  case NNC_EMIT_NONE: case NNC_EMIT_LLVM: case NNC_EMIT_ASM: case NNC_EMIT_OBJ: case NNC_EMIT_HEADER: return false;
  }
  return false;
}

int compilation_run(Compilation *c) {
  int rc = frontend(c);
  if (rc) return rc < 0 ? 0 : rc;
  return middle(c);
}

/* What every MPI rank must share (par_same_run): the compiled graph
 * (forward, backward, update: the model, the optimizer and its settings,
 * the dtype; without the comments, which name the file), the parameter
 * layout, the options that decide the steps and the data's shape, the
 * learning rate and its schedule, early stopping, where a resumed run
 * stands, and the buffer it starts from (the parameters, from the
 * initializers or --load or --resume, the optimizer state, the learning
 * rate). */
static int run_facts_agree(const Compilation *c, const Engine *e, const TrainState *st, const NncData *train,
                           const NncData *valid) {
  if (par_size() == 1) return 0;
  const TrainConfig *tc = &c->prog.train;
  StrBuf graph = {0}, facts = {0};
  sb_printf(&facts, "epochs %" PRId64 ", batch %" PRId64 " rows a rank, shuffle %s, seed %" PRIu64 "\n", tc->epochs,
            tc->batch, tc->shuffle ? "true" : "false", tc->seed);
  const ScheduleSpec *sc = &tc->schedule;
  static const char *const schedules[] = {[SCHED_CONSTANT] = "constant", [SCHED_STEP] = "step",
                                          [SCHED_COSINE] = "cosine"};
  char lr[32], gamma[32], min_lr[32];
  fmt_number(lr, sizeof lr, tc->optim.lr);
  fmt_number(gamma, sizeof gamma, sc->gamma);
  fmt_number(min_lr, sizeof min_lr, sc->min_lr);
  sb_printf(&facts, "learning rate %s, schedule %s(every: %" PRId64 ", gamma: %s, min_lr: %s, warmup: %" PRId64
                    "), early_stop %" PRId64 "\n",
            lr, schedules[sc->kind], sc->every, gamma, min_lr, sc->warmup, tc->early_stop);
  sb_printf(&facts, "resumed after epoch %" PRId64 ", step %" PRId64 ", %" PRId64 " rows into the next\n", st->epoch,
            st->steps, st->epoch_rows);
  sb_printf(&facts, "training data: %zu rows of %d inputs and %d targets\n", train->rows, train->in_cols,
            train->tgt_cols);
  sb_printf(&facts, "validation data: %zu rows\n", valid->rows);
  graph_dump(c->opt_g, DUMP_ALL, &graph);
  for (char *line = graph.data; line && *line;) {
    char *end = line + strcspn(line, "\n"), *comment = memchr(line, ';', (size_t)(end - line));
    char *stop = comment ? comment : end;
    while (stop > line && stop[-1] == ' ') stop--;
    if (stop > line) { /* "%3 = matmul %W, %x  f64[B,4]" with its runs of spaces made one */
      sb_puts(&facts, "graph:");
      for (char *p = line; p < stop; p++)
        if (*p != ' ' || (p > line && p[-1] != ' ')) sb_putc(&facts, *p);
      sb_putc(&facts, '\n');
    }
    line = *end ? end + 1 : end;
  }
  sb_printf(&facts, "parameter buffer: %" PRId64 " elements of %d bytes\n", c->layout->total, c->layout->elem_size);
  sb_printf(&facts, "starting parameters and optimizer state: hash %016" PRIx64 "\n",
            bytes_hash(e->buf, (size_t)c->layout->total * (size_t)c->layout->elem_size));
  int rc = par_same_run(facts.data);
  sb_free(&graph);
  sb_free(&facts);
  return rc;
}

/* batch_norm's batch statistics are over every row of a batch in one step,
 * so no threads or MPI ranks (their shards would each normalize with their
 * own rows), and no batch of 1 row when a row gives a channel one value.
 * Before compiling; the errors point at the layer. */
static int check_batch_stats(Compilation *c, const NncData *train) {
  const Graph *g = c->opt_g;
  const NncOptions *o = c->opt;
  if (!g->stat_values) return 0;
  if (o->train && (o->threads > 1 || par_size() > 1)) {
    diag_error(&c->diag, g->stat_loc, "%s normalizes with the statistics of the whole batch, computed in one step, "
               "so a model with batch_norm trains on one thread of one process (%s)",
               g->stat_layer, par_size() > 1 ? "not under mpirun" : "--threads 1");
    return 1;
  }
  const char *task = o->grad ? "--grad" : o->check_grad ? "--check-grad" : NULL;
  if ((o->train || task) && rt_batch_stats_rows(g, &c->src, (int64_t)train->rows, c->prog.train.batch, task) != 0)
    return 1;
  return 0;
}

static bool release_code; /* driver_release_code_after_compile */

void driver_release_code_after_compile(void) { release_code = true; }

static bool leave_to_exit; /* driver_leave_run_to_exit */

void driver_leave_run_to_exit(void) { leave_to_exit = true; }

/* How two threads share a training step: split the batch (each thread
 * the gradients of half the rows, summed; parallel.c's engine) or the
 * features (each large matrix product split between the threads by its
 * output columns or rows, the step otherwise one thread's; the same bits
 * as one thread: par_fork_engine_new). The features on two threads of
 * one process for a model without convolutions: a convolution's products
 * are per row of the batch, small, and the batch split gains more there
 * (fashion_cnn 1.8x); an MLP's products move less between the cores split
 * by features than its gradients and weights do split by rows (784-1024-
 * 1024-10: 1.7x against 1.2x; bench/RESULTS.md). NNC_SPLIT=batch or
 * features chooses (docs/internals.md). */
static bool feature_split(const Compilation *c, int threads) {
  if (threads != 2 || par_size() > 1 || !c->opt->jit || !c->opt->train) return false;
  const char *env = getenv("NNC_SPLIT");
  if (env && strcmp(env, "batch") == 0) return false;
  if (env && strcmp(env, "features") == 0) return true;
  /* (on one CPU the two threads would wait out each other's spins) */
  if (par_available_cpus() < 2) return false;
  return !graph_has_windows(c->opt_g);
}

/* *parallel: whether the engine is parallel.c's, threads or MPI ranks. */
static Engine *make_engine(Compilation *c, TrainState *st, bool *parallel_out) {
  const NncOptions *o = c->opt;
  Engine *e = NULL;
  int threads = train_threads(c, true);
  bool features = feature_split(c, threads);
  bool parallel = o->train && !features && (threads > 1 || par_size() > 1);
  *parallel_out = parallel || features;
  if (o->jit) {
    /* the functions the run calls, nothing more (compile time) */
    unsigned fns = o->predict ? CG_PREDICT
                 : o->grad || o->check_grad ? CG_BACKWARD
                 : o->eval ? CG_FORWARD
                 : CG_FORWARD | CG_TRAIN_EPOCH | (o->plot ? CG_PREDICT : 0);
    /* parallel.c's step: threads update with update_part, ranks (MPI)
       with update after their sum; codegen adds update when the step has
       no update_part */
    if (parallel) fns = (fns & ~(unsigned)CG_TRAIN_EPOCH) | CG_GRAD_PART | (par_size() > 1 ? CG_UPDATE : 0);
    /* each thread's grad_part and its workspace for the rows of its shard,
       not the whole batch (fashion_cnn at batch 1024 on 8 threads: 2.4 GB
       of workspaces) */
    if (parallel) c->opt_g->part_rows = (int)((c->prog.train.batch + threads - 1) / threads);
    if (features) fns |= CG_FORK_GEMMS;
    e = jit_engine_new(c->opt_g, c->layout, (int)c->prog.train.batch, o->opt_level, fns, o->time, o->cpu);
    if (!e) return NULL;
    /* LLVM is done: its code pages were ~25 MiB of a training run's peak.
       Not when the run adds less than 1 MiB after compiling (buffer, its
       copy before each epoch, workspace; moons: a few KB): the peak is the
       compile's then, LLVM's freed heap alone being larger, and the code
       that trains and reports would come back a page fault at a time
       (moons: 40 faults and the madvise, ~1 ms of a 30 ms process) */
    size_t adds = 2 * (size_t)c->layout->total * (size_t)c->layout->elem_size + jit_engine_workspace_bytes(e);
    if (release_code && adds >= (size_t)1 << 20) nnc_release_code_pages((const void *)(uintptr_t)jit_engine_new);
  } else {
    e = interp_engine_new(c->opt_g, c->layout, (int)c->prog.train.batch);
  }
  int rc = 0;
  if (o->resume)
    rc = rt_resume(o->resume, e, st);
  else if (o->load)
    rc = rt_load_params(o->load, e);
  else
    rt_init_params(&c->prog, c->inits, e);
  if (rc != 0) {
    e->destroy(e);
    return NULL;
  }
  if (parallel) e = par_engine_new(e, threads);
  if (features) e = par_fork_engine_new(e);
  return e;
}

/* Refuse an output that cannot be written before any work is done (a
 * long training run should not end in "cannot write"). */
static int check_outputs(const NncOptions *o) {
  const char *outputs[] = {o->out, o->save, o->plot};
  for (size_t i = 0; i < sizeof outputs / sizeof *outputs; i++) {
    int err = outputs[i] ? nnc_out_check(outputs[i]) : 0;
    if (err) {
      diag_file_error(outputs[i], "cannot write: %s", strerror(err));
      return 1;
    }
  }
  return 0;
}

static int run_task(Compilation *c) {
  const NncOptions *o = c->opt;
  if (o->plot && (report_check_path(o->plot) || report_load(o->plot))) return 1;
  if (o->predict) {
    if (graph_output_needs_targets(c->opt_g)) {
      diag_file_error(o->file, "the output depends on the targets, so it cannot be predicted from inputs; "
                               "name a value computed from the inputs with `output NAME`");
      return 1;
    }
    bool parallel;
    Engine *e = make_engine(c, NULL, &parallel);
    if (!e) return 1;
    const DataSpec *data = &c->prog.train.data;
    /* a class label after the inputs, as the training data has one */
    int rc = rt_predict(e, o->predict, (data->kind == DATA_CSV && data->onehot) || data->kind == DATA_IDX);
    e->destroy(e);
    return rc;
  }
  NncData train = {0}, valid = {0};
  TrainState st = {0};
  int rc = 0;
  if ((o->grad || o->check_grad) && c->prog.train.data.kind == DATA_NONE) {
    /* as torch.autograd.gradcheck on random inputs */
    int64_t rows = c->prog.train.batch;
    bool indices = rt_random_data(&c->prog, c->opt_g, rows, &train);
    diag_note(&c->diag, (Loc){0, 0}, "the train block has no data: %s uses %lld row%s of inputs drawn from N(0, 1)%s "
              "and targets from U(0, 1) with seed %llu",
              o->grad ? "--grad" : "--check-grad", (long long)rows, rows == 1 ? "" : "s",
              indices ? " (embedding indices uniformly from their tables' rows)" : "",
              (unsigned long long)c->prog.train.seed);
  } else {
    rc = rt_load_data(&c->prog, c->opt_g, &train, &valid);
  }
  bool loaded = rc == 0; /* (a failed load holds nothing) */
  if (rc == 0) rc = check_batch_stats(c, &train);
  bool parallel = false;
  Engine *e = rc == 0 ? make_engine(c, &st, &parallel) : NULL;
  /* with MPI, every rank must get here: one failing rank stops them all,
     and so does one that would not run the same steps */
  if (par_agree(e == NULL) != 0 || run_facts_agree(c, e, &st, &train, &valid) != 0) {
    if (e) e->destroy(e);
    if (loaded) {
      nnc_data_free(&train);
      nnc_data_free(&valid);
    }
    return 1;
  }
  rc = 1;
  if (e) {
    if (o->grad)
      rc = rt_print_grad(e, &train, c->prog.train.batch);
    else if (o->check_grad)
      rc = rt_check_grad(e, &train, c->prog.train.batch, o->file);
    else if (o->eval)
      rc = rt_eval(e, &train, &valid);
    else {
      char engine[64];
      int threads;
      bool features = par_engine_threads(e, &threads);
      if (o->jit) /* the threads that run (fewer than planned when one could not start) */
        snprintf(engine, sizeof engine, "jit -O%d, %d thread%s%s", o->opt_level, threads, threads > 1 ? "s" : "",
                 features ? " (features)" : "");
      else
        snprintf(engine, sizeof engine, "interpreter");
      if (par_size() > 1)
        snprintf(engine + strlen(engine), sizeof engine - strlen(engine), ", %d MPI ranks", par_size());
      /* rank 0 alone writes files (stdout of the others is already gone) */
      bool writer = par_rank() == 0;
      TrainOptions to = {.save = writer ? o->save : NULL, .plot = writer ? o->plot : NULL,
                         .model_name = c->prog.model_name, .plot_linear = o->plot_linear, .engine = engine,
                         .resumed = o->resume, .catch_signals = true};
      rc = rt_train(&c->prog, e, &train, &valid, &to, &st);
    }
    free(st.best);
    /* the engine and the data are the exit's; not threads' (they stop, and
       NNC_THREAD_STATS prints, as their engine is destroyed) or ranks' */
    if (leave_to_exit && !parallel) return rc;
    e->destroy(e);
  }
  nnc_data_free(&train);
  nnc_data_free(&valid);
  return rc;
}

/* Whether paths a and b name one regular file: the same file when both
 * exist (devices and FIFOs aside), else the same file to be created when
 * neither does. */
static bool same_file(const char *a, const char *b) {
  struct stat sa, sb;
  bool ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
  if (ea && eb) return S_ISREG(sa.st_mode) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  if (ea || eb) return false;
  char *ca = nnc_out_target(a), *cb = nnc_out_target(b);
  bool same = ca && cb && strcmp(ca, cb) == 0;
  free(ca), free(cb);
  return same;
}

/* An output over another output, or over the model or its data, would
 * lose one of them: an error, before any work. (--save over the --load or
 * --resume checkpoint is fine: read first, replaced whole, as continuing a
 * run in one file does.) */
static int check_clashes(const Compilation *c) {
  const NncOptions *o = c->opt;
  const DataSpec *data[2] = {&c->prog.train.data, &c->prog.train.valid};
  const char *outputs[][2] = {{"-o", o->out}, {"--save", o->save}, {"--plot", o->plot}};
  const char *inputs[][2] = {{"the model file", o->file}, {"the --predict rows", o->predict},
                             {"the training data", data[0]->path},
                             {"the training labels", data[0]->labels}, {"the validation data", data[1]->path},
                             {"the validation labels", data[1]->labels}};
  for (size_t i = 0; i < sizeof outputs / sizeof *outputs; i++) {
    if (!outputs[i][1]) continue;
    for (size_t j = i + 1; j < sizeof outputs / sizeof *outputs; j++)
      if (outputs[j][1] && same_file(outputs[i][1], outputs[j][1])) {
        diag_file_error(outputs[i][1], "%s and %s name the same file: one would replace the other", outputs[i][0],
                        outputs[j][0]);
        return 1;
      }
    for (size_t j = 0; j < sizeof inputs / sizeof *inputs; j++)
      if (inputs[j][1] && same_file(outputs[i][1], inputs[j][1])) {
        diag_file_error(outputs[i][1], "%s would write over %s", outputs[i][0], inputs[j][0]);
        return 1;
      }
  }
  return 0;
}

/* The first words of libnnc's functions (include/nnc.h: nnc_model_jit,
 * nnc_interp_forward, ...). A model named one of them, or one of them and
 * `_` and more, would have an object whose symbols, nnc_NAME_forward and
 * the others, are in the library's namespace: nnc_interp_forward and
 * nnc_interp_backward are libnnc's, and the object's would take their
 * place in a program that links both. */
static const char *const libnnc_words[] = {"buffer", "compile", "cpu", "dataset", "diagnostics", "emit", "fit",
                                           "interp", "model", "options", "parallel", "run", "version"};

bool compilation_symbols_ok(Compilation *c) {
  const char *name = c->prog.model_name;
  for (size_t i = 0; i < sizeof libnnc_words / sizeof *libnnc_words; i++) {
    size_t n = strlen(libnnc_words[i]);
    if (strncmp(name, libnnc_words[i], n) == 0 && (name[n] == 0 || name[n] == '_')) {
      diag_error(&c->diag, c->prog.model->name_loc,
                 "model name '%s' would give the object's symbols (nnc_%s_forward, ...) the prefix nnc_%s_ of "
                 "libnnc's functions: rename the model",
                 name, name, libnnc_words[i]);
      return false;
    }
  }
  return true;
}

static int run(Compilation *c) {
  const NncOptions *o = c->opt;
  char why[512];
  /* code the host may lack instructions of would end in SIGILL (--emit
     and the summary run none) */
  bool runs_code = o->train || o->grad || o->check_grad || o->eval || o->predict;
  if (o->jit && runs_code && !o->emit && o->cpu && driver_cpu_not_here(o->cpu, why, sizeof why)) {
    fprintf(stderr, "nnc: error: %s\n", why);
    return 1;
  }
  if (check_outputs(o)) return 1;
  int rc = frontend(c);
  if (rc) return rc;
  if (check_clashes(c)) return 1;
  if (emit_to_file(c->emit) && !compilation_symbols_ok(c)) return 1;
  StrBuf sb = {0};
  if (c->emit == NNC_EMIT_IR) {
    compilation_dump(c, NNC_EMIT_IR, &sb);
    return emit_text(o, &sb);
  }
  if (middle(c)) return 1;
  if (c->emit != NNC_EMIT_NONE && compilation_dump(c, c->emit, &sb)) return emit_text(o, &sb);
  if (c->emit != NNC_EMIT_NONE)
    return jit_emit(c->opt_g, c->layout, (int)c->prog.train.batch, o->opt_level, c->emit, o->out, o->time, o->cpu);
  if (!o->train && !o->grad && !o->check_grad && !o->predict && !o->eval) {
    /* no task: the file checked, compiled to a graph, and a summary */
    int64_t count = 0;
    for (int i = 0; i < c->opt_g->params.len; i++) count += shape_numel(&((Node *)c->opt_g->params.items[i])->shape);
    printf("%s: model %s, %s, %lld parameters in %d tensors; run it with --train, --grad, "
           "--check-grad, --eval, --predict CSV or --emit KIND\n",
           o->file, c->prog.model_name, dtype_name(c->prog.dtype), (long long)count, c->opt_g->params.len);
    return 0;
  }
  return run_task(c);
}

void nnc_parallel_init(int *argc, char ***argv) { par_init(argc, argv); }
void nnc_parallel_finalize(void) { par_finalize(); }
bool nnc_cpu_known(const char *name) { return jit_cpu_known(name); }

const char *driver_overrides_error(const NncOptions *o) {
  if (o->epochs < -1 || o->epochs > NNC_MAX_EPOCHS) return "epochs must be -1 (the file's) or 0 to 100000000";
  if (o->batch != -1 && (o->batch < 1 || o->batch > 65536)) return "batch must be -1 (the file's) or 1 to 65536";
  if (o->seed < -1 || o->seed > 4611686018427387903LL) return "seed must be -1 (the file's) or 0 to 2^62 - 1";
  if (!(o->lr < 0 || (o->lr > 0 && o->lr <= 1e6))) return "lr must be negative (the file's) or in (0, 1e6]";
  if (o->dtype < -1 || o->dtype > 1) return "dtype must be -1 (the file's), 0 (f32) or 1 (f64)";
  if (o->opt_level < 0 || o->opt_level > 3) return "opt_level must be 0 to 3";
  if (o->threads < 0 || o->threads > 256) return "threads must be 0 (as many as gain) to 256";
  return NULL;
}

bool driver_cpu_not_here(const char *cpu, char *msg, size_t n) {
  if (jit_cpu_runs_here(cpu)) return false;
  char levels[80] = "";
  for (int i = 0; jit_cpu_level(i); i++)
    if (jit_cpu_runs_here(jit_cpu_level(i)))
      snprintf(levels + strlen(levels), sizeof levels - strlen(levels), "%s%s", *levels ? ", " : " or a level it has (",
               jit_cpu_level(i));
  snprintf(msg, n, "--jit runs the code it compiles on this machine, which may lack instructions of CPU '%s': with "
                   "--jit, --cpu is native, this machine's name (%s)%s%s; --emit compiles for any CPU",
           cpu, jit_host_cpu_name(), levels, *levels ? ")" : "");
  return true;
}

bool driver_options_error(const NncOptions *o, char *msg, size_t n) {
  const char *bad = driver_overrides_error(o);
  int modes = o->train + o->grad + o->check_grad + o->eval + (o->predict != NULL) + (o->emit != NULL);
  NncEmit emit = nnc_emit_kind(o->emit);
  bool for_cpu = emit_for_cpu(emit);
  if (bad) snprintf(msg, n, "%s", bad);
  else if (!o->file) snprintf(msg, n, "no input file");
  else if (modes > 1) snprintf(msg, n, "choose one of --train, --grad, --check-grad, --eval, --predict and --emit");
  else if (o->emit && emit == NNC_EMIT_NONE)
    snprintf(msg, n, "unknown --emit kind '%s' (ast, ir, grad, opt, layout, llvm, asm, dot, obj, header)", o->emit);
  else if (emit_to_file(emit) && o->out && strcmp(o->out, "-") == 0)
    snprintf(msg, n, "--emit %s writes a file: -o - (standard output) is for the text kinds", o->emit);
  else if (emit_to_file(emit) && !o->out) snprintf(msg, n, "--emit %s needs -o FILE", o->emit);
  else if (o->out && !o->emit) snprintf(msg, n, "-o goes with --emit");
  else if (o->cpu && !jit_cpu_known(o->cpu))
    snprintf(msg, n, "unknown CPU '%s' for --cpu (native, x86-64, x86-64-v2, x86-64-v3, x86-64-v4 or an LLVM x86-64 "
                     "processor name such as haswell or znver4)", o->cpu);
  else if (o->cpu && !o->jit && !for_cpu) snprintf(msg, n, "--cpu goes with --jit or --emit llvm, asm, obj or header");
  else if (o->plot && !o->train) snprintf(msg, n, "--plot goes with --train");
  else if (o->save && !o->train) snprintf(msg, n, "--save goes with --train");
  else if (o->resume && !o->train)
    snprintf(msg, n, "--resume goes with --train (--load reads parameters for the other modes)");
  else if (o->resume && o->load) snprintf(msg, n, "--resume reads the parameters too: give --resume or --load, not both");
  else if (o->load && modes - (o->emit != NULL) == 0)
    snprintf(msg, n, "--load goes with --train, --grad, --check-grad, --eval or --predict (the modes that run the "
                     "model)");
  else if (o->threads > 0 && !o->train) snprintf(msg, n, "--threads goes with --train (it splits the training batches)");
  else if (o->threads > 1 && !o->jit)
    snprintf(msg, n, "--threads above 1 needs --jit (the interpreter runs on one thread)");
  else
    return false;
  return true;
}

/* (in the "C" locale: a program using libnnc may have set another) */
int nnc_run(const NncOptions *o) {
  char bad[256];
  if (!o || driver_options_error(o, bad, sizeof bad)) { /* (the command has said its own) */
    fprintf(stderr, "nnc: error: options: %s\n", o ? bad : "NULL");
    return 2;
  }
  /* -o - is standard output, as no -o (the text kinds; driver_options_error
     refused it for obj and header) */
  NncOptions own = *o;
  if (own.out && strcmp(own.out, "-") == 0) own.out = NULL;
  o = &own;
  void *locale = nnc_c_locale_begin();
  Compilation c = {.opt = o, .emit = nnc_emit_kind(o->emit)};
  arena_init(&c.arena);
  int rc = run(&c);
  if (rc < 0) rc = 0;
  rc = par_finish(rc); /* with MPI: one rank's failure ends them all */
  if (!leave_to_exit) { /* (else the compilation is the exit's) */
    source_free(&c.src);
    arena_free(&c.arena);
  }
  nnc_c_locale_end(locale);
  return rc;
}

