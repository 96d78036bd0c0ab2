/*
 * report.c - the --plot report of a training run, drawn with cairo as PDF,
 * SVG or PNG (chosen by the file's extension).
 *
 * The report is a header and rows of two panels (see report.h):
 *   data      the training and validation points in the input plane,
 *             coloured by class                       (two inputs only)
 *   surface   the model's output over the plane with the points on top,
 *             for the training and the validation set (two inputs, a model
 *             whose output needs no targets)
 *   images    the first validation images (training images without a
 *             validation set) with the predicted class under each, the
 *             true class beside it in red when they differ (image inputs)
 *   confusion the confusion matrices of the training and the validation
 *             set (image inputs, and any model with 3 to 30 classes)
 *   curves    loss per epoch (log or linear axis) and accuracy per epoch
 *             when the targets are labels
 * A PDF has one row per page, the header on the first page, and an outline
 * (bookmarks) naming the pages; SVG and PNG stack the header and every row
 * on one page. Both plane rows share one view of the plane (the bounding
 * box of both sets, equal scale on both axes), so the panels line up.
 *
 * The drawing is handed to the caller's writer (report_write in libnnc
 * writes it through util's output file, so a failure never leaves half a
 * report).
 *
 * This file is nnc-report.so, a plugin (plugin.h): libnnc's report_write
 * loads it, so only a run that plots loads cairo and its libraries.
 */
#include "report.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <errno.h>
#include <fontconfig/fontconfig.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* Page geometry in points (PDF, SVG) or pixels (PNG). */
enum {
  W = 1000,      /* page width */
  ROW_H = 410,   /* one row of two panels */
  PANEL_W = 370, /* the plotting box of a panel */
  PANEL_H = 310,
  LEFT0 = 80,  /* left edge of the first panel's box */
  LEFT1 = 570, /* ... and of the second */
  TOP_BAND = 46, /* the title band of PDF pages after the first */
  GRID = 160,  /* decision surface samples per axis */
  MAX_POINTS = 4000, /* points drawn per panel (evenly spaced beyond) */
  IMG_COLS = 10,    /* the image grid */
  IMG_ROWS = 3,
  IMG_BOX = 64,     /* an image's longer side */
  MAX_CONFUSION = 30 /* classes in a confusion matrix */
};

typedef enum RowKind { ROW_DATA, ROW_SURFACE, ROW_IMAGES, ROW_CONFUSION, ROW_CURVES } RowKind;

static const char *const row_title[] = {"data", "decision surface", "images", "confusion matrix",
                                        "loss and accuracy"};

/* tab10, the class colours */
static const double palette[10][3] = {
    {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
    {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498},
    {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812}};

typedef struct Axis {
  double lo, hi;
  bool log;
} Axis;

typedef struct Box {
  double x, y, w, h;
} Box;

typedef struct Report {
  const ReportData *r;
  Axis px, py;  /* the plane view */
  double *grid; /* GRID x GRID x out_cols model outputs, row 0 at the top */
  RowKind rows[5];
  int nrows;
  int header_lines;
} Report;

/* ---- drawing helpers ---- */

static void set_rgb(cairo_t *cr, const double c[3]) { cairo_set_source_rgb(cr, c[0], c[1], c[2]); }

/* Text at (x, y): align 0 left, 0.5 centred, 1 right of x; y is the baseline. */
static void text_at(cairo_t *cr, double x, double y, const char *s, double size, double align) {
  cairo_text_extents_t ext;
  cairo_set_font_size(cr, size);
  cairo_text_extents(cr, s, &ext);
  cairo_move_to(cr, x - align * ext.x_advance, y);
  cairo_show_text(cr, s);
}

static void font(cairo_t *cr, bool bold) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
}

static double axis_frac(const Axis *a, double v) {
  if (a->log) return (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
  return (v - a->lo) / (a->hi - a->lo);
}

static double map_x(const Box *b, const Axis *a, double v) { return b->x + b->w * axis_frac(a, v); }
static double map_y(const Box *b, const Axis *a, double v) { return b->y + b->h * (1 - axis_frac(a, v)); }

/* Tick values for an axis (at most cap); returns how many. */
static int ticks(const Axis *a, double *out, int cap, int want) {
  int n = 0;
  if (a->log) {
    double span = log10(a->hi) - log10(a->lo);
    static const double all[] = {1, 2, 5}, ones[] = {1};
    const double *m = span <= 2.5 ? all : ones;
    int nm = span <= 2.5 ? 3 : 1;
    int step = span > 8 ? (int)ceil(span / 6) : 1;
    for (int d = (int)floor(log10(a->lo)); d <= (int)ceil(log10(a->hi)) && n < cap; d++) {
      if (d % step) continue;
      for (int k = 0; k < nm && n < cap; k++) {
        double v = m[k] * pow(10, d);
        if (v >= a->lo * (1 - 1e-9) && v <= a->hi * (1 + 1e-9)) out[n++] = v;
      }
    }
    if (n >= 2) return n;
    n = 0; /* less than a decade between two ticks: linear ticks */
  }
  double raw = (a->hi - a->lo) / want, mag = pow(10, floor(log10(raw))), step = mag;
  if (raw / mag > 5)
    step = 10 * mag;
  else if (raw / mag > 2)
    step = 5 * mag;
  else if (raw / mag > 1)
    step = 2 * mag;
  for (double v = ceil(a->lo / step - 1e-9) * step; v <= a->hi + step * 1e-9 && n < cap; v += step)
    if (!a->log || v > 0) out[n++] = fabs(v) < step * 1e-9 ? 0 : v;
  return n;
}

/* Frame, ticks, tick labels and axis names; grid lines when asked. */
static void draw_axes(cairo_t *cr, const Box *b, const Axis *ax, const Axis *ay, const char *xname,
                      const char *yname, bool grid, bool integer_x) {
  double tv[64];
  char label[32];
  cairo_set_line_width(cr, 1);
  font(cr, false);
  int n = ticks(ax, tv, 64, 6);
  for (int i = 0; i < n; i++) {
    if (integer_x && tv[i] != floor(tv[i])) continue;
    double x = map_x(b, ax, tv[i]);
    if (grid) {
      cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
      cairo_move_to(cr, x, b->y);
      cairo_line_to(cr, x, b->y + b->h);
      cairo_stroke(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_move_to(cr, x, b->y + b->h);
    cairo_line_to(cr, x, b->y + b->h + 4);
    cairo_stroke(cr);
    snprintf(label, sizeof label, "%g", tv[i]);
    text_at(cr, x, b->y + b->h + 16, label, 10, 0.5);
  }
  n = ticks(ay, tv, 64, 5);
  for (int i = 0; i < n; i++) {
    double y = map_y(b, ay, tv[i]);
    if (grid) {
      cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
      cairo_move_to(cr, b->x, y);
      cairo_line_to(cr, b->x + b->w, y);
      cairo_stroke(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_move_to(cr, b->x - 4, y);
    cairo_line_to(cr, b->x, y);
    cairo_stroke(cr);
    snprintf(label, sizeof label, "%g", tv[i]);
    text_at(cr, b->x - 7, y + 3.5, label, 10, 1);
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_rectangle(cr, b->x, b->y, b->w, b->h);
  cairo_stroke(cr);
  text_at(cr, b->x + b->w / 2, b->y + b->h + 34, xname, 11, 0.5);
  cairo_save(cr);
  cairo_translate(cr, b->x - 50, b->y + b->h / 2);
  cairo_rotate(cr, -M_PI / 2);
  text_at(cr, 0, 0, yname, 11, 0.5);
  cairo_restore(cr);
}

static void panel_title(cairo_t *cr, const Box *b, const char *title) {
  cairo_set_source_rgb(cr, 0, 0, 0);
  font(cr, true);
  text_at(cr, b->x, b->y - 10, title, 12.5, 0);
  font(cr, false);
}

/* An empty panel with a note in the middle. */
static void empty_panel(cairo_t *cr, const Box *b, const char *title, const char *note) {
  panel_title(cr, b, title);
  cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, b->x, b->y, b->w, b->h);
  cairo_stroke(cr);
  text_at(cr, b->x + b->w / 2, b->y + b->h / 2, note, 11, 0.5);
}

/* A legend of n lines in the top right corner of b. */
static void legend(cairo_t *cr, const Box *b, int n, const char *const *names, const double (*colors)[3],
                   const double *widths, bool below) {
  double wmax = 0;
  cairo_set_font_size(cr, 10);
  for (int i = 0; i < n; i++) {
    cairo_text_extents_t ext;
    cairo_text_extents(cr, names[i], &ext);
    wmax = fmax(wmax, ext.x_advance);
  }
  double w = wmax + 40, h = 16.0 * n + 6;
  double x = b->x + b->w - w - 8, y = below ? b->y + b->h - h - 8 : b->y + 8;
  cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
  cairo_rectangle(cr, x, y, w, h);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.7, 0.7, 0.7);
  cairo_set_line_width(cr, 0.8);
  cairo_stroke(cr);
  for (int i = 0; i < n; i++) {
    double ly = y + 14 + 16.0 * i;
    set_rgb(cr, colors[i]);
    cairo_set_line_width(cr, widths[i]);
    cairo_move_to(cr, x + 6, ly - 4);
    cairo_line_to(cr, x + 28, ly - 4);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text_at(cr, x + 34, ly, names[i], 10, 0);
  }
}

/* ---- the plane: data and decision surface ---- */

/* The class of row k of a set, or -1 without labels. */
static int class_of(const ReportData *r, const ReportSet *s, size_t k) {
  const double *t = s->t + k * (size_t)r->tgt_cols;
  if (r->classes == 2 && r->tgt_cols == 1) return t[0] > 0.5;
  if (r->classes > 1) {
    int best = 0;
    for (int c = 1; c < r->tgt_cols; c++)
      if (t[c] > t[best]) best = c;
    return best;
  }
  return -1;
}

/* A light version of a class colour, for the surface. */
static void light(const double c[3], double amount, double out[3]) {
  for (int k = 0; k < 3; k++) out[k] = 1 - (1 - c[k]) * amount;
}

/* The view of the plane: both sets' bounding box with a margin, widened to
 * an equal scale on both axes in a PANEL_W x PANEL_H box. */
static void plane_view(Report *rep) {
  const ReportData *r = rep->r;
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  const ReportSet *sets[2] = {&r->train, &r->valid};
  for (int s = 0; s < 2; s++)
    for (size_t i = 0; i < sets[s]->rows; i++) {
      double x = sets[s]->x[2 * i], y = sets[s]->x[2 * i + 1];
      if (!isfinite(x) || !isfinite(y)) continue;
      xmin = fmin(xmin, x), xmax = fmax(xmax, x), ymin = fmin(ymin, y), ymax = fmax(ymax, y);
    }
  if (!(xmin <= xmax)) xmin = -1, xmax = 1, ymin = -1, ymax = 1;
  double cx = (xmin + xmax) / 2, cy = (ymin + ymax) / 2;
  double hw = fmax((xmax - xmin) / 2 * 1.08, 1e-6), hh = fmax((ymax - ymin) / 2 * 1.08, 1e-6);
  double aspect = (double)PANEL_W / PANEL_H;
  if (hw / hh < aspect)
    hw = hh * aspect;
  else
    hh = hw / aspect;
  rep->px = (Axis){cx - hw, cx + hw, false};
  rep->py = (Axis){cy - hh, cy + hh, false};
}

/* The model's outputs on the GRID x GRID pixel centres of the view. */
static void surface_compute(Report *rep) {
  const ReportData *r = rep->r;
  int oc = r->out_cols > 0 ? r->out_cols : 1;
  double *pts = malloc(sizeof(double) * 2 * GRID * GRID);
  rep->grid = malloc(sizeof(double) * (size_t)oc * GRID * GRID);
  if (!pts || !rep->grid) {
    free(pts);
    free(rep->grid);
    rep->grid = NULL;
    return;
  }
  for (int j = 0; j < GRID; j++)
    for (int i = 0; i < GRID; i++) {
      pts[2 * (j * GRID + i)] = rep->px.lo + (rep->px.hi - rep->px.lo) * (i + 0.5) / GRID;
      pts[2 * (j * GRID + i) + 1] = rep->py.hi - (rep->py.hi - rep->py.lo) * (j + 0.5) / GRID;
    }
  r->predict(r->ctx, pts, GRID * GRID, rep->grid);
  free(pts);
}

/* How the surface colours a grid point: the probability of class 1 (one
 * output and 0/1 labels), the argmax class (one output per class), else
 * the first output's value on a blue-orange ramp. */
typedef enum SurfaceMode { SURF_PROB, SURF_ARGMAX, SURF_VALUE } SurfaceMode;

static SurfaceMode surface_mode(const ReportData *r) {
  if (r->out_cols == 1 && r->classes == 2) return SURF_PROB;
  if (r->out_cols > 1 && r->classes == r->out_cols) return SURF_ARGMAX;
  return SURF_VALUE;
}

static void ramp(double p, double out[3]) {
  double a[3], b[3];
  light(palette[0], 0.35, a);
  light(palette[1], 0.45, b);
  for (int k = 0; k < 3; k++) out[k] = a[k] + (b[k] - a[k]) * p;
}

/* p in [0, 1] in ten bands (filled contours 0.1 apart, as contourf). */
static double bands(double p) {
  p = fmin(1, fmax(0, p));
  return fmin(9, floor(p * 10)) / 9;
}

static void draw_surface_image(cairo_t *cr, const Report *rep, const Box *b) {
  const ReportData *r = rep->r;
  int oc = r->out_cols > 0 ? r->out_cols : 1;
  SurfaceMode mode = surface_mode(r);
  double vlo = INFINITY, vhi = -INFINITY;
  if (mode == SURF_VALUE)
    for (int i = 0; i < GRID * GRID; i++)
      if (isfinite(rep->grid[i * oc])) vlo = fmin(vlo, rep->grid[i * oc]), vhi = fmax(vhi, rep->grid[i * oc]);
  cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, GRID, GRID);
  cairo_surface_flush(img);
  unsigned char *pixels = cairo_image_surface_get_data(img);
  int stride = cairo_image_surface_get_stride(img);
  for (int j = 0; j < GRID; j++)
    for (int i = 0; i < GRID; i++) {
      const double *v = rep->grid + (size_t)(j * GRID + i) * (size_t)oc;
      double c[3] = {0.85, 0.85, 0.85};
      if (mode == SURF_PROB) {
        if (isfinite(v[0])) ramp(bands(v[0]), c);
      } else if (mode == SURF_ARGMAX) {
        int best = 0;
        for (int k = 1; k < oc; k++)
          if (v[k] > v[best]) best = k;
        light(palette[best % 10], 0.4, c);
      } else if (isfinite(v[0]) && vlo < vhi) {
        ramp((v[0] - vlo) / (vhi - vlo), c);
      }
      uint32_t px = (uint32_t)(255 * c[0] + 0.5) << 16 | (uint32_t)(255 * c[1] + 0.5) << 8 |
                    (uint32_t)(255 * c[2] + 0.5);
      memcpy(pixels + j * stride + 4 * i, &px, 4);
    }
  cairo_surface_mark_dirty(img);
  /* one picture scaled onto the box, not GRID^2 rectangles */
  cairo_save(cr);
  cairo_rectangle(cr, b->x, b->y, b->w, b->h);
  cairo_clip(cr);
  cairo_translate(cr, b->x, b->y);
  cairo_scale(cr, b->w / GRID, b->h / GRID);
  cairo_set_source_surface(cr, img, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), mode == SURF_ARGMAX ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_BILINEAR);
  cairo_paint(cr);
  cairo_restore(cr);
  cairo_surface_destroy(img);
  if (mode != SURF_PROB) return;
  /* the 0.5 contour by marching squares over the pixel centres */
  double cw = b->w / GRID, ch = b->h / GRID;
  cairo_save(cr);
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  cairo_set_line_width(cr, 1.4);
  for (int j = 0; j + 1 < GRID; j++)
    for (int i = 0; i + 1 < GRID; i++) {
      double v[4] = {rep->grid[j * GRID + i] - 0.5, rep->grid[j * GRID + i + 1] - 0.5,
                     rep->grid[(j + 1) * GRID + i + 1] - 0.5, rep->grid[(j + 1) * GRID + i] - 0.5};
      /* corners 0 (i,j) 1 (i+1,j) 2 (i+1,j+1) 3 (i,j+1); edge k joins k and k+1 */
      static const int cx[4] = {0, 1, 1, 0}, cy[4] = {0, 0, 1, 1};
      double ex[4], ey[4];
      int ne = 0;
      for (int k = 0; k < 4; k++) {
        double a = v[k], c = v[(k + 1) % 4];
        if (!isfinite(a) || !isfinite(c) || (a > 0) == (c > 0)) continue;
        double f = a / (a - c);
        ex[ne] = b->x + (i + 0.5 + cx[k] + f * (cx[(k + 1) % 4] - cx[k])) * cw;
        ey[ne] = b->y + (j + 0.5 + cy[k] + f * (cy[(k + 1) % 4] - cy[k])) * ch;
        ne++;
      }
      for (int k = 0; k + 1 < ne; k += 2) {
        cairo_move_to(cr, ex[k], ey[k]);
        cairo_line_to(cr, ex[k + 1], ey[k + 1]);
      }
    }
  cairo_stroke(cr);
  cairo_restore(cr);
}

static void draw_points(cairo_t *cr, const Report *rep, const Box *b, const ReportSet *s) {
  const ReportData *r = rep->r;
  size_t step = s->rows > MAX_POINTS ? (s->rows + MAX_POINTS - 1) / MAX_POINTS : 1;
  double tlo = INFINITY, thi = -INFINITY;
  if (r->classes < 2)
    for (size_t k = 0; k < s->rows; k += step)
      if (isfinite(s->t[k * (size_t)r->tgt_cols])) tlo = fmin(tlo, s->t[k * (size_t)r->tgt_cols]),
                                                   thi = fmax(thi, s->t[k * (size_t)r->tgt_cols]);
  cairo_save(cr);
  cairo_rectangle(cr, b->x, b->y, b->w, b->h);
  cairo_clip(cr);
  double radius = s->rows / step > 1500 ? 1.8 : 2.8;
  for (size_t k = 0; k < s->rows; k += step) {
    double x = s->x[2 * k], y = s->x[2 * k + 1];
    if (!isfinite(x) || !isfinite(y)) continue;
    double c[3];
    int cls = class_of(r, s, k);
    if (cls >= 0) {
      memcpy(c, palette[cls % 10], sizeof c);
    } else {
      double t = s->t[k * (size_t)r->tgt_cols];
      double p = tlo < thi && isfinite(t) ? (t - tlo) / (thi - tlo) : 0.5;
      for (int i = 0; i < 3; i++) c[i] = palette[0][i] + (palette[1][i] - palette[0][i]) * p;
    }
    cairo_arc(cr, map_x(b, &rep->px, x), map_y(b, &rep->py, y), radius, 0, 2 * M_PI);
    set_rgb(cr, c);
    cairo_fill(cr);
  }
  cairo_restore(cr);
}

/* The class legend of the plane panels (labels only). */
static void class_legend(cairo_t *cr, const ReportData *r, const Box *b) {
  if (r->classes < 2 || r->classes > 10) return;
  cairo_set_font_size(cr, 10);
  double x = b->x + b->w + 8, y = b->y + 6;
  text_at(cr, x, y + 8, "class", 10, 0);
  for (int c = 0; c < r->classes; c++) {
    double ly = y + 24 + 15.0 * c;
    set_rgb(cr, palette[c]);
    cairo_arc(cr, x + 4, ly - 3.5, 3.5, 0, 2 * M_PI);
    cairo_fill(cr);
    char s[16];
    snprintf(s, sizeof s, "%d", c);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text_at(cr, x + 12, ly, s, 10, 0);
  }
}

static void plane_panel(cairo_t *cr, const Report *rep, const Box *b, const ReportSet *s, bool surface,
                        const char *which) {
  const ReportData *r = rep->r;
  char title[128];
  if (!s->rows) {
    snprintf(title, sizeof title, "%s", which);
    empty_panel(cr, b, title, "no validation data");
    return;
  }
  snprintf(title, sizeof title, "%s (%zu rows)%s", which, s->rows,
           surface ? (surface_mode(r) == SURF_PROB     ? ": model output, 0.5 contour"
                      : surface_mode(r) == SURF_ARGMAX ? ": argmax of the outputs"
                                                       : ": model output")
                   : "");
  panel_title(cr, b, title);
  if (surface && rep->grid) draw_surface_image(cr, rep, b);
  draw_points(cr, rep, b, s);
  draw_axes(cr, b, &rep->px, &rep->py, "x[0]", "x[1]", false, false);
  class_legend(cr, r, b);
}

/* ---- images and confusion matrices ---- */

static bool images(const ReportData *r) { return r->img_channels > 0; }

static bool confusion(const ReportData *r) {
  return r->classes >= 2 && r->classes <= MAX_CONFUSION && (images(r) || r->classes >= 3) &&
         r->train.predicted;
}

/* The set the image grid shows: validation, else training. */
static const ReportSet *shown_set(const ReportData *r, const char **name) {
  bool valid = r->valid.rows > 0 && r->valid.predicted;
  *name = valid ? "valid" : "train";
  return valid ? &r->valid : &r->train;
}

/* Image k of s as RGB in [0, 1] at (px, py) of an image scaled to iw x ih
 * (nearest pixel), with lo..hi the value range shown black to white. */
static void image_pixel(const ReportData *r, const ReportSet *s, size_t k, int px, int py, int iw, int ih,
                        double lo, double hi, double rgb[3]) {
  int sx = px * r->img_w / iw, sy = py * r->img_h / ih;
  const double *x = s->x + k * (size_t)r->in_cols;
  size_t plane_size = (size_t)r->img_h * (size_t)r->img_w, at = (size_t)sy * (size_t)r->img_w + (size_t)sx;
  for (int c = 0; c < 3; c++) {
    double v = x[(r->img_channels == 3 ? (size_t)c : 0) * plane_size + at];
    rgb[c] = hi > lo && isfinite(v) ? fmin(1, fmax(0, (v - lo) / (hi - lo))) : 0.5;
  }
}

/* The grid's pixels as one image (so that the SVG and PDF hold one picture,
 * not one per cell), drawn at b's top left at 1:1. */
static void draw_image_grid(cairo_t *cr, const ReportData *r, const ReportSet *s, size_t n, const Box *b,
                            int cell_w, int cell_h, int iw, int ih) {
  double lo = INFINITY, hi = -INFINITY;
  for (size_t k = 0; k < n * (size_t)r->in_cols; k++)
    if (isfinite(s->x[k])) lo = fmin(lo, s->x[k]), hi = fmax(hi, s->x[k]);
  int w = (int)b->w, h = (int)b->h;
  cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  unsigned char *data = cairo_image_surface_get_data(img);
  int stride = cairo_image_surface_get_stride(img);
  if (!data) {
    cairo_surface_destroy(img);
    return;
  }
  memset(data, 0xff, (size_t)stride * (size_t)h);
  for (size_t k = 0; k < n; k++) {
    int x0 = (int)(k % IMG_COLS) * cell_w + (cell_w - iw) / 2, y0 = (int)(k / IMG_COLS) * cell_h + 4;
    for (int py = 0; py < ih; py++) {
      uint32_t *row = (uint32_t *)(data + (size_t)(y0 + py) * (size_t)stride) + x0;
      for (int px = 0; px < iw; px++) {
        double c[3];
        image_pixel(r, s, k, px, py, iw, ih, lo, hi, c);
        row[px] = (uint32_t)lround(c[0] * 255) << 16 | (uint32_t)lround(c[1] * 255) << 8 | (uint32_t)lround(c[2] * 255);
      }
    }
  }
  cairo_surface_mark_dirty(img);
  cairo_save(cr);
  cairo_set_source_surface(cr, img, b->x, b->y);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
  cairo_rectangle(cr, b->x, b->y, w, h);
  cairo_fill(cr);
  cairo_restore(cr);
  cairo_surface_destroy(img);
}

/* The first images of the shown set, each with its predicted class; a
 * wrong one gets a red frame and its true class. */
static void images_panel(cairo_t *cr, const ReportData *r, const Box *b) {
  const char *name;
  const ReportSet *s = shown_set(r, &name);
  size_t n = s->rows < IMG_COLS * IMG_ROWS ? s->rows : IMG_COLS * IMG_ROWS;
  int cell_w = (int)b->w / IMG_COLS, cell_h = (int)b->h / IMG_ROWS;
  int longer = r->img_w > r->img_h ? r->img_w : r->img_h;
  int iw = r->img_w * IMG_BOX / longer, ih = r->img_h * IMG_BOX / longer;
  int wrong = 0;
  for (size_t k = 0; k < n && s->predicted; k++) wrong += s->predicted[k] != class_of(r, s, k);
  char title[200];
  if (s->predicted)
    snprintf(title, sizeof title, "%s images %zu to %zu: predicted class (true class in red when wrong), %d wrong",
             name, n ? (size_t)1 : 0, n, wrong);
  else
    snprintf(title, sizeof title, "%s images 1 to %zu", name, n);
  panel_title(cr, b, title);
  draw_image_grid(cr, r, s, n, b, cell_w, cell_h, iw, ih);
  font(cr, false);
  for (size_t k = 0; k < n; k++) {
    double x0 = b->x + (double)(k % IMG_COLS) * cell_w + (cell_w - iw) / 2, y0 = b->y + (double)(k / IMG_COLS) * cell_h + 4;
    int truth = class_of(r, s, k), guess = s->predicted ? s->predicted[k] : -1;
    bool bad = s->predicted && guess != truth;
    char label[48] = "";
    if (!s->predicted && truth >= 0)
      snprintf(label, sizeof label, "%d", truth);
    else if (bad)
      snprintf(label, sizeof label, "%d, true %d", guess, truth);
    else
      snprintf(label, sizeof label, "%d", guess);
    if (bad) {
      set_rgb(cr, palette[3]);
      cairo_set_line_width(cr, 2);
      cairo_rectangle(cr, x0 - 2, y0 - 2, iw + 4, ih + 4);
    } else {
      cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
      cairo_set_line_width(cr, 1);
      cairo_rectangle(cr, x0 - 0.5, y0 - 0.5, iw + 1, ih + 1);
    }
    cairo_stroke(cr);
    if (!bad) cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, x0 + iw / 2.0, y0 + ih + 15, label, 11, 0.5);
  }
}

/* Rows: true classes, columns: predicted; each cell coloured by its share
 * of its row, with its count when the cells are large enough. */
static void confusion_panel(cairo_t *cr, const ReportData *r, const Box *b, const ReportSet *s, const char *name) {
  if (!s->rows || !s->predicted) {
    empty_panel(cr, b, name, s->rows ? "no predictions" : "no validation data");
    return;
  }
  int K = r->classes;
  size_t *count = calloc((size_t)K * (size_t)K, sizeof *count), *total = calloc((size_t)K, sizeof *total);
  if (!count || !total) {
    free(count);
    free(total);
    return;
  }
  size_t right = 0;
  for (size_t k = 0; k < s->rows; k++) {
    int t = class_of(r, s, k), p = s->predicted[k];
    if (t < 0 || t >= K || p < 0 || p >= K) continue;
    count[t * K + p]++;
    total[t]++;
    right += t == p;
  }
  char title[160];
  snprintf(title, sizeof title, "%s (%zu rows): accuracy %.4f", name, s->rows, (double)right / (double)s->rows);
  panel_title(cr, b, title);
  double cell = floor(fmin(b->w - 60, b->h - 40) / K);
  double x0 = b->x + 60 + (b->w - 60 - cell * K) / 2, y0 = b->y;
  double fsize = fmin(10, cell * 0.36);
  char text[32];
  for (int t = 0; t < K; t++)
    for (int p = 0; p < K; p++) {
      size_t c = count[t * K + p];
      double share = total[t] ? (double)c / (double)total[t] : 0, rgb[3];
      light(palette[0], share, rgb);
      set_rgb(cr, rgb);
      cairo_rectangle(cr, x0 + p * cell, y0 + t * cell, cell, cell);
      cairo_fill(cr);
      if (cell < 14 || c == 0) continue;
      snprintf(text, sizeof text, "%zu", c);
      cairo_set_source_rgb(cr, share > 0.5 ? 1 : 0, share > 0.5 ? 1 : 0, share > 0.5 ? 1 : 0);
      text_at(cr, x0 + (p + 0.5) * cell, y0 + (t + 0.5) * cell + fsize * 0.35, text, fsize, 0.5);
    }
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, x0, y0, cell * K, cell * K);
  cairo_stroke(cr);
  int every = K > 15 ? 5 : 1;
  for (int k = 0; k < K; k += every) {
    snprintf(text, sizeof text, "%d", k);
    text_at(cr, x0 + (k + 0.5) * cell, y0 + cell * K + 14, text, 10, 0.5);
    text_at(cr, x0 - 6, y0 + (k + 0.5) * cell + 3.5, text, 10, 1);
  }
  text_at(cr, x0 + cell * K / 2, y0 + cell * K + 30, "predicted class", 11, 0.5);
  cairo_save(cr);
  cairo_translate(cr, x0 - 28, y0 + cell * K / 2);
  cairo_rotate(cr, -M_PI / 2);
  text_at(cr, 0, 0, "true class", 11, 0.5);
  cairo_restore(cr);
  free(count);
  free(total);
}

/* ---- curves ---- */

/* A polyline of v[0..n-1] over epochs e0+1..e0+n; points that are not
 * finite (or not positive on a log axis) break the line. */
static void curve(cairo_t *cr, const Box *b, const Axis *ax, const Axis *ay, const double *v, int64_t n,
                  int64_t e0, const double color[3], double width, bool dots) {
  int64_t step = n > 3000 ? n / 1500 : 1;
  set_rgb(cr, color);
  cairo_set_line_width(cr, width);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  bool pen = false;
  for (int64_t e = 0; e < n; e = e + step < n || e == n - 1 ? e + step : n - 1) {
    if (!isfinite(v[e]) || (ay->log && !(v[e] > 0))) {
      pen = false;
      continue;
    }
    double x = map_x(b, ax, (double)(e0 + e + 1)), y = map_y(b, ay, fmin(fmax(v[e], ay->lo), ay->hi));
    if (pen)
      cairo_line_to(cr, x, y);
    else
      cairo_move_to(cr, x, y);
    pen = true;
  }
  cairo_stroke(cr);
  if (!dots) return;
  for (int64_t e = 0; e < n; e++) {
    if (!isfinite(v[e]) || (ay->log && !(v[e] > 0))) continue;
    cairo_arc(cr, map_x(b, ax, (double)(e0 + e + 1)), map_y(b, ay, v[e]), 2.5, 0, 2 * M_PI);
    cairo_fill(cr);
  }
}

/* The curves of one panel, clipped to it, and their legend entries. */
typedef struct Curves {
  cairo_t *cr;
  const Box *b;
  Axis ax, ay;
  int64_t n, e0;
  bool dots;
  const char *names[4];
  double colors[4][3], widths[4];
  int count;
} Curves;

static void curves_begin(Curves *cs, cairo_t *cr, const Box *b, Axis ax, Axis ay, int64_t n, int64_t e0) {
  *cs = (Curves){.cr = cr, .b = b, .ax = ax, .ay = ay, .n = n, .e0 = e0, .dots = n <= 30};
  cairo_save(cr);
  cairo_rectangle(cr, b->x, b->y, b->w, b->h);
  cairo_clip(cr);
}

/* v (NULL: nothing) as a curve and a legend entry. */
static void curves_add(Curves *cs, const char *name, const double *v, const double color[3], double width,
                       bool dots) {
  if (!v) return;
  curve(cs->cr, cs->b, &cs->ax, &cs->ay, v, cs->n, cs->e0, color, width, dots && cs->dots);
  cs->names[cs->count] = name;
  memcpy(cs->colors[cs->count], color, sizeof cs->colors[0]);
  cs->widths[cs->count++] = width;
}

static void value_range(const double *v, int64_t n, bool positive, double *lo, double *hi) {
  if (!v) return;
  for (int64_t e = 0; e < n; e++)
    if (isfinite(v[e]) && (!positive || v[e] > 0)) *lo = fmin(*lo, v[e]), *hi = fmax(*hi, v[e]);
}

/* The learning rate per epoch on an axis of its own at the right of the
 * panel, from 0 to its largest value. */
static void rate_curve(Curves *cs, const double *lr) {
  double lo = INFINITY, hi = -INFINITY;
  value_range(lr, cs->n, false, &lo, &hi);
  if (!(hi > 0)) return;
  cairo_t *cr = cs->cr;
  const Box *b = cs->b;
  Axis ay = {0, hi * 1.05, false};
  static const double color[3] = {0.45, 0.45, 0.45};
  curve(cr, b, &cs->ax, &ay, lr, cs->n, cs->e0, color, 1.2, false);
  cairo_restore(cr); /* out of the clip, for the axis */
  double tv[16];
  char label[32];
  int n = ticks(&ay, tv, 16, 4);
  cairo_set_line_width(cr, 1);
  for (int i = 0; i < n; i++) {
    double y = map_y(b, &ay, tv[i]);
    set_rgb(cr, color);
    cairo_move_to(cr, b->x + b->w, y);
    cairo_line_to(cr, b->x + b->w + 4, y);
    cairo_stroke(cr);
    snprintf(label, sizeof label, "%g", tv[i]);
    text_at(cr, b->x + b->w + 7, y + 3.5, label, 10, 0);
  }
  cairo_save(cr);
  cairo_translate(cr, b->x + b->w + 52, b->y + b->h / 2);
  cairo_rotate(cr, -M_PI / 2);
  text_at(cr, 0, 0, "learning rate", 11, 0.5);
  cairo_restore(cr);
  cairo_save(cr); /* back in the clip, as curves_end expects */
  cairo_rectangle(cr, b->x, b->y, b->w, b->h);
  cairo_clip(cr);
  cs->names[cs->count] = "learning rate (right axis)";
  memcpy(cs->colors[cs->count], color, sizeof cs->colors[0]);
  cs->widths[cs->count++] = 1.2;
}

static void curves_end(Curves *cs, bool legend_below) {
  cairo_restore(cs->cr);
  legend(cs->cr, cs->b, cs->count, cs->names, (const double(*)[3])cs->colors, cs->widths, legend_below);
}

static Axis epoch_axis(int64_t n, int64_t e0) {
  return n > 1 ? (Axis){(double)e0 + 1, (double)(e0 + n), false} : (Axis){e0 + 0.5, e0 + 1.5, false};
}

static void loss_panel(cairo_t *cr, const ReportData *r, const Box *b) {
  int64_t n = r->epochs;
  char title[96];
  double lo = INFINITY, hi = -INFINITY;
  const double *curves[3] = {r->running_loss, r->train_loss, r->valid_loss};
  bool log_scale = r->log_scale;
  for (int k = 0; k < 3; k++) value_range(curves[k], n, log_scale, &lo, &hi);
  if (!(lo <= hi) && log_scale) { /* every finite loss is 0 or below: no log axis holds one */
    log_scale = false;
    for (int k = 0; k < 3; k++) value_range(curves[k], n, false, &lo, &hi);
  }
  snprintf(title, sizeof title, "loss per epoch (%s scale%s)", log_scale ? "log" : "linear",
           log_scale == r->log_scale ? "" : ": no loss above 0 for a log one");
  if (!(lo <= hi)) {
    empty_panel(cr, b, title, n ? "no finite loss to draw" : "no epochs were run");
    return;
  }
  Axis ay;
  if (log_scale) {
    /* within the doubles' decades (a loss near 1e300 padded past 1e308 was
       an axis up to infinity, and no curve on it) */
    double l = log10(lo), h = log10(hi), pad = fmax((h - l) * 0.05, 0.05);
    ay = (Axis){fmax(pow(10, l - pad), DBL_TRUE_MIN), fmin(pow(10, h + pad), DBL_MAX), true};
  } else {
    double l = fmin(lo, 0), pad = fmax(hi / 2 - l / 2, 1e-12) * 0.1;
    ay = (Axis){l, fmin(hi + pad, DBL_MAX), false};
  }
  Axis ax = epoch_axis(n, r->epoch0);
  panel_title(cr, b, title);
  draw_axes(cr, b, &ax, &ay, "epoch", "mean loss per row", true, true);
  static const double run_color[3] = {0.62, 0.78, 0.91};
  Curves cs;
  curves_begin(&cs, cr, b, ax, ay, n, r->epoch0);
  curves_add(&cs, "train, running mean in the epoch", r->running_loss, run_color, 1, false);
  curves_add(&cs, "train", r->train_loss, palette[0], 1.6, true);
  curves_add(&cs, "valid", r->valid_loss, palette[1], 1.6, true);
  if (r->lr) rate_curve(&cs, r->lr);
  curves_end(&cs, false);
}

static void accuracy_panel(cairo_t *cr, const ReportData *r, const Box *b) {
  int64_t n = r->epochs;
  double lo = INFINITY, hi = -INFINITY;
  value_range(r->train_acc, n, false, &lo, &hi);
  value_range(r->valid_acc, n, false, &lo, &hi);
  const char *title = "accuracy per epoch";
  if (!(lo <= hi)) {
    empty_panel(cr, b, title, "no epochs were run");
    return;
  }
  double l = fmax(0, floor(lo * 20 - 0.5) / 20);
  Axis ay = {l, 1 + (1 - l) * 0.03, false}, ax = epoch_axis(n, r->epoch0);
  panel_title(cr, b, title);
  draw_axes(cr, b, &ax, &ay, "epoch", "fraction classified right", true, true);
  Curves cs;
  curves_begin(&cs, cr, b, ax, ay, n, r->epoch0);
  curves_add(&cs, "train", r->train_acc, palette[0], 1.6, true);
  curves_add(&cs, "valid", r->valid_acc, palette[1], 1.6, true);
  curves_end(&cs, true);
}

/* ---- pages ---- */

static int count_lines(const char *s) {
  if (!s || !*s) return 0;
  int n = 1;
  for (; *s; s++) n += *s == '\n' && s[1];
  return n;
}

static bool plane(const ReportData *r) { return r->in_cols == 2; }

static double header_height(const Report *rep) { return 62 + 17.0 * rep->header_lines + 8; }

/* Draw the lines of s from (x, *y), one per line. */
static void text_lines(cairo_t *cr, double x, double *y, const char *s, double size) {
  char line[512];
  while (s && *s) {
    size_t n = strcspn(s, "\n");
    snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line - 1 ? n : sizeof line - 1), s);
    text_at(cr, x, *y, line, size, 0);
    *y += 17;
    s += n + (s[n] == '\n');
  }
}

static void draw_header(cairo_t *cr, const Report *rep) {
  const ReportData *r = rep->r;
  char title[256];
  if (r->source)
    snprintf(title, sizeof title, "nnc training report: model %s (%s)", r->model ? r->model : "?", r->source);
  else
    snprintf(title, sizeof title, "nnc training report: model %s", r->model ? r->model : "?");
  cairo_set_source_rgb(cr, 0, 0, 0);
  font(cr, true);
  text_at(cr, 30, 36, title, 18, 0);
  font(cr, false);
  double y = 62;
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  text_lines(cr, 30, &y, r->settings, 11.5);
  cairo_set_source_rgb(cr, 0, 0, 0);
  font(cr, true);
  text_lines(cr, 30, &y, r->figures, 11.5);
  font(cr, false);
  if (!plane(r) && !images(r)) {
    char note[160];
    snprintf(note, sizeof note,
             "inputs have %d values per row: no data or decision-surface pages (they need a plane of two)",
             r->in_cols);
    cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
    text_lines(cr, 30, &y, note, 11.5);
  } else if (plane(r) && !r->predict) {
    cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
    text_lines(cr, 30, &y, "the output depends on the targets: no decision surface", 11.5);
  }
  cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
  cairo_set_line_width(cr, 1);
  cairo_move_to(cr, 30, header_height(rep) - 4);
  cairo_line_to(cr, W - 30, header_height(rep) - 4);
  cairo_stroke(cr);
}

static void draw_row(cairo_t *cr, const Report *rep, RowKind kind, double y0) {
  const ReportData *r = rep->r;
  Box left = {LEFT0, y0 + 36, PANEL_W, PANEL_H}, right = {LEFT1, y0 + 36, PANEL_W, PANEL_H};
  switch (kind) {
  case ROW_DATA:
  case ROW_SURFACE:
    plane_panel(cr, rep, &left, &r->train, kind == ROW_SURFACE, "train");
    plane_panel(cr, rep, &right, &r->valid, kind == ROW_SURFACE, "valid");
    break;
  case ROW_IMAGES: {
    Box wide = {LEFT0, y0 + 36, LEFT1 + PANEL_W - LEFT0, PANEL_H};
    images_panel(cr, r, &wide);
    break;
  }
  case ROW_CONFUSION:
    confusion_panel(cr, r, &left, &r->train, "train");
    confusion_panel(cr, r, &right, &r->valid, "valid");
    break;
  case ROW_CURVES:
    if (r->train_acc || r->valid_acc) {
      loss_panel(cr, r, &left);
      accuracy_panel(cr, r, &right);
    } else {
      Box wide = {LEFT0, y0 + 36, LEFT1 + PANEL_W - LEFT0, PANEL_H};
      loss_panel(cr, r, &wide);
    }
    break;
  }
}

static void plan(Report *rep) {
  const ReportData *r = rep->r;
  rep->nrows = 0;
  if (plane(r)) {
    rep->rows[rep->nrows++] = ROW_DATA;
    if (r->predict) rep->rows[rep->nrows++] = ROW_SURFACE;
  }
  if (images(r)) rep->rows[rep->nrows++] = ROW_IMAGES;
  if (confusion(r)) rep->rows[rep->nrows++] = ROW_CONFUSION;
  rep->rows[rep->nrows++] = ROW_CURVES;
  rep->header_lines = count_lines(r->settings) + count_lines(r->figures) +
                      (plane(r) ? !r->predict : !images(r));
  if (plane(r)) plane_view(rep);
  if (plane(r) && r->predict) surface_compute(rep);
}

static void page_start(cairo_t *cr) {
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  font(cr, false);
}

/* One tall page: the header and every row. */
static void draw_single(cairo_t *cr, const Report *rep) {
  page_start(cr);
  draw_header(cr, rep);
  for (int i = 0; i < rep->nrows; i++) draw_row(cr, rep, rep->rows[i], header_height(rep) + i * ROW_H);
}

/* One row per page, the header on the first, and an outline entry per page. */
static void draw_pages(cairo_surface_t *surface, cairo_t *cr, const Report *rep) {
  char link[32], title[160];
  for (int i = 0; i < rep->nrows; i++) {
    double top = i == 0 ? header_height(rep) : TOP_BAND;
    if (i > 0) {
      cairo_show_page(cr);
      cairo_pdf_surface_set_size(surface, W, TOP_BAND + ROW_H);
    }
    page_start(cr);
    if (i == 0) {
      draw_header(cr, rep);
    } else {
      snprintf(title, sizeof title, "model %s: %s", rep->r->model ? rep->r->model : "?", row_title[rep->rows[i]]);
      cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
      text_at(cr, 30, 28, title, 13, 0);
    }
    draw_row(cr, rep, rep->rows[i], top);
    snprintf(link, sizeof link, "page=%d", i + 1);
    cairo_pdf_surface_add_outline(surface, CAIRO_PDF_OUTLINE_ROOT, row_title[rep->rows[i]], link,
                                  CAIRO_PDF_OUTLINE_FLAG_OPEN);
  }
}

/* cairo's stream writer over the caller's ReportWriteFn. A failed write
 * is remembered, not returned: cairo's PDF surface, told of one, crashes
 * as it finishes (cairo 1.16, a memcpy in cairo_surface_finish); the
 * writer drops what follows a failure anyway. */
typedef struct Sink {
  ReportWriteFn write;
  void *ctx;
  bool failed;
} Sink;

static cairo_status_t sink_write(void *closure, const unsigned char *data, unsigned int length) {
  Sink *s = closure;
  if (!s->failed && s->write(s->ctx, data, length) != 0) s->failed = true;
  return CAIRO_STATUS_SUCCESS;
}

int nnc_report_draw(const char *ext, const ReportData *r, ReportWriteFn write, void *ctx, char *err,
                    size_t errlen) {
  Sink sink = {write, ctx, false};
  Report rep = {.r = r};
  plan(&rep);
  bool pdf = !strcmp(ext, "pdf");
  double height = pdf ? header_height(&rep) + ROW_H : header_height(&rep) + rep.nrows * ROW_H;
  cairo_surface_t *surface = !strcmp(ext, "svg") ? cairo_svg_surface_create_for_stream(sink_write, &sink, W, height)
                             : pdf ? cairo_pdf_surface_create_for_stream(sink_write, &sink, W, height)
                                   : cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, (int)ceil(height));
  if (pdf) {
    char title[160];
    snprintf(title, sizeof title, "nnc training report: %s", r->model ? r->model : "?");
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, title);
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "nnc");
  }
  cairo_t *cr = cairo_create(surface);
  if (pdf)
    draw_pages(surface, cr, &rep);
  else
    draw_single(cr, &rep);
  cairo_status_t st = cairo_status(cr);
  cairo_destroy(cr);
  if (st == CAIRO_STATUS_SUCCESS && !strcmp(ext, "png")) st = cairo_surface_write_to_png_stream(surface, sink_write, &sink);
  cairo_surface_finish(surface);
  if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(surface);
  if (st == CAIRO_STATUS_SUCCESS && sink.failed) st = CAIRO_STATUS_WRITE_ERROR;
  cairo_surface_destroy(surface);
  free(rep.grid);
  int rc = 0;
  if (st != CAIRO_STATUS_SUCCESS) {
    snprintf(err, errlen, "%s", cairo_status_to_string(st));
    rc = -1;
  }
  /* release cairo's and fontconfig's process-wide caches (the report is
     drawn once; LeakSanitizer would see them as leaks) */
  cairo_debug_reset_static_data();
  FcFini();
  return rc;
}
