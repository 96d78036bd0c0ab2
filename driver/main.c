/*
 * main.c - the `nnc` command: parse the command line into NncOptions (GNU
 * getopt_long: `--emit ir`, `--emit=ir`, `-O2`, `-o FILE`, `-oFILE`) and
 * hand them to the library (nnc_run). Misuse exits 2 with a usage line.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "driver.h" /* driver_options_error, driver_release_code_after_compile: the command only */
#include "nnc.h"
#include "util.h" /* nnc_prefault, nnc_segment_of */

static const char usage_line[] =
    "usage: nnc FILE.nn [--jit] [--train | --grad | --check-grad | --eval | --predict CSV | --emit KIND] [options]\n";

static const char help_text[] =
    "nnc - compile a neural network description into native code\n"
    "\n"
    "  --jit             compile with LLVM and run native code (default: the interpreter)\n"
    "  --train           train with the file's settings\n"
    "  --grad            print the loss and every parameter gradient for the first batch\n"
    "  --check-grad      compare the gradients with central finite differences\n"
    "  --eval            print the final loss and accuracy lines for the parameters, no training\n"
    "  --predict CSV     print the model output for each input row, as CSV\n"
    "  --emit KIND       print a stage and exit: ast, ir, grad, opt, layout, llvm, asm, dot,\n"
    "                    obj or header (obj and header need -o)\n"
    "  --load FILE       read parameters for --train, --grad, --check-grad, --eval or\n"
    "                    --predict (safetensors; optimizer state is not read)\n"
    "  --save FILE       write parameters and optimizer state after training (safetensors)\n"
    "  --resume FILE     with --train: continue the run a --save checkpoint holds\n"
    "  --epochs N  --lr X  --batch N  --seed N  --dtype f32|f64   override the file\n"
    "  -O0 .. -O3        LLVM optimization level for --jit and --emit llvm, asm, obj, header\n"
    "                    (default -O2)\n"
    "  --cpu NAME        the CPU to compile for: native (the host; default for --jit and\n"
    "                    --emit llvm), x86-64-v2 (default for --emit obj and asm), x86-64,\n"
    "                    x86-64-v3, x86-64-v4 or an LLVM processor name (haswell, znver4, ...);\n"
    "                    with --jit, one this machine runs: native, its own name or a level\n"
    "  -o FILE           where --emit writes (default, and -o -: standard output)\n"
    "  --plot FILE       with --train: a report as .svg, .pdf or .png\n"
    "  --plot-scale S    the report's loss axis: log (default) or linear\n"
    "  --time            print compile time per stage and the workspace size on standard error\n"
    "  --threads N       with --jit --train: train on N threads, which split each batch, or\n"
    "                    (two, no convolutions) each matrix product (default: the machine's\n"
    "                    cores when the batch is large enough to gain, else 1)\n"
    "  under mpirun -np P: P processes train as one, each with its share of every batch\n"
    "  environment: NNC_CACHE_DIR (compiled objects; default ~/.cache/nnc), NNC_CACHE=0 (no cache)\n"
    "  --help, --version\n";

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "nnc: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", usage_line);
  return 2;
}

/* Whether an output path can name a file at all: not "", not a path
 * ending in '/', ".", or "..". */
static bool names_a_file(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *last = slash ? slash + 1 : path;
  return *last && strcmp(last, ".") != 0 && strcmp(last, "..") != 0;
}

/* Whether s begins with white space, which strtoll and strtod skip: a
 * value is refused with space before it as with space after it. */
static bool leading_space(const char *s) { return isspace((unsigned char)*s); }

static int parse_int(const char *s, long long lo, long long hi, long long *out) {
  if (leading_space(s)) return -1;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

/* Long options without a short form: codes above any character. */
enum {
  OPT_VERSION = 256, OPT_JIT, OPT_TRAIN, OPT_GRAD, OPT_CHECK_GRAD, OPT_TIME, OPT_PREDICT, OPT_EMIT, OPT_LOAD,
  OPT_SAVE, OPT_PLOT, OPT_PLOT_SCALE, OPT_EPOCHS, OPT_LR, OPT_BATCH, OPT_SEED, OPT_DTYPE, OPT_THREADS, OPT_CPU,
  OPT_EVAL, OPT_RESUME
};

static const struct option long_options[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"jit", no_argument, NULL, OPT_JIT},
    {"train", no_argument, NULL, OPT_TRAIN},
    {"grad", no_argument, NULL, OPT_GRAD},
    {"check-grad", no_argument, NULL, OPT_CHECK_GRAD},
    {"time", no_argument, NULL, OPT_TIME},
    {"predict", required_argument, NULL, OPT_PREDICT},
    {"emit", required_argument, NULL, OPT_EMIT},
    {"load", required_argument, NULL, OPT_LOAD},
    {"save", required_argument, NULL, OPT_SAVE},
    {"plot", required_argument, NULL, OPT_PLOT},
    {"plot-scale", required_argument, NULL, OPT_PLOT_SCALE},
    {"epochs", required_argument, NULL, OPT_EPOCHS},
    {"lr", required_argument, NULL, OPT_LR},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"seed", required_argument, NULL, OPT_SEED},
    {"dtype", required_argument, NULL, OPT_DTYPE},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"cpu", required_argument, NULL, OPT_CPU},
    {"eval", no_argument, NULL, OPT_EVAL},
    {"resume", required_argument, NULL, OPT_RESUME},
    {NULL, 0, NULL, 0}};

/* "-" first: operands come back in order as option 1 (whatever
 * POSIXLY_CORRECT says); ":" next: a missing value comes back as ':'. */
static const char short_options[] = "-:hO:o:";

/* An option getopt did not take: unknown, or a prefix of several. */
static int unknown_option(const char *opt) {
  if (strncmp(opt, "--", 2) == 0 && opt[2]) {
    size_t n = strcspn(opt + 2, "=");
    char names[256] = "";
    int matches = 0;
    for (const struct option *l = long_options; l->name; l++)
      if (strncmp(l->name, opt + 2, n) == 0 && strlen(names) + strlen(l->name) + 5 < sizeof names) {
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s--%s", matches ? ", " : "", l->name);
        matches++;
      }
    if (matches > 1) {
      char text[320];
      snprintf(text, sizeof text, "option '%.*s' is ambiguous (%s)", (int)(n + 2), opt, names);
      return usage_error("%s", text);
    }
  }
  return usage_error("unknown option '%s'", opt);
}

/* An output option given twice: the usage error. */
static int twice(const char *opt, const char *first, const char *second) {
  fprintf(stderr, "nnc: %s is given twice ('%s', then '%s'): a run writes one\n%s", opt, first, second, usage_line);
  return 2;
}

/* One option and its value into o; returns 0, or 2 after a usage error.
 * `opt` is the option as written (for messages). */
static int take_option(NncOptions *o, int code, const char *opt, const char *val, bool *plot_scale, bool *opt_level) {
  long long v;
  switch (code) {
  case OPT_JIT: o->jit = true; break;
  case OPT_TRAIN: o->train = true; break;
  case OPT_GRAD: o->grad = true; break;
  case OPT_CHECK_GRAD: o->check_grad = true; break;
  case OPT_EVAL: o->eval = true; break;
  case OPT_TIME: o->time = true; break;
  case 'O':
    if (strlen(val) != 1 || val[0] < '0' || val[0] > '3') return usage_error("unknown option '-O%s'", val);
    o->opt_level = val[0] - '0';
    *opt_level = true;
    break;
  case OPT_PREDICT: o->predict = val; break;
  case OPT_EMIT: o->emit = val; break;
  case OPT_LOAD: o->load = val; break;
  /* an output named twice would leave the first unwritten */
  case OPT_SAVE: if (o->save) return twice("--save", o->save, val); o->save = val; break;
  case 'o': if (o->out) return twice("-o", o->out, val); o->out = val; break;
  case OPT_PLOT: if (o->plot) return twice("--plot", o->plot, val); o->plot = val; break;
  case OPT_CPU: o->cpu = val; break;
  case OPT_RESUME: o->resume = val; break;
  case OPT_EPOCHS:
    if (parse_int(val, 0, 100000000, &v)) return usage_error("--epochs needs a whole number from 0 to 100000000, got '%s'", val);
    o->epochs = v;
    break;
  case OPT_BATCH:
    if (parse_int(val, 1, 65536, &v)) return usage_error("--batch needs a whole number from 1 to 65536, got '%s'", val);
    o->batch = v;
    break;
  case OPT_THREADS:
    if (parse_int(val, 1, 256, &v)) return usage_error("--threads needs a whole number from 1 to 256, got '%s'", val);
    o->threads = (int)v;
    break;
  case OPT_SEED:
    if (parse_int(val, 0, 4611686018427387903LL, &v))
      return usage_error("--seed needs a whole number from 0 to 4611686018427387903 (2^62 - 1), got '%s'", val);
    o->seed = v;
    break;
  case OPT_LR: {
    char *end;
    errno = 0;
    double lr = strtod(val, &end);
    if (errno || end == val || *end || leading_space(val) || !(lr > 0) || lr > 1e6) return usage_error("--lr needs a number greater than 0 and at most 1e6, got '%s'", val);
    o->lr = lr;
    break;
  }
  case OPT_DTYPE:
    if (strcmp(val, "f32") == 0) o->dtype = 0;
    else if (strcmp(val, "f64") == 0) o->dtype = 1;
    else return usage_error("--dtype is f32 or f64, got '%s'", val);
    break;
  case OPT_PLOT_SCALE:
    if (strcmp(val, "log") == 0) o->plot_linear = false;
    else if (strcmp(val, "linear") == 0) o->plot_linear = true;
    else return usage_error("--plot-scale is log or linear, got '%s'", val);
    *plot_scale = true;
    break;
  default:
    return unknown_option(opt);
  }
  return 0;
}

/* Options that go together, once all are read. plot_scale, opt_level:
 * whether --plot-scale, -O were given (their values do not tell). */
static int check_combination(const NncOptions *o, bool plot_scale, bool opt_level) {
  char bad[256];
  if (driver_options_error(o, bad, sizeof bad)) return usage_error("%s", bad);
  if (plot_scale && !o->plot) return usage_error("%s", "--plot-scale goes with --plot");
  NncEmit emit = nnc_emit_kind(o->emit);
  bool llvm_code = emit_for_cpu(emit);
  if (opt_level && !o->jit && !llvm_code)
    return usage_error("%s", "-O goes with --jit or --emit llvm, asm, obj or header (LLVM's optimization level)");
  const char *outputs[][2] = {{"-o", o->out}, {"--save", o->save}, {"--plot", o->plot}};
  for (size_t i = 0; i < sizeof outputs / sizeof *outputs; i++)
    if (outputs[i][1] && !names_a_file(outputs[i][1]) && !(i == 0 && strcmp(outputs[i][1], "-") == 0)) {
      fprintf(stderr, "nnc: %s needs a file name, got '%s'\n%s", outputs[i][0], outputs[i][1], usage_line);
      return 2;
    }
  return 0;
}

static int run_command(int argc, char **argv) {
  NncOptions o;
  nnc_options_default(&o);
  bool plot_scale = false, opt_level = false;
  opterr = 0; /* the messages are ours */
  int code;
  while ((code = getopt_long(argc, argv, short_options, long_options, NULL)) != -1) {
    const char *written = argv[optind - 1]; /* the option as given, for messages */
    if (code == 'h') {
      fputs(usage_line, stdout);
      fputs(help_text, stdout);
      return 0;
    } else if (code == OPT_VERSION) {
      printf("nnc %s\n", NNC_VERSION);
      return 0;
    } else if (code == 1) {
      if (o.file) return usage_error("one .nn file at a time (also got '%s')", optarg);
      o.file = optarg;
    } else if (code == ':') {
      if (optopt == 'O') return usage_error("unknown option '%s'", "-O");
      return usage_error("%s needs a value", written);
    } else {
      /* an unknown short option, maybe within a cluster (-xy), is optopt:
         argv[optind - 1] is then the argument before, or the cluster. (A
         long option given a value it does not take is '?' too, with its
         code in optopt: --help's is 'h', which is never unknown.) */
      char short_opt[8];
      if (code == '?' && optopt > 0 && optopt < 256 && optopt != 'h') {
        snprintf(short_opt, sizeof short_opt, "-%c", optopt);
        written = short_opt;
      }
      int rc = take_option(&o, code == '?' ? 0 : code, written, optarg, &plot_scale, &opt_level);
      if (rc) return rc;
    }
  }
  /* after "--" every argument is a file name, even one beginning with '-' */
  for (int i = optind; i < argc; i++) {
    if (o.file) return usage_error("one .nn file at a time (also got '%s')", argv[i]);
    o.file = argv[i];
  }
  int rc = check_combination(&o, plot_scale, opt_level);
  return rc ? rc : nnc_run(&o);
}

/* ---- the process's memory: first touches are the start-up's cost ---- */

/* Not under the sanitizers: they own malloc and check for leaks at exit. */
#if defined(__SANITIZE_ADDRESS__)
#define NNC_PLAIN_PROCESS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define NNC_PLAIN_PROCESS 0
#endif
#endif
#ifndef NNC_PLAIN_PROCESS
#define NNC_PLAIN_PROCESS 1
#endif

/* LLVM's C++ allocations that fail (operator new) reach the same one line
 * as nnc's own, not std::terminate's abort: a `ulimit -v` that starts
 * LLVM's static constructors (which run after this file's) or a compile
 * thread without room. std::set_new_handler, by its name in libstdc++. */
void *_ZSt15set_new_handlerPFvvE(void (*handler)(void));
static void llvm_out_of_memory(void) {
  static const char line[] = "nnc: error: out of memory (an allocation in LLVM failed)\n";
  (void)!write(STDERR_FILENO, line, sizeof line - 1);
  _exit(1);
}

__attribute__((constructor(101))) static void catch_llvm_out_of_memory(void) {
  _ZSt15set_new_handlerPFvvE(llvm_out_of_memory);
}

/* Descriptors 0 to 2 that nnc was started without (`>&-`) are held on
 * /dev/null, read-only, before anything opens a file: else the first file
 * opened (a data set, a checkpoint being written) would be descriptor 1,
 * and standard output would go into it. Writing one still fails as it
 * would have (EBADF), so a closed standard output is still an error. */
__attribute__((constructor(101))) static void hold_standard_descriptors(void) {
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    int held = open("/dev/null", O_RDONLY);
    if (held >= 0 && held != fd) {
      dup2(held, fd);
      close(held);
    }
  }
}

extern char __bss_start[], _end[]; /* the linker's */

/* Before any other constructor (LLVM's ~400 build their command-line
 * options and registries in .bss, and allocate): a page first touched
 * costs a page fault each, and on a virtual machine a fault is tens of
 * microseconds. So
 *  - .bss, ~440 KB that start-up writes nearly all of, is mapped in one
 *    call (MADV_POPULATE_WRITE), not page by page;
 *  - malloc's heap starts at a 2 MB boundary, grows in steps of 32 MB of
 *    address space (not of memory) and is given to transparent huge pages
 *    (MADV_HUGEPAGE: the kernel's default is "madvise"), so the few MB a
 *    compile allocates take a fault per 2 MB, not per 4 KB. Allocations
 *    up to 32 MB come from the heap too (not from a mapping each).
 * Any call that fails leaves things as they were. */
__attribute__((constructor(101))) static void startup_memory(void) {
  if (!NNC_PLAIN_PROCESS) return;
  nnc_prefault(__bss_start, (size_t)(_end - __bss_start));
  long page = sysconf(_SC_PAGESIZE);

  const uintptr_t huge = (uintptr_t)2 << 20;
  const int step = 32 << 20;
  uintptr_t brk_now = (uintptr_t)sbrk(0);
  if (brk_now == (uintptr_t)-1) return;
  /* the heap starts one page below a 2 MB boundary: malloc's first
     chunks (written before the advice below, which would leave that 2 MB
     in small pages) fill that page, and the huge pages begin above it */
  uintptr_t start = (brk_now + (uintptr_t)page + huge - 1) & ~(huge - 1);
  uintptr_t heap = start - (uintptr_t)page;
  if (heap != brk_now && sbrk((intptr_t)(heap - brk_now)) == (void *)-1) return;
  mallopt(M_TOP_PAD, step);
  mallopt(M_TRIM_THRESHOLD, 2 * step); /* a trimmed heap would grow back without huge pages */
  mallopt(M_MMAP_THRESHOLD, step);
  void *volatile first = malloc(1); /* malloc takes its first step of the heap */
  free(first);
  uintptr_t end = (uintptr_t)sbrk(0);
  if (end > start) madvise((void *)start, end - start, MADV_HUGEPAGE);
}

/* ---- the code a compile runs: faulted in on another CPU ---- */

#ifdef NNC_CODE_ORDER
/* Where the functions a compile runs begin and where the ordered ones end
 * in .text: cmake/nnc.symbol-order.tar.xz names these two after start-up's
 * functions and after the last group, and lld lays them out there (each in
 * a section of its own, as the order needs). */
__attribute__((used, noinline, section(".text.nnc_code_compile"))) void nnc_code_compile(void) {}
__attribute__((used, noinline, section(".text.nnc_code_end"))) void nnc_code_end(void) {}

typedef struct Span {
  uintptr_t lo, hi;
} Span;

static Span code_spans[2]; /* the compile's functions; the read-only data */

static void *fault_in_code(void *arg) {
  (void)arg;
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  for (int i = 0; i < 2; i++)
    for (uintptr_t p = code_spans[i].lo & ~(page - 1); p < code_spans[i].hi; p += page)
      (void)*(volatile const char *)p;
  return NULL;
}

/* Whether the command line asks for LLVM: --jit or --emit (glibc passes
 * constructors the arguments of main). Not for --help, --version, the
 * interpreter or a usage error, where the thread's faults (and unmapping
 * its pages at exit) would only cost time. */
static bool compiles(int argc, char **argv) {
#ifdef __GLIBC__
  for (int i = 1; i < argc && argv && argv[i]; i++)
    if (strcmp(argv[i], "--jit") == 0 || strncmp(argv[i], "--emit", 6) == 0) return true;
  return false;
#else
  (void)argc, (void)argv;
  return true;
#endif
}

/* A compile runs a few MB of LLVM's code and reads its tables, each page
 * the first time a page fault, 15-20 us on a virtual machine, ~180 of them
 * for moons after start-up. A thread on another CPU reads a byte of each
 * page first (the ordered functions a compile runs, in .text's order, then
 * the read-only segment, .rodata: LLVM's tables and the strings of its
 * ~3000 command-line options, found by the usage line that lies there):
 * those faults are its, while this thread runs LLVM's static constructors
 * and the compile's front end (moons' whole process 2-3 ms faster,
 * bench/RESULTS.md). Pinned to another CPU: beside this thread on its own
 * CPU it would only delay it. Not with one CPU, without the order (nothing
 * marks the range), or with NNC_PREFAULT_CODE=0. */
__attribute__((constructor(102))) static void start_code_fault_in(int argc, char **argv) {
  if (!NNC_PLAIN_PROCESS || !compiles(argc, argv)) return;
  const char *env = getenv("NNC_PREFAULT_CODE");
  if (env && strcmp(env, "0") == 0) return;
  uintptr_t lo = (uintptr_t)nnc_code_compile, hi = (uintptr_t)nnc_code_end;
  if (hi <= lo || hi - lo > ((uintptr_t)64 << 20)) return; /* not laid out in order */
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof cpus, &cpus) != 0 || CPU_COUNT(&cpus) < 2) return;
  int here = sched_getcpu(), other = -1;
  for (int c = 0; c < CPU_SETSIZE && other < 0; c++)
    if (CPU_ISSET(c, &cpus) && c != here) other = c;
  if (other < 0) return;
  code_spans[0] = (Span){lo, hi};
  if (!nnc_segment_of(usage_line, &code_spans[1].lo, &code_spans[1].hi)) code_spans[1] = (Span){0, 0};
  CPU_ZERO(&cpus);
  CPU_SET(other, &cpus);
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return;
  pthread_t thread;
  if (pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
      pthread_attr_setstacksize(&attr, (size_t)64 << 10) == 0 &&
      pthread_attr_setaffinity_np(&attr, sizeof cpus, &cpus) == 0)
    (void)pthread_create(&thread, &attr, fault_in_code, NULL);
  pthread_attr_destroy(&attr);
}
#endif /* NNC_CODE_ORDER */

/* Standard output goes through a stream of our own over descriptor 1, so
 * that a write the system refuses keeps its reason (stdio's error flag
 * does not, and errno is long overwritten when the run ends), and a
 * descriptor that whoever started nnc left non-blocking (a pipe from
 * node.js, some job runners) waits for its reader in poll() instead of
 * losing rows at EAGAIN, as a blocking one would wait in write(). */
static int stdout_errno;

static ssize_t stdout_write(void *cookie, const char *buf, size_t size) {
  (void)cookie;
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(STDOUT_FILENO, buf + done, size - done);
    if (n > 0) {
      done += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd ready = {.fd = STDOUT_FILENO, .events = POLLOUT};
      if (poll(&ready, 1, -1) >= 0 || errno == EINTR) continue;
    }
    stdout_errno = n < 0 ? errno : EIO;
    return 0; /* fopencookie: 0 is a failed write */
  }
  return (ssize_t)size;
}

static void stdout_keep_reason(void) {
  FILE *own = fopencookie(NULL, "w", (cookie_io_functions_t){.write = stdout_write});
  if (!own) return; /* stdio's own stream then, without the reason */
  setvbuf(own, NULL, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF, BUFSIZ);
  fflush(stdout);
  stdout = own;
}

/* Output that standard output lost (a full disk, a closed descriptor) is
 * an error, as a file's would be: one line, exit status 1. */
static int stdout_written(int status) {
  errno = 0;
  if (fflush(stdout) == 0 && !ferror(stdout)) return status;
  int err = stdout_errno ? stdout_errno : errno;
  fprintf(stderr, "nnc: error: cannot write standard output%s%s\n", err ? ": " : "", err ? strerror(err) : "");
  return 1;
}

int main(int argc, char **argv) {
  /* a file past `ulimit -f` is a write error (EFBIG) with its message, not
     a death by SIGXFSZ with a half-written file */
  signal(SIGXFSZ, SIG_IGN);
  nnc_parallel_init(&argc, &argv); /* MPI, when mpirun started us */
  stdout_keep_reason();
  driver_release_code_after_compile();
  if (NNC_PLAIN_PROCESS) driver_leave_run_to_exit();
  int status = stdout_written(run_command(argc, argv));
  nnc_parallel_finalize();
  if (NNC_PLAIN_PROCESS) {
    /* The run is over and its files are written and closed: what exit()
       would still do is LLVM's ~400 static destructors, spread over code
       pages the run may have released (driver_release_code_after_compile),
       which free memory the process is about to give back anyway; so is
       the run's engine and data (driver_leave_run_to_exit). */
    fflush(NULL);
    _exit(status);
  }
  return status;
}
