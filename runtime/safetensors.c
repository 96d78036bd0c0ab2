/*
 * safetensors.c - parameter checkpoints in the safetensors format (spec
 * section 4), the format of Hugging Face's safetensors library:
 *
 *   bytes 0..7      N, the length of the header, u64 little-endian
 *   bytes 8..8+N    the header, UTF-8 JSON, padded with spaces:
 *                     {"linear1.W": {"dtype": "F32", "shape": [4,2],
 *                                    "data_offsets": [0,32]}, ...,
 *                      "__metadata__": {"epoch": "400"}}
 *   the rest        the data blob: each tensor row-major, little-endian, at
 *                   [begin, end) counted from the start of the blob
 *
 * Saving goes through util's output file (a temporary file renamed over the
 * checkpoint, fsynced), so a crash never leaves a half-written checkpoint. Loading trusts nothing: the whole header is
 * checked before a single value is copied, and then the file must match the
 * model exactly (names, dtypes, shapes), as PyTorch's strict load does.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "runtime.h"
#include "util.h"

/* Largest header accepted, the limit of the reference implementation. */
#define HEADER_MAX ((uint64_t)100 << 20)

/* JSON numbers are doubles; integers above 2^53 are not exact. */
#define JSON_INT_MAX 9007199254740992.0

#define META_KEY "__metadata__"

/* Room for "[d,d,d,d]" with four 20-digit dims. */
#define SHAPE_BUF 96

typedef struct St {
  const char *path;
  char *err;
  size_t errlen;
} St;

__attribute__((format(printf, 2, 3))) static int st_fail(St *st,
                                                         const char *fmt, ...) {
  int n = snprintf(st->err, st->errlen, "%s: error: ", st->path);
  if (n >= 0 && (size_t)n < st->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err + n, st->errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static const char *st_dtype_name(NncStDtype dtype) {
  return dtype == NNC_ST_F32 ? "F32" : "F64";
}

static uint64_t dtype_size(NncStDtype dtype) {
  return dtype == NNC_ST_F32 ? 4 : 8;
}

/* "[4,2]", and "[]" for a scalar: the form of the header and the messages. */
static void format_shape(char *buf, int rank, const int64_t *dims) {
  int n = sprintf(buf, "[");
  for (int i = 0; i < rank; i++)
    n += sprintf(buf + n, "%s%" PRId64, i ? "," : "", dims[i]);
  sprintf(buf + n, "]");
}

/* a * b, or UINT64_MAX when that overflows. */
static uint64_t mul_sat(uint64_t a, uint64_t b) {
  if (a != 0 && b > UINT64_MAX / a)
    return UINT64_MAX;
  return a * b;
}

/* Bytes of a tensor, or UINT64_MAX when that does not fit in 64 bits. */
static uint64_t tensor_bytes(NncStDtype dtype, int rank, const int64_t *dims) {
  uint64_t n = dtype_size(dtype);
  for (int i = 0; i < rank; i++)
    if (dims[i] == 0)
      return 0;
  for (int i = 0; i < rank; i++)
    n = mul_sat(n, (uint64_t)dims[i]);
  return n;
}

static int host_is_little_endian(void) {
  uint16_t one = 1;
  unsigned char first;
  memcpy(&first, &one, 1);
  return first == 1;
}

/* Converts n elements of size bytes between host order and little-endian,
 * in place (the same operation both ways; nothing to do on most hosts). */
static void swap_to_le(unsigned char *p, size_t n, size_t size) {
  if (host_is_little_endian())
    return;
  for (size_t i = 0; i < n; i++, p += size)
    for (size_t k = 0; k < size / 2; k++) {
      unsigned char b = p[k];
      p[k] = p[size - 1 - k];
      p[size - 1 - k] = b;
    }
}

static void put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

static int by_string(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first name that appears twice in names[n] (sorted in place), or NULL. */
static const char *find_duplicate(const char **names, size_t n) {
  qsort(names, n, sizeof *names, by_string);
  for (size_t i = 1; i < n; i++)
    if (strcmp(names[i - 1], names[i]) == 0)
      return names[i];
  return NULL;
}

/* ==== saving ==== */

static int check_specs(St *st, const NncTensorSpec *specs, int n,
                       const char *const *meta, int nmeta) {
  if (n < 0 || nmeta < 0)
    return st_fail(st, "negative tensor or metadata count");
  for (int i = 0; i < n; i++) {
    const NncTensorSpec *s = &specs[i];
    if (!s->name || !*s->name || strcmp(s->name, META_KEY) == 0)
      return st_fail(st, "tensor %d has an invalid name", i);
    if (s->rank < 0 || s->rank > 4)
      return st_fail(st, "tensor %s has rank %d, at most 4 is supported",
                     s->name, s->rank);
    for (int k = 0; k < s->rank; k++)
      if (s->dims[k] < 0)
        return st_fail(st, "tensor %s has a negative dimension", s->name);
    if (tensor_bytes(s->dtype, s->rank, s->dims) == UINT64_MAX)
      return st_fail(st, "tensor %s is too large", s->name);
  }
  for (int k = 0; k < 2 * nmeta; k++)
    if (!meta[k])
      return st_fail(st, "metadata entry %d is NULL", k / 2);

  const char **names = malloc(((size_t)n + (size_t)nmeta + 1) * sizeof *names);
  if (!names)
    return st_fail(st, "out of memory");
  for (int i = 0; i < n; i++)
    names[i] = specs[i].name;
  const char *dup = find_duplicate(names, (size_t)n);
  if (dup) {
    st_fail(st, "tensor %s appears twice", dup);
    free(names);
    return -1;
  }
  for (int k = 0; k < nmeta; k++)
    names[k] = meta[2 * k];
  dup = find_duplicate(names, (size_t)nmeta);
  if (dup)
    st_fail(st, "metadata key %s appears twice", dup);
  free(names);
  return dup ? -1 : 0;
}

/* The JSON text of the header; numbers go in as raw text so that offsets
 * print as exact integers whatever their size. */
static char *header_json(const NncTensorSpec *specs, int n,
                         const char *const *meta, int nmeta) {
  cJSON *root = cJSON_CreateObject();
  int ok = root != NULL;
  uint64_t offset = 0;
  char text[SHAPE_BUF];
  for (int i = 0; ok && i < n; i++) {
    const NncTensorSpec *s = &specs[i];
    uint64_t bytes = tensor_bytes(s->dtype, s->rank, s->dims);
    cJSON *entry = cJSON_AddObjectToObject(root, s->name);
    ok = entry && cJSON_AddStringToObject(entry, "dtype", st_dtype_name(s->dtype));
    format_shape(text, s->rank, s->dims);
    ok = ok && cJSON_AddRawToObject(entry, "shape", text);
    snprintf(text, sizeof text, "[%" PRIu64 ",%" PRIu64 "]", offset,
             offset + bytes);
    ok = ok && cJSON_AddRawToObject(entry, "data_offsets", text);
    offset += bytes;
  }
  if (ok && nmeta > 0) {
    cJSON *m = cJSON_AddObjectToObject(root, META_KEY);
    ok = m != NULL;
    for (int k = 0; ok && k < nmeta; k++)
      ok = cJSON_AddStringToObject(m, meta[2 * k], meta[2 * k + 1]) != NULL;
  }
  char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  return json;
}

/* Writes bytes bytes of size-byte elements from src in little-endian
 * order, a chunk at a time. */
static int write_le(FILE *f, const void *src, uint64_t bytes, size_t size) {
  unsigned char chunk[1 << 14];
  const unsigned char *p = src;
  while (bytes > 0) {
    size_t len = bytes < sizeof chunk ? (size_t)bytes : sizeof chunk;
    memcpy(chunk, p, len);
    swap_to_le(chunk, len / size, size);
    if (fwrite(chunk, 1, len, f) != len)
      return -1;
    p += len;
    bytes -= len;
  }
  return 0;
}

static int write_file(FILE *f, const char *json, const NncTensorSpec *specs,
                      const void *const *data, int n) {
  size_t len = strlen(json);
  size_t padded = (len + 7) / 8 * 8; /* keeps the blob 8-byte aligned */
  unsigned char size_field[8];
  put_le64(size_field, padded);
  if (fwrite(size_field, 1, 8, f) != 8 || fwrite(json, 1, len, f) != len)
    return -1;
  for (size_t i = len; i < padded; i++)
    if (fputc(' ', f) == EOF)
      return -1;
  for (int i = 0; i < n; i++) {
    const NncTensorSpec *s = &specs[i];
    uint64_t bytes = tensor_bytes(s->dtype, s->rank, s->dims);
    if (write_le(f, data[i], bytes, (size_t)dtype_size(s->dtype)) < 0)
      return -1;
  }
  return 0;
}

int nnc_st_save(const char *path, const NncTensorSpec *specs,
                const void *const *data, int n, const char *const *meta,
                int nmeta, char *err, size_t errlen) {
  St st = {path, err, errlen};
  if (check_specs(&st, specs, n, meta, nmeta) < 0)
    return -1;
  char *json = header_json(specs, n, meta, nmeta);
  if (!json)
    return st_fail(&st, "out of memory");
  /* util's output file: complete or not at all, durable (fsync) */
  NncOut out;
  int e = nnc_out_open(&out, path, NNC_WRITE_SYNC);
  if (e == 0) {
    if (write_file(out.f, json, specs, data, n) < 0)
      out.err = errno ? errno : EIO;
    e = nnc_out_close(&out);
  }
  cJSON_free(json);
  return e ? st_fail(&st, "cannot write: %s", strerror(e)) : 0;
}

/* ==== loading ==== */

/* One tensor as the header describes it, checked for consistency. */
typedef struct Entry {
  const char *name; /* points into the parsed JSON */
  NncStDtype dtype;
  int rank;
  int64_t dims[4];
  uint64_t begin, end; /* byte range in the blob */
} Entry;

typedef struct Header {
  cJSON *root;
  Entry *entries; /* in file order */
  size_t n;
  const cJSON *meta; /* the __metadata__ object, or NULL */
  uint64_t blob_at;  /* file offset of the blob */
} Header;

static void header_free(Header *h) {
  cJSON_Delete(h->root);
  free(h->entries);
  memset(h, 0, sizeof *h);
}

static int read_at(int fd, void *buf, uint64_t len, uint64_t offset) {
  unsigned char *p = buf;
  while (len > 0) {
    size_t want = len < ((size_t)1 << 30) ? (size_t)len : (size_t)1 << 30;
    ssize_t got = pread(fd, p, want, (off_t)offset);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      if (got == 0)
        errno = EIO; /* the file shrank under us */
      return -1;
    }
    p += got;
    len -= (uint64_t)got;
    offset += (uint64_t)got;
  }
  return 0;
}

/* A JSON number that is an exact non-negative integer. */
static int json_uint(const cJSON *item, uint64_t *v) {
  if (!cJSON_IsNumber(item))
    return -1;
  double d = item->valuedouble;
  if (!(d >= 0 && d <= JSON_INT_MAX) || d != floor(d))
    return -1;
  *v = (uint64_t)d;
  return 0;
}

static int parse_dtype(St *st, const char *name, const cJSON *item,
                       NncStDtype *dtype) {
  if (!cJSON_IsString(item))
    return st_fail(st, "tensor %s: dtype is missing or not a string", name);
  if (strcmp(item->valuestring, "F32") == 0)
    *dtype = NNC_ST_F32;
  else if (strcmp(item->valuestring, "F64") == 0)
    *dtype = NNC_ST_F64;
  else
    return st_fail(st,
                   "tensor %s has unsupported dtype \"%.20s\" (nnc reads "
                   "F32 and F64)",
                   name, item->valuestring);
  return 0;
}

static int parse_shape(St *st, const char *name, const cJSON *item, Entry *e) {
  int rank = cJSON_IsArray(item) ? cJSON_GetArraySize(item) : -1;
  if (rank < 0 || rank > 4)
    return st_fail(st,
                   "tensor %s: shape must be an array of at most 4 "
                   "dimensions",
                   name);
  e->rank = 0;
  for (const cJSON *d = item->child; d; d = d->next) {
    uint64_t v;
    if (json_uint(d, &v) < 0)
      return st_fail(st,
                     "tensor %s: shape holds something other than a "
                     "non-negative integer",
                     name);
    e->dims[e->rank++] = (int64_t)v;
  }
  return 0;
}

static int parse_offsets(St *st, const char *name, const cJSON *item,
                         uint64_t blob_size, Entry *e) {
  const cJSON *b = cJSON_IsArray(item) ? item->child : NULL;
  const cJSON *end = b ? b->next : NULL;
  if (!end || end->next || json_uint(b, &e->begin) < 0 ||
      json_uint(end, &e->end) < 0)
    return st_fail(st,
                   "tensor %s: data_offsets must be [begin, end], two "
                   "whole numbers from 0 to 2^53",
                   name);
  if (e->begin > e->end)
    return st_fail(st, "tensor %s: data_offsets [%" PRIu64 ",%" PRIu64 "] begin after end", name, e->begin,
                   e->end);
  if (e->end > blob_size)
    return st_fail(st,
                   "tensor %s: data_offsets [%" PRIu64 ",%" PRIu64 "] "
                   "are outside the data (%" PRIu64 " bytes)",
                   name, e->begin, e->end, blob_size);
  uint64_t want = tensor_bytes(e->dtype, e->rank, e->dims);
  if (e->end - e->begin != want) {
    char shape[SHAPE_BUF];
    format_shape(shape, e->rank, e->dims);
    if (want == UINT64_MAX)
      return st_fail(st, "tensor %s: shape %s is too large", name, shape);
    return st_fail(st,
                   "tensor %s: data_offsets [%" PRIu64 ",%" PRIu64 "] "
                   "hold %" PRIu64 " bytes, but %s %s needs %" PRIu64,
                   name, e->begin, e->end, e->end - e->begin,
                   st_dtype_name(e->dtype), shape, want);
  }
  return 0;
}

static int parse_entry(St *st, const cJSON *item, uint64_t blob_size,
                       Entry *e) {
  const char *name = item->string;
  e->name = name;
  if (!cJSON_IsObject(item))
    return st_fail(st, "tensor %s: its entry is not a JSON object", name);
  if (parse_dtype(st, name, cJSON_GetObjectItemCaseSensitive(item, "dtype"),
                  &e->dtype) < 0 ||
      parse_shape(st, name, cJSON_GetObjectItemCaseSensitive(item, "shape"),
                  e) < 0)
    return -1;
  return parse_offsets(st, name,
                       cJSON_GetObjectItemCaseSensitive(item, "data_offsets"),
                       blob_size, e);
}

static int check_metadata(St *st, const cJSON *meta) {
  if (!cJSON_IsObject(meta))
    return st_fail(st, META_KEY " is not a JSON object");
  for (const cJSON *kv = meta->child; kv; kv = kv->next)
    if (!cJSON_IsString(kv))
      return st_fail(st, META_KEY " value for \"%.40s\" is not a string",
                     kv->string);
  return 0;
}

static int by_begin(const void *a, const void *b) {
  const Entry *x = *(const Entry *const *)a, *y = *(const Entry *const *)b;
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  return (x->end > y->end) - (x->end < y->end);
}

static int by_name(const void *a, const void *b) {
  return strcmp((*(const Entry *const *)a)->name,
                (*(const Entry *const *)b)->name);
}

/* Names must be unique and byte ranges disjoint (empty ranges hold nothing
 * and overlap nothing). Both are found by sorting, so a header with a
 * million entries costs no more than parsing it. */
static int check_entries(St *st, Header *h) {
  size_t n = h->n;
  Entry **order = malloc((n + 1) * sizeof *order);
  if (!order)
    return st_fail(st, "out of memory");
  for (size_t i = 0; i < n; i++)
    order[i] = &h->entries[i];
  int rc = 0;
  qsort(order, n, sizeof *order, by_name);
  for (size_t i = 1; i < n && rc == 0; i++)
    if (strcmp(order[i - 1]->name, order[i]->name) == 0)
      rc = st_fail(st, "tensor %s appears twice in the header", order[i]->name);
  qsort(order, n, sizeof *order, by_begin);
  const Entry *last = NULL;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (order[i]->begin == order[i]->end)
      continue;
    if (last && order[i]->begin < last->end)
      rc = st_fail(st, "tensors %s and %s have overlapping data_offsets",
                   last->name, order[i]->name);
    last = order[i];
  }
  free(order);
  return rc;
}

static int parse_header(St *st, Header *h, const char *text,
                        uint64_t blob_size) {
  const char *stop = NULL;
  h->root = cJSON_ParseWithOpts(text, &stop, 1);
  if (!h->root)
    return st_fail(st, "header is not valid JSON (at header byte %zu)",
                   stop ? (size_t)(stop - text) : (size_t)0);
  if (!cJSON_IsObject(h->root))
    return st_fail(st, "header is not a JSON object");
  size_t count = 0;
  for (const cJSON *item = h->root->child; item; item = item->next)
    count++;
  h->entries = malloc((count + 1) * sizeof *h->entries);
  if (!h->entries)
    return st_fail(st, "out of memory");
  for (const cJSON *item = h->root->child; item; item = item->next) {
    if (strcmp(item->string, META_KEY) == 0) {
      if (h->meta)
        return st_fail(st, META_KEY " appears twice");
      if (check_metadata(st, item) < 0)
        return -1;
      h->meta = item;
    } else if (parse_entry(st, item, blob_size, &h->entries[h->n++]) < 0) {
      return -1;
    }
  }
  return check_entries(st, h);
}

/* What a file that is not a regular file is, for a message. */
static const char *file_kind(mode_t mode) {
  return S_ISDIR(mode)    ? "a directory"
         : S_ISFIFO(mode) ? "a FIFO"
         : S_ISCHR(mode)  ? "a character device"
         : S_ISBLK(mode)  ? "a block device"
         : S_ISSOCK(mode) ? "a socket"
                          : "something other than a file";
}

/* Reads and validates everything up to the blob. */
static int read_header(St *st, int fd, Header *h) {
  memset(h, 0, sizeof *h);
  struct stat sb;
  if (fstat(fd, &sb) != 0)
    return st_fail(st, "cannot stat: %s", strerror(errno));
  if (!S_ISREG(sb.st_mode))
    return st_fail(st, "is %s, not a safetensors file", file_kind(sb.st_mode));
  uint64_t size = sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
  unsigned char size_field[8];
  if (size < 8)
    return st_fail(st,
                   "file is too short for safetensors (%" PRIu64
                   " bytes, the header length alone takes 8)",
                   size);
  if (read_at(fd, size_field, 8, 0) < 0)
    return st_fail(st, "read error: %s", strerror(errno));
  uint64_t len = get_le64(size_field);
  if (len > size - 8)
    return st_fail(st,
                   "header length %" PRIu64 " is larger than the rest of "
                   "the file (%" PRIu64 " bytes)",
                   len, size - 8);
  if (len > HEADER_MAX)
    return st_fail(st, "header length %" PRIu64 " exceeds the 100 MiB limit",
                   len);
  char *text = malloc((size_t)len + 1);
  if (!text)
    return st_fail(st, "out of memory");
  if (read_at(fd, text, len, 8) < 0) {
    free(text);
    return st_fail(st, "read error: %s", strerror(errno));
  }
  text[len] = '\0';
  int rc;
  if (memchr(text, '\0', (size_t)len))
    rc = st_fail(st, "header is not valid JSON (it holds a NUL byte)");
  else
    rc = parse_header(st, h, text, size - 8 - len);
  free(text);
  h->blob_at = 8 + len;
  if (rc < 0)
    header_free(h);
  return rc;
}

static int open_checked(St *st) {
  /* not waiting for a writer when it is a FIFO: read_header refuses it */
  int fd = open(st->path, O_RDONLY | O_NONBLOCK);
  if (fd < 0)
    st_fail(st, "cannot open: %s", strerror(errno));
  return fd;
}

static int entry_has_name(const void *key, const void *elem) {
  return strcmp(key, (*(const Entry *const *)elem)->name);
}

static int by_spec_name(const void *a, const void *b) {
  return strcmp((*(const NncTensorSpec *const *)a)->name,
                (*(const NncTensorSpec *const *)b)->name);
}

static int spec_has_name(const void *key, const void *elem) {
  return strcmp(key, (*(const NncTensorSpec *const *)elem)->name);
}

/* found[i] becomes the entry for specs[i], which must exist and have the
 * spec's dtype and shape; sorted holds the entries sorted by name. */
static int find_specs(St *st, const Entry **sorted, size_t nsorted,
                      const NncTensorSpec *specs, int n, const Entry **found) {
  for (int i = 0; i < n; i++) {
    const NncTensorSpec *s = &specs[i];
    if (s->rank < 0 || s->rank > 4)
      return st_fail(st, "tensor %s: the model gives it rank %d", s->name,
                     s->rank);
    const Entry **hit =
        bsearch(s->name, sorted, nsorted, sizeof *sorted, entry_has_name);
    if (!hit)
      return st_fail(st, "tensor %s is missing from the file", s->name);
    const Entry *e = *hit;
    if (e->dtype != s->dtype)
      return st_fail(st, "tensor %s has dtype %s, model expects %s", s->name,
                     st_dtype_name(e->dtype), st_dtype_name(s->dtype));
    if (e->rank != s->rank ||
        memcmp(e->dims, s->dims, (size_t)s->rank * sizeof *s->dims) != 0) {
      char have[SHAPE_BUF], want[SHAPE_BUF];
      format_shape(have, e->rank, e->dims);
      format_shape(want, s->rank, s->dims);
      return st_fail(st, "tensor %s has shape %s, model expects %s", s->name,
                     have, want);
    }
    found[i] = e;
  }
  return 0;
}

static int has_prefix(const char *name, const char *const *prefixes) {
  for (; prefixes && *prefixes; prefixes++)
    if (strncmp(name, *prefixes, strlen(*prefixes)) == 0)
      return 1;
  return 0;
}

/* Every entry, in file order, must be one of the specs (sorted by name),
 * or have one of the skipped prefixes. */
static int find_extra(St *st, const Header *h, const NncTensorSpec **sorted,
                      int n, const char *const *skip) {
  for (size_t i = 0; i < h->n; i++)
    if (!has_prefix(h->entries[i].name, skip) &&
        !bsearch(h->entries[i].name, sorted, (size_t)n, sizeof *sorted,
                 spec_has_name))
      return st_fail(st,
                     "unexpected tensor %s (the model has no such "
                     "parameter)",
                     h->entries[i].name);
  return 0;
}

static int match_specs(St *st, const Header *h, const NncTensorSpec *specs,
                       int n, const Entry **found, const char *const *skip) {
  const Entry **entries = malloc((h->n + 1) * sizeof *entries);
  const NncTensorSpec **names = malloc(((size_t)n + 1) * sizeof *names);
  if (!entries || !names) {
    free(entries);
    free(names);
    return st_fail(st, "out of memory");
  }
  for (size_t i = 0; i < h->n; i++)
    entries[i] = &h->entries[i];
  qsort(entries, h->n, sizeof *entries, by_name);
  for (int i = 0; i < n; i++)
    names[i] = &specs[i];
  qsort(names, (size_t)n, sizeof *names, by_spec_name);
  int rc = find_specs(st, entries, h->n, specs, n, found);
  if (rc == 0)
    rc = find_extra(st, h, names, n, skip);
  free(entries);
  free(names);
  return rc;
}

int nnc_st_load(const char *path, const NncTensorSpec *specs, void *const *dst,
                int n, char *err, size_t errlen) {
  return nnc_st_load_except(path, specs, dst, n, NULL, err, errlen);
}

int nnc_st_load_except(const char *path, const NncTensorSpec *specs,
                       void *const *dst, int n, const char *const *skip,
                       char *err, size_t errlen) {
  St st = {path, err, errlen};
  if (n < 0)
    return st_fail(&st, "negative tensor count");
  int fd = open_checked(&st);
  if (fd < 0)
    return -1;
  Header h;
  const Entry **found = malloc(((size_t)n + 1) * sizeof *found);
  int rc = found ? read_header(&st, fd, &h) : st_fail(&st, "out of memory");
  if (rc == 0) {
    rc = match_specs(&st, &h, specs, n, found, skip);
    /* Only now, with everything checked, are the values copied. */
    for (int i = 0; rc == 0 && i < n; i++) {
      const Entry *e = found[i];
      uint64_t bytes = e->end - e->begin;
      if (read_at(fd, dst[i], bytes, h.blob_at + e->begin) < 0)
        rc = st_fail(&st, "read error in tensor %s: %s", e->name,
                     strerror(errno));
      else
        swap_to_le(dst[i], (size_t)(bytes / dtype_size(e->dtype)),
                   (size_t)dtype_size(e->dtype));
    }
    header_free(&h);
  }
  free(found);
  close(fd);
  return rc;
}

/* The header of st's file alone (the file closed again): 0 or -1. */
static int header_of(St *st, Header *h) {
  int fd = open_checked(st);
  if (fd < 0)
    return -1;
  int rc = read_header(st, fd, h);
  close(fd);
  return rc < 0 ? -1 : 0;
}

int nnc_st_metadata(const char *path, const char *key, char *out, size_t outlen,
                    char *err, size_t errlen) {
  St st = {path, err, errlen};
  Header h;
  if (header_of(&st, &h) < 0)
    return -1;
  int rc = 0;
  const cJSON *value =
      h.meta ? cJSON_GetObjectItemCaseSensitive(h.meta, key) : NULL;
  if (!value) {
    rc = 1;
  } else if (strlen(value->valuestring) >= outlen) {
    rc = st_fail(&st, "metadata %s is longer than %zu bytes", key,
                 outlen ? outlen - 1 : 0);
  } else {
    strcpy(out, value->valuestring);
  }
  header_free(&h);
  return rc;
}

int nnc_st_contains(const char *path, const char *name, char *err,
                    size_t errlen) {
  St st = {path, err, errlen};
  Header h;
  if (header_of(&st, &h) < 0)
    return -1;
  int rc = 0;
  for (size_t i = 0; i < h.n && rc == 0; i++)
    rc = strcmp(h.entries[i].name, name) == 0;
  header_free(&h);
  return rc;
}
