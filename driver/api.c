/*
 * api.c - the library calls of nnc.h: a model compiled from a file or a
 * string with its diagnostics collected, its buffer layout, JIT-compiled
 * functions and the interpreter on a caller's buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "diag.h"
#include "driver.h"
#include "engine.h"
#include "interp.h"
#include "jit.h"
#include "nnc.h"
#include "parallel.h"
#include "train.h"

typedef struct JitCode {
  Engine *engine; /* owns the LLJIT and the code */
  NncFunctions fns;
  struct JitCode *next;
} JitCode;

struct NncModel {
  Compilation c;
  NncOptions opt; /* c.opt points here */
  char *name;     /* the path or the string's name (c.src.path points here) */
  char *cpu;
  NncLayout layout;
  NncParam *params;
  NncParam *states;
  Engine *interp; /* built on first use; its buffer is swapped for the caller's */
  JitCode *jits;
  TrainState fitted; /* the last nnc_model_fit's steps and shuffling (for
                        nnc_model_save's metadata; best not kept) */
  atomic_int stop;             /* nnc_model_stop's flag */
  /* the interpreter may run a batch: within the memory limit, which
     compiling checked unless the caller said jit */
  bool interp_fits;
  NncIndexInput *index_inputs; /* the inputs embeddings read */
  int nindex_inputs;
};

static void fill_layout(NncModel *m) {
  const Graph *g = m->c.opt_g;
  const Layout *L = m->c.layout;
  NncLayout *pub = &m->layout;
  pub->model = m->c.prog.model_name;
  pub->dtype = g->dtype == DT_F64 ? NNC_F64 : NNC_F32;
  pub->elem_size = L->elem_size;
  pub->total = L->total;
  pub->max_batch = (int)m->c.prog.train.batch;
  pub->input_cols = engine_input_cols(g);
  pub->target_cols = engine_target_cols(g);
  pub->output_cols = shape_numel(&g->output->shape);
  pub->has_predict = !graph_output_needs_targets(g);
  pub->nparams = g->params.len;
  pub->lr_offset = L->lr_off;
  pub->min_train_rows = graph_min_train_rows(g);
  IndexInput *ix = engine_index_inputs(g, &m->nindex_inputs);
  m->index_inputs = nnc_xcalloc((size_t)m->nindex_inputs + 1, sizeof *m->index_inputs);
  for (int i = 0; i < m->nindex_inputs; i++)
    m->index_inputs[i] = (NncIndexInput){.input = ix[i].input->name, .table = ix[i].table->name,
                                         .column = ix[i].column, .count = ix[i].count, .rows = ix[i].rows};
  free(ix);
  m->params = nnc_xcalloc((size_t)g->params.len + 1, sizeof *m->params);
  for (int i = 0; i < g->params.len; i++) {
    const Node *p = g->params.items[i];
    NncParam *q = &m->params[i];
    q->name = p->name;
    q->offset = L->param_off[i];
    q->grad_offset = L->grad_off[i];
    q->size = shape_numel(&p->shape);
    q->rank = p->shape.rank;
    for (int k = 0; k < p->shape.rank && k < 4; k++) q->shape[k] = p->shape.dim[k];
    pub->param_elems += q->size;
  }
  pub->params = m->params;
  m->states = nnc_xcalloc((size_t)g->states.len + 1, sizeof *m->states);
  for (int j = 0; j < g->states.len; j++) {
    const Node *s = g->states.items[j];
    if (is_run_state(s)) continue;
    NncParam *q = &m->states[pub->nstates++];
    q->name = s->name;
    q->offset = L->state_off[j];
    q->grad_offset = -1;
    q->size = shape_numel(&s->shape);
    q->rank = s->shape.rank;
    for (int k = 0; k < s->shape.rank && k < 4; k++) q->shape[k] = s->shape.dim[k];
  }
  pub->states = m->states;
}

/* A call's frame: its diagnostics go to the caller's list (or nowhere),
 * never to stderr, and its thread reads and writes numbers in the "C"
 * locale whatever locale the host program set (a decimal comma would
 * read `noise: 0.15` as 0). */
typedef struct Sink {
  NncDiagnostics scratch, *old;
  void *locale;
} Sink;

static NncDiagnostics *sink_open(Sink *k, NncDiagnostics *diags) {
  memset(&k->scratch, 0, sizeof k->scratch);
  NncDiagnostics *to = diags ? diags : &k->scratch;
  k->old = diag_set_file_sink(to);
  k->locale = nnc_c_locale_begin();
  return to;
}

static void sink_close(Sink *k) {
  nnc_c_locale_end(k->locale);
  diag_set_file_sink(k->old);
  nnc_diagnostics_free(&k->scratch);
}

/* text: the source to compile, or NULL to read name as a file. */
static NncModel *compile(const char *name, const char *text, const NncOptions *opts, NncDiagnostics *diags) {
  NncModel *m = nnc_xcalloc(1, sizeof *m);
  if (opts)
    m->opt = *opts;
  else
    nnc_options_default(&m->opt);
  /* only the overrides and the CPU count; nothing is run or emitted */
  m->name = nnc_xstrdup(name ? name : "<string>");
  m->cpu = m->opt.cpu ? nnc_xstrdup(m->opt.cpu) : NULL;
  m->opt.cpu = m->cpu;
  m->opt.file = m->name;
  /* jit stays: which memory limit applies (driver.c, middle) */
  m->opt.train = m->opt.grad = m->opt.check_grad = m->opt.time = m->opt.eval = false;
  m->opt.predict = m->opt.emit = m->opt.load = m->opt.save = m->opt.out = m->opt.plot = m->opt.resume = NULL;
  m->c.opt = &m->opt;
  arena_init(&m->c.arena);
  Sink k;
  m->c.diag.sink = sink_open(&k, diags);
  int rc = 0;
  char why[512];
  const char *bad = driver_overrides_error(&m->opt);
  if (bad) {
    diag_file_error(m->name, "options: %s", bad);
    rc = 1;
  } else if (!jit_cpu_known(m->opt.cpu)) {
    diag_file_error(m->name, "unknown CPU '%s'", m->opt.cpu);
    rc = 1;
  } else if (m->opt.jit && m->opt.cpu && driver_cpu_not_here(m->opt.cpu, why, sizeof why)) {
    diag_file_error(m->name, "%s", why);
    rc = 1;
  } else if (text) {
    size_t len = strlen(text);
    if (len > NNC_MAX_SOURCE_BYTES) {
      diag_file_error(m->name, "source is too large for a .nn file (limit %u MiB)", NNC_MAX_SOURCE_BYTES >> 20);
      rc = 1;
    } else {
      char *copy = nnc_xstrdup(text); /* freed by source_free */
      source_normalize(copy, &len);
      source_from_text(&m->c.src, m->name, copy, len);
    }
  }
  if (rc == 0) rc = compilation_run(&m->c);
  sink_close(&k);
  m->c.diag.sink = NULL;
  if (rc != 0 || !m->c.opt_g) {
    nnc_model_free(m);
    return NULL;
  }
  fill_layout(m);
  m->interp_fits = interp_bytes(m->c.opt_g, m->c.layout, m->c.prog.train.batch) <= NNC_MAX_MEMORY;
  return m;
}

/* A required pointer argument `arg` of the call `fn` is NULL: an error into
 * the call's diagnostics (a Sink is open), at the model's file, or at "nnc"
 * without a model. */
static void null_argument(const NncModel *m, const char *fn, const char *arg) {
  diag_file_error(m ? m->name : "nnc", "%s: %s is NULL", fn, arg);
}

NncModel *nnc_compile_file(const char *path, const NncOptions *opts, NncDiagnostics *diags) {
  if (!path) {
    Sink k;
    sink_open(&k, diags);
    null_argument(NULL, "nnc_compile_file", "the path");
    sink_close(&k);
    return NULL;
  }
  return compile(path, NULL, opts, diags);
}

NncModel *nnc_compile_string(const char *name, const char *source, const NncOptions *opts,
                             NncDiagnostics *diags) {
  return compile(name, source ? source : "", opts, diags);
}

void nnc_model_free(NncModel *m) {
  if (!m) return;
  while (m->jits) {
    JitCode *j = m->jits;
    m->jits = j->next;
    j->engine->destroy(j->engine);
    free(j);
  }
  if (m->interp) m->interp->destroy(m->interp);
  free(m->params);
  free(m->states);
  free(m->index_inputs);
  source_free(&m->c.src);
  arena_free(&m->c.arena);
  free(m->name);
  free(m->cpu);
  free(m);
}

const NncLayout *nnc_model_layout(const NncModel *m) { return m ? &m->layout : NULL; }

void nnc_model_restart(NncModel *m) {
  if (m) m->fitted = (TrainState){0};
}

int nnc_model_index_inputs(const NncModel *m, const NncIndexInput **inputs) {
  if (inputs) *inputs = m ? m->index_inputs : NULL;
  return m ? m->nindex_inputs : 0;
}

static size_t buffer_bytes(const NncModel *m) { return (size_t)m->layout.total * (size_t)m->layout.elem_size; }

void nnc_buffer_init(const NncModel *m, void *buf) {
  if (!m || !buf) return;
  memset(buf, 0, buffer_bytes(m));
  layout_init_states(m->c.opt_g, m->c.layout, buf);
}

void *nnc_buffer_new(const NncModel *m) {
  if (!m) return NULL;
  size_t bytes = buffer_bytes(m);
  void *buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!buf) return NULL;
  nnc_prefault(buf, bytes); /* zeroed in full next */
  nnc_buffer_init(m, buf);
  return buf;
}

static Engine *interp(NncModel *m) {
  if (!m->interp) m->interp = interp_engine_new(m->c.opt_g, m->c.layout, (int)m->c.prog.train.batch);
  return m->interp;
}

/* An engine works on the caller's buffer for one call: lend it the buffer,
 * and give the engine's own back after (e->buf = the returned pointer). */
static void *lend(Engine *e, void *buf) {
  void *own = e->buf;
  e->buf = buf;
  return own;
}

void nnc_model_init_params(const NncModel *cm, void *buf) {
  NncModel *m = (NncModel *)cm; /* the interpreter engine is a cache */
  if (!m || !buf) return;
  Engine *e = interp(m);
  void *own = lend(e, buf);
  rt_init_params(&m->c.prog, m->c.inits, e);
  e->buf = own;
}

/* The compiled functions in the order of NncFunctions' f64 and f32 sets. */
static const char *const fn_names[] = {"forward", "predict", "backward", "update", "train_step", "train_epoch"};

const NncFunctions *nnc_model_jit(NncModel *m, int opt_level) {
  if (!m) return NULL;
  if (opt_level < 0) opt_level = 0;
  if (opt_level > 3) opt_level = 3;
  char why[512];
  if (m->opt.cpu && driver_cpu_not_here(m->opt.cpu, why, sizeof why)) { /* (else SIGILL, at a call) */
    fprintf(stderr, "nnc: error: %s\n", why);
    return NULL;
  }
  /* threads 2: the feature split in nnc_model_fit (its engine's calls;
     the functions called directly run whole on the caller's thread) */
  bool features = m->opt.threads == 2;
  Engine *e = jit_engine_new(m->c.opt_g, m->c.layout, (int)m->c.prog.train.batch, opt_level,
                             CG_ALL | (features ? CG_FORK_GEMMS : 0u), false, m->opt.cpu);
  if (!e) return NULL;
  JitCode *j = nnc_xcalloc(1, sizeof *j);
  j->engine = e;
  bool ok = true;
  NncFunctions *f = &j->fns;
  f->dtype = m->layout.dtype;
  /* both sets are six function pointers in fn_names' order; the addresses
     come from the JIT as object pointers */
  void *addr[sizeof fn_names / sizeof *fn_names] = {0};
  _Static_assert(sizeof f->f64 == sizeof addr && sizeof f->f32 == sizeof addr, "NncFunctions sets");
  for (size_t k = 0; k < sizeof fn_names / sizeof *fn_names; k++) {
    if (strcmp(fn_names[k], "predict") == 0 && !m->layout.has_predict) continue;
    if (!(addr[k] = jit_engine_symbol(e, fn_names[k]))) ok = false;
  }
  if (f->dtype == NNC_F64)
    memcpy(&f->f64, addr, sizeof addr);
  else
    memcpy(&f->f32, addr, sizeof addr);
  if (!ok) {
    e->destroy(e);
    free(j);
    return NULL;
  }
  if (features) j->engine = par_fork_engine_new(e); /* (e itself when its worker cannot start) */
  j->next = m->jits;
  m->jits = j;
  return &j->fns;
}

/* A row count the engines were built for. */
static bool rows_ok(const NncModel *m, int64_t n) {
  return n >= m->layout.min_train_rows && n <= m->layout.max_batch;
}

int nnc_interp_forward(NncModel *m, void *buf, const void *x, const void *t, int64_t n, void *y, void *loss) {
  if (!m || !buf || !x || !y || n < 0 || (!t && !m->layout.has_predict) || !m->interp_fits) return -1;
  Engine *e = interp(m);
  void *own = lend(e, buf);
  e->forward(e, x, t && loss ? t : NULL, n, y, t ? loss : NULL);
  e->buf = own;
  return 0;
}

/* backward, or backward and the optimizer step, on the caller's buffer */
static int interp_step(NncModel *m, void *buf, const void *x, const void *t, int64_t n, double *loss,
                       bool update) {
  if (!m || !buf || !x || !t || !rows_ok(m, n) || !m->interp_fits) return -1;
  Engine *e = interp(m);
  void *own = lend(e, buf);
  double l = update ? e->train_step(e, x, t, n) : e->backward(e, x, t, n);
  e->buf = own;
  if (loss) *loss = l;
  return 0;
}

int nnc_interp_backward(NncModel *m, void *buf, const void *x, const void *t, int64_t n, double *loss) {
  return interp_step(m, buf, x, t, n, loss, false);
}

int nnc_interp_train_step(NncModel *m, void *buf, const void *x, const void *t, int64_t n, double *loss) {
  return interp_step(m, buf, x, t, n, loss, true);
}

/* ---- training, checkpoints, data and text ---- */

/* The engine a caller's buffer is lent to for one call: the interpreter, or
 * the JIT code whose functions `code` points at (NULL when it is not m's). */
static Engine *engine_for(NncModel *m, const NncFunctions *code) {
  if (!code) return interp(m);
  for (JitCode *j = m->jits; j; j = j->next)
    if (&j->fns == code) return j->engine;
  return NULL;
}

/* Diagnostics of a call go to the caller's list, or nowhere: never to
 * standard error. */
const char *nnc_version(void) { return NNC_VERSION; }

/* compilation_symbols_ok, its error (at the model's name, with the source
 * line) into `to`; the model's count of errors stays its compile's. */
static bool symbols_ok(NncModel *m, NncDiagnostics *to) {
  Diag saved = m->c.diag;
  m->c.diag.sink = to;
  bool ok = compilation_symbols_ok(&m->c);
  m->c.diag = saved;
  return ok;
}

char *nnc_model_emit(NncModel *m, const char *kind, int opt_level, size_t *len, NncDiagnostics *diags) {
  Sink k;
  NncDiagnostics *to = sink_open(&k, diags);
  StrBuf sb = {0};
  if (!kind) kind = "";
  NncEmit emit = nnc_emit_kind(kind);
  bool ok = m && compilation_dump(&m->c, emit, &sb);
  if (!m) {
    null_argument(m, "nnc_model_emit", "the model");
  } else if (emit_to_file(emit) && !symbols_ok(m, to)) {
    /* reported */
  } else if (!ok && emit != NNC_EMIT_NONE) {
    int level = opt_level < 0 ? 0 : opt_level > 3 ? 3 : opt_level;
    ok = jit_emit_text(m->c.opt_g, m->c.layout, (int)m->c.prog.train.batch, level, emit, false, m->opt.cpu, &sb) == 0;
    if (!ok) diag_file_error(m->name, "cannot emit %s: LLVM failed (its message is on standard error)", kind);
  } else if (!ok) {
    diag_file_error(m->name, "unknown emit kind '%s' (ast, ir, grad, opt, layout, llvm, asm, dot, obj, header)",
                    kind);
  }
  sink_close(&k);
  if (!ok) {
    sb_free(&sb);
    return NULL;
  }
  if (!sb.data) {
    sb_putc(&sb, 0);
    sb.len = 0;
  }
  if (len) *len = sb.len;
  return sb.data;
}

int nnc_model_save(NncModel *m, const void *buf, const char *path, int64_t epoch, NncDiagnostics *diags) {
  Sink k;
  sink_open(&k, diags);
  int rc = -1;
  if (!m || !buf || !path) {
    null_argument(m, "nnc_model_save", !m ? "the model" : !buf ? "buf" : "the path");
  } else {
    Engine *e = interp(m);
    void *own = lend(e, (void *)buf); /* saving only reads it */
    /* the metadata of the run that reached this epoch, as --save writes it */
    TrainState st = m->fitted.epoch == epoch ? m->fitted : (TrainState){.epoch = epoch};
    rc = rt_save_checkpoint(path, e, m->layout.model, &st, NULL) ? -1 : 0;
    e->buf = own;
  }
  sink_close(&k);
  return rc;
}

int nnc_model_load(NncModel *m, void *buf, const char *path, NncDiagnostics *diags) {
  Sink k;
  sink_open(&k, diags);
  if (!m || !buf || !path) {
    null_argument(m, "nnc_model_load", !m ? "the model" : !buf ? "buf" : "the path");
    sink_close(&k);
    return -1;
  }
  /* into a copy, so a failed load leaves buf as it was */
  size_t bytes = buffer_bytes(m);
  void *copy = nnc_xaligned(bytes);
  memcpy(copy, buf, bytes);
  Engine *e = interp(m);
  void *own = lend(e, copy);
  int rc = rt_load_params(path, e);
  e->buf = own;
  if (rc == 0) { /* as --load: a new run from these parameters */
    layout_reset_run_state(m->c.opt_g, m->c.layout, copy);
    memcpy(buf, copy, bytes);
    nnc_model_restart(m);
  }
  free(copy);
  sink_close(&k);
  return rc ? -1 : 0;
}

static void dataset_take(const NncData *d, DType dt, NncDataset *out) {
  out->rows = (int64_t)d->rows;
  out->x = rt_data_cast(d, false, dt);
  out->t = rt_data_cast(d, true, dt);
}

int nnc_model_data(NncModel *m, NncDataset *train, NncDataset *valid, NncDiagnostics *diags) {
  if (train) memset(train, 0, sizeof *train);
  if (valid) memset(valid, 0, sizeof *valid);
  Sink k;
  sink_open(&k, diags);
  int rc = -1;
  NncData tr, va;
  if (!m) {
    null_argument(m, "nnc_model_data", "the model");
  } else if (rt_load_data(&m->c.prog, m->c.opt_g, &tr, &va) == 0) {
    rc = 0;
    if (train) dataset_take(&tr, m->c.opt_g->dtype, train);
    if (valid) dataset_take(&va, m->c.opt_g->dtype, valid);
    nnc_data_free(&tr);
    nnc_data_free(&va);
  }
  sink_close(&k);
  return rc;
}

void nnc_dataset_free(NncDataset *d) {
  if (!d) return;
  free(d->x);
  free(d->t);
  memset(d, 0, sizeof *d);
}

int nnc_model_fit(NncModel *m, void *buf, const NncFunctions *code, int64_t epochs, bool verbose, NncFitResult *r,
                  NncDiagnostics *diags) {
  NncFitResult scratch;
  if (!r) r = &scratch;
  memset(r, 0, sizeof *r);
  Sink k;
  sink_open(&k, diags);
  int rc = -1;
  Engine *e = m ? engine_for(m, code) : NULL;
  NncData tr = {0}, va = {0};
  if (!m || !buf) {
    null_argument(m, "nnc_model_fit", !m ? "the model" : "buf");
  } else if (!e) {
    diag_file_error(m->name, "nnc_model_fit: the code is not this model's");
  } else if (!code && !m->interp_fits) {
    diag_file_error(m->name, "nnc_model_fit: the interpreter would need %.1f GiB for a batch (limit %.0f GiB): "
                    "train with the model's compiled code",
                    interp_bytes(m->c.opt_g, m->c.layout, m->c.prog.train.batch) / (1 << 30),
                    NNC_MAX_MEMORY / (1 << 30));
  } else if (epochs > NNC_MAX_EPOCHS) {
    diag_file_error(m->name, "nnc_model_fit: epochs must be at most %lld", NNC_MAX_EPOCHS);
  } else if (rt_load_data(&m->c.prog, m->c.opt_g, &tr, &va) == 0) {
    /* the run goes on from where the last call left it (its schedule, its
       shuffled order, its steps) for `epochs` more (the train block's
       count); early stopping looks at this call's epochs */
    Program p = m->c.prog; /* a copy, for another epoch count */
    TrainState st = m->fitted;
    st.best_epoch = 0, st.best_loss = 0, st.best = NULL;
    p.train.epochs = st.epoch + (epochs >= 0 ? epochs : m->c.prog.train.epochs);
    TrainOptions to = {.model_name = p.model_name, .engine = code ? "jit" : "interpreter", .quiet = !verbose,
                       .result = r, .stop = &m->stop};
    void *own = lend(e, buf);
    int status = rt_train(&p, e, &tr, &va, &to, &st);
    free(st.best);
    st.best = NULL;
    m->fitted = st; /* (a diverged run stands at its last finite epoch) */
    e->buf = own;
    /* without files to write, rt_train fails before training only on an empty set */
    rc = status == 0 ? 0 : tr.rows > 0 ? 1 : -1;
    nnc_data_free(&tr);
    nnc_data_free(&va);
  }
  sink_close(&k);
  if (r == &scratch) nnc_fit_result_free(r);
  return rc;
}

void nnc_model_stop(NncModel *m, bool stop) {
  if (m) atomic_store(&m->stop, stop);
}

void nnc_fit_result_free(NncFitResult *r) {
  if (!r) return;
  free(r->train_loss);
  free(r->valid_loss);
  r->train_loss = r->valid_loss = NULL;
}

