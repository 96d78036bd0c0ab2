/*
 * report.h - the --plot report of a training run (report.c).
 *
 * The report is a header (model, settings, final figures, timings) and
 * rows of two panels: for models with two inputs, the data (train, valid),
 * then the decision surface under the data (train, valid); for image
 * inputs, a grid of images with the predicted and true classes; for image
 * inputs and for three classes or more, the confusion matrices (train,
 * valid); always the curves per epoch (loss, accuracy). A PDF holds one row
 * per page, the header on the first; SVG and PNG hold everything on one
 * tall page.
 */
#ifndef NNC_REPORT_H
#define NNC_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* One data set as the report sees it: rows of in_cols inputs and tgt_cols
 * targets (doubles, row-major). */
typedef struct ReportSet {
  size_t rows;
  const double *x, *t;
  const int *predicted; /* the model's class for each row, or NULL */
} ReportSet;

typedef struct ReportData {
  const char *model;    /* model name */
  const char *source;   /* the .nn file's base name, or NULL */
  const char *settings; /* lines of settings, '\n'-separated */
  const char *figures;  /* lines of final figures and timings, '\n'-separated */
  int64_t epochs;       /* entries in each per-epoch array */
  int64_t epoch0;       /* epochs before the first entry (a resumed run), else 0 */
  /* per epoch (NULL when absent): the mean running train loss during the
   * epoch, the train and valid loss and accuracy with the parameters at its
   * end */
  const double *running_loss, *train_loss, *valid_loss;
  const double *train_acc, *valid_acc;
  const double *lr; /* the learning rate of each epoch, when a schedule changes it (else NULL) */
  bool log_scale; /* loss axis */
  /* the data: in_cols inputs, tgt_cols targets; classes > 1 when the targets
   * are labels (2 for one 0/1 column, tgt_cols for one-hot), else 0 */
  int in_cols, tgt_cols, classes;
  ReportSet train, valid;
  /* image inputs (0 when the inputs are not images): a row's in_cols values
   * are an image of img_channels (1 grey, 3 RGB) x img_h x img_w, channels
   * first */
  int img_channels, img_h, img_w;
  /* the model's out_cols outputs at n points of two inputs (NULL: no
   * decision surface) */
  void (*predict)(void *ctx, const double *points, int64_t n, double *out);
  void *ctx;
  int out_cols;
} ReportData;

/* The extension of path without its dot ("" when none): the format. */
static inline const char *report_extension(const char *path) {
  const char *dot = strrchr(path, '.');
  return dot ? dot + 1 : "";
}

/* Refuse a path whose extension is not .svg, .pdf or .png. */
int report_check_path(const char *path);
/* Load the drawing code (nnc-report.so) now, before a training run that
 * ends with a report: a message naming path when it cannot be. */
int report_load(const char *path);
/* Draw and write the report through util's output file (a temporary file
 * renamed at the end: the file appears complete or not at all). libnnc
 * (plugin.c) loads nnc-report.so for it; a message names the path on
 * failure. */
int report_write(const char *path, const ReportData *r);

/* Where the drawing goes: 0, or -1 when it cannot be written. */
typedef int (*ReportWriteFn)(void *ctx, const void *data, size_t len);
/* nnc-report.so's entry (report.c): the report drawn in format ext (svg,
 * pdf, png) and handed to write; on failure -1 and the reason in err. */
typedef int (*ReportDrawFn)(const char *ext, const ReportData *r, ReportWriteFn write, void *ctx, char *err,
                            size_t errlen);
#define REPORT_DRAW_SYMBOL "nnc_report_draw"
__attribute__((visibility("default"))) int nnc_report_draw(const char *ext, const ReportData *r,
                                                           ReportWriteFn write, void *ctx, char *err,
                                                           size_t errlen);

#endif
