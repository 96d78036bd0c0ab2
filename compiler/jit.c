/*
 * jit.c - optimize the generated module for the host CPU and compile it
 * with ORC LLJIT; object files, assembly and headers for --emit.
 *
 * Ownership at each hand-off (LLVM-C 19):
 *   - the module is built in the context of a ThreadSafeContext;
 *     LLVMOrcCreateNewThreadSafeModule takes the module, and we drop our
 *     reference to the context right after (the module keeps one);
 *   - LLVMOrcLLJITAddLLVMIRModule takes the ThreadSafeModule even when it
 *     fails; the module must not be touched after that;
 *   - LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine takes its target
 *     machine, LLVMOrcLLJITBuilderSetJITTargetMachineBuilder takes the
 *     builder, LLVMOrcCreateLLJIT takes the LLJIT builder, even on error;
 *   - disposing the LLJIT frees the code and everything it was given.
 */
#include "jit.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <inttypes.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen.h"
#include "fork.h"
#include "diag.h"
#include "kernels.h"
#include "objcache.h"

/* The host CPU's name and features, asked of LLVM once: each ask reads
 * CPUID and builds the feature string anew, and a compile needed them
 * half a dozen times (target machines, kernel set, cache key). */
static char *host_cpu, *host_features;
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static void read_host(void) {
  host_cpu = LLVMGetHostCPUName();
  host_features = LLVMGetHostCPUFeatures();
}

static const char *host_cpu_name(void) {
  pthread_once(&host_once, read_host);
  return host_cpu;
}

const char *jit_host_cpu_name(void) { return host_cpu_name(); }

static const char *host_cpu_features(void) {
  pthread_once(&host_once, read_host);
  return host_features;
}

static void init_llvm(void) {
  static bool done;
  if (done) return;
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  LLVMInitializeNativeAsmParser(); /* codegen's inline assembly (r_permute) */
  done = true;
}

/* An LLVMErrorRef as text on stderr; consumes the error. */
static void report_error(const char *what, LLVMErrorRef err) {
  char *msg = LLVMGetErrorMessage(err);
  fprintf(stderr, "nnc: internal error: %s: %s\n", what, msg);
  LLVMDisposeErrorMessage(msg);
}

static LLVMCodeGenOptLevel codegen_level(int opt_level) {
  switch (opt_level) {
  case 0: return LLVMCodeGenLevelNone;
  case 1: return LLVMCodeGenLevelLess;
  case 3: return LLVMCodeGenLevelAggressive;
  default: return LLVMCodeGenLevelDefault;
  }
}

/* The CPUs --cpu accepts besides `native`: LLVM 19's names of 64-bit x86
 * processors (`llc -march=x86-64 -mcpu=help`, 32-bit-only ones left out),
 * each with its widest vector registers (the registers llc uses for a
 * <16 x float> add with that -mcpu). LLVMCreateTargetMachine takes any
 * string and only warns on stderr, so names are checked here. */
typedef struct X86Cpu {
  const char *name;
  int vector_bits;
} X86Cpu;
static const X86Cpu x86_64_cpus[] = {
    /* SSE */
    {"x86-64", 128}, {"x86-64-v2", 128}, {"generic", 128}, {"nocona", 128}, {"core2", 128}, {"penryn", 128},
    {"nehalem", 128}, {"corei7", 128}, {"westmere", 128}, {"atom", 128}, {"bonnell", 128}, {"silvermont", 128},
    {"slm", 128}, {"goldmont", 128}, {"goldmont-plus", 128}, {"tremont", 128}, {"k8", 128}, {"opteron", 128},
    {"athlon64", 128}, {"athlon-fx", 128}, {"k8-sse3", 128}, {"opteron-sse3", 128}, {"athlon64-sse3", 128},
    {"amdfam10", 128}, {"barcelona", 128}, {"btver1", 128},
    /* AVX, AVX2 */
    {"x86-64-v3", 256}, {"sandybridge", 256}, {"corei7-avx", 256}, {"ivybridge", 256}, {"core-avx-i", 256},
    {"haswell", 256}, {"core-avx2", 256}, {"broadwell", 256}, {"skylake", 256}, {"alderlake", 256},
    {"raptorlake", 256}, {"meteorlake", 256}, {"arrowlake", 256}, {"arrowlake-s", 256}, {"lunarlake", 256},
    {"pantherlake", 256}, {"gracemont", 256}, {"sierraforest", 256}, {"grandridge", 256},
    {"clearwaterforest", 256}, {"btver2", 256}, {"bdver1", 256}, {"bdver2", 256}, {"bdver3", 256},
    {"bdver4", 256}, {"znver1", 256}, {"znver2", 256}, {"znver3", 256},
    /* AVX-512 */
    {"x86-64-v4", 512}, {"skylake-avx512", 512}, {"skx", 512}, {"cascadelake", 512}, {"cooperlake", 512},
    {"cannonlake", 512}, {"icelake-client", 512}, {"icelake-server", 512}, {"rocketlake", 512},
    {"tigerlake", 512}, {"sapphirerapids", 512}, {"graniterapids", 512}, {"graniterapids-d", 512},
    {"emeraldrapids", 512}, {"knl", 512}, {"knm", 512}, {"znver4", 512}, {"znver5", 512}};

static const X86Cpu *x86_64_cpu(const char *name) {
  for (size_t i = 0; i < sizeof x86_64_cpus / sizeof x86_64_cpus[0]; i++)
    if (strcmp(name, x86_64_cpus[i].name) == 0) return &x86_64_cpus[i];
  return NULL;
}

static bool host_is_x86_64(void) {
  char *triple = LLVMGetDefaultTargetTriple();
  bool x86 = strncmp(triple, "x86_64", 6) == 0;
  LLVMDisposeMessage(triple);
  return x86;
}

static bool is_native(const char *cpu) { return !cpu || strcmp(cpu, "native") == 0; }

bool jit_cpu_known(const char *cpu) {
  if (is_native(cpu)) return true;
  if (!host_is_x86_64()) return false; /* only `native` elsewhere */
  return x86_64_cpu(cpu) != NULL;
}

/* Whether the comma-separated list `have` names feature f[0..len) ("+avx2"). */
static bool has_feature(const char *have, const char *f, size_t len) {
  for (const char *p = have; *p;) {
    size_t n = strcspn(p, ",");
    if (n == len && memcmp(p, f, len) == 0) return true;
    p += n + (p[n] == ',');
  }
  return false;
}

/* Whether `have` names every feature of the comma-separated list `wanted`. */
static bool has_features(const char *have, const char *wanted) {
  for (const char *f = wanted; *f;) {
    size_t len = strcspn(f, ",");
    if (!has_feature(have, f, len)) return false;
    f += len + (f[len] == ',');
  }
  return true;
}

/* The x86-64 levels and the features each needs (kernels.h). */
static const struct {
  const char *cpu, *features;
} x86_64_levels[] = {{"x86-64", ""},
                     {"x86-64-v2", NNC_X86_64_V2_FEATURES},
                     {"x86-64-v3", NNC_X86_64_V3_FEATURES},
                     {"x86-64-v4", NNC_X86_64_V4_FEATURES}};

const char *jit_cpu_level(int i) {
  return i >= 0 && i < (int)(sizeof x86_64_levels / sizeof *x86_64_levels) ? x86_64_levels[i].cpu : NULL;
}

bool jit_cpu_runs_here(const char *cpu) {
  if (is_native(cpu) || strcmp(cpu, host_cpu_name()) == 0) return true;
  if (!host_is_x86_64()) return false;
  /* a level runs here when the host has its features; any other
     processor's features LLVM-C does not tell, so it may not */
  for (size_t i = 0; i < sizeof x86_64_levels / sizeof *x86_64_levels; i++)
    if (strcmp(cpu, x86_64_levels[i].cpu) == 0) return has_features(host_cpu_features(), x86_64_levels[i].features);
  return false;
}

static const char *default_cpu(NncEmit kind) {
  if ((kind == NNC_EMIT_OBJ || kind == NNC_EMIT_ASM) && host_is_x86_64()) return NNC_PORTABLE_CPU;
  return "native";
}

CgTarget jit_target(const char *cpu) {
  CgTarget t = {128, false};
  if (is_native(cpu)) {
    const char *features = host_cpu_features();
    t.vector_bits = strstr(features, "+avx512f") ? 512 : strstr(features, "+avx") ? 256 : 128;
  } else if (x86_64_cpu(cpu)) {
    t.vector_bits = x86_64_cpu(cpu)->vector_bits;
  }
  t.x86_avx = host_is_x86_64() && t.vector_bits >= 256;
  /* NNC_VECTOR_BITS=128|256|512: another machine's width, so tests check
     its code shapes here (LLVM splits or widens the vectors for the host) */
  const char *force = getenv("NNC_VECTOR_BITS");
  if (force && (atoi(force) == 128 || atoi(force) == 256 || atoi(force) == 512)) t.vector_bits = atoi(force);
  return t;
}

/* A target machine for the default triple and `cpu`: NULL or "native" is the
 * host CPU and its features (what --jit uses), any other name that CPU with
 * its own default features. Position-independent code either way, so an
 * object links into a PIE or a shared library. code_model: the JIT's
 * LLVMCodeModelDefault, or an object's (object_code_model). */
static LLVMTargetMachineRef target_machine(int opt_level, const char *cpu_name, LLVMCodeModel code_model) {
  bool native = is_native(cpu_name);
  char *triple = LLVMGetDefaultTargetTriple();
  const char *cpu = native ? host_cpu_name() : cpu_name;
  const char *features = native ? host_cpu_features() : "";
  LLVMTargetRef target;
  char *err = NULL;
  LLVMTargetMachineRef tm = NULL;
  if (LLVMGetTargetFromTriple(triple, &target, &err) == 0)
    tm = LLVMCreateTargetMachine(target, triple, cpu, features, codegen_level(opt_level), LLVMRelocPIC,
                                 code_model);
  else {
    fprintf(stderr, "nnc: internal error: no LLVM target for %s: %s\n", triple, err);
    LLVMDisposeMessage(err);
  }
  LLVMDisposeMessage(triple);
  return tm;
}

typedef struct Timer {
  bool on;
  double t;
} Timer;

static void lap(Timer *tm, const char *stage) {
  double now = nnc_now();
  if (tm->on) fprintf(stderr, "time %-10s %8.3f ms\n", stage, (now - tm->t) * 1e3);
  tm->t = now;
}

/* The pass pipeline for a module. A small step is straight-line code in a
 * row loop: what speeds it up is SROA, CSE, instcombine, the SLP
 * vectorizer (width-4 layers become one AVX2 vector) and LICM (codegen
 * calls its functions, never inlines them). default<O2> runs those and some
 * seventy more passes that find nothing left to do here, at twice the
 * compile time for the same code speed (bench/RESULTS.md). Loop nests
 * (the elementwise and reduction loops around the GEMM calls, convolutions)
 * at -O2 get the passes of default<O2> that change them: the small-step
 * ones plus loop rotation (codegen writes loops tested at the top; LICM
 * hoists into the preheader a rotated loop has); codegen writes their
 * vector loops itself, and the rest of default<O2> cost a third of their
 * optimization time for no code speed. -O1 and -O3 loop nests get LLVM's
 * default pipeline. */
typedef enum CodeShape {
  CODE_LOOPS,      /* loop nests, GEMMs */
  CODE_SMALL_STEP, /* straight-line scalar steps (codegen_step_is_small) */
  CODE_REGISTERS   /* register steps only, already vector code (CgInfo's registers_only) */
} CodeShape;

static const char *pipeline_for(int opt_level, CodeShape shape, char *buf, size_t len) {
  if (shape == CODE_REGISTERS && (opt_level == 1 || opt_level == 2))
    /* register steps (regstep.c) are vector code already: folding
       repeated shuffles and splats is all there is to do */
    return "function(early-cse,simplifycfg)";
  if (shape == CODE_SMALL_STEP && (opt_level == 1 || opt_level == 2))
    /* no-verify-fixpoint: what default<O2> uses; the textual default aborts
       when one round of instcombine leaves something to do */
    return "function(sroa,early-cse<memssa>,instcombine<no-verify-fixpoint>,slp-vectorizer,"
           "loop-mssa(licm),instcombine<no-verify-fixpoint>,simplifycfg)";
  if (shape == CODE_LOOPS && opt_level == 2)
    /* codegen writes the loops worth vectors in vectors itself
       (cgbase.h: elementwise loops, the convolutions' copies, reductions
       and dot products), so LLVM's loop vectorizer, 30-45% of this
       pipeline's time with its vector bodies, epilogues and runtime
       checks, is not run. The SLP vectorizer makes vectors of the runs
       codegen unrolls inside loops (a mean over words, an embedding's
       gradient, a softmax over 10 classes): without it reviews trained
       at 0.7x, for 1-3 ms less compile on W2. A second instcombine
       after it cost 1-2% of a compile (W2, lenet5) and changed
       nothing measured: the same bits, the same CPU time a step (W2,
       lenet5, waves, reviews), a few machine instructions more */
    return "function(sroa,early-cse<memssa>,instcombine<no-verify-fixpoint>,simplifycfg,"
           "loop-mssa(loop-rotate,licm),slp-vectorizer,simplifycfg)";
  snprintf(buf, len, "default<O%d>", opt_level);
  return buf;
}

/* Whether fn is one of the GEMM kernels (gemm.c names them nnc.gemm...;
 * the model's functions are nnc_MODEL_...). */
static bool is_gemm_kernel(LLVMValueRef fn) {
  size_t len;
  const char *name = LLVMGetValueName2(fn, &len);
  return len >= 8 && strncmp(name, "nnc.gemm", 8) == 0;
}

/* Add or remove optnone on the kernels (they are noinline already, as
 * optnone requires). */
static void mark_kernels_optnone(LLVMModuleRef mod, bool on) {
  unsigned kind = LLVMGetEnumAttributeKindForName("optnone", 7);
  for (LLVMValueRef fn = LLVMGetFirstFunction(mod); fn; fn = LLVMGetNextFunction(fn)) {
    if (LLVMIsDeclaration(fn) || !is_gemm_kernel(fn)) continue;
    if (on)
      LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                              LLVMCreateEnumAttribute(LLVMGetModuleContext(mod), kind, 0));
    else
      LLVMRemoveEnumAttributeAtIndex(fn, LLVMAttributeFunctionIndex, kind);
  }
}

/* Verify, then optimize (pipeline_for). An invalid module is an nnc bug:
 * say so and keep the module for the report. Returns 0 on success. */
static int verify_and_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level, CodeShape shape,
                               Timer *timer) {
  char *msg = NULL;
  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
    char path[256];
    snprintf(path, sizeof path, "%s/nnc-invalid-module-%d.ll", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid());
    char *err = NULL;
    LLVMPrintModuleToFile(mod, path, &err);
    fprintf(stderr, "nnc: internal error: the generated LLVM module is invalid: %s\n(module written to %s)\n",
            msg, path);
    if (err) LLVMDisposeMessage(err);
    LLVMDisposeMessage(msg);
    return -1;
  }
  LLVMDisposeMessage(msg);
  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(mod, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(mod, layout);
  LLVMDisposeTargetData(layout);
  lap(timer, "verify");
  char buf[32];
  const char *pipeline = pipeline_for(opt_level, shape, buf, sizeof buf);
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  /* codegen.c already unrolls the small loops it wants straight-line and
     blocks the GEMM by hand; LLVM's own unrolling of the remaining loops
     costs a third of the compile time of a larger model for no speed */
  LLVMPassBuilderOptionsSetLoopUnrolling(opts, 0);
  LLVMErrorRef err = NULL;
  if (shape == CODE_LOOPS && (opt_level == 1 || opt_level == 2)) {
    /* the GEMM kernels are vector code already, written blocked and
       rotated: they get the clean-up passes alone, and LLVM's full
       pipeline runs over the rest with them marked optnone (the new pass
       manager skips such functions); at -O2 the full pipeline over the
       kernels was most of the module's optimization time */
    err = LLVMRunPasses(mod, KERNEL_PIPELINE, tm, opts);
    mark_kernels_optnone(mod, true);
    if (!err) err = LLVMRunPasses(mod, pipeline, tm, opts);
    mark_kernels_optnone(mod, false);
  } else {
    err = LLVMRunPasses(mod, pipeline, tm, opts);
  }
  LLVMDisposePassBuilderOptions(opts);
  if (err) {
    report_error("LLVM optimization failed", err);
    return -1;
  }
  lap(timer, "llvm-opt");
  return 0;
}

/* ---- the Engine over compiled code ---- */

typedef void (*ForwardFn)(void *, const void *, const void *, int64_t, void *, void *);
typedef void (*PredictFn)(void *, const void *, int64_t, void *);
typedef double (*StepFn64)(void *, const void *, const void *, int64_t);
typedef float (*StepFn32)(void *, const void *, const void *, int64_t);
typedef void (*UpdateFn)(void *);
typedef void (*UpdatePartFn)(void *, int64_t, int64_t, const void *, int64_t);
typedef double (*PartFn64)(void *, void *, void *, const void *, const void *, int64_t, int64_t, int64_t);
typedef float (*PartFn32)(void *, void *, void *, const void *, const void *, int64_t, int64_t, int64_t);

/* The entry points' names by FnKind (cgbase.h: the index of a CG_ bit). */
static const char *const fn_names[FN_COUNT] = {"forward",    "predict",     "backward", "update",
                                               "train_step", "train_epoch", "grad_part"};

typedef struct JEngine JEngine;
static void *compiled(Engine *e, int fn, void **slot);

/* The compiled functions of an engine. Those the caller asked for are
 * compiled by jit_engine_new; any other is compiled on its first call, in a
 * module of its own added to the same JIT (compile_more), so every entry of
 * the Engine works. The addresses are read and written atomically and the
 * compiling is under `lock`: threads may call for the same function. */
struct JEngine {
  LLVMOrcLLJITRef jit;
  bool f64;
  void *fn[FN_COUNT]; /* by FnKind (a CG_ bit's index); NULL: not compiled yet */
  void *update_part;  /* with grad_part, when the step can be sliced (codegen.c, sliceable) */
  void *ws;           /* the modules' workspace (define_workspace), freed after the JIT */
  size_t ws_bytes;
  /* what compile_more needs */
  const Graph *g;
  const Layout *layout;
  int max_batch, opt_level;
  char *cpu; /* NULL: native */
  bool time;
  const KernelSet *prebuilt;
  bool fork_gemms; /* CG_FORK_GEMMS */
  unsigned built; /* the CG_ functions compiled (or tried) */
  int nextra;     /* workspaces of later modules that need more than ws_bytes */
  void *extra_ws[FN_COUNT];
  size_t extra_bytes[FN_COUNT];
  pthread_mutex_t lock;
};

static double call_step(const JEngine *je, void *fn, Engine *e, const void *x, const void *t, int64_t n) {
  if (je->f64) return ((StepFn64)fn)(e->buf, x, t, n);
  return ((StepFn32)fn)(e->buf, x, t, n);
}

static double je_backward(Engine *e, const void *x, const void *t, int64_t n) {
  JEngine *je = e->impl;
  return call_step(je, compiled(e, FN_BACKWARD, &je->fn[FN_BACKWARD]), e, x, t, n);
}

static void je_update(Engine *e) {
  JEngine *je = e->impl;
  UpdateFn fn;
  void *addr = compiled(e, FN_UPDATE, &je->fn[FN_UPDATE]);
  memcpy(&fn, &addr, sizeof fn); /* object pointers to function pointers: the addresses come from the JIT */
  fn(e->buf);
}

static double je_train_step(Engine *e, const void *x, const void *t, int64_t n) {
  JEngine *je = e->impl;
  return call_step(je, compiled(e, FN_TRAIN_STEP, &je->fn[FN_TRAIN_STEP]), e, x, t, n);
}

static double je_train_epoch(Engine *e, const void *x, const void *t, int64_t rows) {
  JEngine *je = e->impl;
  return call_step(je, compiled(e, FN_TRAIN_EPOCH, &je->fn[FN_TRAIN_EPOCH]), e, x, t, rows);
}

static void je_forward(Engine *e, const void *x, const void *t, int64_t n, void *y, void *loss) {
  JEngine *je = e->impl;
  if (t && loss) {
    ForwardFn fn;
    void *addr = compiled(e, FN_FORWARD, &je->fn[FN_FORWARD]);
    memcpy(&fn, &addr, sizeof fn);
    fn(e->buf, x, t, n, y, loss);
  } else {
    PredictFn fn;
    void *addr = compiled(e, FN_PREDICT, &je->fn[FN_PREDICT]);
    memcpy(&fn, &addr, sizeof fn);
    fn(e->buf, x, n, y);
  }
}

static double je_grad_part(Engine *e, void *grad, void *ws, const void *x, const void *t, int64_t n,
                           int64_t total, int64_t first) {
  JEngine *je = e->impl;
  void *fn = je->fn[FN_GRAD_PART]; /* compiled up front (jit_engine_new sets grad_part only then) */
  if (je->f64) return ((PartFn64)fn)(e->buf, grad, ws, x, t, n, total, first);
  return ((PartFn32)fn)(e->buf, grad, ws, x, t, n, total, first);
}

static void je_update_part(Engine *e, int64_t part, int64_t parts, const void *grad2, bool nt) {
  JEngine *je = e->impl;
  UpdatePartFn fn;
  memcpy(&fn, &je->update_part, sizeof fn);
  fn(e->buf, part, parts, grad2, nt);
}

static void je_destroy(Engine *e) {
  JEngine *je = e->impl;
  LLVMErrorRef err = LLVMOrcDisposeLLJIT(je->jit);
  if (err) report_error("disposing the JIT", err);
  nnc_bulk_free(je->ws, je->ws_bytes);
  for (int i = 0; i < je->nextra; i++) nnc_bulk_free(je->extra_ws[i], je->extra_bytes[i]);
  pthread_mutex_destroy(&je->lock);
  free(je->cpu);
  free(je);
  engine_free(e);
}

static int lookup(LLVMOrcLLJITRef jit, const Graph *g, const char *fn, void **out) {
  char prefix[128], name[256];
  snprintf(name, sizeof name, "%s%s", codegen_prefix(g, prefix, sizeof prefix), fn);
  LLVMOrcExecutorAddress addr = 0;
  LLVMErrorRef err = LLVMOrcLLJITLookup(jit, &addr, name);
  if (err) {
    report_error("JIT lookup failed", err);
    return -1;
  }
  *out = (void *)(uintptr_t)addr;
  return 0;
}

/* One module's way from the graph to an object file in memory: codegen,
 * verify, optimize, emit. Each runs in its own LLVMContext and target
 * machine, so two can run on two threads. */
typedef struct Build {
  const Graph *g;
  const Layout *layout;
  int max_batch, opt_level;
  unsigned fns;
  const char *cpu;
  Timer timer;               /* laps on stderr with --time (one build only) */
  LLVMMemoryBufferRef obj;   /* the object, or NULL after an error (said) */
  LLVMOrcLLJITRef jit;       /* with make_jit: the JIT, made once the object is done */
  bool make_jit;
  CgGemmKernels gemm_kernels; /* the GEMM kernels made here, exported or imported */
  LLVMContextRef ctx;         /* the module, between build_codegen and build_compile */
  LLVMModuleRef mod;
  CgInfo info;                /* codegen_module's account of the module */
  LLVMMemoryBufferRef split;  /* partition_module: the one module's bitcode, this build's part to keep */
  bool fork_gemms;            /* CG_FORK_GEMMS */
} Build;

/* An ORC LLJIT, or NULL after saying why. It links the object files
 * nnc compiled and compiles nothing itself, so its target machine is the
 * triple's generic CPU with no features: LLJIT makes two target machines
 * of its own from it (for the data layout, which is the triple's, and for
 * an IR compiler it never runs), and each parses the CPU's features: with
 * the host's CPU and its hundred features, 1.1 M instructions of a moons
 * run (callgrind), 2% of the whole process. */
static LLVMOrcLLJITRef create_jit(void) {
  LLVMTargetMachineRef jit_tm = target_machine(0, "generic", LLVMCodeModelDefault);
  if (!jit_tm) return NULL;
  LLVMOrcJITTargetMachineBuilderRef jtmb = LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jit_tm); /* takes jit_tm */
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb); /* takes jtmb */
  LLVMOrcLLJITRef jit;
  LLVMErrorRef err = LLVMOrcCreateLLJIT(&jit, builder); /* takes builder */
  if (err) {
    report_error("cannot create the JIT", err);
    return NULL;
  }
  return jit;
}

const KernelSet *kernel_set_for(const char *features, int vector_bits, bool f64) {
  for (int i = 0; i < kernel_set_count; i++) {
    const KernelSet *ks = &kernel_sets[i];
    if (ks->vector_bits == vector_bits && ks->f64 == f64 && has_features(features, ks->features)) return ks;
  }
  return NULL;
}

/* The prebuilt kernel set for code of `cpu` (native only: the sets are
 * chosen by the host's features) with `target`'s vectors, or NULL:
 * the modules then compile the kernels themselves. */
static const KernelSet *prebuilt_kernels(const char *cpu, const CgTarget *target, bool f64) {
  if (!is_native(cpu)) return NULL;
  return kernel_set_for(host_cpu_features(), target->vector_bits, f64);
}

/* Define n names at absolute addresses in the JIT's main library (the
 * names are taken); -1 after saying `what` and why. */
static int define_absolute(LLVMOrcLLJITRef jit, LLVMOrcCSymbolMapPair *sym, size_t n, const char *what) {
  LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(sym, n);
  LLVMErrorRef err = LLVMOrcJITDylibDefine(LLVMOrcLLJITGetMainJITDylib(jit), mu);
  if (err) {
    LLVMOrcDisposeMaterializationUnit(mu);
    report_error(what, err);
    return -1;
  }
  return 0;
}

/* Define the fixed kernels' names in the JIT as the prebuilt set's
 * addresses (the modules declare them). */
static int define_kernels(LLVMOrcLLJITRef jit, const KernelSet *ks) {
  LLVMOrcCSymbolMapPair sym[GEMM_FIXED_KERNELS];
  for (int k = 0; k < GEMM_FIXED_KERNELS; k++) {
    LLVMOrcExecutorAddress addr = (uintptr_t)ks->fn[k];
    sym[k].Name = LLVMOrcLLJITMangleAndIntern(jit, gemm_fixed_kernel_names[k]);
    sym[k].Sym = (LLVMJITEvaluatedSymbol){
        addr, {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0}};
  }
  return define_absolute(jit, sym, GEMM_FIXED_KERNELS, "cannot define the GEMM kernels in the JIT");
}

/* Define the runtime's functions that compiled code calls
 * (FORK_GEMM_SYMBOL and FORK_ADAM_SYMBOL, when built with fork_gemms). */
static int define_runtime(LLVMOrcLLJITRef jit) {
  LLVMJITSymbolFlags flags = {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0};
  LLVMOrcCSymbolMapPair sym[2] = {
      {LLVMOrcLLJITMangleAndIntern(jit, FORK_GEMM_SYMBOL), {(uintptr_t)nnc_fork_gemm, flags}},
      {LLVMOrcLLJITMangleAndIntern(jit, FORK_ADAM_SYMBOL), {(uintptr_t)nnc_fork_adam, flags}}};
  return define_absolute(jit, sym, 2, "cannot define the runtime's functions in the JIT");
}

/* The workspace made ready on a thread of its own while LLVM compiles:
 * mapped with every page present (nnc_bulk_alloc), which is most of the
 * link when the pages are new to the process (on a guest whose host takes
 * back the memory freed a few seconds earlier, fashion_bn's 12.5 MB took
 * 27 to 46 ms). */
typedef struct {
  size_t bytes;
  void *ws;
  int err;
  pthread_t thread;
  bool running;
} WsPrep;

static void *ws_prep_run(void *arg) {
  WsPrep *w = arg;
  w->ws = nnc_bulk_alloc(w->bytes);
  w->err = w->ws ? 0 : errno;
  return NULL;
}

/* Start making `bytes` ready, when a thread pays for itself. */
static void ws_prep_start(WsPrep *w, size_t bytes) {
  *w = (WsPrep){.bytes = bytes};
  pthread_attr_t attr;
  if (bytes < NNC_BULK_MIN || (double)bytes > NNC_MAX_MEMORY || pthread_attr_init(&attr) != 0) return;
  if (pthread_attr_setstacksize(&attr, (size_t)64 << 10) == 0)
    w->running = pthread_create(&w->thread, &attr, ws_prep_run, w) == 0;
  pthread_attr_destroy(&attr);
}

/* What was made ready, given back unused (after its thread ended). */
static void ws_prep_drop(WsPrep *w) {
  if (w->running) pthread_join(w->thread, NULL);
  w->running = false;
  nnc_bulk_free(w->ws, w->bytes);
  w->ws = NULL;
}

/* The workspace of `bytes` made ready (allocated now when none was started
 * or it had another size); NULL with errno set. */
static void *ws_prep_take(WsPrep *w, size_t bytes) {
  if (w->running) pthread_join(w->thread, NULL);
  w->running = false;
  if (w->bytes == bytes && (w->ws || w->err)) {
    void *ws = w->ws;
    w->ws = NULL;
    errno = w->err;
    return ws;
  }
  ws_prep_drop(w);
  return nnc_bulk_alloc(bytes);
}

/* The workspace the modules declare (CgTarget's workspace_extern), defined
 * in the JIT at `bytes` of zeroed memory mapped with every page present
 * (nnc_bulk_alloc; from prep when given): as the modules' .bss, JITLink
 * zero-filled it a page fault at a time (fashion_cnn's 12.5 MB: 40 ms of
 * the link). The two
 * modules of a split build share it as the functions of one module do:
 * each function plans its ranges from offset 0, and the functions of an
 * engine are called one at a time (threads call grad_part, which has a ws
 * of its own). With the parameter buffer L's, it must fit NNC_MAX_MEMORY.
 * *ws is the memory (NULL: none needed); -1 after saying why. */
static int define_workspace(LLVMOrcLLJITRef jit, const char *name, size_t bytes, const Layout *L, WsPrep *prep,
                            void **ws) {
  *ws = NULL;
  if (bytes == 0) return 0;
  double need = (double)bytes + (double)L->total * L->elem_size;
  if (need > NNC_MAX_MEMORY) {
    fprintf(stderr, "nnc: error: the compiled code needs %.1f GiB for its parameters and the workspace of a batch "
                    "(limit %.0f GiB): use smaller layers or a smaller batch\n", need / (1 << 30),
            NNC_MAX_MEMORY / (1 << 30));
    return -1;
  }
  if (!(*ws = prep ? ws_prep_take(prep, bytes) : nnc_bulk_alloc(bytes))) {
    fprintf(stderr, "nnc: error: cannot allocate the workspace of the compiled code (%zu bytes): %s\n", bytes,
            strerror(errno));
    return -1;
  }
  LLVMOrcCSymbolMapPair sym = {LLVMOrcLLJITMangleAndIntern(jit, name),
                               {(uintptr_t)*ws, {LLVMJITSymbolGenericFlagsExported, 0}}};
  if (define_absolute(jit, &sym, 1, "cannot define the workspace in the JIT")) {
    nnc_bulk_free(*ws, bytes);
    *ws = NULL;
    return -1;
  }
  return 0;
}

/* The object cache's key for a module (objcache.h): everything that
 * decides the object's bytes. */
static void module_key(const Build *b, LLVMModuleRef mod, CodeShape shape, ObjKey *k) {
  objkey_init(k);
  unsigned major, minor, patch;
  LLVMGetVersion(&major, &minor, &patch);
  char versions[128], pipe[32];
  /* the build of jit.c stands for how it sets up LLVM (target options,
     relocation model): a rebuilt nnc never loads an older one's objects */
  snprintf(versions, sizeof versions, "nnc %s %s %s llvm %u.%u.%u O%d", NNC_VERSION, __DATE__, __TIME__, major, minor,
           patch, b->opt_level);
  objkey_add_str(k, versions);
  objkey_add_str(k, pipeline_for(b->opt_level, shape, pipe, sizeof pipe));
  char *triple = LLVMGetDefaultTargetTriple();
  objkey_add_str(k, triple);
  LLVMDisposeMessage(triple);
  bool native = is_native(b->cpu);
  if (native) {
    objkey_add_str(k, host_cpu_name());
    objkey_add_str(k, host_cpu_features());
  } else {
    objkey_add_str(k, b->cpu);
  }
  /* the module as bitcode, a lossless encoding written 4-10x faster than
     its text (W2: 1.1 ms against 12.7; circles 15 against 66, load 9) */
  LLVMMemoryBufferRef bitcode = LLVMWriteBitcodeToMemoryBuffer(mod);
  objkey_add_bytes(k, LLVMGetBufferStart(bitcode), LLVMGetBufferSize(bitcode));
  LLVMDisposeMemoryBuffer(bitcode);
  objkey_final(k);
}

static void build_codegen(Build *b) {
  b->ctx = LLVMContextCreate();
  CgTarget target = jit_target(b->cpu);
  target.gemm_kernels = b->gemm_kernels;
  target.workspace_extern = true; /* define_workspace maps it */
  target.fork_gemms = b->fork_gemms;
  b->mod = codegen_module(b->ctx, b->g, b->layout, b->max_batch, b->fns, &target, &b->info);
  lap(&b->timer, "codegen");
}

static CodeShape build_shape(const Build *b) {
  return b->info.registers_only                    ? CODE_REGISTERS
         : codegen_step_is_small(b->g, b->max_batch) ? CODE_SMALL_STEP
                                                     : CODE_LOOPS;
}

/* codegen (unless done), verify, optimize, emit */
static void *build_object(void *arg) {
  Build *b = arg;
  if (!b->mod) build_codegen(b);
  LLVMContextRef ctx = b->ctx;
  LLVMModuleRef mod = b->mod;
  CodeShape shape = build_shape(b);
  ObjKey key;
  bool cached = objcache_enabled();
  if (cached) {
    module_key(b, mod, shape, &key);
    if ((b->obj = objcache_load(&key))) { /* the same module was compiled before */
      lap(&b->timer, "cache-hit");
      LLVMDisposeModule(mod);
      LLVMContextDispose(ctx);
      return NULL;
    }
  }
  LLVMTargetMachineRef tm = target_machine(b->opt_level, b->cpu, LLVMCodeModelDefault);
  if (tm && verify_and_optimize(mod, tm, b->opt_level, shape, &b->timer) == 0) {
    char *err = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &err, &b->obj)) {
      fprintf(stderr, "nnc: internal error: LLVM code generation failed: %s\n", err);
      LLVMDisposeMessage(err);
      b->obj = NULL;
    }
    if (b->obj && cached) objcache_store(&key, b->obj);
    lap(&b->timer, "machine-code");
  }
  LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  if (tm) LLVMDisposeTargetMachine(tm);
  /* of two builds, the smaller one, which finishes first, makes the JIT
     meanwhile */
  if (b->make_jit && b->obj) b->jit = create_jit();
  return NULL;
}

/* ---- one module's functions on two threads ---- */

#define PART_ATTR "nnc.part"

/* What a function's optimization and machine code cost, in IR
 * instructions: they grow with its instructions, and each function costs
 * as much as about 64 more (its analyses, register allocation and frame:
 * W2's 23-instruction `forward` took 5.9 M instructions of machine code
 * under callgrind, its 1,240-instruction training step 74 M). */
#define FN_FIXED_WEIGHT 64
/* The second thread's own work before its part, in the same units:
 * reading the module's bitcode back (6.8 M instructions for W2) */
#define PART_SETUP_WEIGHT 64

static int64_t fn_weight(LLVMValueRef fn) {
  int64_t n = FN_FIXED_WEIGHT;
  for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
    for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in)) n++;
  return n;
}

/* Make fn a declaration: its values' uses go first, then its instructions
 * (the branches with the uses of the blocks), then the empty blocks. */
static void drop_body(LLVMValueRef fn) {
  for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
    for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in))
      if (LLVMGetTypeKind(LLVMTypeOf(in)) != LLVMVoidTypeKind) LLVMReplaceAllUsesWith(in, LLVMGetPoison(LLVMTypeOf(in)));
  for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb))
    for (LLVMValueRef in; (in = LLVMGetFirstInstruction(bb));) LLVMInstructionEraseFromParent(in);
  for (LLVMBasicBlockRef bb; (bb = LLVMGetFirstBasicBlock(fn));) LLVMDeleteBasicBlock(bb);
}

/* Keep the bodies of the functions of part `part` (their PART_ATTR) and
 * declare the others. */
static void keep_part(LLVMModuleRef mod, int part) {
  for (LLVMValueRef fn = LLVMGetFirstFunction(mod); fn; fn = LLVMGetNextFunction(fn)) {
    LLVMAttributeRef a = LLVMGetStringAttributeAtIndex(fn, LLVMAttributeFunctionIndex, PART_ATTR, strlen(PART_ATTR));
    if (!a) continue;
    unsigned len;
    const char *v = LLVMGetStringAttributeValue(a, &len);
    bool mine = len == 1 && v[0] == '0' + part;
    LLVMRemoveStringAttributeAtIndex(fn, LLVMAttributeFunctionIndex, PART_ATTR, strlen(PART_ATTR));
    if (!mine) drop_body(fn);
  }
}

/* Split a's module (every function of the run) into two of about the same
 * size: a keeps some functions, b (on another thread, build_part) the
 * others, each declaring what the other defines. Machine code is compiled
 * function by function, so the two halves cost what the one module did,
 * each thread about half, where a module of the training functions and
 * one of the evaluation functions leave the second thread idle most of
 * the time (a convolutional network's training step is most of its code)
 * and both compile the GEMM epilogue kernels they share. The functions
 * local to the module become hidden, under names of their own (a later
 * module of compile_more defines its functions again, internal). Returns
 * false, a's module unchanged, when it holds a variable (nothing but the
 * external workspace today) or fewer than two functions. */
static bool partition_module(Build *a, Build *b) {
  LLVMModuleRef mod = a->mod;
  for (LLVMValueRef gv = LLVMGetFirstGlobal(mod); gv; gv = LLVMGetNextGlobal(gv))
    if (LLVMGetInitializer(gv) && !LLVMIsGlobalConstant(gv)) return false;
  int n = 0;
  for (LLVMValueRef fn = LLVMGetFirstFunction(mod); fn; fn = LLVMGetNextFunction(fn)) n += !LLVMIsDeclaration(fn);
  if (n < 2) return false;
  LLVMValueRef *fns = nnc_xcalloc((size_t)n, sizeof *fns);
  int64_t *w = nnc_xcalloc((size_t)n, sizeof *w);
  n = 0;
  for (LLVMValueRef fn = LLVMGetFirstFunction(mod); fn; fn = LLVMGetNextFunction(fn)) {
    if (LLVMIsDeclaration(fn)) continue;
    fns[n] = fn;
    w[n++] = fn_weight(fn);
  }
  /* the heaviest first, each to the lighter part; b makes the JIT after
     its object, so it gets the lighter part */
  int64_t load[2] = {0, PART_SETUP_WEIGHT};
  for (int k = 0; k < n; k++) {
    int best = -1;
    for (int i = 0; i < n; i++)
      if (fns[i] && (best < 0 || w[i] > w[best])) best = i;
    int part = load[1] < load[0];
    load[part] += w[best];
    LLVMValueRef fn = fns[best];
    fns[best] = NULL;
    if (LLVMGetLinkage(fn) == LLVMInternalLinkage || LLVMGetLinkage(fn) == LLVMPrivateLinkage) {
      size_t len;
      char name[256];
      snprintf(name, sizeof name, "%s.part", LLVMGetValueName2(fn, &len));
      LLVMSetValueName2(fn, name, strlen(name));
      LLVMSetLinkage(fn, LLVMExternalLinkage);
      LLVMSetVisibility(fn, LLVMHiddenVisibility);
    }
    char v = (char)('0' + part);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(LLVMGetModuleContext(mod), PART_ATTR, strlen(PART_ATTR), &v, 1));
  }
  free(fns);
  free(w);
  if (load[0] + PART_SETUP_WEIGHT < load[1]) { /* b's part is heavier even without its set-up: a takes it */
    for (LLVMValueRef fn = LLVMGetFirstFunction(mod); fn; fn = LLVMGetNextFunction(fn)) {
      LLVMAttributeRef at =
          LLVMGetStringAttributeAtIndex(fn, LLVMAttributeFunctionIndex, PART_ATTR, strlen(PART_ATTR));
      if (!at) continue;
      unsigned len;
      char v = LLVMGetStringAttributeValue(at, &len)[0] == '0' ? '1' : '0';
      LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                              LLVMCreateStringAttribute(LLVMGetModuleContext(mod), PART_ATTR, strlen(PART_ATTR), &v, 1));
    }
  }
  b->split = LLVMWriteBitcodeToMemoryBuffer(mod);
  b->info = a->info;
  keep_part(mod, 0);
  return true;
}

/* build_object for the part partition_module left in b->split: its own
 * context and module from the bitcode first. */
static void *build_part(void *arg) {
  Build *b = arg;
  b->ctx = LLVMContextCreate();
  if (LLVMParseBitcodeInContext2(b->ctx, b->split, &b->mod)) {
    fprintf(stderr, "nnc: internal error: cannot read back the module's bitcode\n");
    LLVMDisposeMemoryBuffer(b->split);
    LLVMContextDispose(b->ctx);
    return NULL;
  }
  LLVMDisposeMemoryBuffer(b->split);
  b->split = NULL;
  keep_part(b->mod, 1);
  return build_object(b);
}

/* Whether to compile on two threads: when a second thread would have a
 * CPU to itself now (fewer tasks running on the machine, this one
 * included, than CPUs this process may use), unless every function is in
 * registers (`small`: a few hundred lines of IR, where a second module's
 * set-up, its target machine, passes and the thread's own malloc arena,
 * costs more than the thread takes off: moons 47 ms of CPU against 33).
 * NNC_COMPILE_THREADS=1 or 2 decides instead (tests). */
static bool two_threads(bool small) {
  const char *force = getenv("NNC_COMPILE_THREADS");
  if (force && *force) return atoi(force) >= 2;
  if (small) return false;
  cpu_set_t set;
  int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  if (cpus < 2) return false;
  FILE *f = fopen("/proc/loadavg", "r");
  int running = 0;
  if (f) {
    if (fscanf(f, "%*f %*f %*f %d/", &running) != 1) running = 0;
    fclose(f);
  }
  return running >= 1 && running < cpus;
}

Engine *jit_engine_new(const Graph *g, const Layout *layout, int max_batch, int opt_level, unsigned fns,
                       bool time, const char *cpu) {
  init_llvm();
  /* the host's own name is the host: its features, not the ones LLVM gives
     that processor (a virtual machine may hide some) */
  if (cpu && strcmp(cpu, host_cpu_name()) == 0) cpu = NULL;
  if (graph_output_needs_targets(g)) fns &= ~(unsigned)CG_PREDICT; /* as codegen_module does */
  /* One module holds every function the run calls, compiled on this
     thread: the training and evaluation functions share their GEMM
     epilogue kernels there, and LLVM's set-up and its cold start (code and
     tables it touches the first time) are paid once. Two modules, the
     training and the evaluation functions, compiled side by side on two
     threads cost more CPU time, and more time as well when the other core
     is busy, but less time when it is free (bench/RESULTS.md): they are
     the choice when a CPU is idle now and the module is not all in
     registers (two_threads) and the object cache does not hold the one
     module, the one module's functions then split in two halves of about
     the same size (partition_module); and when a step's functions are not
     all in registers (regstep.c) while those of the other part are (a
     module's pass pipeline follows its code, CodeShape), the training and
     the evaluation functions each in a module generated on its own. The
     objects' code is the same either way. */
  bool fork_gemms = fns & CG_FORK_GEMMS;
  fns &= ~(unsigned)CG_FORK_GEMMS;
  unsigned train_fns = fns & (CG_BACKWARD | CG_UPDATE | CG_TRAIN_STEP | CG_TRAIN_EPOCH | CG_GRAD_PART);
  unsigned eval_fns = fns & (CG_FORWARD | CG_PREDICT);
  Build part[2] = {{g, layout, max_batch, opt_level, fns, cpu, {time, nnc_now()}, NULL, NULL, false},
                   {g, layout, max_batch, opt_level, eval_fns, cpu, {false, 0}, NULL, NULL, true}};
  part[0].fork_gemms = part[1].fork_gemms = fork_gemms;
  int nparts = 1;
  CgTarget target = jit_target(cpu);
  const KernelSet *prebuilt = prebuilt_kernels(cpu, &target, g->dtype == DT_F64);
  /* prebuilt: the kernels were compiled with nnc, the modules link to them */
  if (prebuilt) part[0].gemm_kernels = part[1].gemm_kernels = GEMM_KERNELS_PREBUILT;
  if (train_fns && eval_fns) {
    build_codegen(&part[0]);
    unsigned built = part[0].info.built_fns, regs = part[0].info.register_fns;
    unsigned train_built = built & ~(unsigned)(CG_FORWARD | CG_PREDICT), eval_built = built & eval_fns;
    bool train_regs = (train_built & regs) == train_built, eval_regs = (eval_built & regs) == eval_built;
    bool split = train_regs != eval_regs;
    if (!split && two_threads(part[0].info.registers_only)) {
      split = true;
      if (objcache_enabled()) { /* a cached object of the one module is used */
        ObjKey key;
        module_key(&part[0], part[0].mod, build_shape(&part[0]), &key);
        LLVMMemoryBufferRef hit = objcache_load(&key);
        if (hit) {
          LLVMDisposeMemoryBuffer(hit);
          split = false;
        }
      }
    }
    if (split && train_regs == eval_regs && partition_module(&part[0], &part[1])) {
      nparts = 2; /* the functions in two halves (one pass pipeline fits both) */
    } else if (split) { /* a module each */
      LLVMDisposeModule(part[0].mod);
      LLVMContextDispose(part[0].ctx);
      part[0].mod = NULL;
      part[0].fns = train_fns;
      nparts = 2;
      if (!prebuilt) {
        /* the GEMM kernels are the same in both: the evaluation module
           links to the training module's instead of compiling its own */
        part[0].gemm_kernels = GEMM_KERNELS_EXPORT;
        build_codegen(&part[0]);
        if (part[0].info.has_gemm) part[1].gemm_kernels = GEMM_KERNELS_IMPORT;
      }
    }
  }
  part[0].make_jit = nparts == 1;
  if (!part[0].mod) build_codegen(&part[0]);
  WsPrep prep;
  ws_prep_start(&prep, (size_t)part[0].info.ws_bytes);
  pthread_t thread;
  void *(*build_second)(void *) = part[1].split ? build_part : build_object;
  bool threaded = nparts == 2 && pthread_create(&thread, NULL, build_second, &part[1]) == 0;
  build_object(&part[0]);
  if (nparts == 2) {
    if (threaded)
      pthread_join(thread, NULL);
    else
      build_second(&part[1]);
    lap(&part[0].timer, "join");
  }
  fns |= part[0].info.built_fns & CG_UPDATE; /* with grad_part, when the step has no update_part */
#ifdef __GLIBC__
  /* LLVM freed what it compiled with, but glibc keeps the pages (the
     other thread's arena above all): give them back before the buffers of
     training are allocated, so the peak is the larger of the two, not
     their sum. Not when less than 3 MiB is free in the one arena (moons:
     1.3 MiB, W2 2.6): the run's own allocations reuse it, while trimming
     it took moons' JIT link from 4.6 to 14 ms and W2's from 4.8 to 18 at
     load 5-8 (the madvise calls, the page faults after) for 1.1 MB less
     at W2's peak; bench/memory's peaks are the same either way. The free
     top of the heap does not count: the nnc command's heap grows in steps
     of 32 MB of address space, most of it never touched (driver/main.c) */
#if __GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33)
  struct mallinfo2 heap = mallinfo2();
  if (nparts == 2 || heap.fordblks - heap.keepcost >= (size_t)3 << 20) malloc_trim(0);
#else
  malloc_trim(0);
#endif
#endif
  Timer timer = part[0].timer;
  bool ok = true;
  for (int i = 0; i < nparts; i++) ok = ok && part[i].obj;
  LLVMOrcLLJITRef jit = part[nparts - 1].jit;
  if (ok && !jit && !(jit = create_jit())) ok = false;
  if (ok && prebuilt && define_kernels(jit, prebuilt)) ok = false;
  if (ok && define_runtime(jit)) ok = false;
  int64_t ws_bytes = part[0].info.ws_bytes; /* shared by the modules: the larger */
  if (nparts == 2 && part[1].info.ws_bytes > ws_bytes) ws_bytes = part[1].info.ws_bytes;
  void *ws = NULL;
  if (ok && define_workspace(jit, CG_WORKSPACE_SYMBOL, (size_t)ws_bytes, layout, &prep, &ws)) ok = false;
  if (!ok) ws_prep_drop(&prep);
  for (int i = 0; i < nparts; i++) {
    if (!part[i].obj) continue;
    if (!ok) {
      LLVMDisposeMemoryBuffer(part[i].obj);
      continue;
    }
    LLVMErrorRef err = LLVMOrcLLJITAddObjectFile(jit, LLVMOrcLLJITGetMainJITDylib(jit), part[i].obj); /* takes obj */
    if (err) {
      report_error("cannot add the object to the JIT", err);
      ok = false;
    }
  }
  if (!ok) {
    if (jit) LLVMConsumeError(LLVMOrcDisposeLLJIT(jit));
    nnc_bulk_free(ws, (size_t)ws_bytes);
    return NULL;
  }
  JEngine *je = nnc_xcalloc(1, sizeof *je);
  je->jit = jit;
  je->ws = ws;
  je->ws_bytes = (size_t)ws_bytes;
  je->f64 = g->dtype == DT_F64;
  for (int k = 0; k < FN_COUNT; k++) {
    if (!(fns & (1u << k))) continue;
    if (lookup(jit, g, fn_names[k], &je->fn[k])) {
      LLVMConsumeError(LLVMOrcDisposeLLJIT(jit));
      nnc_bulk_free(ws, (size_t)ws_bytes);
      free(je);
      return NULL;
    }
  }
  je->g = g;
  je->layout = layout;
  je->max_batch = max_batch;
  je->opt_level = opt_level;
  je->cpu = is_native(cpu) ? NULL : nnc_xstrdup(cpu);
  je->time = time;
  je->prebuilt = prebuilt;
  je->fork_gemms = fork_gemms;
  je->built = fns;
  pthread_mutex_init(&je->lock, NULL);
  lap(&timer, "jit-link");
  if (time) /* the modules' workspace: sized by the batch, whatever the data */
    fprintf(stderr, "workspace  %" PRId64 " bytes\n", ws_bytes);
  static const Engine jit_ops = {.backward = je_backward, .update = je_update, .train_step = je_train_step,
                                 .train_epoch = je_train_epoch, .forward = je_forward, .destroy = je_destroy};
  Engine *e = engine_new(&jit_ops, g, layout, max_batch, je);
  if (je->fn[FN_GRAD_PART]) {
    e->grad_part = je_grad_part;
    /* update_part is there when the step could be sliced */
    char prefix[128], name[256];
    snprintf(name, sizeof name, "%supdate_part", codegen_prefix(g, prefix, sizeof prefix));
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef err = LLVMOrcLLJITLookup(jit, &addr, name);
    if (err)
      LLVMConsumeError(err);
    else {
      je->update_part = (void *)(uintptr_t)addr;
      e->update_part = je_update_part;
    }
    e->ws_bytes = part[0].info.part_ws_bytes > 0 ? part[0].info.part_ws_bytes : 64;
    e->part_rows = codegen_part_rows(g, max_batch);
  }
  return e;
}

/* Compile the functions `fns` (CG_ bits) that are not compiled yet as a
 * module of their own and add it to the engine's JIT; under je->lock.
 * The module shares the engine's workspace when it fits there, else it
 * gets one of its own (the global renamed: its size is in the key of the
 * object cache either way). Its GEMM kernels are its own (internal), or
 * the prebuilt set already defined in the JIT. Returns 0, or -1 after
 * saying why. */
static int compile_more(JEngine *je, unsigned fns) {
  if (graph_output_needs_targets(je->g)) fns &= ~(unsigned)CG_PREDICT; /* as codegen_module does */
  fns &= ~je->built;
  if (!fns) return 0;
  je->built |= fns; /* tried once: a failure is not compiled again */
  Build b = {je->g, je->layout, je->max_batch, je->opt_level, fns, je->cpu, {je->time, nnc_now()}, NULL, NULL, false};
  b.gemm_kernels = je->prebuilt ? GEMM_KERNELS_PREBUILT : GEMM_KERNELS_OWN;
  b.fork_gemms = je->fork_gemms;
  build_codegen(&b);
  char name[64] = CG_WORKSPACE_SYMBOL;
  size_t bytes = (size_t)b.info.ws_bytes;
  bool own_ws = false;
  if (bytes > je->ws_bytes) { /* an earlier module's own one, else a new one */
    int i = 0;
    while (i < je->nextra && je->extra_bytes[i] < bytes) i++;
    own_ws = i == je->nextra;
    snprintf(name, sizeof name, "%s.%d", CG_WORKSPACE_SYMBOL, i + 1);
    LLVMSetValueName2(LLVMGetNamedGlobal(b.mod, CG_WORKSPACE_SYMBOL), name, strlen(name));
  }
  build_object(&b); /* takes the module */
  if (!b.obj) return -1;
  void *ws = NULL;
  if (own_ws && define_workspace(je->jit, name, bytes, je->layout, NULL, &ws)) {
    LLVMDisposeMemoryBuffer(b.obj);
    return -1;
  }
  if (ws) {
    je->extra_ws[je->nextra] = ws;
    je->extra_bytes[je->nextra++] = bytes;
  }
  LLVMErrorRef err = LLVMOrcLLJITAddObjectFile(je->jit, LLVMOrcLLJITGetMainJITDylib(je->jit), b.obj); /* takes obj */
  if (err) {
    report_error("cannot add the object to the JIT", err);
    return -1;
  }
  for (int k = 0; k < FN_COUNT; k++) {
    if (!(fns & (1u << k))) continue;
    void *addr = NULL;
    if (lookup(je->jit, je->g, fn_names[k], &addr)) return -1;
    __atomic_store_n(&je->fn[k], addr, __ATOMIC_RELEASE);
  }
  lap(&b.timer, "jit-link");
  return 0;
}

/* The address of compiled function fn (an FN_ index) of e, whose slot in
 * the engine is *slot: compiled now when it was not before. */
static void *compiled(Engine *e, int fn, void **slot) {
  void *addr = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (addr) return addr;
  JEngine *je = e->impl;
  pthread_mutex_lock(&je->lock);
  int rc = compile_more(je, 1u << fn);
  pthread_mutex_unlock(&je->lock);
  addr = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (!addr) {
    fprintf(stderr, "nnc: error: the compiled code has no %s%s\n", fn_names[fn],
            rc ? " (compiling it failed)" : " (the model's output needs its targets)");
    exit(1);
  }
  return addr;
}

size_t jit_engine_workspace_bytes(const Engine *e) {
  const JEngine *je = e->impl;
  return je->ws_bytes;
}

void *jit_engine_symbol(Engine *e, const char *fn) {
  JEngine *je = e->impl;
  void *addr = NULL;
  for (int k = 0; k < FN_COUNT; k++) {
    if (strcmp(fn, fn_names[k]) != 0) continue;
    if (__atomic_load_n(&je->fn[k], __ATOMIC_ACQUIRE)) return je->fn[k];
    pthread_mutex_lock(&je->lock);
    int rc = compile_more(je, 1u << k);
    pthread_mutex_unlock(&je->lock);
    if (rc) return NULL;
    break;
  }
  return lookup(je->jit, e->g, fn, &addr) == 0 ? addr : NULL;
}

/* ---- --emit llvm, asm, obj, header ---- */

/* A parameter name as part of a C identifier: linear1.W -> linear1_W. */
static void c_ident(const char *name, char *out, size_t n) {
  size_t k = 0;
  for (; name[k] && k + 1 < n; k++) {
    char ch = name[k];
    out[k] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ? ch : '_';
  }
  out[k] = 0;
}

/* v as a C constant of the dtype: a double's 17 digits, or a float
 * constant (1.0f, 0.001f: the fewest digits that give the float v rounds
 * to) that a float buffer takes without a conversion from double
 * (-Wconversion, -Wfloat-conversion). */
static void c_literal(double v, DType dt, char *out, size_t n) {
  if (dt == DT_F64) {
    snprintf(out, n, "%.17g", v);
    return;
  }
  float f = (float)v;
  for (int digits = 1; digits <= 9; digits++) { /* 9 digits give any float back */
    snprintf(out, n, "%.*g", digits, (double)f);
    if (strtof(out, NULL) == f) break;
  }
  if (!strpbrk(out, ".eEn")) strncat(out, ".0", n - strlen(out) - 1); /* 1 -> 1.0: 1f is no constant */
  strncat(out, "f", n - strlen(out) - 1);
}

/* A macro of the header's and whose it is: parameter i, the state
 * params.len + j, or -1 for the header's own (LR_OFFSET). */
typedef struct Macro {
  char name[160];
  int owner;
} Macro;

static int macro_cmp(const void *a, const void *b) { return strcmp(((const Macro *)a)->name, ((const Macro *)b)->name); }

/* Which parameters and layer states get no macros of their own (then the
 * table still lists them, by name): those one of whose macros another
 * would define too. linear1.W and linear1_W give the same identifier; w's
 * gradient is w_GRAD_OFFSET, which is also w_GRAD's offset; a parameter
 * LR's offset would be the learning rate's LR_OFFSET. An array of
 * params.len + states.len flags, to free. */
static bool *macro_clashes(const Graph *g) {
  int np = g->params.len, total = np + g->states.len;
  Macro *m = nnc_xcalloc((size_t)3 * (size_t)total + 1, sizeof *m);
  int n = 0;
  snprintf(m[n].name, sizeof m[n].name, "LR_OFFSET"), m[n++].owner = -1;
  for (int i = 0; i < total; i++) {
    const Node *v = i < np ? g->params.items[i] : g->states.items[i - np];
    if (i >= np && is_run_state(v)) continue;
    char id[128];
    c_ident(v->name, id, sizeof id);
    static const char *const param_kinds[] = {"_OFFSET", "_GRAD_OFFSET", "_SIZE"}, *const state_kinds[] = {"_OFFSET", "_SIZE"};
    for (int k = 0; k < (i < np ? 3 : 2); k++) {
      snprintf(m[n].name, sizeof m[n].name, "%s%s", id, i < np ? param_kinds[k] : state_kinds[k]);
      m[n++].owner = i;
    }
  }
  qsort(m, (size_t)n, sizeof *m, macro_cmp);
  bool *clash = nnc_xcalloc((size_t)total + 1, sizeof *clash);
  for (int k = 1; k < n; k++)
    if (strcmp(m[k].name, m[k - 1].name) == 0) {
      if (m[k].owner >= 0) clash[m[k].owner] = true;
      if (m[k - 1].owner >= 0) clash[m[k - 1].owner] = true;
    }
  free(m);
  return clash;
}

/* FNV-1a over v's eight bytes, lowest first: the same hash on any host. */
static uint32_t fnv1a(uint32_t h, int64_t v) {
  for (int k = 0; k < 8; k++) h = (h ^ (uint8_t)((uint64_t)v >> (8 * k))) * 16777619u;
  return h;
}

/* The name of a symbol the object defines and its header refers to:
 * nnc_MODEL_abi_DTYPE_bMAX_BATCH_HASH, the hash (FNV-1a) over the buffer's
 * layout (sizes and offsets of parameters, gradients and states, the
 * learning rate's place) and the rows' columns. The functions' types and
 * the sizes of their arguments come from the header: a header and an
 * object that differ in any of these do not link ("undefined reference to
 * nnc_MODEL_abi_..."), instead of overrunning each other's buffers. */
static void abi_symbol(const Graph *g, const Layout *layout, int max_batch, char *out, size_t n) {
  uint32_t h = 2166136261u;
  h = fnv1a(h, layout->elem_size), h = fnv1a(h, layout->total), h = fnv1a(h, layout->lr_off);
  h = fnv1a(h, max_batch), h = fnv1a(h, graph_min_train_rows(g)), h = fnv1a(h, !graph_output_needs_targets(g));
  const PtrVec *rows[] = {&g->inputs, &g->targets};
  for (int r = 0; r < 2; r++) {
    h = fnv1a(h, rows[r]->len);
    for (int i = 0; i < rows[r]->len; i++) h = fnv1a(h, shape_numel(&((Node *)rows[r]->items[i])->shape));
  }
  h = fnv1a(h, shape_numel(&g->output->shape));
  h = fnv1a(h, g->params.len);
  for (int i = 0; i < g->params.len; i++)
    h = fnv1a(fnv1a(fnv1a(h, layout->param_off[i]), layout->grad_off[i]),
              shape_numel(&((Node *)g->params.items[i])->shape));
  h = fnv1a(h, layout->nstates);
  for (int j = 0; j < layout->nstates; j++)
    h = fnv1a(fnv1a(h, layout->state_off[j]), shape_numel(&((Node *)g->states.items[j])->shape));
  char prefix[128];
  snprintf(out, n, "%sabi_%s_b%d_%08" PRIx32, codegen_prefix(g, prefix, sizeof prefix), dtype_name(g->dtype),
           max_batch, h);
}

static void emit_header(const Graph *g, const Layout *layout, int max_batch, StrBuf *sb) {
  char prefix[128];
  codegen_prefix(g, prefix, sizeof prefix);
  const char *P = prefix;
  const char *T = g->dtype == DT_F64 ? "double" : "float";
  int64_t in = 0, tg = 0, out = shape_numel(&g->output->shape), pelems = 0;
  for (int i = 0; i < g->inputs.len; i++) in += shape_numel(&((Node *)g->inputs.items[i])->shape);
  for (int i = 0; i < g->targets.len; i++) tg += shape_numel(&((Node *)g->targets.items[i])->shape);
  for (int i = 0; i < g->params.len; i++) pelems += shape_numel(&((Node *)g->params.items[i])->shape);
  bool predict = !graph_output_needs_targets(g);
  sb_printf(sb, "/* Generated by nnc %s from %s: model %s, %s, batch %d.\n", NNC_VERSION,
            g->source_name ? g->source_name : "?", g->model_name ? g->model_name : "?", dtype_name(g->dtype),
            max_batch);
  sb_printf(sb,
            " *\n"
            " * The functions of the object file `nnc FILE --emit obj` writes (link it\n"
            " * with -lm). Their arguments:\n"
            " *   buf   %sBUFFER_ELEMS values (64-byte aligned): the parameters, their\n"
            " *         gradients and the optimizer state, at the offsets below; set it up\n"
            " *         with %sbuffer_init, then write the parameters' values\n"
            " *   x, t  n rows of %sINPUT_COLS inputs and %sTARGET_COLS targets, row-major\n"
            " *   n     rows in one call: any number for forward, predict and\n"
            " *         train_epoch (in batches of %sMAX_BATCH), %sMIN_TRAIN_ROWS to\n"
            " *         %sMAX_BATCH for backward and train_step\n"
            " *   y     n rows of %sOUTPUT_COLS outputs; loss: n per-row losses\n"
            " * forward: outputs and per-row losses (t and loss are needed). predict:\n"
            " * outputs alone (when the output does not depend on the targets).\n"
            " * backward: gradients into buf, returns the batch loss (mean over rows).\n"
            " * update: one optimizer step from the gradients. train_step: backward\n"
            " * and update, returns the batch loss.\n"
            " * train_epoch: train_step over `rows` rows (any number) in batches of\n"
            " * %sMAX_BATCH, returns the sum of the rows' losses.\n"
            " * The learning rate is not compiled in: update, train_step and\n"
            " * train_epoch read it from buf[%sLR_OFFSET] (buffer_init writes the\n"
            " * train block's lr there); write another value there between calls to\n"
            " * follow a schedule.\n"
            " * The functions share one workspace in the object: call them from one\n"
            " * thread at a time.",
            P, P, P, P, P, P, P, P, P, P);
  if (g->stat_values)
    sb_puts(sb, "\n * batch_norm: backward, train_step and train_epoch normalize with the\n"
                " * statistics of each batch's rows (training mode), and train_step and\n"
                " * train_epoch move the running statistics towards them; forward and\n"
                " * predict normalize with the running statistics (evaluation mode);\n"
                " * update, which has no batch, leaves them alone.");
  if (graph_min_train_rows(g) > 1)
    sb_puts(sb, "\n * A batch_norm here has one value per channel in a row: a training\n"
                " * batch needs at least 2 rows (MIN_TRAIN_ROWS), as in PyTorch, and\n"
                " * train_epoch's rows must not leave a last batch of 1 row.");
  sb_puts(sb, " */\n");
  sb_printf(sb, "#ifndef %sH\n#define %sH\n\n#include <stdint.h>\n\n", P, P);
  sb_printf(sb, "typedef %s %sreal; /* the model's dtype */\n", T, P);
  sb_printf(sb, "#define %sDTYPE \"%s\"\n", P, dtype_name(g->dtype));
  sb_printf(sb, "#define %sBUFFER_ELEMS %" PRId64 "\n", P, layout->total);
  sb_printf(sb, "#define %sBUFFER_BYTES %" PRId64 "\n", P, layout->total * layout->elem_size);
  sb_printf(sb, "#define %sMAX_BATCH %d\n", P, max_batch);
  sb_printf(sb, "#define %sMIN_TRAIN_ROWS %d /* the fewest rows backward and train_step take */\n", P,
            graph_min_train_rows(g));
  sb_printf(sb, "#define %sINPUT_COLS %" PRId64 "\n#define %sTARGET_COLS %" PRId64 "\n", P, in, P, tg);
  sb_printf(sb, "#define %sOUTPUT_COLS %" PRId64 "\n", P, out);
  sb_printf(sb, "#define %sPARAM_COUNT %d /* parameter tensors */\n", P, g->params.len);
  sb_printf(sb, "#define %sPARAM_ELEMS %" PRId64 " /* their values in all */\n", P, pelems);
  sb_printf(sb, "#define %sLR_OFFSET %" PRId64 " /* the learning rate in buf (-1: no parameters to train) */\n\n", P,
            layout->lr_off);
  sb_puts(sb, "/* Each parameter: where its values and its gradient start in buf and how\n"
               " * many values it has (elements of the dtype, row-major). */\n");
  bool *clash = macro_clashes(g);
  for (int i = 0; i < g->params.len; i++) {
    const Node *p = g->params.items[i];
    char id[128];
    c_ident(p->name, id, sizeof id);
    if (clash[i]) continue;
    sb_printf(sb, "#define %s%s_OFFSET %" PRId64 "\n#define %s%s_GRAD_OFFSET %" PRId64 "\n#define %s%s_SIZE %" PRId64
                   "\n",
              P, id, layout->param_off[i], P, id, layout->grad_off[i], P, id, shape_numel(&p->shape));
  }
  /* the states layers keep (batch_norm's running statistics) */
  bool stated = false;
  for (int j = 0; j < layout->nstates; j++) {
    const Node *st = g->states.items[j];
    if (is_run_state(st)) continue;
    if (clash[g->params.len + j]) continue;
    if (!stated)
      sb_puts(sb, "\n/* Each state a layer keeps: where its values start in buf and how many\n"
                  " * it has. Keep them with the parameters. */\n");
    stated = true;
    char id[128];
    c_ident(st->name, id, sizeof id);
    sb_printf(sb, "#define %s%s_OFFSET %" PRId64 "\n#define %s%s_SIZE %" PRId64 "\n", P, id, layout->state_off[j], P,
              id, shape_numel(&st->shape));
  }
  bool any = false;
  for (int i = 0; i < g->params.len + layout->nstates; i++) any |= clash[i];
  if (any) {
    sb_puts(sb, "\n/* No macros for these, whose names would give macros another name gives\n"
                " * (or LR_OFFSET): find them in PARAMS by name, or rename them.\n");
    for (int i = 0; i < g->params.len + layout->nstates; i++)
      if (clash[i])
        sb_printf(sb, " *   %s\n", i < g->params.len ? ((const Node *)g->params.items[i])->name
                                                       : ((const Node *)g->states.items[i - g->params.len])->name);
    sb_puts(sb, " */\n");
  }
  free(clash);
  sb_printf(sb, "\ntypedef struct %sparam {\n  const char *name;\n  int64_t offset, grad_offset, size;\n"
                 "  int rank;\n  int64_t shape[4];\n} %sparam;\n\n",
            P, P);
  sb_printf(sb, "#if defined(__GNUC__)\n__attribute__((unused))\n#endif\n");
  sb_printf(sb, "static const %sparam %sPARAMS[%d] = {\n", P, P, g->params.len > 0 ? g->params.len : 1);
  for (int i = 0; i < g->params.len; i++) {
    const Node *p = g->params.items[i];
    sb_printf(sb, "  {\"%s\", %" PRId64 ", %" PRId64 ", %" PRId64 ", %d, {", p->name, layout->param_off[i],
              layout->grad_off[i], shape_numel(&p->shape), p->shape.rank);
    for (int k = 0; k < 4; k++) sb_printf(sb, "%s%" PRId64, k ? ", " : "", k < p->shape.rank ? p->shape.dim[k] : 0);
    sb_puts(sb, "}},\n");
  }
  if (g->params.len == 0) sb_puts(sb, "  {0, 0, 0, 0, 0, {0, 0, 0, 0}},\n");
  sb_puts(sb, "};\n\n");
  sb_printf(sb, "/* Zero buf and give the optimizer state its starting values. */\n"
                 "static inline void %sbuffer_init(%s *buf) {\n"
                 "  for (int64_t i = 0; i < %sBUFFER_ELEMS; i++) buf[i] = 0;\n",
            P, T, P);
  for (int j = 0; j < layout->nstates; j++) {
    const Node *st = g->states.items[j];
    if (st->attr.value == 0) continue;
    char value[48];
    c_literal(st->attr.value, g->dtype, value, sizeof value);
    sb_printf(sb, "  for (int64_t i = 0; i < %" PRId64 "; i++) buf[%" PRId64 " + i] = %s; /* %s */\n",
              shape_numel(&st->shape), layout->state_off[j], value, st->name ? st->name : "state");
  }
  sb_puts(sb, "}\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n");
  sb_printf(sb, "void %sforward(%s *buf, const %s *x, const %s *t, int64_t n, %s *y, %s *loss);\n", P, T, T, T, T,
            T);
  if (predict) sb_printf(sb, "void %spredict(%s *buf, const %s *x, int64_t n, %s *y);\n", P, T, T, T);
  sb_printf(sb, "%s %sbackward(%s *buf, const %s *x, const %s *t, int64_t n);\n", T, P, T, T, T);
  sb_printf(sb, "void %supdate(%s *buf);\n", P, T);
  sb_printf(sb, "%s %strain_step(%s *buf, const %s *x, const %s *t, int64_t n);\n", T, P, T, T, T);
  sb_printf(sb, "%s %strain_epoch(%s *buf, const %s *x, const %s *t, int64_t rows);\n", T, P, T, T, T);
  char abi[256];
  abi_symbol(g, layout, max_batch, abi, sizeof abi);
  /* the reference is kept (used) and, where the compiler has `retain`, kept
     by the linker's --gc-sections too, which would drop it and its
     undefined reference with it */
  sb_printf(sb,
            "\n/* Defined by the object of this dtype, batch and layout alone: with one\n"
            " * that differs, the program does not link (an undefined reference to it).\n"
            " * A program that uses the header without the object (its sizes, a\n"
            " * library it opens at run time) defines NNC_NO_ABI_CHECK first. */\n"
            "extern const char %s;\n"
            "#if (defined(__GNUC__) || defined(__clang__)) && !defined(NNC_NO_ABI_CHECK)\n"
            "#if defined(__has_attribute)\n"
            "#if __has_attribute(__retain__)\n"
            "__attribute__((__used__, __unused__, __retain__))\n"
            "#else\n"
            "__attribute__((__used__, __unused__))\n"
            "#endif\n"
            "#else\n"
            "__attribute__((__used__, __unused__))\n"
            "#endif\n"
            "static const void *const %sabi_ref = &%s;\n"
            "#endif\n",
            abi, P, abi);
  sb_puts(sb, "#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
}

/* An object's workspace (a zeroed global) above this size puts it in
 * x86-64's large data sections: the default (small) code model reaches
 * .bss and .data by 32-bit offsets from the code, so all of a program's
 * small data must lie within 2 GiB of it, and a workspace over that (or
 * several objects' together) breaks the link of whatever data follows.
 * 64 KiB is gcc's and clang's large-data threshold for the medium code
 * model: an object then holds at most that much of a program's small data,
 * and the workspaces of small models keep their 32-bit addresses. */
#define LARGE_WORKSPACE_BYTES 65536

/* The code model of an object whose workspace has ws_bytes: small, or
 * medium for a large workspace. Under the medium model the code stays
 * small and reaches the data LLVM counts as large by 64-bit offsets, in
 * .lbss (no bytes in the file, as .bss) and .lrodata, which the linker
 * puts after all other data, where their size does not matter. LLVM-C sets
 * no large-data threshold (LLVM's is 0 then), so every global of the
 * module is large, its constant tables too. */
static LLVMCodeModel object_code_model(int64_t ws_bytes) {
  /* x86-64's: AArch64, for one, has no medium model (LLVM stops) */
  return ws_bytes > LARGE_WORKSPACE_BYTES && host_is_x86_64() ? LLVMCodeModelMedium : LLVMCodeModelDefault;
}

int jit_emit_text(const Graph *g, const Layout *layout, int max_batch, int opt_level, NncEmit kind, bool time,
                  const char *cpu, StrBuf *out) {
  if (kind == NNC_EMIT_HEADER) {
    emit_header(g, layout, max_batch, out);
    return 0;
  }
  init_llvm();
  Timer timer = {time, nnc_now()};
  LLVMContextRef ctx = LLVMContextCreate();
  if (!cpu) cpu = default_cpu(kind);
  CgTarget target = jit_target(cpu);
  CgInfo info;
  LLVMModuleRef mod = codegen_module(ctx, g, layout, max_batch, CG_ALL, &target, &info);
  lap(&timer, "codegen");
  char abi[256]; /* the symbol the header refers to (abi_symbol) */
  abi_symbol(g, layout, max_batch, abi, sizeof abi);
  LLVMValueRef abi_global = LLVMAddGlobal(mod, LLVMInt8TypeInContext(ctx), abi);
  LLVMSetInitializer(abi_global, LLVMConstInt(LLVMInt8TypeInContext(ctx), 0, false));
  LLVMSetGlobalConstant(abi_global, true);
  LLVMTargetMachineRef tm = target_machine(opt_level, cpu, object_code_model(info.ws_bytes));
  int rc = 1;
  if (tm && verify_and_optimize(mod, tm, opt_level, codegen_step_is_small(g, max_batch) ? CODE_SMALL_STEP : CODE_LOOPS,
                                &timer) == 0) {
    if (kind == NNC_EMIT_LLVM) {
      char *text = LLVMPrintModuleToString(mod);
      sb_puts(out, text);
      LLVMDisposeMessage(text);
      rc = 0;
    } else {
      LLVMMemoryBufferRef buf = NULL;
      char *err = NULL;
      LLVMCodeGenFileType ft = kind == NNC_EMIT_ASM ? LLVMAssemblyFile : LLVMObjectFile;
      if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, ft, &err, &buf)) {
        fprintf(stderr, "nnc: internal error: cannot emit %s: %s\n", kind == NNC_EMIT_ASM ? "asm" : "obj", err);
        LLVMDisposeMessage(err);
      } else {
        sb_append(out, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
        LLVMDisposeMemoryBuffer(buf);
        rc = 0;
      }
      lap(&timer, "machine-code");
    }
  }
  if (tm) LLVMDisposeTargetMachine(tm);
  LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  return rc;
}

int jit_emit(const Graph *g, const Layout *layout, int max_batch, int opt_level, NncEmit kind, const char *path,
             bool time, const char *cpu) {
  StrBuf sb = {0};
  int rc = jit_emit_text(g, layout, max_batch, opt_level, kind, time, cpu, &sb);
  if (rc == 0) rc = nnc_write_output(path, sb.data ? sb.data : "", sb.len);
  sb_free(&sb);
  return rc;
}
