/*
 * data.c - where training rows come from: scikit-learn's make_moons and
 * make_circles rebuilt point for point, the CSV reader of spec section 2,
 * and the split of one data set into train and valid parts.
 *
 * A data set is two row-major f64 arrays, inputs and targets (NncData).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime.h"

#define PI 3.141592653589793238462643383279502884

/* What a CSV read accepts (runtime.h). A line longer than 1 MiB is no row of
 * numbers anyone meant to write; refusing it early keeps a stray binary file
 * from turning into millions of fields, and /dev/zero from filling memory. */
const NncDataLimits nnc_data_limits = {
    .line_bytes = (size_t)1 << 20,
    .file_bytes = (uint64_t)4 << 30,
    .rows = NNC_DATA_MAX_ROWS,
    .values = NNC_DATA_MAX_VALUES,
};

/* Bytes read from the file at a time. */
#define CHUNK ((size_t)1 << 16)

/* Longest piece of a field quoted back in an error message. */
#define QUOTE_MAX 40

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen,
                                                      const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

void nnc_data_free(NncData *d) {
  free(d->x);
  free(d->t);
  free(d->breaks);
  memset(d, 0, sizeof *d);
}

size_t nnc_data_line(const NncData *d, size_t row) {
  size_t lo = 0, hi = d->nbreaks; /* the last break at or before row */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (d->breaks[mid].row <= row)
      lo = mid;
    else
      hi = mid;
  }
  if (d->nbreaks == 0 || row >= d->rows || d->breaks[lo].row > row)
    return 0;
  return d->breaks[lo].line + (row - d->breaks[lo].row);
}

void nnc_data_drop_lines(NncData *d) {
  free(d->breaks);
  d->breaks = NULL;
  d->nbreaks = 0;
  d->breaks_cap = SIZE_MAX; /* none recorded from now on */
}

/* Row d->rows is on line `lineno`: a break unless it follows the last.
 * Past NNC_DATA_MAX_BREAKS (a file of a blank line between every two rows)
 * the lines are dropped: messages name rows then. */
static int note_line(NncData *d, size_t lineno) {
  if (d->breaks_cap == SIZE_MAX)
    return 0;
  if (d->nbreaks == NNC_DATA_MAX_BREAKS) {
    nnc_data_drop_lines(d);
    return 0;
  }
  if (d->nbreaks > 0) {
    const struct NncLineBreak *b = &d->breaks[d->nbreaks - 1];
    if (b->line + (d->rows - b->row) == lineno)
      return 0;
  }
  if (d->nbreaks == d->breaks_cap) {
    size_t cap = d->breaks_cap ? 2 * d->breaks_cap : 8;
    struct NncLineBreak *grown = realloc(d->breaks, cap * sizeof *grown);
    if (!grown)
      return -1;
    d->breaks = grown;
    d->breaks_cap = cap;
  }
  d->breaks[d->nbreaks++] = (struct NncLineBreak){d->rows, lineno};
  return 0;
}

/* ---- built-in generators ---- */

/* Row i of n before shuffling, as scikit-learn builds it; the first n/2 rows
 * are class 0 (outer), the rest class 1 (inner). */
typedef void PointFn(size_t i, size_t n, double factor, double xy[2]);

/* numpy.linspace(0, stop, num, endpoint)[i]: i * step, and exactly stop at
 * the end when the endpoint is included. */
static double linspace_at(double stop, size_t num, int endpoint, size_t i) {
  if (!endpoint)
    return (double)i * (stop / (double)num);
  if (num == 1)
    return 0.0;
  if (i == num - 1)
    return stop;
  return (double)i * (stop / (double)(num - 1));
}

static void moons_point(size_t i, size_t n, double factor, double xy[2]) {
  (void)factor;
  size_t n_out = n / 2, n_in = n - n_out;
  if (i < n_out) {
    double a = linspace_at(PI, n_out, 1, i);
    xy[0] = cos(a);
    xy[1] = sin(a);
  } else {
    double a = linspace_at(PI, n_in, 1, i - n_out);
    xy[0] = 1 - cos(a);
    xy[1] = 1 - sin(a) - 0.5;
  }
}

static void circles_point(size_t i, size_t n, double factor, double xy[2]) {
  size_t n_out = n / 2, n_in = n - n_out;
  if (i < n_out) {
    double a = linspace_at(2 * PI, n_out, 0, i);
    xy[0] = cos(a);
    xy[1] = sin(a);
  } else {
    double a = linspace_at(2 * PI, n_in, 0, i - n_out);
    xy[0] = cos(a) * factor;
    xy[1] = sin(a) * factor;
  }
}

static int check_generator(const char *name, size_t samples, double noise,
                           int in_cols, int tgt_cols, char *err,
                           size_t errlen) {
  if (in_cols != 2)
    return fail(err, errlen,
                "%s: error: %s gives 2 input values per sample, the model's "
                "inputs hold %d",
                name, name, in_cols);
  if (tgt_cols != 1 && tgt_cols != 2)
    return fail(err, errlen,
                "%s: error: %s gives a 0/1 label (1 target value) or a one-hot "
                "pair (2), the model's targets hold %d",
                name, name, tgt_cols);
  if (samples < 2)
    return fail(err, errlen, "%s: error: samples must be at least 2, got %zu",
                name, samples);
  if (samples > NNC_DATA_MAX_ROWS)
    return fail(err, errlen, "%s: error: samples must be at most %zu, got %zu",
                name, NNC_DATA_MAX_ROWS, samples);
  if (!(noise >= 0) || !isfinite(noise))
    return fail(err, errlen,
                "%s: error: noise must be a finite number >= 0, got %g", name,
                noise);
  return 0;
}

/* As scikit-learn: build the rows in order, shuffle them (row k of the
 * result is row perm[k]), then add N(0, noise) to every coordinate in
 * row-major order; one generator seeded with seed makes all the draws. */
static int generate(NncData *d, const char *name, PointFn *point,
                    size_t samples, double noise, double factor, uint64_t seed,
                    int tgt_cols, char *err, size_t errlen) {
  size_t *perm = malloc(samples * sizeof *perm);
  d->x = malloc(samples * 2 * sizeof *d->x);
  d->t = malloc(samples * (size_t)tgt_cols * sizeof *d->t);
  if (!perm || !d->x || !d->t) {
    free(perm);
    nnc_data_free(d);
    return fail(err, errlen, "%s: error: out of memory for %zu samples", name,
                samples);
  }
  d->rows = samples;
  d->in_cols = 2;
  d->tgt_cols = tgt_cols;

  NncRng rng;
  nnc_rng_seed(&rng, seed);
  nnc_rng_permutation(&rng, samples, perm);
  for (size_t k = 0; k < samples; k++) {
    size_t i = perm[k];
    int label = i >= samples / 2;
    point(i, samples, factor, &d->x[2 * k]);
    if (tgt_cols == 1) {
      d->t[k] = label;
    } else {
      d->t[2 * k] = label == 0;
      d->t[2 * k + 1] = label == 1;
    }
  }
  for (size_t j = 0; j < 2 * samples; j++)
    d->x[j] += noise * nnc_rng_normal(&rng);
  free(perm);
  return 0;
}

int nnc_data_moons(NncData *d, size_t samples, double noise, uint64_t seed,
                   int in_cols, int tgt_cols, char *err, size_t errlen) {
  memset(d, 0, sizeof *d);
  if (check_generator("moons", samples, noise, in_cols, tgt_cols, err, errlen) <
      0)
    return -1;
  return generate(d, "moons", moons_point, samples, noise, 0.0, seed, tgt_cols,
                  err, errlen);
}

int nnc_data_circles(NncData *d, size_t samples, double noise, double factor,
                     uint64_t seed, int in_cols, int tgt_cols, char *err,
                     size_t errlen) {
  memset(d, 0, sizeof *d);
  if (check_generator("circles", samples, noise, in_cols, tgt_cols, err,
                      errlen) < 0)
    return -1;
  if (!(factor > 0 && factor < 1))
    return fail(err, errlen,
                "circles: error: factor must be between 0 and 1 (exclusive), "
                "got %g",
                factor);
  return generate(d, "circles", circles_point, samples, noise, factor, seed,
                  tgt_cols, err, errlen);
}

/* ---- CSV ---- */

typedef struct Csv {
  const char *path;
  int in_cols;
  int tgt_cols;    /* values per row of d->t; 0 when targets are not read */
  int classes;     /* > 0: the target is one class-index column */
  int optional;    /* targets may be absent (--predict): they are not read */
  int model_tgt;   /* optional: the model's target values, which may follow */
  int width;       /* fields per line; 0 until the first line (optional mode) */
  size_t width_at; /* the line that fixed width in optional mode */
  size_t cap;      /* rows allocated in d->x and d->t */
  const NncDataLimits *lim;
  char *err;
  size_t errlen;
} Csv;

__attribute__((format(printf, 4, 5))) static int
csv_fail(Csv *c, size_t line, int col, const char *fmt, ...) {
  int n;
  if (line > 0)
    n = snprintf(c->err, c->errlen, "%s:%zu:%d: error: ", c->path, line, col);
  else
    n = snprintf(c->err, c->errlen, "%s: error: ", c->path);
  if (n >= 0 && (size_t)n < c->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* "1 MiB", "4 GiB" or "100 bytes": a limit as messages say it. */
static const char *size_text(char *buf, size_t n, uint64_t bytes) {
  static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB"};
  int u = 0;
  while (u < 3 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    u++;
  }
  snprintf(buf, n, "%llu %s", (unsigned long long)bytes, unit[u]);
  return buf;
}

static int is_blank(char ch) { return ch == ' ' || ch == '\t'; }

static int blank_line(const char *s, const char *end) {
  while (s < end && is_blank(*s))
    s++;
  return s == end;
}

static int count_fields(const char *s, const char *end) {
  int n = 1;
  for (; s < end; s++)
    if (*s == ',')
      n++;
  return n;
}

static const char *field_end(const char *s, const char *line_end) {
  const char *comma = memchr(s, ',', (size_t)(line_end - s));
  return comma ? comma : line_end;
}

/* The field [s, end) without surrounding blanks. */
static void trim(const char **s, const char **end) {
  while (*s < *end && is_blank(**s))
    (*s)++;
  while (*end > *s && is_blank((*end)[-1]))
    (*end)--;
}

/* 0 when the whole field, blanks aside, is one number (NaN and infinities
 * included: they are numbers that the caller refuses). The character at end
 * is a blank, ',', '\r', '\n' or the final NUL, none of which can continue a
 * number, so strtod never reads past the field. */
/* Whether [s, end) is a decimal number as the spec writes them: digits
 * with an optional sign, point and exponent (not C's hexadecimal floats,
 * which strtod also reads). */
static int is_decimal(const char *s, const char *end) {
  if (s < end && (*s == '+' || *s == '-'))
    s++;
  int digits = 0;
  while (s < end && *s >= '0' && *s <= '9')
    s++, digits++;
  if (s < end && *s == '.')
    for (s++; s < end && *s >= '0' && *s <= '9'; s++)
      digits++;
  if (digits == 0)
    return 0;
  if (s < end && (*s == 'e' || *s == 'E')) {
    s++;
    if (s < end && (*s == '+' || *s == '-'))
      s++;
    if (s == end || *s < '0' || *s > '9')
      return 0;
    while (s < end && *s >= '0' && *s <= '9')
      s++;
  }
  return s == end;
}

static int parse_number(const char *s, const char *end, double *v) {
  trim(&s, &end);
  if (s == end)
    return -1;
  char *stop;
  *v = strtod(s, &stop);
  return stop == end ? 0 : -1;
}

static int is_header(const char *line, const char *line_end) {
  for (const char *s = line;; s++) {
    const char *e = field_end(s, line_end);
    double v;
    if (parse_number(s, e, &v) < 0)
      return 1;
    if (e == line_end)
      return 0;
    s = e;
  }
}

/* Every line, the header included, must have the row's field count. */
static int check_width(Csv *c, size_t line, int found) {
  int col = found + 1; /* where the first missing or extra field is */
  if (c->optional) {
    if (found < c->in_cols)
      return csv_fail(c, line, col,
                      "expected at least %d fields (the model's inputs), "
                      "found %d",
                      c->in_cols, found);
    if (c->width == 0) { /* the inputs, then the targets or nothing */
      int with_targets = c->in_cols + c->model_tgt;
      int label = c->classes > 0 ? c->in_cols + 1 : 0;
      if (found != c->in_cols && found != with_targets && found != label) {
        int widest = with_targets > label ? with_targets : label;
        if (label)
          return csv_fail(c, line, found > widest ? widest + 1 : col,
                          "expected %d fields (the model's inputs), %d (inputs and a class label) or %d (inputs and "
                          "targets), found %d",
                          c->in_cols, label, with_targets, found);
        return csv_fail(c, line, found > widest ? widest + 1 : col,
                        "expected %d fields (the model's inputs) or %d (inputs and targets), found %d", c->in_cols,
                        with_targets, found);
      }
      c->width = found;
      c->width_at = line;
    }
    if (found != c->width)
      return csv_fail(c, line, (found < c->width ? found : c->width) + 1,
                      "expected %d fields as on line %zu, found %d", c->width,
                      c->width_at, found);
    return 0;
  }
  if (found == c->width)
    return 0;
  if (found > c->width)
    col = c->width + 1;
  if (c->classes > 0)
    return csv_fail(c, line, col,
                    "expected %d fields (%d inputs, 1 class label), found %d",
                    c->width, c->in_cols, found);
  int targets = c->width - c->in_cols;
  return csv_fail(c, line, col,
                  "expected %d fields (%d inputs, %d target%s), "
                  "found %d",
                  c->width, c->in_cols, targets, targets == 1 ? "" : "s",
                  found);
}

/* A field as printable ASCII for a message: other bytes as \xNN,
 * cut after QUOTE_MAX bytes with "...". */
static void quote_field(char *out, size_t outlen, const char *s, const char *end) {
  size_t k = 0;
  for (const char *p = s; p < end && k + 8 < outlen; p++) {
    unsigned char ch = (unsigned char)*p;
    if (p - s >= QUOTE_MAX) {
      k += (size_t)snprintf(out + k, outlen - k, "...");
      break;
    }
    if (ch < 32 || ch >= 127 || ch == '"' || ch == '\\')
      k += (size_t)snprintf(out + k, outlen - k, "\\x%02x", ch);
    else
      out[k++] = (char)ch;
  }
  out[k < outlen ? k : outlen - 1] = 0;
}

/* One field as a finite number, or an error naming line and column. */
static int read_value(Csv *c, const char *s, const char *end, size_t line,
                      int col, double *v) {
  trim(&s, &end);
  char shown[QUOTE_MAX * 4 + 16];
  if (s == end)
    return csv_fail(c, line, col, "expected a number, got an empty field");
  if (parse_number(s, end, v) < 0) {
    quote_field(shown, sizeof shown, s, end);
    return csv_fail(c, line, col, "expected a number, got \"%s\"", shown);
  }
  if (isfinite(*v) && !is_decimal(s, end)) { /* 0x10 */
    quote_field(shown, sizeof shown, s, end);
    return csv_fail(c, line, col, "expected a decimal number, got \"%s\"", shown);
  }
  if (!isfinite(*v)) {
    quote_field(shown, sizeof shown, s, end);
    return csv_fail(c, line, col, "expected a finite number, got \"%s\"", shown);
  }
  return 0;
}

static int grow(Csv *c, NncData *d) {
  size_t cap = c->cap ? 2 * c->cap : 256;
  if (cap > c->lim->rows)
    cap = c->lim->rows;
  int widest = c->in_cols > c->tgt_cols ? c->in_cols : c->tgt_cols;
  if (cap > SIZE_MAX / sizeof(double) / (size_t)widest)
    return -1;
  double *x = realloc(d->x, cap * (size_t)c->in_cols * sizeof *x);
  if (!x)
    return -1;
  d->x = x;
  if (c->tgt_cols > 0) {
    double *t = realloc(d->t, cap * (size_t)c->tgt_cols * sizeof *t);
    if (!t)
      return -1;
    d->t = t;
  }
  c->cap = cap;
  return 0;
}

static int read_row(Csv *c, NncData *d, const char *line, const char *line_end,
                    size_t lineno) {
  uint64_t per_row = (uint64_t)c->in_cols + (uint64_t)c->tgt_cols;
  if (d->rows == c->lim->rows)
    return csv_fail(c, lineno, 1, "more than %zu data rows", c->lim->rows);
  if ((uint64_t)(d->rows + 1) * per_row > c->lim->values)
    return csv_fail(c, lineno, 1,
                    "more than %llu values in the data set (%zu rows of %llu)",
                    (unsigned long long)c->lim->values, d->rows,
                    (unsigned long long)per_row);
  if (d->rows == c->cap && grow(c, d) < 0)
    return csv_fail(c, lineno, 1, "out of memory after %zu rows", d->rows);
  double *x = d->x + d->rows * (size_t)c->in_cols;
  double *t = c->tgt_cols ? d->t + d->rows * (size_t)c->tgt_cols : NULL;
  const char *s = line;
  int fields = c->optional ? c->in_cols : c->in_cols + (c->classes ? 1 : c->tgt_cols);
  for (int col = 1; col <= fields; col++) {
    const char *e = field_end(s, line_end);
    double v = 0;
    if (read_value(c, s, e, lineno, col, &v) < 0)
      return -1;
    if (col <= c->in_cols) {
      x[col - 1] = v;
    } else if (c->classes == 0) {
      t[col - 1 - c->in_cols] = v;
    } else {
      if (v != floor(v) || v < 0 || v >= c->classes)
        return csv_fail(c, lineno, col,
                        "expected a class label (an integer from 0 to %d), got "
                        "%.17g",
                        c->classes - 1, v);
      for (int k = 0; k < c->classes; k++)
        t[k] = k == (int)v;
    }
    s = e + 1;
  }
  if (note_line(d, lineno) < 0)
    return csv_fail(c, lineno, 1, "out of memory after %zu rows", d->rows);
  d->rows++;
  return 0;
}

/* ---- the file as a stream of lines ---- */

/* The file is read in chunks and handed out a line at a time, so memory
 * holds one line and the rows kept, never the file: a pipe or a device that
 * never ends (/dev/zero) meets a limit within seconds instead of filling
 * memory. */
typedef struct Lines {
  FILE *f;
  char *buf;
  size_t cap;        /* bytes in buf, one more kept for a NUL */
  size_t start, end; /* the bytes read and not handed out: buf[start, end) */
  uint64_t total;    /* bytes read from the file */
  int eof;
} Lines;

static int lines_open(Csv *c, Lines *l) {
  memset(l, 0, sizeof *l);
  l->f = fopen(c->path, "rb");
  if (!l->f)
    return csv_fail(c, 0, 0, "cannot open: %s", strerror(errno));
  struct stat st;
  int rc = 0;
  char limit[32];
  if (fstat(fileno(l->f), &st) == 0 && S_ISDIR(st.st_mode))
    rc = csv_fail(c, 0, 0, "is a directory, not a CSV file");
  else if (fstat(fileno(l->f), &st) == 0 && S_ISREG(st.st_mode) &&
           (uint64_t)st.st_size > c->lim->file_bytes)
    rc = csv_fail(c, 0, 0, "the file is larger than %s, the limit for CSV data",
                  size_text(limit, sizeof limit, c->lim->file_bytes));
  if (rc == 0 && !(l->buf = malloc(2 * CHUNK + 1)))
    rc = csv_fail(c, 0, 0, "out of memory reading the file");
  if (rc < 0)
    fclose(l->f);
  l->cap = 2 * CHUNK;
  return rc;
}

static void lines_close(Lines *l) {
  fclose(l->f);
  free(l->buf);
}

/* Moves the unread bytes to the front and reads another chunk after them. */
static int lines_fill(Csv *c, Lines *l) {
  memmove(l->buf, l->buf + l->start, l->end - l->start);
  l->end -= l->start;
  l->start = 0;
  if (l->cap - l->end < CHUNK) {
    /* the unread bytes are one line of at most line_bytes: the buffer never
       grows past line_bytes + 2 chunks */
    size_t cap = 2 * l->cap;
    char *bigger = realloc(l->buf, cap + 1);
    if (!bigger)
      return csv_fail(c, 0, 0, "out of memory reading the file");
    l->buf = bigger;
    l->cap = cap;
  }
  size_t got = fread(l->buf + l->end, 1, l->cap - l->end, l->f);
  if (got == 0 && ferror(l->f))
    return csv_fail(c, 0, 0, "read error: %s", strerror(errno));
  l->eof = got == 0;
  l->end += got;
  l->total += got;
  char limit[32];
  if (l->total > c->lim->file_bytes)
    return csv_fail(c, 0, 0, "more than %s read, the limit for CSV data",
                    size_text(limit, sizeof limit, c->lim->file_bytes));
  return 0;
}

/* The next line without its line break ("\n", "\r\n" or a lone "\r"),
 * NUL-terminated in place (the number parser relies on that): 1 with
 * [*line, *line_end) set, 0 at the end of the file, -1 on an error. */
static int next_line(Csv *c, Lines *l, size_t lineno, char **line,
                     char **line_end) {
  size_t scanned = 0; /* bytes of this line known to hold no line break */
  for (;;) {
    char *p = l->buf + l->start + scanned, *end = l->buf + l->end;
    char *nl = memchr(p, '\n', (size_t)(end - p));
    char *cr = memchr(p, '\r', (size_t)((nl ? nl : end) - p));
    char *brk = cr ? cr : nl;
    /* a '\r' last in what was read may be the start of "\r\n" */
    int known = brk && (brk == nl || brk + 1 < end || l->eof);
    scanned = known ? (size_t)(brk - (l->buf + l->start))
                    : (size_t)(end - (l->buf + l->start));
    char limit[32];
    if (scanned > c->lim->line_bytes)
      return csv_fail(c, lineno, 1, "line is longer than %s",
                      size_text(limit, sizeof limit, c->lim->line_bytes));
    if (known || l->eof) {
      if (!known && scanned == 0)
        return 0;
      size_t skip = !known ? 0 : brk == cr && brk + 1 == nl ? 2 : 1;
      *line = l->buf + l->start;
      *line_end = l->buf + l->start + scanned;
      **line_end = '\0'; /* at the end of the file: the byte kept for it */
      l->start += scanned + skip;
      return 1;
    }
    if (brk) /* that '\r' is looked at again with what follows */
      scanned--;
    if (lines_fill(c, l) < 0)
      return -1;
  }
}

static int read_lines(Csv *c, NncData *d) {
  Lines l;
  if (lines_open(c, &l) < 0)
    return -1;
  int header = 0, first = 1, rc;
  char *line = NULL, *line_end = NULL;
  for (size_t lineno = 1; (rc = next_line(c, &l, lineno, &line, &line_end)) > 0;
       lineno++) {
    if (lineno == 1 && line_end - line >= 3 &&
        memcmp(line, "\xEF\xBB\xBF", 3) == 0)
      line += 3; /* a UTF-8 byte order mark, as spreadsheets write */
    if (blank_line(line, line_end))
      continue;
    rc = check_width(c, lineno, count_fields(line, line_end));
    if (rc < 0)
      break;
    if (first && is_header(line, line_end)) {
      first = 0;
      header = 1;
      continue;
    }
    first = 0;
    rc = read_row(c, d, line, line_end, lineno);
    if (rc < 0)
      break;
  }
  lines_close(&l);
  if (rc < 0)
    return -1;
  if (d->rows == 0 && !c->optional) /* (rows to predict may be none) */
    return csv_fail(c, 0, 0,
                    header ? "no data rows after the header"
                           : "no data rows (the file is empty)");
  return 0;
}

static int check_csv_args(Csv *c) {
  if (c->in_cols < 1 || c->tgt_cols < 0 || c->classes < 0 ||
      c->tgt_cols > INT_MAX - c->in_cols)
    return csv_fail(c, 0, 0, "invalid column counts (%d inputs, %d targets)",
                    c->in_cols, c->tgt_cols);
  if (c->classes > 0 && c->tgt_cols != c->classes)
    return csv_fail(c, 0, 0,
                    "a class label column of %d classes needs %d target "
                    "values, the model's targets hold %d",
                    c->classes, c->classes, c->tgt_cols);
  return 0;
}

int nnc_data_csv(NncData *d, const char *path, int in_cols, int tgt_cols,
                 int onehot_classes, int targets_optional, char *err,
                 size_t errlen) {
  return nnc_data_csv_within(d, path, in_cols, tgt_cols, onehot_classes,
                             targets_optional, &nnc_data_limits, err, errlen);
}

int nnc_data_csv_within(NncData *d, const char *path, int in_cols,
                        int tgt_cols, int onehot_classes, int targets_optional,
                        const NncDataLimits *limits, char *err, size_t errlen) {
  Csv c = {.path = path,
           .lim = limits,
           .in_cols = in_cols,
           .tgt_cols = tgt_cols,
           .classes = onehot_classes,
           .optional = targets_optional != 0,
           .err = err,
           .errlen = errlen};
  memset(d, 0, sizeof *d);
  if (check_csv_args(&c) < 0)
    return -1;
  if (c.optional) {
    c.model_tgt = tgt_cols;
    c.tgt_cols = 0; /* t stays NULL: nothing after the inputs is read */
  } else {
    c.width = in_cols + (c.classes ? 1 : tgt_cols);
  }
  d->in_cols = in_cols;
  d->tgt_cols = c.tgt_cols;

  int rc = read_lines(&c, d);
  if (rc < 0)
    nnc_data_free(d);
  return rc;
}

/* ---- split ---- */

static double *copy_rows(const double *src, size_t rows, int cols) {
  size_t n = rows * (size_t)cols;
  double *dst = malloc(n * sizeof *dst);
  if (!dst) {
    /* The interface has no error path here; a split only fails when memory
     * for the data has already run out. */
    fprintf(stderr, "nnc: error: out of memory splitting the data\n");
    exit(1);
  }
  memcpy(dst, src, n * sizeof *dst);
  return dst;
}

void nnc_data_split(NncData *d, size_t n, NncData *train, NncData *valid) {
  NncData all = *d;
  NncData empty = {.in_cols = all.in_cols, .tgt_cols = all.tgt_cols};
  memset(d, 0, sizeof *d);
  if (n > all.rows)
    n = all.rows;
  *train = empty;
  *valid = empty;
  if (n == 0) {
    *valid = all;
    return;
  }
  *train = all;
  train->rows = n;
  if (n == all.rows)
    return;
  valid->rows = all.rows - n; /* (no lines: its messages name rows) */
  valid->x =
      copy_rows(all.x + n * (size_t)all.in_cols, valid->rows, all.in_cols);
  if (all.t)
    valid->t =
        copy_rows(all.t + n * (size_t)all.tgt_cols, valid->rows, all.tgt_cols);
}
