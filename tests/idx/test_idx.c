/*
 * test_idx.c - the IDX reader (runtime/idx.c) on small files written here,
 * raw and gzip-compressed: every element type, scaling, one-hot and
 * single-value labels, FIFOs and endless pipes, the limits, and every kind
 * of malformed file with its message.
 *
 *   test_idx                       the unit tests, in a temporary directory
 *   test_idx write DIR             the files the cases in tests/idx/cases read
 *   test_idx subset N IMAGES LABELS OUT_IMAGES OUT_LABELS
 *                                  the first N items of an IDX pair (gzip
 *                                  when the output name ends in .gz)
 *
 * The unit tests print one line per group and "N passed, N failed"; the
 * exit status is 1 when a check failed.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime.h"

#include "../check.h"

/* ---- writing IDX files ---- */

static const char *dir = ".";

static char *path_of(const char *name) {
  static char buf[8][4096];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), k = strlen(tail);
  return n >= k && strcmp(s + n - k, tail) == 0;
}

/* Write bytes to path, gzip-compressed when its name ends in .gz. */
static void write_file(const char *path, const void *data, size_t len) {
  if (ends_with(path, ".gz")) {
    gzFile gz = gzopen(path, "wb");
    if (!gz || (len && gzwrite(gz, data, (unsigned)len) != (int)len) || gzclose(gz) != Z_OK) {
      fprintf(stderr, "test_idx: cannot write %s\n", path);
      exit(2);
    }
    return;
  }
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
    fprintf(stderr, "test_idx: cannot write %s: %s\n", path, strerror(errno));
    exit(2);
  }
}

static void write_bytes(const char *name, const void *data, size_t len) { write_file(path_of(name), data, len); }

/* A growing byte buffer. */
typedef struct Bytes {
  unsigned char *p;
  size_t len, cap;
} Bytes;

static void put(Bytes *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void put_be(Bytes *b, uint64_t v, int size) {
  unsigned char out[8];
  for (int k = 0; k < size; k++) out[k] = (unsigned char)(v >> (8 * (size - 1 - k)));
  put(b, out, (size_t)size);
}

static int elem_size(int type) {
  return type == 0x08 || type == 0x09 ? 1 : type == 0x0B ? 2 : type == 0x0E ? 8 : 4;
}

/* An IDX file: header of type and dims, then count values (as the type). */
static Bytes idx_bytes(int type, int rank, const uint32_t *dims, const double *v, size_t count) {
  Bytes b = {0};
  unsigned char magic[4] = {0, 0, (unsigned char)type, (unsigned char)rank};
  put(&b, magic, 4);
  for (int k = 0; k < rank; k++) put_be(&b, dims[k], 4);
  for (size_t i = 0; i < count; i++) {
    uint64_t bits;
    if (type == 0x0D) {
      float f = (float)v[i];
      uint32_t u;
      memcpy(&u, &f, 4);
      bits = u;
    } else if (type == 0x0E) {
      memcpy(&bits, &v[i], 8);
    } else {
      bits = (uint64_t)(int64_t)v[i];
    }
    put_be(&b, bits, elem_size(type));
  }
  return b;
}

static void write_idx(const char *name, int type, int rank, const uint32_t *dims, const double *v, size_t count) {
  Bytes b = idx_bytes(type, rank, dims, v, count);
  write_bytes(name, b.p, b.len);
  free(b.p);
}

/* count images of h x w, pixel (i, k) = (i * 7 + k) % 256 */
static void write_images(const char *name, uint32_t count, uint32_t h, uint32_t w) {
  size_t n = (size_t)count * h * w;
  double *v = malloc(n * sizeof *v);
  for (size_t j = 0; j < n; j++) v[j] = (double)((j / (h * w) * 7 + j % (h * w)) % 256);
  uint32_t dims[3] = {count, h, w};
  write_idx(name, 0x08, 3, dims, v, n);
  free(v);
}

static void write_labels(const char *name, uint32_t count, int classes) {
  double *v = malloc(count * sizeof *v);
  for (uint32_t i = 0; i < count; i++) v[i] = i % (uint32_t)classes;
  write_idx(name, 0x08, 1, &count, v, count);
  free(v);
}

/* ---- reading them ---- */

static char err[1024];

static int load(NncData *d, const char *images, const char *labels, double scale, int in_cols, int tgt_cols) {
  return nnc_data_idx(d, path_of(images), path_of(labels), scale, in_cols, tgt_cols, err, sizeof err);
}

/* The message without the directory, which is a temporary name. */
static const char *msg(void) {
  size_t n = strlen(dir);
  return strncmp(err, dir, n) == 0 && err[n] == '/' ? err + n + 1 : err;
}

static void check_msg_at(int line, NncData *d, int rc, const char *want) {
  char what[1200];
  snprintf(what, sizeof what, "error \"%s\", expected \"%s\"", rc ? msg() : "(none)", want);
  check_at(rc == -1 && strcmp(msg(), want) == 0 && d->rows == 0 && !d->x && !d->t, __FILE__, line, what);
}

#define CHECK_MSG(rc, want) check_msg_at(__LINE__, &d, rc, want)

/* ---- the unit tests ---- */

static void test_read(void) {
  for (int gz = 0; gz < 2; gz++) {
    const char *im = gz ? "im.gz" : "im.idx", *lb = gz ? "lb.gz" : "lb.idx";
    write_images(im, 5, 2, 3);
    write_labels(lb, 5, 3);
    NncData d;
    CHECK(load(&d, im, lb, NAN, 6, 3) == 0);
    CHECK(d.rows == 5 && d.in_cols == 6 && d.tgt_cols == 3);
    int ok = 1;
    for (size_t i = 0; i < 5; i++) {
      for (int k = 0; k < 6; k++) ok &= d.x[i * 6 + k] == (double)((i * 7 + (size_t)k) % 256) * (1.0 / 255);
      for (int c = 0; c < 3; c++) ok &= d.t[i * 3 + c] == (c == (int)(i % 3));
    }
    CHECK(ok);
    nnc_data_free(&d);
    /* one target: the label's value; an explicit scale */
    CHECK(load(&d, im, lb, 0.5, 6, 1) == 0);
    CHECK(d.t[4] == 1 && d.t[2] == 2 && d.x[6] == 3.5);
    nnc_data_free(&d);
  }
}

/* Every element type, with the default scale (1 except unsigned bytes). */
static void test_types(void) {
  static const int types[] = {0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E};
  static const double values[][4] = {{0, 1, 128, 255},       {-128, -1, 0, 127},
                                     {-32768, -2, 3, 32767}, {-2147483648.0, -5, 6, 2147483647},
                                     {-1.5, 0.25, 3e10, -0}, {-1e300, 1e-300, 0.1, 2}};
  for (int gz = 0; gz < 2; gz++)
    for (int t = 0; t < 6; t++) {
      const char *im = gz ? "t.gz" : "t.idx";
      uint32_t dims[3] = {2, 1, 2};
      write_idx(im, types[t], 3, dims, values[t], 4);
      uint32_t n = 2;
      double lv[2] = {1, 0};
      write_idx("tl.idx", types[t], 1, &n, lv, 2);
      NncData d;
      int rc = load(&d, im, "tl.idx", NAN, 2, 2);
      CHECK(rc == 0);
      if (rc) {
        printf("  type 0x%02x: %s\n", types[t], err);
        continue;
      }
      double scale = types[t] == 0x08 ? 1.0 / 255 : 1;
      int ok = 1;
      for (int k = 0; k < 4; k++) {
        double want = types[t] == 0x0D ? (double)(float)values[t][k] : values[t][k];
        ok &= d.x[k] == want * scale;
      }
      CHECK(ok);
      CHECK(d.t[0] == 0 && d.t[1] == 1 && d.t[2] == 1 && d.t[3] == 0);
      nnc_data_free(&d);
    }
}

/* Shapes: flat images, [C,H,W] images, multi-member gzip. */
static void test_shapes(void) {
  double v[24];
  for (int k = 0; k < 24; k++) v[k] = k;
  uint32_t flat[2] = {3, 8}, chw[4] = {2, 3, 2, 2}, n3 = 3, n2 = 2;
  double lab[3] = {0, 1, 0};
  write_idx("flat.idx", 0x08, 2, flat, v, 24);
  write_idx("chw.idx", 0x08, 4, chw, v, 24);
  write_idx("l3.idx", 0x08, 1, &n3, lab, 3);
  write_idx("l2.idx", 0x08, 1, &n2, lab, 2);
  NncData d;
  CHECK(load(&d, "flat.idx", "l3.idx", 1, 8, 1) == 0 && d.rows == 3 && d.x[23] == 23);
  nnc_data_free(&d);
  CHECK(load(&d, "chw.idx", "l2.idx", 1, 12, 2) == 0 && d.rows == 2 && d.x[13] == 13 && d.t[3] == 1);
  nnc_data_free(&d);
  /* a gzip file of two members (as `cat a.gz b.gz` makes) is one stream */
  Bytes b = idx_bytes(0x08, 3, (uint32_t[]){2, 2, 2}, v, 8);
  gzFile gz = gzopen(path_of("two.gz"), "wb");
  gzwrite(gz, b.p, 11);
  gzclose(gz);
  gz = gzopen(path_of("two.gz"), "ab");
  gzwrite(gz, b.p + 11, (unsigned)b.len - 11);
  gzclose(gz);
  free(b.p);
  CHECK(load(&d, "two.gz", "l2.idx", 1, 4, 2) == 0 && d.rows == 2 && d.x[7] == 7);
  nnc_data_free(&d);
}

/* Malformed files: one message each, nothing returned. */
static void test_files(void) {
  NncData d;
  write_labels("l4.idx", 4, 10);
  write_images("i4.idx", 4, 2, 2);
  CHECK_MSG(load(&d, "none.idx", "l4.idx", NAN, 4, 10), "none.idx: error: cannot open: No such file or directory");
  CHECK_MSG(load(&d, "i4.idx", "none.idx", NAN, 4, 10), "none.idx: error: cannot open: No such file or directory");
  mkdir(path_of("sub"), 0700);
  CHECK_MSG(load(&d, "sub", "l4.idx", NAN, 4, 10), "sub: error: is a directory, not an IDX file");
  int rc = nnc_data_idx(&d, "/dev/zero", path_of("l4.idx"), NAN, 4, 10, err, sizeof err);
  CHECK(rc == -1 && strcmp(err, "/dev/zero: error: bad magic number 0x00000000: not an IDX file (it starts with two "
                                "zero bytes and an element type from 0x08 to 0x0e)") == 0);
  write_bytes("text.idx", "P5 28 28 255\n", 13);
  CHECK_MSG(load(&d, "text.idx", "l4.idx", NAN, 4, 10),
            "text.idx: error: bad magic number 0x50352032: not an IDX file (it starts with two zero bytes and an "
            "element type from 0x08 to 0x0e)");
  write_bytes("type7.idx", "\0\0\x07\x03", 4);
  CHECK_MSG(load(&d, "type7.idx", "l4.idx", NAN, 4, 10),
            "type7.idx: error: bad magic number 0x00000703: not an IDX file (it starts with two zero bytes and an "
            "element type from 0x08 to 0x0e)");
  write_bytes("empty.idx", "", 0);
  CHECK_MSG(load(&d, "empty.idx", "l4.idx", NAN, 4, 10),
            "empty.idx: error: the file ends inside the IDX header (4 bytes of magic number, then the sizes)");
  write_bytes("short.gz", "\0\0\x08\x03\0\0\0\x04\0\0", 10);
  CHECK_MSG(load(&d, "short.gz", "l4.idx", NAN, 4, 10),
            "short.gz: error: the file ends inside the IDX header (3 sizes of 4 bytes)");
}

/* A child process writes the bytes of an IDX file into the FIFO name,
 * then, when endless, zero bytes until the reader goes away. */
static pid_t fifo_writer(const char *name, const Bytes *b, bool endless) {
  unlink(path_of(name));
  if (mkfifo(path_of(name), 0600) != 0)
    return -1;
  pid_t pid = fork();
  if (pid != 0)
    return pid;
  signal(SIGPIPE, SIG_DFL);
  FILE *f = fopen(path_of(name), "wb");
  if (!f)
    _exit(1);
  fwrite(b->p, 1, b->len, f);
  static const char zeros[4096];
  while (endless && fwrite(zeros, 1, sizeof zeros, f) == sizeof zeros) {
  }
  fclose(f);
  _exit(0);
}

/* Pipes: a FIFO reads as a file; a source that goes on after the images its
 * header announces stops with a message. */
static void test_streams(void) {
  NncData d;
  write_labels("l4.idx", 4, 10);
  Bytes b = idx_bytes(0x08, 3, (uint32_t[]){4, 2, 2}, (double[16]){[5] = 255}, 16);
  int status;
  pid_t pid = fifo_writer("fifo", &b, false);
  CHECK(pid > 0);
  if (pid > 0) {
    CHECK(load(&d, "fifo", "l4.idx", NAN, 4, 10) == 0 && d.rows == 4 && d.x[5] == 1);
    nnc_data_free(&d);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  pid = fifo_writer("endless", &b, true);
  if (pid > 0) {
    CHECK_MSG(load(&d, "endless", "l4.idx", NAN, 4, 10), "endless: error: data follows the 4 images the header announces");
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE);
  }
  free(b.p);
}

/* The limits of a data set, with small ones. */
static void test_limits(void) {
  NncData d;
  write_images("i4.idx", 4, 2, 2);
  write_labels("l4.idx", 4, 10);
  NncDataLimits lim = nnc_data_limits;
  lim.rows = 3;
  int rc = nnc_data_idx_within(&d, path_of("i4.idx"), path_of("l4.idx"), NAN, 4, 10, &lim, err, sizeof err);
  CHECK_MSG(rc, "i4.idx: error: 4 images, more than the limit of 3 data rows");
  lim = nnc_data_limits;
  lim.values = 4 * 14 - 1;
  rc = nnc_data_idx_within(&d, path_of("i4.idx"), path_of("l4.idx"), NAN, 4, 10, &lim, err, sizeof err);
  CHECK_MSG(rc, "i4.idx: error: 4 images of 4 values and their targets (10 each) are more than the limit of 55 values");
  lim.values = 4 * 14;
  rc = nnc_data_idx_within(&d, path_of("i4.idx"), path_of("l4.idx"), NAN, 4, 10, &lim, err, sizeof err);
  CHECK(rc == 0 && d.rows == 4);
  nnc_data_free(&d);
  lim.values = 3;
  rc = nnc_data_idx_within(&d, path_of("i4.idx"), path_of("l4.idx"), NAN, 4, 10, &lim, err, sizeof err);
  CHECK_MSG(rc, "i4.idx: error: an image of more than 3 values, the limit of a data set");
}

static void test_dimensions(void) {
  NncData d;
  write_labels("l4.idx", 4, 10);
  double v[16] = {0};
  write_idx("rank1.idx", 0x08, 1, (uint32_t[]){4}, v, 4);
  CHECK_MSG(load(&d, "rank1.idx", "l4.idx", NAN, 4, 10),
            "rank1.idx: error: an images file has 2 to 4 dimensions (the count, then each image's), this one has 1");
  write_idx("rank5.idx", 0x08, 5, (uint32_t[]){1, 1, 1, 1, 4}, v, 4);
  CHECK_MSG(load(&d, "rank5.idx", "l4.idx", NAN, 4, 10),
            "rank5.idx: error: an images file has 2 to 4 dimensions (the count, then each image's), this one has 5");
  write_idx("l22.idx", 0x08, 2, (uint32_t[]){4, 1}, v, 4);
  write_images("i4.idx", 4, 2, 2);
  CHECK_MSG(load(&d, "i4.idx", "l22.idx", NAN, 4, 10),
            "l22.idx: error: a labels file has 1 dimension (one label per image), this one has 2");
  write_idx("zero.idx", 0x08, 3, (uint32_t[]){4, 0, 2}, v, 0);
  CHECK_MSG(load(&d, "zero.idx", "l4.idx", NAN, 4, 10),
            "zero.idx: error: dimension 1 has size 0: the file holds no images");
  write_idx("none.gz", 0x08, 3, (uint32_t[]){0, 2, 2}, v, 0);
  CHECK_MSG(load(&d, "none.gz", "l4.idx", NAN, 4, 10),
            "none.gz: error: dimension 0 has size 0: the file holds no images");
  CHECK_MSG(load(&d, "i4.idx", "l4.idx", NAN, 784, 10),
            "i4.idx: error: each image is 2x2 (4 values); the model's inputs hold 784 values");
  write_idx("flat.idx", 0x08, 2, (uint32_t[]){4, 4}, v, 16);
  CHECK_MSG(load(&d, "flat.idx", "l4.idx", NAN, 1, 10),
            "flat.idx: error: each image is 4 values; the model's inputs hold 1 value");
  write_labels("l5.gz", 5, 10);
  CHECK_MSG(load(&d, "i4.idx", "l5.gz", NAN, 4, 10), "l5.gz: error: 5 labels for the 4 images of i4.idx");
  /* limits, from the header alone (the data is not there) */
  write_idx("many.gz", 0x08, 3, (uint32_t[]){70000000, 2, 2}, v, 0);
  CHECK_MSG(load(&d, "many.gz", "l4.idx", NAN, 4, 10),
            "many.gz: error: 70000000 images, more than the limit of 67108864 data rows");
  write_idx("big.gz", 0x08, 3, (uint32_t[]){1000000, 28, 28}, v, 0);
  write_idx("lbig.gz", 0x08, 1, (uint32_t[]){1000000}, v, 0);
  CHECK_MSG(load(&d, "big.gz", "lbig.gz", NAN, 784, 10),
            "big.gz: error: 1000000 images of 784 values and their targets (10 each) are more than the limit of "
            "268435456 values");
  write_idx("huge.gz", 0x08, 4, (uint32_t[]){1, 65536, 65536, 2}, v, 0);
  CHECK_MSG(load(&d, "huge.gz", "l4.idx", NAN, 4, 10),
            "huge.gz: error: an image of more than 268435456 values, the limit of a data set");
}

static void test_lengths(void) {
  NncData d;
  write_labels("l4.idx", 4, 10);
  Bytes b = idx_bytes(0x08, 3, (uint32_t[]){4, 2, 2}, (double[16]){0}, 16);
  write_bytes("cut.idx", b.p, b.len - 3);
  CHECK_MSG(load(&d, "cut.idx", "l4.idx", NAN, 4, 10),
            "cut.idx: error: the file is truncated: 4 images of 4 values (unsigned bytes) need 32 bytes, the file has 29");
  write_bytes("cut.gz", b.p, b.len - 3);
  CHECK_MSG(load(&d, "cut.gz", "l4.idx", NAN, 4, 10),
            "cut.gz: error: the file is truncated: it ends inside item 3 of the 4 images its header announces");
  put(&b, "xy", 2);
  write_bytes("long.idx", b.p, b.len);
  CHECK_MSG(load(&d, "long.idx", "l4.idx", NAN, 4, 10), "long.idx: error: 2 bytes follow the 4 images the header announces");
  write_bytes("long.gz", b.p, b.len);
  CHECK_MSG(load(&d, "long.gz", "l4.idx", NAN, 4, 10), "long.gz: error: data follows the 4 images the header announces");
  free(b.p);
  /* a gzip file cut short inside the compressed data */
  write_images("i4.gz", 4, 2, 2);
  FILE *f = fopen(path_of("i4.gz"), "rb");
  unsigned char z[256];
  size_t n = fread(z, 1, sizeof z, f);
  fclose(f);
  write_bytes("zcut.idx", z, n - 12); /* without its CRC and length, and 4 bytes of data */
  rename(path_of("zcut.idx"), path_of("zcut.gz"));
  int rc = load(&d, "zcut.gz", "l4.idx", NAN, 4, 10);
  CHECK(rc == -1 && strstr(msg(), "zcut.gz: error: the file is truncated") == msg());
  /* the same with its check value damaged */
  z[n - 6] ^= 0x55;
  write_bytes("zbad.idx", z, n);
  rename(path_of("zbad.idx"), path_of("zbad.gz"));
  CHECK_MSG(load(&d, "zbad.gz", "l4.idx", NAN, 4, 10), "zbad.gz: error: the gzip data is corrupt (incorrect data check)");
  z[n - 6] ^= 0x55;
  /* all the data, but not the CRC and length after it */
  write_bytes("ztrailer.idx", z, n - 8);
  rename(path_of("ztrailer.idx"), path_of("ztrailer.gz"));
  CHECK_MSG(load(&d, "ztrailer.gz", "l4.idx", NAN, 4, 10),
            "ztrailer.gz: error: the file is truncated: its gzip stream ends before its checksum and length");
  /* bytes after the gzip stream that are not another member (gzip -t
     rejects them; zlib's gzread would skip them) */
  memcpy(z + n, "\0junk", 5);
  write_bytes("zjunk.idx", z, n + 5);
  rename(path_of("zjunk.idx"), path_of("zjunk.gz"));
  CHECK_MSG(load(&d, "zjunk.gz", "l4.idx", NAN, 4, 10),
            "zjunk.gz: error: bytes that are not gzip data follow the gzip stream of the 4 images");
  write_bytes("zjunk1.idx", z, n + 1); /* a single byte */
  rename(path_of("zjunk1.idx"), path_of("zjunk1.gz"));
  CHECK_MSG(load(&d, "zjunk1.gz", "l4.idx", NAN, 4, 10),
            "zjunk1.gz: error: bytes that are not gzip data follow the gzip stream of the 4 images");
  Bytes lb = idx_bytes(0x08, 1, (uint32_t[]){4}, (double[]){1, 2, 3, 4}, 4);
  write_bytes("lcut.idx", lb.p, lb.len - 1);
  CHECK_MSG(load(&d, "i4.gz", "lcut.idx", NAN, 4, 10),
            "lcut.idx: error: the file is truncated: 4 labels of 1 value (unsigned bytes) need 12 bytes, the file has 11");
  write_bytes("lcut.gz", lb.p, lb.len - 1);
  CHECK_MSG(load(&d, "i4.gz", "lcut.gz", NAN, 4, 10),
            "lcut.gz: error: the file is truncated: it ends inside item 3 of the 4 labels its header announces");
  free(lb.p);
}

static void test_values(void) {
  NncData d;
  write_images("i4.idx", 4, 2, 2);
  write_idx("l12.idx", 0x08, 1, (uint32_t[]){4}, (double[]){0, 9, 12, 1}, 4);
  CHECK_MSG(load(&d, "i4.idx", "l12.idx", NAN, 4, 10),
            "l12.idx: error: label 2 is 12, not a class from 0 to 9 (the model's targets hold 10 values, one-hot)");
  CHECK(load(&d, "i4.idx", "l12.idx", NAN, 4, 1) == 0 && d.t[2] == 12); /* one target: any value */
  nnc_data_free(&d);
  write_idx("lneg.idx", 0x09, 1, (uint32_t[]){4}, (double[]){0, -1, 2, 1}, 4);
  CHECK_MSG(load(&d, "i4.idx", "lneg.idx", NAN, 4, 3),
            "lneg.idx: error: label 1 is -1, not a class from 0 to 2 (the model's targets hold 3 values, one-hot)");
  write_idx("lfrac.idx", 0x0D, 1, (uint32_t[]){4}, (double[]){0, 1, 1.5, 1}, 4);
  CHECK_MSG(load(&d, "i4.idx", "lfrac.idx", NAN, 4, 3),
            "lfrac.idx: error: label 2 is 1.5, not a class from 0 to 2 (the model's targets hold 3 values, one-hot)");
  write_idx("lnan.idx", 0x0E, 1, (uint32_t[]){4}, (double[]){0, 1, NAN, 1}, 4);
  CHECK_MSG(load(&d, "i4.idx", "lnan.idx", NAN, 4, 1), "lnan.idx: error: label 2 is not a finite number");
  write_idx("inf.idx", 0x0D, 2, (uint32_t[]){4, 1}, (double[]){0, 1, 2, INFINITY}, 4);
  write_labels("l4.idx", 4, 10);
  CHECK_MSG(load(&d, "inf.idx", "l4.idx", NAN, 1, 10), "inf.idx: error: image 3 holds a value that is not finite");
  write_idx("large.idx", 0x0E, 2, (uint32_t[]){4, 1}, (double[]){0, 1e300, 2, 3}, 4);
  CHECK_MSG(load(&d, "large.idx", "l4.idx", 1e10, 1, 10),
            "large.idx: error: image 1 holds a value that is not finite once scaled");
}

/* ---- the files of tests/idx/cases ---- */

static void write_cases(void) {
  write_images("train-images.gz", 40, 4, 4);
  write_labels("train-labels.gz", 40, 10);
  write_images("train-images.idx", 40, 4, 4);
  write_labels("train-labels.idx", 40, 10);
  write_images("images-3x3.gz", 40, 3, 3);
  write_labels("labels-30.gz", 30, 10);
  write_idx("labels-12.idx", 0x08, 1, (uint32_t[]){40},
            (double[40]){[0] = 3, [1] = 7, [2] = 1, [3] = 12, [4] = 0}, 40);
  Bytes b = idx_bytes(0x08, 3, (uint32_t[]){40, 4, 4}, (double[640]){0}, 640);
  write_bytes("truncated.gz", b.p, b.len - 100);
  write_bytes("truncated.idx", b.p, b.len - 100);
  free(b.p);
  write_bytes("not-idx.gz", "P5\n4 4\n255\n", 11);
  write_idx("labels-2d.gz", 0x08, 2, (uint32_t[]){40, 1}, (double[40]){0}, 40);
}

/* ---- a subset of a real data set ---- */

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The first n items of an IDX file (any rank) into out. */
static int copy_items(uint32_t n, const char *path, const char *out) {
  gzFile in = gzopen(path, "rb");
  unsigned char head[4 + 4 * 4];
  if (!in || gzread(in, head, 4) != 4 || head[3] < 1 || head[3] > 4 ||
      gzread(in, head + 4, 4u * head[3]) != 4 * head[3]) {
    fprintf(stderr, "test_idx: cannot read an IDX header from %s\n", path);
    return 2;
  }
  size_t hlen = 4 + 4 * (size_t)head[3], per = (size_t)elem_size(head[2]);
  for (int k = 1; k < head[3]; k++) per *= be32(head + 4 + 4 * k);
  if (be32(head + 4) < n) {
    fprintf(stderr, "test_idx: %s holds fewer than %u items\n", path, n);
    return 2;
  }
  for (int k = 0; k < 4; k++) head[4 + k] = (unsigned char)(n >> (24 - 8 * k));
  Bytes b = {0};
  put(&b, head, hlen);
  size_t bytes = n * per;
  unsigned char *data = malloc(bytes);
  if (gzread(in, data, (unsigned)bytes) != (int)bytes) {
    fprintf(stderr, "test_idx: cannot read %s\n", path);
    return 2;
  }
  gzclose(in);
  put(&b, data, bytes);
  write_file(out, b.p, b.len);
  free(data);
  free(b.p);
  return 0;
}

static int subset(const char *count, const char *images, const char *labels, const char *out_images,
                  const char *out_labels) {
  uint32_t n = (uint32_t)strtoul(count, NULL, 10);
  int rc = copy_items(n, images, out_images);
  return rc ? rc : copy_items(n, labels, out_labels);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "write") == 0) {
    dir = argv[2];
    write_cases();
    return 0;
  }
  if (argc == 7 && strcmp(argv[1], "subset") == 0)
    return subset(argv[2], argv[3], argv[4], argv[5], argv[6]);
  if (argc != 1) {
    fprintf(stderr, "usage: test_idx [write DIR | subset N IMAGES LABELS OUT_IMAGES OUT_LABELS]\n");
    return 2;
  }
  char tmp[] = "/tmp/nnc_test_idx.XXXXXX";
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    return 2;
  }
  dir = tmp;
  run_group("read raw and gzip", test_read);
  run_group("element types", test_types);
  run_group("shapes", test_shapes);
  run_group("files", test_files);
  run_group("dimensions", test_dimensions);
  run_group("lengths", test_lengths);
  run_group("streams", test_streams);
  run_group("limits", test_limits);
  run_group("values", test_values);
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0) fprintf(stderr, "test_idx: could not remove %s\n", tmp);
  return check_report();
}
