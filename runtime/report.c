/*
 * report.c - the --plot report of a training run, drawn with cairo as SVG,
 * PDF or PNG (chosen by the file's extension):
 *   left:  the loss curves (mean running train loss and valid loss per
 *          epoch, log scale);
 *   right: for models with two inputs and one output, the decision surface
 *          (the model's output over the plane) with the training points
 *          coloured by their target.
 * The file is written to a temporary name and renamed, so a failure never
 * leaves half a report.
 */
#include "report.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag.h"

enum { W = 960, H = 440, PAD = 48, GRID = 120 };

static const char *extension(const char *path) {
  const char *dot = strrchr(path, '.');
  return dot ? dot + 1 : "";
}

int report_check_path(const char *path) {
  const char *ext = extension(path);
  if (strcmp(ext, "svg") && strcmp(ext, "pdf") && strcmp(ext, "png")) {
    diag_file_error(path, "--plot writes .svg, .pdf or .png files");
    return -1;
  }
  return 0;
}

static void text(cairo_t *cr, double x, double y, const char *s, double size) {
  cairo_set_font_size(cr, size);
  cairo_move_to(cr, x, y);
  cairo_show_text(cr, s);
}

/* Loss curves in the box (x0, y0, w, h), log scale in y. */
static void draw_losses(cairo_t *cr, const ReportData *r, double x0, double y0, double w, double h) {
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t e = 0; e < r->epochs; e++) {
    double v[2] = {r->train_loss[e], r->valid_loss ? r->valid_loss[e] : NAN};
    for (int k = 0; k < 2; k++)
      if (isfinite(v[k]) && v[k] > 0) lo = fmin(lo, v[k]), hi = fmax(hi, v[k]);
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, x0, y0, w, h);
  cairo_stroke(cr);
  text(cr, x0, y0 - 10, "loss per epoch (log scale): train (blue), valid (orange)", 13);
  if (!(lo < hi)) return;
  double llo = log10(lo), lhi = log10(hi);
  char label[32];
  snprintf(label, sizeof label, "%.3g", hi);
  text(cr, x0 + 4, y0 + 14, label, 11);
  snprintf(label, sizeof label, "%.3g", lo);
  text(cr, x0 + 4, y0 + h - 6, label, 11);
  snprintf(label, sizeof label, "epoch %lld", (long long)r->epochs);
  text(cr, x0 + w - 70, y0 + h + 16, label, 11);
  for (int k = 0; k < 2; k++) {
    const double *v = k == 0 ? r->train_loss : r->valid_loss;
    if (!v) continue;
    cairo_set_source_rgb(cr, k == 0 ? 0.12 : 1.0, k == 0 ? 0.47 : 0.5, k == 0 ? 0.71 : 0.05);
    cairo_set_line_width(cr, 1.5);
    bool pen = false;
    for (int64_t e = 0; e < r->epochs; e++) {
      if (!(isfinite(v[e]) && v[e] > 0)) {
        pen = false;
        continue;
      }
      double px = x0 + w * (r->epochs > 1 ? (double)e / (double)(r->epochs - 1) : 0.5);
      double py = y0 + h - h * (log10(v[e]) - llo) / (lhi - llo);
      if (pen)
        cairo_line_to(cr, px, py);
      else
        cairo_move_to(cr, px, py);
      pen = true;
    }
    cairo_stroke(cr);
  }
}

/* The output over the data's bounding box, and the points on top. */
static void draw_surface(cairo_t *cr, const ReportData *r, double x0, double y0, double w, double h) {
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (size_t i = 0; i < r->rows; i++) {
    xmin = fmin(xmin, r->x[2 * i]), xmax = fmax(xmax, r->x[2 * i]);
    ymin = fmin(ymin, r->x[2 * i + 1]), ymax = fmax(ymax, r->x[2 * i + 1]);
  }
  double mx = (xmax - xmin) * 0.08 + 1e-9, my = (ymax - ymin) * 0.08 + 1e-9;
  xmin -= mx, xmax += mx, ymin -= my, ymax += my;
  double *grid = malloc(sizeof(double) * 2 * GRID * GRID), *out = malloc(sizeof(double) * GRID * GRID);
  if (!grid || !out) {
    free(grid);
    free(out);
    return;
  }
  for (int j = 0; j < GRID; j++)
    for (int i = 0; i < GRID; i++) {
      grid[2 * (j * GRID + i)] = xmin + (xmax - xmin) * (i + 0.5) / GRID;
      grid[2 * (j * GRID + i) + 1] = ymax - (ymax - ymin) * (j + 0.5) / GRID;
    }
  r->predict(r->ctx, grid, GRID * GRID, out);
  double cw = w / GRID, ch = h / GRID;
  /* the surface as a GRID x GRID image scaled onto the box: one picture,
     not GRID^2 rectangles, in SVG and PDF */
  cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, GRID, GRID);
  unsigned char *pixels = cairo_image_surface_get_data(img);
  int stride = cairo_image_surface_get_stride(img);
  cairo_surface_flush(img);
  for (int j = 0; j < GRID; j++)
    for (int i = 0; i < GRID; i++) {
      double p = out[j * GRID + i];
      p = isfinite(p) ? fmin(1, fmax(0, p)) : 0.5;
      /* blue for 0, orange for 1, light in between */
      uint32_t r8 = (uint32_t)(255 * (0.75 + 0.25 * p)), g8 = (uint32_t)(255 * (0.82 - 0.1 * p)),
               b8 = (uint32_t)(255 * (1.0 - 0.45 * p));
      *(uint32_t *)(pixels + j * stride + 4 * i) = r8 << 16 | g8 << 8 | b8;
    }
  cairo_surface_mark_dirty(img);
  cairo_save(cr);
  cairo_translate(cr, x0, y0);
  cairo_scale(cr, cw, ch);
  cairo_set_source_surface(cr, img, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_BILINEAR);
  cairo_rectangle(cr, 0, 0, GRID, GRID);
  cairo_fill(cr);
  cairo_restore(cr);
  cairo_surface_destroy(img);
  /* the 0.5 contour as dots where neighbours straddle it */
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  for (int j = 0; j + 1 < GRID; j++)
    for (int i = 0; i + 1 < GRID; i++)
      if ((out[j * GRID + i] > 0.5) != (out[j * GRID + i + 1] > 0.5) ||
          (out[j * GRID + i] > 0.5) != (out[(j + 1) * GRID + i] > 0.5)) {
        cairo_rectangle(cr, x0 + (i + 0.5) * cw, y0 + (j + 0.5) * ch, 1.2, 1.2);
        cairo_fill(cr);
      }
  for (size_t k = 0; k < r->rows; k++) {
    double px = x0 + w * (r->x[2 * k] - xmin) / (xmax - xmin);
    double py = y0 + h - h * (r->x[2 * k + 1] - ymin) / (ymax - ymin);
    int label = r->t[k * (size_t)r->tgt_cols + (size_t)(r->tgt_cols - 1)] > 0.5;
    cairo_arc(cr, px, py, 2.6, 0, 2 * M_PI);
    cairo_set_source_rgb(cr, label ? 0.85 : 0.12, label ? 0.37 : 0.36, label ? 0.0 : 0.75);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_set_line_width(cr, 0.6);
    cairo_stroke(cr);
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, x0, y0, w, h);
  cairo_stroke(cr);
  text(cr, x0, y0 - 10, "model output and training data (target 0 blue, 1 orange)", 13);
  free(grid);
  free(out);
}

static void draw(cairo_t *cr, const ReportData *r) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  char title[256];
  snprintf(title, sizeof title, "nnc: model %s", r->model ? r->model : "?");
  cairo_set_source_rgb(cr, 0, 0, 0);
  text(cr, PAD, 24, title, 15);
  double box = (W - 3 * PAD) / 2.0;
  draw_losses(cr, r, PAD, PAD + 20, box, H - 2 * PAD - 20);
  if (r->predict && r->in_cols == 2)
    draw_surface(cr, r, 2 * PAD + box, PAD + 20, box, H - 2 * PAD - 20);
}

int report_write(const char *path, const ReportData *r) {
  if (report_check_path(path) != 0) return -1;
  const char *ext = extension(path);
  size_t n = strlen(path) + 16;
  char *tmp = malloc(n);
  if (!tmp) return -1;
  snprintf(tmp, n, "%s.tmp.%d", path, (int)getpid());
  cairo_surface_t *surface = !strcmp(ext, "svg")   ? cairo_svg_surface_create(tmp, W, H)
                             : !strcmp(ext, "pdf") ? cairo_pdf_surface_create(tmp, W, H)
                                                   : cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
  cairo_t *cr = cairo_create(surface);
  draw(cr, r);
  cairo_destroy(cr);
  cairo_status_t st = CAIRO_STATUS_SUCCESS;
  if (!strcmp(ext, "png")) st = cairo_surface_write_to_png(surface, tmp);
  cairo_surface_finish(surface);
  if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(surface);
  cairo_surface_destroy(surface);
  int rc = 0;
  if (st != CAIRO_STATUS_SUCCESS) {
    diag_file_error(path, "cannot write the report: %s", cairo_status_to_string(st));
    rc = -1;
  } else if (rename(tmp, path) != 0) {
    diag_file_error(path, "cannot write the report: %s", strerror(errno));
    rc = -1;
  }
  if (rc) unlink(tmp);
  free(tmp);
  /* release cairo's and fontconfig's process-wide caches (the report is
     drawn once; LeakSanitizer would see them as leaks) */
  cairo_debug_reset_static_data();
  FcFini();
  return rc;
}
