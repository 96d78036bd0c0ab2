/*
 * plugin.c - loading nnc's plugins (see plugin.h), and the report's entry
 * points in libnnc, which hand the drawing to nnc-report.so.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include "plugin.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "diag.h"
#include "report.h"
#include "util.h"

#ifndef NNC_PLUGIN_DIR
#define NNC_PLUGIN_DIR "/usr/local/lib/nnc"   /* where nnc was to be installed */
#endif
#ifndef NNC_PLUGIN_FROM_BIN
#define NNC_PLUGIN_FROM_BIN "../lib/nnc" /* that, from the directory of nnc */
#endif

/* The directory part of path (in place); false when there is none. */
static bool dir_of(char *path) {
  char *slash = strrchr(path, '/');
  if (!slash) return false;
  *slash = 0;
  return true;
}

/* out = a + b, when it fits in PATH_MAX */
static bool join(char *out, const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la + lb >= PATH_MAX) return false;
  memcpy(out, a, la);
  memcpy(out + la, b, lb + 1);
  return true;
}

/* dlopen nnc-NAME.so from the first directory that has it. MPI's library
 * loads its own components, which need its symbols: RTLD_GLOBAL. */
static void *open_plugin(const char *name, char *err, size_t errlen) {
  static char dirs[5][PATH_MAX];
  int n = 0;
  ssize_t len = readlink("/proc/self/exe", dirs[n], PATH_MAX - 1);
  if (len > 0) {
    dirs[n][len] = 0;
    if (dir_of(dirs[n]) && join(dirs[n + 1], dirs[n], "/" NNC_PLUGIN_FROM_BIN)) n += 2;
  }
  Dl_info info;
  if (dladdr((void *)open_plugin, &info) && info.dli_fname && info.dli_fname[0] == '/' &&
      join(dirs[n], info.dli_fname, "") && dir_of(dirs[n]) && join(dirs[n + 1], dirs[n], "/nnc"))
    n += 2;
  join(dirs[n++], NNC_PLUGIN_DIR, "");
  char file[64], path[PATH_MAX];
  snprintf(file, sizeof file, "/nnc-%s.so", name);
  const char *why = "not found";
  for (int i = 0; i < n; i++) {
    if (!join(path, dirs[i], file) || access(path, F_OK) != 0) continue;
    void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (h) return h;
    why = dlerror();
    break;
  }
  snprintf(err, errlen, "cannot load nnc-%s.so: %s (looked next to %s and in %s)", name, why ? why : "?",
           n > 1 ? dirs[0] : "nnc", NNC_PLUGIN_DIR);
  return NULL;
}

static pthread_mutex_t plugin_lock = PTHREAD_MUTEX_INITIALIZER;

void *plugin_symbol(const char *name, const char *symbol, char *err, size_t errlen) {
  static struct {
    char name[16];
    void *handle;
  } loaded[4];
  pthread_mutex_lock(&plugin_lock);
  void *h = NULL;
  int i = 0;
  for (; i < 4 && loaded[i].handle; i++)
    if (!strcmp(loaded[i].name, name)) h = loaded[i].handle;
  if (!h && (h = open_plugin(name, err, errlen)) && i < 4) {
    snprintf(loaded[i].name, sizeof loaded[i].name, "%s", name);
    loaded[i].handle = h;
  }
  pthread_mutex_unlock(&plugin_lock);
  if (!h) return NULL;
  void *sym = dlsym(h, symbol);
  if (!sym) snprintf(err, errlen, "nnc-%s.so has no %s", name, symbol);
  return sym;
}

/* ---- the report (report.h): checked here, drawn by nnc-report.so ---- */

/* The report's format from path's extension, in any case (.PNG as .png),
 * or NULL. */
static const char *report_format(const char *path) {
  const char *ext = report_extension(path);
  return !strcasecmp(ext, "svg") ? "svg" : !strcasecmp(ext, "pdf") ? "pdf" : !strcasecmp(ext, "png") ? "png" : NULL;
}

int report_check_path(const char *path) {
  if (!report_format(path)) {
    diag_file_error(path, "--plot writes .svg, .pdf or .png files");
    return -1;
  }
  return 0;
}

static ReportDrawFn report_draw(char *err, size_t errlen) {
  return (ReportDrawFn)plugin_symbol("report", REPORT_DRAW_SYMBOL, err, errlen);
}

int report_load(const char *path) {
  char err[PATH_MAX + 256] = "";
  if (report_draw(err, sizeof err)) return 0;
  diag_file_error(path, "cannot write the report: %s", err);
  return -1;
}

static int write_out(void *ctx, const void *data, size_t len) {
  NncOut *out = ctx;
  nnc_out_write(out, data, len);
  return out->err ? -1 : 0;
}

int report_write(const char *path, const ReportData *r) {
  if (report_check_path(path) != 0) return -1;
  char err[PATH_MAX + 256] = "";
  ReportDrawFn draw = report_draw(err, sizeof err);
  NncOut out;
  int e = draw ? nnc_out_open(&out, path, 0) : 0;
  if (e) {
    diag_file_error(path, "cannot write: %s", strerror(e));
    return -1;
  }
  if (draw && draw(report_format(path), r, write_out, &out, err, sizeof err) == 0) {
    e = nnc_out_close(&out);
    if (e == 0) return 0;
    snprintf(err, sizeof err, "%s", strerror(e));
  } else if (draw) {
    if (out.err) snprintf(err, sizeof err, "%s", strerror(out.err));
    nnc_out_discard(&out);
  }
  diag_file_error(path, "cannot write the report: %s", err);
  return -1;
}
