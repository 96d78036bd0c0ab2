/*
 * runtime.h - what runs around the compiled functions: the random number
 * generator, datasets (built-in generators and CSV), initializers and
 * safetensors checkpoints.
 *
 * Nothing here depends on the compiler: these are plain C services that the
 * training driver (driver/train.c) and the command line use.
 *
 * Errors: every function that can fail returns 0 on success and -1 on error,
 * with a one-line message (no trailing newline) written into err[errlen].
 * The message names the file, e.g.
 *     data/x.csv:12:3: error: expected a number, got "abc"
 *     ckpt.safetensors: error: tensor linear1.W has shape [4,3], model has [4,2]
 */
#ifndef NNC_RUNTIME_H
#define NNC_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

/* ---- random numbers: xoshiro256** seeded through splitmix64 ---- */

typedef struct NncRng {
  uint64_t s[4];
  int has_spare; /* Box-Muller produces normals in pairs */
  double spare;
} NncRng;

void nnc_rng_seed(NncRng *r, uint64_t seed);
uint64_t nnc_rng_next(NncRng *r);
double nnc_rng_uniform(NncRng *r); /* [0, 1), 53 random bits */
double nnc_rng_normal(NncRng *r);  /* N(0, 1), Box-Muller */
/* Fisher-Yates: perm becomes a uniformly random permutation of 0..n-1. */
void nnc_rng_permutation(NncRng *r, size_t n, size_t *perm);

/* ---- datasets ---- */

/* Rows of per-sample inputs and targets, stored as f64 row-major. */
typedef struct NncData {
  size_t rows;
  int in_cols;  /* values per row for all inputs, flattened */
  int tgt_cols; /* values per row for all targets, flattened */
  double *x;    /* rows * in_cols */
  double *t;    /* rows * tgt_cols (NULL when tgt_cols == 0) */
  /* a CSV's rows as they stand in the file, for messages (nnc_data_line):
     from breaks[i].row on, rows are on consecutive lines from
     breaks[i].line (a header, a blank line make a break); none for other
     sources, or once rows are reordered */
  struct NncLineBreak { size_t row, line; } *breaks;
  size_t nbreaks, breaks_cap;
} NncData;

/* Most line breaks a CSV's NncData keeps (1 MiB of them). */
#define NNC_DATA_MAX_BREAKS ((size_t)1 << 16)

/* The file's line (1-based) of data row `row` (0-based) of a CSV as read,
 * or 0 when it is not known. */
size_t nnc_data_line(const NncData *d, size_t row);
/* Forget the lines (the rows are reordered, or too many breaks). */
void nnc_data_drop_lines(NncData *d);

/* Largest row count any data source may produce (refused above this). */
#define NNC_DATA_MAX_ROWS ((size_t)1 << 26)
/* Most values (inputs and targets of every row) a data set may hold: 2 GiB
 * as f64. */
#define NNC_DATA_MAX_VALUES ((uint64_t)1 << 28)

/* What reading a data file checks as it goes, so that a stream that never
 * ends (a pipe, /dev/zero) stops with a message and memory holds only what
 * is kept. */
typedef struct NncDataLimits {
  size_t line_bytes;   /* the longest line: 1 MiB */
  uint64_t file_bytes; /* bytes read from one file: 4 GiB */
  size_t rows;         /* data rows: NNC_DATA_MAX_ROWS */
  uint64_t values;     /* values kept: NNC_DATA_MAX_VALUES */
} NncDataLimits;
extern const NncDataLimits nnc_data_limits;

/* scikit-learn's make_moons / make_circles geometry, Gaussian noise, shuffled.
 * in_cols must be 2. tgt_cols is 1 (label 0/1) or 2 (one-hot). */
int nnc_data_moons(NncData *d, size_t samples, double noise, uint64_t seed,
                   int in_cols, int tgt_cols, char *err, size_t errlen);
int nnc_data_circles(NncData *d, size_t samples, double noise, double factor,
                     uint64_t seed, int in_cols, int tgt_cols, char *err,
                     size_t errlen);

/* CSV reader (spec section 2): the first line is a header when any of its
 * fields is not a number; each row holds in_cols input values then the
 * targets. onehot_classes > 0: the target is one column holding a class
 * index 0..onehot_classes-1, expanded to a one-hot row of tgt_cols ==
 * onehot_classes values. targets_optional != 0 (for --predict): rows hold
 * the in_cols inputs, then nothing, the tgt_cols targets, or (when
 * onehot_classes > 0) a class label; only the inputs are read (t is NULL),
 * and the file may hold no rows.
 * Refused: a missing file, a directory, an empty file, ragged rows, fields
 * that are not numbers, NaN or infinite values, anything past
 * nnc_data_limits. The file is read as a stream (a pipe or a device works).
 * Error positions are LINE:COLUMN of the file (1-based). */
int nnc_data_csv(NncData *d, const char *path, int in_cols, int tgt_cols,
                 int onehot_classes, int targets_optional, char *err,
                 size_t errlen);
/* The same with other limits. */
int nnc_data_csv_within(NncData *d, const char *path, int in_cols,
                        int tgt_cols, int onehot_classes, int targets_optional,
                        const NncDataLimits *limits, char *err, size_t errlen);

/* IDX reader (spec section 6; idx.c): images and labels of MNIST-format
 * files, raw or gzip-compressed, read side by side as streams (a pipe or a
 * device works). Each image must hold in_cols values (its dimensions do not
 * matter); each value is multiplied by scale, or, when scale is NAN, by the
 * type's default: 1/255 for unsigned bytes, 1 for the other element types
 * (signed bytes, 16- and 32-bit integers, floats and doubles). Labels are
 * one-hot rows when tgt_cols > 1 (an integer from 0 to tgt_cols-1), else
 * the label's value. Refused, with a message naming the file: a missing
 * file, a directory, a bad magic number, an images file not of 2 to 4
 * dimensions or a labels file not of 1, a size of 0, images of the wrong
 * size for the model, different image and label counts, a header that
 * announces more than the rows or values of nnc_data_limits, a file
 * shorter or longer than its header says, corrupt gzip data, a label that
 * is not a class, a value that is not finite. */
int nnc_data_idx(NncData *d, const char *images, const char *labels, double scale, int in_cols, int tgt_cols,
                 char *err, size_t errlen);
/* The same with other limits (only rows and values apply). */
int nnc_data_idx_within(NncData *d, const char *images, const char *labels, double scale, int in_cols,
                        int tgt_cols, const NncDataLimits *limits, char *err, size_t errlen);

/* Split d into its first n rows (train) and the rest (valid); d is emptied. */
void nnc_data_split(NncData *d, size_t n, NncData *train, NncData *valid);
void nnc_data_free(NncData *d);

/* ---- initializers (spec section 2, train block `init`) ---- */

typedef enum NncInitKind {
  NNC_INIT_XAVIER_NORMAL,  /* N(0,1) * sqrt(2 / (fan_in + fan_out)) */
  NNC_INIT_XAVIER_UNIFORM, /* U(-a, a), a = sqrt(6 / (fan_in + fan_out)) */
  NNC_INIT_HE_NORMAL,      /* N(0,1) * sqrt(2 / fan_in) */
  NNC_INIT_NORMAL,         /* N(0,1) * arg (std) */
  NNC_INIT_UNIFORM,        /* U(-arg, arg) (limit) */
  NNC_INIT_ZEROS,
  NNC_INIT_CONSTANT        /* every element = arg */
} NncInitKind;

/* Fill out[numel] row-major. Fans: rank >= 2: fan_in = dims[1] * r,
 * fan_out = dims[0] * r with r the product of dims[2..]; rank 1: both dims[0];
 * rank 0: both 1. Draws numel values from rng in row-major order. */
void nnc_init_fill(NncInitKind kind, double arg, NncRng *rng, int rank,
                   const int64_t *dims, double *out);

/* ---- safetensors checkpoints (spec section 4) ---- */

typedef enum NncStDtype { NNC_ST_F32, NNC_ST_F64 } NncStDtype;

typedef struct NncTensorSpec {
  const char *name;
  NncStDtype dtype;
  int rank; /* 0..4 */
  int64_t dims[4];
} NncTensorSpec;

/* Write n tensors (data[i] holds specs[i]'s values in specs[i].dtype) and the
 * metadata pairs meta[2k] = key, meta[2k+1] = value, through util's output
 * file (nnc_out_open: a temporary file fsynced and renamed over path, or the
 * target of a link, or a device written directly): a failure never leaves
 * a half-written file at path. */
int nnc_st_save(const char *path, const NncTensorSpec *specs,
                const void *const *data, int n, const char *const *meta,
                int nmeta, char *err, size_t errlen);

/* Strict load (as PyTorch's strict load_state_dict): the file must hold
 * exactly the tensors in specs, each with the same dtype and shape; the data
 * is copied into dst[i]. Every header field is validated: header length
 * (against the file size and absurd values), JSON syntax, dtype names,
 * shapes, data_offsets (in range, matching dtype x shape, not overlapping).
 * The message names the file and the offending tensor. */
int nnc_st_load(const char *path, const NncTensorSpec *specs, void *const *dst,
                int n, char *err, size_t errlen);

/* nnc_st_load, except that the file's tensors whose names begin with one
 * of the prefixes in skip (a NULL-terminated list, or NULL) are neither
 * read nor refused: --load skips a checkpoint's optimizer state. */
int nnc_st_load_except(const char *path, const NncTensorSpec *specs,
                       void *const *dst, int n, const char *const *skip,
                       char *err, size_t errlen);

/* Whether the file holds a tensor of that name: 1 or 0; -1 on error (file
 * unreadable or invalid). */
int nnc_st_contains(const char *path, const char *name, char *err,
                    size_t errlen);

/* Read one __metadata__ value (e.g. "epoch") into out[outlen]; returns 0 if
 * found, 1 if the file has no such key, -1 on error (file unreadable or
 * invalid). */
int nnc_st_metadata(const char *path, const char *key, char *out,
                    size_t outlen, char *err, size_t errlen);

#endif
