/*
 * test_frontend_robust.c - the front end never crashes, whatever it reads.
 *
 *   test_frontend_robust [--mutations N] [--seed S] [--no-stress] FILE.nn...
 *
 * For every file: parse -> check -> lower -> graph_verify (lowering only
 * when parsing and checking found no errors; the AST dump when parsing
 * found none) on the whole file, on every prefix of it (cut at every byte),
 * and on N (default 3000) random mutations: bit flips, random bytes,
 * insertions of language tokens, deletions, duplications and moves of
 * ranges, truncations; or names and numbers replaced by others (which
 * keeps the syntax and so reaches the checker and lowering). Diagnostics are counted quietly, except for every
 * eighth mutation, whose messages are printed (to /dev/null) to exercise the
 * printing too. Then generated stress inputs: thousands of nested parentheses,
 * chains and unary minuses, tens of thousands of bindings and layers, hundreds
 * of thousands of arguments,
 * blank lines or errors, a megabyte-long line.
 *
 * A crash (an internal error aborts; a bad access faults) prints the input
 * that caused it, escaped, and exits 1. Prints "N passed, 0 failed".
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ir.h"
#include "lower.h"
#include "parse.h"

/* ---- the input being run, for the crash report ---- */

static const char *current_file;
static const char *current_kind;
static long current_index;
static const char *current_text;
static size_t current_len;

static int report_fd = 2; /* standard error, even while it is muted */

static void put(const char *s) {
  ssize_t r = write(report_fd, s, strlen(s));
  (void)r;
}

/* Async-signal-safe enough: write(2) only. */
static void on_crash(int sig) {
  char buf[64];
  put("\ntest_frontend_robust: CRASH (signal ");
  snprintf(buf, sizeof buf, "%d", sig);
  put(buf);
  put(") on ");
  put(current_file ? current_file : "?");
  put(", ");
  put(current_kind ? current_kind : "?");
  snprintf(buf, sizeof buf, " #%ld", current_index);
  put(buf);
  put("; the input, C-escaped:\n\"");
  for (size_t i = 0; current_text && i < current_len; i++) {
    unsigned char c = (unsigned char)current_text[i];
    if (c == '\n') {
      put("\\n\"\n\"");
    } else if (c == '"' || c == '\\') {
      buf[0] = '\\', buf[1] = (char)c, buf[2] = 0;
      put(buf);
    } else if (c >= 32 && c < 127) {
      buf[0] = (char)c, buf[1] = 0;
      put(buf);
    } else {
      snprintf(buf, sizeof buf, "\\x%02x\"\"", c);
      put(buf);
    }
  }
  put("\"\n");
  fflush(stdout);
  static const char summary[] = "0 passed, 1 failed\n";
  ssize_t r = write(1, summary, sizeof summary - 1);
  (void)r;
  _exit(1);
}

/* ---- one run of the front end ---- */

static long runs, lowered;
static int devnull = -1;

/* Send standard error to /dev/null (on) or back. */
static void mute_stderr(bool on) {
  fflush(stderr);
  if (devnull < 0) {
    devnull = open("/dev/null", O_WRONLY);
    report_fd = dup(2);
  }
  dup2(on ? devnull : report_fd, 2);
}

static void run_frontend(const char *path, const char *text, size_t len, bool print) {
  current_text = text;
  current_len = len;
  Arena arena;
  arena_init(&arena);
  Source src;
  source_from_text(&src, path, text, len);
  Diag d = {.src = &src, .quiet = !print};
  if (print) mute_stderr(true);
  Ast ast = {0};
  nnc_parse(&src, &arena, &d, &ast);
  if (d.errors == 0) {
    StrBuf sb = {0};
    ast_dump(&ast, &sb);
    sb_free(&sb);
  }
  Program prog;
  check_program(&ast, &src, &d, &arena, &prog);
  if (d.errors == 0) {
    ParamInit *inits = NULL;
    Graph *g = lower_program(&prog, &arena, &inits);
    graph_verify(g, "lower");
    if (!g->loss || !g->batch_loss || !g->output || !inits) {
      current_kind = "lowered graph without loss or output";
      on_crash(0);
    }
    StrBuf sb = {0};
    graph_dump(g, DUMP_FORWARD, &sb);
    sb_free(&sb);
    lowered++;
  }
  if (print) mute_stderr(false);
  arena_free(&arena);
  runs++;
}

/* ---- generated stress inputs ---- */

static void stress(const char *what, const char *head, const char *unit, long n,
                   const char *tail) {
  StrBuf sb = {0};
  sb_puts(&sb, head);
  for (long i = 0; i < n; i++) sb_printf(&sb, unit, i, i);
  sb_puts(&sb, tail);
  current_file = "(generated)";
  current_kind = what;
  current_index = n;
  run_frontend("stress.nn", sb.data, sb.len, true);
  sb_free(&sb);
}

static void run_stress(void) {
  const char *model = "model m {\n  input x[2]\n  target t[2]\n";
  const char *end = "  loss squared(x, t)\n}\n";
  char head[256];
  /* deep nesting, through each rule that nests */
  snprintf(head, sizeof head, "%s  y = x", model);
  stress("long chain", head, " -> relu", 300000, "\n  loss squared(y, t)\n}\n");
  stress("long sum", head, " + x", 300000, "\n  loss squared(y, t)\n}\n");
  stress("long product", head, " * 2", 300000, "\n  loss squared(y, t)\n}\n");
  stress("long power", head, "^1", 300000, "\n  loss squared(y, t)\n}\n");
  stress("chain of 999", head, " -> relu", 999, "\n  loss squared(y, t)\n}\n");
  snprintf(head, sizeof head, "%s  y = ", model);
  stress("nested parentheses", head, "(", 100000, "x\n}\n");
  stress("unary minuses", head, "-", 100000, "x\n  loss squared(y, t)\n}\n");
  stress("nested calls", head, "relu(", 100000, "x\n}\n");
  snprintf(head, sizeof head, "%s  y = x -> linear(1", model);
  stress("constant argument", head, " + 1", 300000, ")\n  loss squared(y, t)\n}\n");
  stress("many arguments", head, ", 1", 300000, ")\n  loss squared(y, t)\n}\n");
  /* many statements, lines, names and errors; the bindings past 2^16,
     the layers (each a Call, two parameters and their initializers: about
     40 us each) fewer */
  stress("many bindings", model, "  a%ld = x -> relu\n", 70000, end);
  stress("many named layers", model, "  a%ld = x -> linear(2, name: \"l%ld\")\n", 20000, end);
  stress("many unnamed layers", model, "  a%ld = x -> linear(2)\n", 20000, end);
  stress("many blank lines", model, "\n", 1000000, end);
  stress("many comment lines", model, "  # comment\n", 300000, end);
  stress("many continuation lines", "model m {\n  input x[2]\n  target t[2]\n  y = x\n",
         "  -> relu\n", 900, "  loss squared(y, t)\n}\n");
  stress("many undefined names", model, "  a%ld = b%ld\n", 100000, end);
  stress("many syntax errors", model, "  a%ld = = x\n", 100000, end);
  stress("many stray characters", model, "$", 1000000, end);
  stress("long line", "model m {\n  input x[2]\n  target t[2]\n  y = x -> relu   ", " ", 1000000,
         "$ \n  loss squared(y, t)\n}\n");
  stress("many blocks", "", "model m%ld {\n}\n", 100000, "");
  stress("many dimensions", "model m {\n  input x[", "1, ", 100000, "1]\n}\n");
  stress("long name", model, "a", 1000000, " = x\n  loss squared(x, t)\n}\n");
  stress("long number", model, "1", 100000, " = x\n}\n");
}

/* ---- mutations ---- */

static uint64_t rng_state;

static uint64_t rnd(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static const char *const tokens[] = {
    "->", "(", ")", "[", "]", "{", "}", "@", "^", "+", "-", "*", "/", "=", ":", ",",
    "\n", " ", "#", "\"", "linear(", "linear(4)", "relu", "sum(axis: 1)", "x", "t", "y",
    "0", "1", "2.5", "1e400", "-1", "1e12", "model", "model m {", "train", "train {",
    "input", "target", "param", "loss", "output", "dtype", "f64", "true", "false",
    "squared(y, t)", "cross_entropy(", "softmax", "transpose", "logsumexp", "@ x",
    "name: \"a\"", "bias: false", "seed:", "data", "moons(", "csv(\"", "epochs", "\xe2\x86\x92",
    "\x01", "\xff", "\t", "\r\n", "param s = normal(std: 1)\n", "input x[2, 3]\n",
    "y = x -> linear(4) -> relu\n", "loss y\n", "[]", "x[0]", "leaky_relu(slope: ",
};

/* Names and numbers that keep a file well formed when they replace one of
 * its own: they reach the checker's and lowering's paths, which syntax
 * errors never get to. */
static const char *const names[] = {
    "x", "t", "y", "h", "z", "W", "relu", "sigmoid", "tanh", "exp", "log", "sqrt", "abs",
    "softplus", "leaky_relu", "sum", "mean", "logsumexp", "softmax", "log_softmax",
    "transpose", "linear", "squared", "mse", "bce", "bce_logits", "cross_entropy",
    "normal", "zeros", "moons", "circles", "csv", "sgd", "adam", "true", "false", "axis",
    "units", "bias", "name", "slope", "seed", "f32", "f64", "epochs", "batch", "split",
};
static const char *const numbers[] = {"0", "1", "2", "3", "4", "-1", "0.5", "1e3", "7", "1e9", "2.0"};

/* Replace a random word (letters) or number (digits) of dst by another. */
static size_t replace_word(char *dst, size_t n, size_t cap, bool number) {
  size_t starts[512];
  int count = 0;
  for (size_t i = 0; i < n && count < 512; i++) {
    unsigned char c = (unsigned char)dst[i], prev = i ? (unsigned char)dst[i - 1] : ' ';
    bool word = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    bool digit = c >= '0' && c <= '9';
    bool prev_word = prev == '_' || prev == '.' || (prev >= 'a' && prev <= 'z') ||
                     (prev >= 'A' && prev <= 'Z') || (prev >= '0' && prev <= '9');
    if ((number ? digit : word) && !prev_word) starts[count++] = i;
  }
  if (!count) return n;
  size_t at = starts[below((size_t)count)], end = at;
  while (end < n && (dst[end] == '_' || dst[end] == '.' || (dst[end] >= '0' && dst[end] <= '9') ||
                     (dst[end] >= 'a' && dst[end] <= 'z') || (dst[end] >= 'A' && dst[end] <= 'Z')))
    end++;
  const char *w = number ? numbers[below(sizeof numbers / sizeof numbers[0])]
                         : names[below(sizeof names / sizeof names[0])];
  size_t wl = strlen(w);
  if (n - (end - at) + wl > cap) return n;
  memmove(dst + at + wl, dst + end, n - end);
  memcpy(dst + at, w, wl);
  return n - (end - at) + wl;
}

/* dst = a mutation of src (dst has room for 2 * len + 256 bytes): a few
 * byte-level edits, or (half the time) a few words or numbers replaced. */
static size_t mutate(const char *src, size_t len, char *dst, size_t cap) {
  memcpy(dst, src, len);
  size_t n = len;
  int edits = 1 + (int)below(4);
  if (below(2)) {
    edits = 1 + (int)below(2);
    for (int k = 0; k < edits; k++) n = replace_word(dst, n, cap, below(3) == 0);
    return n;
  }
  for (int k = 0; k < edits; k++) {
    size_t at = below(n + 1);
    switch (below(7)) {
    case 0: /* flip a bit */
      if (n) dst[below(n)] ^= (char)(1u << below(8));
      break;
    case 1: /* a random byte */
      if (n) dst[below(n)] = (char)below(256);
      break;
    case 2: { /* insert a token */
      const char *t = tokens[below(sizeof tokens / sizeof tokens[0])];
      size_t tl = strlen(t);
      if (n + tl > cap) break;
      memmove(dst + at + tl, dst + at, n - at);
      memcpy(dst + at, t, tl);
      n += tl;
      break;
    }
    case 3: { /* delete a range */
      size_t l = 1 + below(n - at < 16 ? n - at + 1 : 16);
      if (at + l > n) l = n - at;
      memmove(dst + at, dst + at + l, n - at - l);
      n -= l;
      break;
    }
    case 4: { /* duplicate a range */
      if (!n) break;
      size_t from = below(n), l = 1 + below(n - from < 40 ? n - from : 40);
      if (n + l > cap) break;
      char tmp[40];
      memcpy(tmp, dst + from, l);
      memmove(dst + at + l, dst + at, n - at);
      memcpy(dst + at, tmp, l);
      n += l;
      break;
    }
    case 5: { /* move a range elsewhere */
      if (n < 2) break;
      size_t from = below(n), l = 1 + below(n - from < 40 ? n - from : 40);
      char tmp[40];
      if (l > sizeof tmp || from + l > n) break;
      memcpy(tmp, dst + from, l);
      memmove(dst + from, dst + from + l, n - from - l);
      n -= l;
      at = below(n + 1);
      memmove(dst + at + l, dst + at, n - at);
      memcpy(dst + at, tmp, l);
      n += l;
      break;
    }
    case 6: /* cut the rest */
      n = at;
      break;
    }
  }
  return n;
}

/* ---- files ---- */

static char *read_file(const char *path, size_t *len) {
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = malloc((size_t)st.st_size + 1);
  size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
  fclose(f);
  if (!buf) return NULL;
  buf[n] = 0;
  *len = n;
  return buf;
}

int main(int argc, char **argv) {
  long mutations = 3000;
  uint64_t seed = 1;
  bool stress_inputs = true;
  int first = 1;
  while (first < argc && argv[first][0] == '-' && argv[first][1] == '-') {
    if (strcmp(argv[first], "--mutations") == 0 && first + 1 < argc) {
      mutations = atol(argv[first + 1]);
      first += 2;
    } else if (strcmp(argv[first], "--no-stress") == 0) {
      stress_inputs = false;
      first++;
    } else if (strcmp(argv[first], "--seed") == 0 && first + 1 < argc) {
      seed = strtoull(argv[first + 1], NULL, 10);
      first += 2;
    } else {
      fprintf(stderr, "usage: test_frontend_robust [--mutations N] [--seed S] [--no-stress] FILE.nn...\n");
      return 2;
    }
  }
  if (first >= argc) {
    fprintf(stderr, "usage: test_frontend_robust [--mutations N] [--seed S] [--no-stress] FILE.nn...\n");
    return 2;
  }
  signal(SIGABRT, on_crash);
  signal(SIGSEGV, on_crash);
  signal(SIGBUS, on_crash);
  signal(SIGFPE, on_crash);
  signal(SIGILL, on_crash);

  int files = 0, unreadable = 0;
  for (int i = first; i < argc; i++) {
    const char *path = argv[i];
    size_t len;
    char *text = read_file(path, &len);
    if (!text) {
      printf("FAIL  %s: cannot read\n", path);
      unreadable++;
      continue;
    }
    files++;
    current_file = path;
    /* the file's base name, as nnc shows it */
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;

    /* the whole file and every prefix; each in its own heap block so that
       reading past the end is caught by a sanitizer build */
    current_kind = "prefix";
    for (size_t cut = 0; cut <= len; cut++) {
      current_index = (long)cut;
      char *p = malloc(cut + 1);
      memcpy(p, text, cut);
      p[cut] = 0;
      run_frontend(name, p, cut, cut == len);
      free(p);
    }
    /* random mutations, seeded by the seed and the file's position */
    rng_state = seed * 0x100000001b3ULL + (uint64_t)i;
    current_kind = "mutation";
    size_t cap = 2 * len + 256;
    char *buf = malloc(cap + 1);
    for (long m = 0; m < mutations; m++) {
      current_index = m;
      size_t n = mutate(text, len, buf, cap);
      char *p = malloc(n + 1);
      memcpy(p, buf, n);
      p[n] = 0;
      run_frontend(name, p, n, m % 8 == 0);
      free(p);
    }
    free(buf);
    free(text);
  }
  if (stress_inputs) run_stress();
  printf("%d files, %ld runs, %ld of them lowered\n", files, runs, lowered);
  printf("%ld passed, %d failed\n", runs, unreadable);
  return unreadable ? 1 : 0;
}
