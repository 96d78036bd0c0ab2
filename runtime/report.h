/*
 * report.h - the --plot report of a training run (report.c).
 */
#ifndef NNC_REPORT_H
#define NNC_REPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ReportData {
  const char *model;
  int64_t epochs;
  const double *train_loss; /* per epoch: mean running train loss */
  const double *valid_loss; /* per epoch, or NULL without validation data */
  /* the training data, for the decision surface (two inputs) */
  size_t rows;
  int in_cols, tgt_cols;
  const double *x, *t;
  /* the model's output for n points of two inputs (NULL: no surface) */
  void (*predict)(void *ctx, const double *points, int64_t n, double *out);
  void *ctx;
} ReportData;

/* Refuse a path whose extension is not .svg, .pdf or .png. */
int report_check_path(const char *path);
/* Draw and write the report (through a temporary file). */
int report_write(const char *path, const ReportData *r);

#endif
