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
  Engine *interp; /* built on first use; its buffer is swapped for the caller's */
  JitCode *jits;
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
  m->opt.jit = m->opt.train = m->opt.grad = m->opt.check_grad = m->opt.time = false;
  m->opt.predict = m->opt.emit = m->opt.load = m->opt.save = m->opt.out = m->opt.plot = NULL;
  m->c.opt = &m->opt;
  arena_init(&m->c.arena);
  /* diagnostics go to the caller's list (or nowhere), never to stderr */
  NncDiagnostics scratch = {0};
  NncDiagnostics *sink = diags ? diags : &scratch;
  m->c.diag.sink = sink;
  NncDiagnostics *old = diag_set_file_sink(sink);
  int rc = 0;
  if (!jit_cpu_known(m->opt.cpu)) {
    diag_file_error(m->name, "unknown CPU '%s'", m->opt.cpu);
    rc = 1;
  } else if (text) {
    size_t len = strlen(text);
    if (len > NNC_MAX_SOURCE_BYTES) {
      diag_file_error(m->name, "source is too large for a .nn file (limit %u MiB)", NNC_MAX_SOURCE_BYTES >> 20);
      rc = 1;
    } else {
      source_from_text(&m->c.src, m->name, nnc_xstrdup(text), len); /* freed by source_free */
    }
  }
  if (rc == 0) rc = compilation_run(&m->c);
  diag_set_file_sink(old);
  m->c.diag.sink = NULL;
  nnc_diagnostics_free(&scratch);
  if (rc != 0 || !m->c.opt_g) {
    nnc_model_free(m);
    return NULL;
  }
  fill_layout(m);
  return m;
}

NncModel *nnc_compile_file(const char *path, const NncOptions *opts, NncDiagnostics *diags) {
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
  source_free(&m->c.src);
  arena_free(&m->c.arena);
  free(m->name);
  free(m->cpu);
  free(m);
}

const NncLayout *nnc_model_layout(const NncModel *m) { return &m->layout; }

void *nnc_buffer_new(const NncModel *m) {
  size_t bytes = (size_t)m->layout.total * (size_t)m->layout.elem_size;
  void *buf = aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!buf) return NULL;
  memset(buf, 0, bytes);
  layout_init_states(m->c.opt_g, m->c.layout, buf);
  return buf;
}

static Engine *interp(NncModel *m) {
  if (!m->interp) m->interp = interp_engine_new(m->c.opt_g, m->c.layout, (int)m->c.prog.train.batch);
  return m->interp;
}

void nnc_model_init_params(const NncModel *cm, void *buf) {
  NncModel *m = (NncModel *)cm; /* the interpreter engine is a cache */
  Engine *e = interp(m);
  void *own = e->buf;
  e->buf = buf;
  rt_init_params(&m->c.prog, m->c.inits, e);
  e->buf = own;
}

/* The compiled functions in the order of NncFunctions' f64 and f32 sets. */
static const char *const fn_names[] = {"forward", "predict", "backward", "update", "train_step", "train_epoch"};

const NncFunctions *nnc_model_jit(NncModel *m, int opt_level) {
  if (opt_level < 0) opt_level = 0;
  if (opt_level > 3) opt_level = 3;
  Engine *e = jit_engine_new_cpu(m->c.opt_g, m->c.layout, (int)m->c.prog.train.batch, opt_level, CG_ALL, false,
                                 m->opt.cpu);
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
  j->next = m->jits;
  m->jits = j;
  return &j->fns;
}

/* A row count the engines were built for. */
static bool rows_ok(const NncModel *m, int64_t n) { return n >= 1 && n <= m->layout.max_batch; }

int nnc_interp_forward(NncModel *m, void *buf, const void *x, const void *t, int64_t n, void *y, void *loss) {
  if (!rows_ok(m, n) || !y || (!t && !m->layout.has_predict)) return -1;
  Engine *e = interp(m);
  void *own = e->buf;
  e->buf = buf;
  e->forward(e, x, t && loss ? t : NULL, n, y, t ? loss : NULL);
  e->buf = own;
  return 0;
}

/* backward, or backward and the optimizer step, on the caller's buffer */
static int interp_step(NncModel *m, void *buf, const void *x, const void *t, int64_t n, double *loss,
                       bool update) {
  if (!rows_ok(m, n) || !t) return -1;
  Engine *e = interp(m);
  void *own = e->buf;
  e->buf = buf;
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
