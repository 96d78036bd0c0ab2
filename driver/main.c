/*
 * main.c - the `nnc` command: parse the command line into NncOptions and
 * hand them to the library (nnc_run). Misuse exits 2 with a usage line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

static const char usage_line[] =
    "usage: nnc FILE.nn [--jit] [--train | --grad | --check-grad | --predict CSV | --emit KIND] [options]\n";

static const char help_text[] =
    "nnc - compile a neural network description into native code\n"
    "\n"
    "  --jit             compile with LLVM and run native code (default: the interpreter)\n"
    "  --train           train with the file's settings\n"
    "  --grad            print the loss and every parameter gradient for the first batch\n"
    "  --check-grad      compare the gradients with central finite differences\n"
    "  --predict CSV     print the model output for each input row, as CSV\n"
    "  --emit KIND       print a stage and exit: ast, ir, grad, opt, layout, llvm, asm, dot,\n"
    "                    obj or header (obj and header need -o)\n"
    "  --load FILE       read parameters (safetensors)\n"
    "  --save FILE       write parameters after training (safetensors)\n"
    "  --epochs N  --lr X  --batch N  --seed N  --dtype f32|f64   override the file\n"
    "  -O0 .. -O3        LLVM optimization level for --jit (default -O2)\n"
    "  --cpu NAME        the CPU to compile for: native (the host; default for --jit and\n"
    "                    --emit llvm), x86-64-v2 (default for --emit obj and asm), x86-64,\n"
    "                    x86-64-v3, x86-64-v4 or an LLVM processor name (haswell, znver4, ...)\n"
    "  -o FILE           where --emit writes (default: standard output)\n"
    "  --plot FILE       with --train: a report as .svg, .pdf or .png\n"
    "  --plot-scale S    the report's loss axis: log (default) or linear\n"
    "  --time            print compile time per stage on standard error\n"
    "  --threads N       with --jit --train: split each batch across N threads (default: the\n"
    "                    machine's cores when the batch is large enough to gain, else 1)\n"
    "  under mpirun -np P: P processes train as one, each with its share of every batch\n"
    "  environment: NNC_CACHE_DIR (compiled objects; default ~/.cache/nnc), NNC_CACHE=0 (no cache)\n"
    "  --help, --version\n";

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "nnc: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", usage_line);
  return 2;
}

static int parse_int(const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int run_command(int argc, char **argv) {
  NncOptions o;
  nnc_options_default(&o);
  bool plot_scale = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *next = i + 1 < argc ? argv[i + 1] : NULL;
    long long v;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage_line, stdout);
      fputs(help_text, stdout);
      return 0;
    } else if (strcmp(a, "--version") == 0) {
      printf("nnc %s\n", NNC_VERSION);
      return 0;
    } else if (strcmp(a, "--jit") == 0) {
      o.jit = true;
    } else if (strcmp(a, "--train") == 0) {
      o.train = true;
    } else if (strcmp(a, "--grad") == 0) {
      o.grad = true;
    } else if (strcmp(a, "--check-grad") == 0) {
      o.check_grad = true;
    } else if (strcmp(a, "--time") == 0) {
      o.time = true;
    } else if (strlen(a) == 3 && a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3') {
      o.opt_level = a[2] - '0';
    } else if (strcmp(a, "--predict") == 0 || strcmp(a, "--emit") == 0 ||
               strcmp(a, "--load") == 0 || strcmp(a, "--save") == 0 ||
               strcmp(a, "-o") == 0 || strcmp(a, "--plot") == 0 ||
               strcmp(a, "--epochs") == 0 || strcmp(a, "--lr") == 0 ||
               strcmp(a, "--batch") == 0 || strcmp(a, "--seed") == 0 ||
               strcmp(a, "--dtype") == 0 || strcmp(a, "--threads") == 0 ||
               strcmp(a, "--plot-scale") == 0 || strcmp(a, "--cpu") == 0) {
      if (!next) return usage_error("%s needs a value", a);
      i++;
      if (strcmp(a, "--predict") == 0) o.predict = next;
      else if (strcmp(a, "--emit") == 0) o.emit = next;
      else if (strcmp(a, "--load") == 0) o.load = next;
      else if (strcmp(a, "--save") == 0) o.save = next;
      else if (strcmp(a, "-o") == 0) o.out = next;
      else if (strcmp(a, "--plot") == 0) o.plot = next;
      else if (strcmp(a, "--cpu") == 0) o.cpu = next;
      else if (strcmp(a, "--epochs") == 0) {
        if (parse_int(next, 0, 100000000, &v)) return usage_error("--epochs needs a whole number from 0 to 100000000, got '%s'", next);
        o.epochs = v;
      } else if (strcmp(a, "--batch") == 0) {
        if (parse_int(next, 1, 65536, &v)) return usage_error("--batch needs a whole number from 1 to 65536, got '%s'", next);
        o.batch = v;
      } else if (strcmp(a, "--threads") == 0) {
        if (parse_int(next, 1, 256, &v)) return usage_error("--threads needs a whole number from 1 to 256, got '%s'", next);
        o.threads = (int)v;
      } else if (strcmp(a, "--seed") == 0) {
        if (parse_int(next, 0, 4611686018427387903LL, &v)) return usage_error("--seed needs a non-negative whole number, got '%s'", next);
        o.seed = v;
      } else if (strcmp(a, "--lr") == 0) {
        char *end;
        errno = 0;
        double lr = strtod(next, &end);
        if (errno || end == next || *end || !(lr > 0) || lr > 1e6) return usage_error("--lr needs a positive number, got '%s'", next);
        o.lr = lr;
      } else if (strcmp(a, "--dtype") == 0) {
        if (strcmp(next, "f32") == 0) o.dtype = 0;
        else if (strcmp(next, "f64") == 0) o.dtype = 1;
        else return usage_error("--dtype is f32 or f64, got '%s'", next);
      } else if (strcmp(a, "--plot-scale") == 0) {
        if (strcmp(next, "log") == 0) o.plot_linear = false;
        else if (strcmp(next, "linear") == 0) o.plot_linear = true;
        else return usage_error("--plot-scale is log or linear, got '%s'", next);
        plot_scale = true;
      }
    } else if (a[0] == '-' && a[1] != 0) {
      return usage_error("unknown option '%s'", a);
    } else if (o.file) {
      return usage_error("one .nn file at a time (also got '%s')", a);
    } else {
      o.file = a;
    }
  }
  if (!o.file) return usage_error("%s", "no input file");
  int modes = o.train + o.grad + o.check_grad + (o.predict != NULL) + (o.emit != NULL);
  if (modes > 1)
    return usage_error("%s", "choose one of --train, --grad, --check-grad, --predict and --emit");
  if (o.emit) {
    static const char *const kinds[] = {"ast", "ir", "grad", "opt", "layout", "llvm",
                                        "asm", "dot", "obj", "header"};
    int ok = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
      if (strcmp(o.emit, kinds[k]) == 0) ok = 1;
    if (!ok) return usage_error("unknown --emit kind '%s' (ast, ir, grad, opt, layout, llvm, asm, dot, obj, header)", o.emit);
    if ((strcmp(o.emit, "obj") == 0 || strcmp(o.emit, "header") == 0) && !o.out)
      return usage_error("--emit %s needs -o FILE", o.emit);
  }
  if (o.out && !o.emit) return usage_error("%s", "-o goes with --emit");
  if (o.cpu && !nnc_cpu_known(o.cpu))
    return usage_error("unknown CPU '%s' for --cpu (native, x86-64, x86-64-v2, x86-64-v3, x86-64-v4 or an "
                       "LLVM x86-64 processor name such as haswell or znver4)", o.cpu);
  if (o.cpu && !o.jit && !(o.emit && (strcmp(o.emit, "llvm") == 0 || strcmp(o.emit, "asm") == 0 ||
                                      strcmp(o.emit, "obj") == 0 || strcmp(o.emit, "header") == 0)))
    return usage_error("%s", "--cpu goes with --jit or --emit llvm, asm, obj or header");
  if (o.plot && !o.train) return usage_error("%s", "--plot goes with --train");
  if (plot_scale && !o.plot) return usage_error("%s", "--plot-scale goes with --plot");
  if (o.save && !o.train) return usage_error("%s", "--save goes with --train");
  if (o.threads > 1 && !o.jit) return usage_error("%s", "--threads above 1 needs --jit (the interpreter runs on one thread)");
  return nnc_run(&o);
}

int main(int argc, char **argv) {
  nnc_parallel_init(&argc, &argv); /* MPI, when mpirun started us */
  int status = run_command(argc, argv);
  nnc_parallel_finalize();
  return status;
}
