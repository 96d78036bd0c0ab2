/*
 * idx.c - image data sets in the IDX format of MNIST and Fashion-MNIST
 * (spec section 6), raw or gzip-compressed.
 *
 * An IDX file is a 4-byte magic number (two zero bytes, the element type,
 * the number of dimensions), one big-endian 32-bit size per dimension, then
 * the elements, big-endian, row-major. The first dimension counts the items:
 * the images of an images file, the labels of a labels file (one dimension).
 *
 * Both files are read as streams, side by side, one item at a time: the
 * headers are checked against the model and the limits (nnc_data_limits)
 * before any data is read, so neither a lying header nor an endless source
 * (a pipe, /dev/zero) makes nnc read or allocate more than the data set the
 * header announces, and that is within the limits. A file that begins
 * with gzip's magic bytes is inflated (zlib, members one after another as
 * gzip reads them), any other is read as it is; the stream must end where
 * the header says, so a gzip stream cut short (its checksum missing) or
 * followed by bytes that are not gzip data is an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime.h"
#include "util.h"

enum { IDX_MAX_RANK = 4 }; /* an images file: count, then up to [C, H, W] */

/* The element types of the format, by their code in the magic number. */
typedef enum IdxType {
  IDX_U8 = 0x08, IDX_I8 = 0x09, IDX_I16 = 0x0B, IDX_I32 = 0x0C, IDX_F32 = 0x0D, IDX_F64 = 0x0E
} IdxType;

typedef struct IdxFile {
  const char *path;
  const NncDataLimits *lim;
  int fd;            /* the open file, or -1 */
  bool gzip;         /* its bytes are gzip members, inflated through zs */
  z_stream zs;       /* next_in/avail_in: read from fd, not yet used */
  unsigned char *in; /* the read buffer */
  bool in_eof;       /* fd has no more bytes */
  /* gzip: how the stream ended, when it has: its last member whole (and
     nothing after it), the file within a member, or bytes that are not a
     member after the last */
  enum { GZ_GOING, GZ_ENDED, GZ_CUT, GZ_TRAILING } gz_end;
  int type;   /* an IdxType code */
  int size;   /* bytes per element */
  int rank;
  uint32_t dim[IDX_MAX_RANK];
  size_t per_item;     /* elements per item: the product of dim[1..] */
  unsigned char *item; /* one item's bytes */
  char *err;
  size_t errlen;
} IdxFile;

__attribute__((format(printf, 2, 3))) static int idx_fail(IdxFile *f, const char *fmt, ...) {
  int n = snprintf(f->err, f->errlen, "%s: error: ", f->path);
  if (n >= 0 && (size_t)n < f->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->err + n, f->errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static int type_size(int type) {
  switch (type) {
  case IDX_U8: case IDX_I8: return 1;
  case IDX_I16: return 2;
  case IDX_I32: case IDX_F32: return 4;
  case IDX_F64: return 8;
  }
  return 0;
}

static const char *type_name(int type) {
  switch (type) {
  case IDX_U8: return "unsigned bytes";
  case IDX_I8: return "signed bytes";
  case IDX_I16: return "16-bit integers";
  case IDX_I32: return "32-bit integers";
  case IDX_F32: return "32-bit floats";
  case IDX_F64: return "64-bit floats";
  }
  return "?";
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Element k of an item's big-endian bytes as a double. */
static double element(const IdxFile *f, size_t k) {
  const unsigned char *p = f->item + k * (size_t)f->size;
  switch (f->type) {
  case IDX_U8: return p[0];
  case IDX_I8: return (int8_t)p[0];
  case IDX_I16: return (int16_t)(uint16_t)(p[0] << 8 | p[1]);
  case IDX_I32: return (int32_t)be32(p);
  case IDX_F32: {
    uint32_t u = be32(p);
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
  }
  case IDX_F64: {
    uint64_t u = (uint64_t)be32(p) << 32 | be32(p + 4);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
  }
  }
  return 0;
}

enum { IDX_READ_BUF = 1 << 16 };

/* More of the file into the read buffer when it is used up; -1 on a read
 * error (the message written). */
static int fill(IdxFile *f) {
  if (f->zs.avail_in > 0 || f->in_eof)
    return 0;
  ssize_t k;
  do
    k = read(f->fd, f->in, IDX_READ_BUF);
  while (k < 0 && errno == EINTR);
  if (k < 0)
    return idx_fail(f, "read error: %s", strerror(errno));
  f->zs.next_in = f->in;
  f->zs.avail_in = (uInt)k;
  f->in_eof = k == 0;
  return 0;
}

/* Does a gzip member begin at the read position? (Its magic bytes, 1f 8b;
 * the buffer is topped up to hold both.) */
static int member_follows(IdxFile *f, bool *yes) {
  *yes = false;
  if (fill(f) < 0)
    return -1;
  if (f->zs.avail_in == 1 && !f->in_eof) { /* one byte left in the buffer: the next at its start */
    unsigned char first = f->zs.next_in[0];
    f->zs.avail_in = 0;
    if (fill(f) < 0)
      return -1;
    memmove(f->in + 1, f->zs.next_in, f->zs.avail_in);
    f->in[0] = first;
    f->zs.next_in = f->in;
    f->zs.avail_in += 1;
  }
  *yes = f->zs.avail_in >= 2 && f->zs.next_in[0] == 0x1f && f->zs.next_in[1] == 0x8b;
  return 0;
}

/* Open the file (a regular file, a pipe or a device: the header bounds
 * what is read from any of them) and see whether it is gzip data. */
static int idx_open(IdxFile *f) {
  int fd = open(f->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return idx_fail(f, "cannot open: %s", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close(fd);
    return idx_fail(f, "is a directory, not an IDX file");
  }
  f->fd = fd;
  f->in = malloc(IDX_READ_BUF + 1); /* + 1: member_follows may put a byte before a read */
  if (!f->in)
    return idx_fail(f, "out of memory opening the file");
  bool gzip;
  if (member_follows(f, &gzip) < 0)
    return -1;
  if (gzip) {
    if (inflateInit2(&f->zs, 16 + MAX_WBITS) != Z_OK) /* 16: a gzip wrapper, checked */
      return idx_fail(f, "out of memory opening the file");
    f->gzip = true;
  }
  return 0;
}

static void idx_close(IdxFile *f) {
  if (f->gzip)
    inflateEnd(&f->zs);
  if (f->fd >= 0)
    close(f->fd);
  free(f->in);
  free(f->item);
  f->fd = -1;
  f->gzip = false;
  f->in = NULL;
  f->item = NULL;
}

/* Up to n bytes of a raw file into buf; *got of them. */
static int read_raw(IdxFile *f, unsigned char *buf, size_t n, size_t *got) {
  while (*got < n) {
    if (fill(f) < 0)
      return -1;
    if (f->zs.avail_in == 0)
      break; /* the end of the file */
    size_t k = n - *got < f->zs.avail_in ? n - *got : f->zs.avail_in;
    memcpy(buf + *got, f->zs.next_in, k);
    f->zs.next_in += k;
    f->zs.avail_in -= (uInt)k;
    *got += k;
  }
  return 0;
}

/* Up to n bytes of inflated gzip data into buf; *got of them. At the end
 * of a member, another may follow; anything else after it is GZ_TRAILING. */
static int read_gzip(IdxFile *f, unsigned char *buf, size_t n, size_t *got) {
  while (*got < n && f->gz_end == GZ_GOING) {
    if (fill(f) < 0)
      return -1;
    if (f->zs.avail_in == 0) {
      f->gz_end = GZ_CUT;
      break;
    }
    size_t want = n - *got > (1u << 30) ? 1u << 30 : n - *got;
    f->zs.next_out = buf + *got;
    f->zs.avail_out = (uInt)want;
    int rc = inflate(&f->zs, Z_NO_FLUSH);
    *got += want - f->zs.avail_out;
    if (rc == Z_STREAM_END) {
      bool another;
      if (member_follows(f, &another) < 0)
        return -1;
      if (another)
        inflateReset(&f->zs);
      else
        f->gz_end = f->zs.avail_in > 0 ? GZ_TRAILING : GZ_ENDED;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return idx_fail(f, "the gzip data is corrupt (%s)",
                      f->zs.msg ? f->zs.msg : rc == Z_MEM_ERROR ? "out of memory" : "a bad stream");
    }
  }
  return 0;
}

/* Read n bytes; 1 when the stream ended first, -1 on a read or gzip error
 * (the message written), 0 when all were read. */
static int idx_read(IdxFile *f, void *buf, size_t n) {
  size_t got = 0;
  if ((f->gzip ? read_gzip(f, buf, n, &got) : read_raw(f, buf, n, &got)) < 0)
    return -1;
  return got < n;
}

/* The magic number and the sizes. what is "images" or "labels". */
static int read_header(IdxFile *f, const char *what) {
  unsigned char magic[4];
  int rc = idx_read(f, magic, 4);
  if (rc < 0)
    return -1;
  if (rc > 0)
    return idx_fail(f, "the file ends inside the IDX header (4 bytes of magic number, then the sizes)");
  if (magic[0] != 0 || magic[1] != 0 || type_size(magic[2]) == 0)
    return idx_fail(f, "bad magic number 0x%02x%02x%02x%02x: not an IDX file (it starts with two zero "
                    "bytes and an element type from 0x08 to 0x0e)",
                    magic[0], magic[1], magic[2], magic[3]);
  f->type = magic[2];
  f->size = type_size(f->type);
  f->rank = magic[3];
  bool labels = strcmp(what, "labels") == 0;
  if (labels && f->rank != 1)
    return idx_fail(f, "a labels file has 1 dimension (one label per image), this one has %d", f->rank);
  if (!labels && (f->rank < 2 || f->rank > IDX_MAX_RANK))
    return idx_fail(f, "an images file has 2 to %d dimensions (the count, then each image's), this one has %d",
                    IDX_MAX_RANK, f->rank);
  unsigned char sizes[4 * IDX_MAX_RANK];
  rc = idx_read(f, sizes, 4 * (size_t)f->rank);
  if (rc < 0)
    return -1;
  if (rc > 0)
    return idx_fail(f, "the file ends inside the IDX header (%d sizes of 4 bytes)", f->rank);
  f->per_item = 1;
  for (int k = 0; k < f->rank; k++) {
    f->dim[k] = be32(sizes + 4 * k);
    if (f->dim[k] == 0)
      return idx_fail(f, "dimension %d has size 0: the file holds no %s", k, what);
    if (k > 0)
      f->per_item *= f->dim[k]; /* checked after each factor: no overflow */
    if (k > 0 && f->per_item > f->lim->values)
      return idx_fail(f, "an image of more than %llu values, the limit of a data set",
                      (unsigned long long)f->lim->values);
  }
  if (f->dim[0] > f->lim->rows)
    return idx_fail(f, "%u %s, more than the limit of %zu data rows", f->dim[0], what, f->lim->rows);
  return 0;
}

/* An image's size: "28x28 (784 values)", or "784 values" in a file of
 * flat images. */
static void image_shape(const IdxFile *f, char *out, size_t n) {
  size_t k = 0;
  for (int i = 1; f->rank > 2 && i < f->rank && k < n; i++)
    k += (size_t)snprintf(out + k, n - k, "%s%u", i > 1 ? "x" : "", f->dim[i]);
  if (k < n)
    snprintf(out + k, n - k, f->rank > 2 ? " (%zu values)" : "%zu values", f->per_item);
}

/* A raw file's size against what its header announces, before reading: a
 * truncated download is reported at once, not after most of it is read. */
static int check_raw_size(IdxFile *f, const char *what) {
  struct stat st;
  if (f->gzip || fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode))
    return 0;
  uint64_t need = 4 + 4 * (uint64_t)f->rank + (uint64_t)f->dim[0] * f->per_item * (uint64_t)f->size;
  if ((uint64_t)st.st_size < need)
    return idx_fail(f, "the file is truncated: %u %s of %zu value%s (%s) need %llu bytes, the file has %llu",
                    f->dim[0], what, f->per_item, f->per_item == 1 ? "" : "s", type_name(f->type),
                    (unsigned long long)need, (unsigned long long)st.st_size);
  if ((uint64_t)st.st_size > need)
    return idx_fail(f, "%llu bytes follow the %u %s the header announces", (unsigned long long)st.st_size - need,
                    f->dim[0], what);
  return 0;
}

static int open_checked(IdxFile *f, const char *what) {
  if (idx_open(f) < 0 || read_header(f, what) < 0 || check_raw_size(f, what) < 0)
    return -1;
  f->item = malloc(f->per_item * (size_t)f->size);
  if (!f->item)
    return idx_fail(f, "out of memory for one item of %zu values", f->per_item);
  return 0;
}

/* Read item i (of n) into f->item; the error names it. */
static int read_item(IdxFile *f, size_t i, const char *what) {
  int rc = idx_read(f, f->item, f->per_item * (size_t)f->size);
  if (rc < 0)
    return -1;
  if (rc > 0)
    return idx_fail(f, "the file is truncated: it ends inside item %zu of the %u %s its header announces", i,
                    f->dim[0], what);
  return 0;
}

/* After the last item, the stream must end (a gzip file's length is not
 * known in advance; a raw one was checked by check_raw_size). */
static int check_end(IdxFile *f, const char *what) {
  unsigned char extra;
  int rc = idx_read(f, &extra, 1);
  if (rc < 0)
    return -1;
  if (rc == 0)
    return idx_fail(f, "data follows the %u %s the header announces", f->dim[0], what);
  if (f->gz_end == GZ_CUT)
    return idx_fail(f, "the file is truncated: its gzip stream ends before its checksum and length");
  if (f->gz_end == GZ_TRAILING)
    return idx_fail(f, "bytes that are not gzip data follow the gzip stream of the %u %s", f->dim[0], what);
  return 0;
}

typedef struct Grow {
  size_t cap; /* rows allocated */
} Grow;

/* Room for row `rows` in d: doubling, up to the announced count (a
 * header that announces more than the file holds costs no more memory than
 * the file's rows, twice over at most). The new rows' pages are set up at
 * once (nnc_prefault): they are all written next, unless the file ends
 * early, an error; page by page, Fashion-MNIST's 376 MB of rows cost most
 * of the load. */
static int grow(NncData *d, Grow *g, size_t count) {
  if (d->rows < g->cap)
    return 0;
  size_t cap = g->cap ? 2 * g->cap : 1024;
  if (cap > count)
    cap = count;
  size_t xrow = (size_t)d->in_cols * sizeof *d->x, trow = (size_t)d->tgt_cols * sizeof *d->t;
  double *x = realloc(d->x, cap * xrow);
  if (!x)
    return -1;
  d->x = x;
  nnc_prefault(x, cap * xrow); /* the whole block: the pages present already cost little */
  if (d->tgt_cols > 0) {
    double *t = realloc(d->t, cap * trow);
    if (!t)
      return -1;
    d->t = t;
    nnc_prefault(t, cap * trow);
  }
  g->cap = cap;
  return 0;
}

/* Item i's label into t: its value, or one-hot over tgt_cols classes. */
static int store_label(IdxFile *f, size_t i, int tgt_cols, double *t) {
  double v = element(f, 0);
  if (!isfinite(v))
    return idx_fail(f, "label %zu is not a finite number", i);
  if (tgt_cols == 1) {
    t[0] = v;
    return 0;
  }
  if (v != floor(v) || v < 0 || v >= tgt_cols)
    return idx_fail(f, "label %zu is %.17g, not a class from 0 to %d (the model's targets hold %d values, one-hot)",
                    i, v, tgt_cols - 1, tgt_cols);
  for (int k = 0; k < tgt_cols; k++)
    t[k] = k == (int)v;
  return 0;
}

static int store_image(IdxFile *f, size_t i, double scale, double *x) {
  for (size_t k = 0; k < f->per_item; k++) {
    x[k] = element(f, k) * scale;
    if (!isfinite(x[k]))
      return idx_fail(f, "image %zu holds a value that is not finite%s", i,
                      isfinite(element(f, k)) ? " once scaled" : "");
  }
  return 0;
}

static int read_items(IdxFile *im, IdxFile *lb, NncData *d, double scale) {
  size_t n = im->dim[0];
  Grow g = {0};
  for (size_t i = 0; i < n; i++) {
    if (grow(d, &g, n) < 0)
      return idx_fail(im, "out of memory after %zu images", d->rows);
    if (read_item(im, i, "images") < 0 || read_item(lb, i, "labels") < 0)
      return -1;
    if (store_image(im, i, scale, d->x + d->rows * (size_t)d->in_cols) < 0)
      return -1;
    if (d->tgt_cols > 0 && store_label(lb, i, d->tgt_cols, d->t + d->rows * (size_t)d->tgt_cols) < 0)
      return -1;
    d->rows++;
  }
  if (check_end(im, "images") < 0 || check_end(lb, "labels") < 0)
    return -1;
  return 0;
}

/* The headers against the model and each other. */
static int check_fit(IdxFile *im, IdxFile *lb, int in_cols, int tgt_cols) {
  if (im->per_item != (size_t)in_cols) {
    char shape[96];
    image_shape(im, shape, sizeof shape);
    return idx_fail(im, "each image is %s; the model's inputs hold %d value%s", shape, in_cols,
                    in_cols == 1 ? "" : "s");
  }
  uint64_t values = (uint64_t)im->dim[0] * ((uint64_t)in_cols + (uint64_t)tgt_cols);
  if (values > im->lim->values)
    return idx_fail(im, "%u images of %d values and their targets (%d each) are more than the limit of %llu values",
                    im->dim[0], in_cols, tgt_cols, (unsigned long long)im->lim->values);
  if (lb->dim[0] != im->dim[0]) {
    const char *slash = strrchr(im->path, '/');
    return idx_fail(lb, "%u labels for the %u images of %s", lb->dim[0], im->dim[0], slash ? slash + 1 : im->path);
  }
  return 0;
}

int nnc_data_idx_within(NncData *d, const char *images, const char *labels, double scale, int in_cols,
                        int tgt_cols, const NncDataLimits *limits, char *err, size_t errlen) {
  memset(d, 0, sizeof *d);
  IdxFile im = {.path = images, .lim = limits, .fd = -1, .err = err, .errlen = errlen};
  IdxFile lb = {.path = labels, .lim = limits, .fd = -1, .err = err, .errlen = errlen};
  if (in_cols < 1 || tgt_cols < 1) {
    snprintf(err, errlen, "%s: error: invalid column counts (%d inputs, %d targets)", images, in_cols, tgt_cols);
    return -1;
  }
  d->in_cols = in_cols;
  d->tgt_cols = tgt_cols;
  int rc = -1;
  if (open_checked(&im, "images") == 0 && open_checked(&lb, "labels") == 0 &&
      check_fit(&im, &lb, in_cols, tgt_cols) == 0) {
    if (isnan(scale))
      scale = im.type == IDX_U8 ? 1.0 / 255 : 1.0;
    rc = read_items(&im, &lb, d, scale);
  }
  idx_close(&im);
  idx_close(&lb);
  if (rc < 0)
    nnc_data_free(d);
  return rc;
}

int nnc_data_idx(NncData *d, const char *images, const char *labels, double scale, int in_cols, int tgt_cols,
                 char *err, size_t errlen) {
  return nnc_data_idx_within(d, images, labels, scale, in_cols, tgt_cols, &nnc_data_limits, err, errlen);
}
