/*
 * diag.c - printing diagnostics with the source line and a caret.
 */
#include "diag.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

int source_read(Source *src, const char *path) {
  memset(src, 0, sizeof *src);
  struct stat st;
  if (stat(path, &st) != 0) {
    diag_file_error(path, "cannot open: %s", strerror(errno));
    return -1;
  }
  if (S_ISDIR(st.st_mode)) {
    diag_file_error(path, "is a directory, not a .nn file");
    return -1;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    diag_file_error(path, "cannot open: %s", strerror(errno));
    return -1;
  }
  StrBuf sb = {0};
  enum { CHUNK = 65536 };
  char *chunk = nnc_xmalloc(CHUNK); /* (not on the stack: a small `ulimit -s` is no crash) */
  size_t n;
  while ((n = fread(chunk, 1, CHUNK, f)) > 0) {
    if (sb.len + n > NNC_MAX_SOURCE_BYTES) {
      fclose(f);
      free(chunk);
      sb_free(&sb);
      diag_file_error(path, "file is too large for a .nn file (limit %u MiB)",
                      NNC_MAX_SOURCE_BYTES >> 20);
      return -1;
    }
    for (size_t i = 0; i < n; i++) sb_putc(&sb, chunk[i]);
  }
  free(chunk);
  int failed = ferror(f);
  fclose(f);
  if (failed) {
    sb_free(&sb);
    diag_file_error(path, "read error");
    return -1;
  }
  if (!sb.data) sb_puts(&sb, "");
  const char *nul = memchr(sb.data, 0, sb.len);
  if (nul) {
    diag_file_error(path, "not a text file (a NUL byte at offset %zu)", (size_t)(nul - sb.data));
    sb_free(&sb);
    return -1;
  }
  source_normalize(sb.data, &sb.len);
  src->path = path;
  src->name = base_name(path);
  src->text = sb.data;
  src->len = sb.len;
  return 0;
}

void source_normalize(char *text, size_t *len) {
  if (*len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
    memmove(text, text + 3, *len - 3 + 1); /* with the NUL */
    *len -= 3;
  }
  for (size_t i = 0; i < *len; i++)
    if (text[i] == '\r' && (i + 1 == *len || text[i + 1] != '\n')) text[i] = '\n';
}

/* The length of the valid UTF-8 sequence of a non-ASCII character at p
 * (before end), or 0. */
static int utf8_len(const char *p, const char *end) {
  unsigned char c = (unsigned char)*p;
  int n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n == 0 || end - p < n) return 0;
  for (int k = 1; k < n; k++)
    if (((unsigned char)p[k] & 0xc0) != 0x80) return 0;
  return n;
}

/* Appends [p, end) with what a terminal would not show as \xNN (tabs kept);
 * returns the bytes appended for the first character (for the caret). */
static void put_shown(StrBuf *sb, const char *p, const char *end) {
  while (p < end) {
    unsigned char c = (unsigned char)*p;
    int n = c >= 128 ? utf8_len(p, end) : 0;
    if (c == '\t' || (c >= 32 && c < 127)) {
      sb_putc(sb, (char)c);
      p++;
    } else if (n > 0) {
      for (int k = 0; k < n; k++) sb_putc(sb, p[k]);
      p += n;
    } else {
      sb_printf(sb, "\\x%02x", c);
      p++;
    }
  }
}

const char *diag_excerpt(char *buf, size_t n, const char *s) {
  enum { KEEP = 32, LONGEST = 40 };
  size_t len = strlen(s), cut = len;
  if (len > LONGEST) { /* not in the middle of a UTF-8 sequence */
    cut = KEEP;
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80) cut--;
  }
  StrBuf sb = {0};
  put_shown(&sb, s, s + cut);
  if (cut < len) sb_puts(&sb, "...");
  snprintf(buf, n, "%s", sb.data ? sb.data : "");
  sb_free(&sb);
  return buf;
}

void source_from_text(Source *src, const char *path, const char *text,
                      size_t len) {
  src->path = path;
  src->name = base_name(path);
  src->text = (char *)text;
  src->len = len;
}

void source_free(Source *src) {
  free(src->text);
  src->text = NULL;
}

/* Line `line` of the source and a caret under column `col`, appended to sb.
 * Tabs in the prefix are kept so the caret lines up in a terminal. A very
 * long line shows a window around the column. */
static void caret_text(StrBuf *out, const Source *src, Loc loc) {
  if (!src || !src->text || loc.line < 1) return;
  const char *p = src->text, *end = src->text + src->len;
  for (int l = 1; l < loc.line && p < end; p++)
    if (*p == '\n') l++;
  if (p >= end && loc.line > 1) return;
  const char *eol = p;
  while (eol < end && *eol != '\n') eol++;
  if (eol > p && eol[-1] == '\r') eol--;
  enum { WIDTH = 160, BEFORE = 80 };
  const char *at = p + (loc.col > 1 ? loc.col - 1 : 0);
  if (at > eol) at = eol;
  const char *from = p, *to = eol;
  if (eol - p > WIDTH) {
    if (at - p > BEFORE) from = at - BEFORE;
    to = eol - from > WIDTH ? from + WIDTH : eol;
  }
  StrBuf sb = {0};
  sb_puts(&sb, from > p ? "  ..." : "  ");
  put_shown(&sb, from, to); /* control bytes would garble the terminal */
  sb_puts(&sb, to < eol ? "...\n  " : "\n  ");
  if (from > p) sb_puts(&sb, "   ");
  /* the caret under column col: as many columns as each shown character */
  for (const char *q = from; q < at;) {
    unsigned char c = (unsigned char)*q;
    int n = c >= 128 ? utf8_len(q, eol) : 0;
    if (c == '\t' || (c >= 32 && c < 127) || n > 0) {
      sb_putc(&sb, c == '\t' ? '\t' : ' ');
      q += n > 0 ? n : 1;
    } else {
      sb_puts(&sb, "    ");
      q++;
    }
  }
  sb_puts(&sb, "^\n");
  sb_puts(out, sb.data);
  sb_free(&sb);
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *c = nnc_xmalloc(n);
  memcpy(c, s, n);
  return c;
}

static void collect(NncDiagnostics *sink, const char *file, Loc loc, NncSeverity sev, const char *message,
                    const char *text) {
  sink->items = realloc(sink->items, sizeof *sink->items * (size_t)(sink->count + 1));
  if (!sink->items) nnc_out_of_memory(sizeof *sink->items * (size_t)(sink->count + 1));
  NncDiagnostic *d = &sink->items[sink->count++];
  d->file = xstrdup(file);
  d->line = loc.line;
  d->col = loc.col;
  d->severity = sev;
  d->message = xstrdup(message);
  d->text = xstrdup(text);
}

void nnc_diagnostics_free(NncDiagnostics *d) {
  if (!d) return;
  for (int i = 0; i < d->count; i++) {
    free((char *)d->items[i].file);
    free((char *)d->items[i].message);
    free((char *)d->items[i].text);
  }
  free(d->items);
  d->items = NULL;
  d->count = 0;
}

/* Print text on standard error, or collect it with its parts. One write, as
 * standard error is not buffered. */
static _Thread_local NncDiagnostics *file_sink;

/* A Diag without a sink of its own reports into the thread's file sink when
 * one is set (a library call), else on standard error. */
static void emit(NncDiagnostics *sink, const char *file, Loc loc, NncSeverity sev, const char *message,
                 const char *text) {
  /* every line as a terminal shows it: a file name with a newline or an
     escape sequence in it is \xNN, so one message stays one line */
  StrBuf shown = {0};
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
    put_shown(&shown, p, end);
    if (nl) sb_putc(&shown, '\n');
    p = nl ? nl + 1 : end;
  }
  if (!sink) sink = file_sink;
  if (sink)
    collect(sink, file, loc, sev, message, shown.data ? shown.data : "");
  else
    fputs(shown.data ? shown.data : "", stderr);
  sb_free(&shown);
}

static void report(Diag *d, Loc loc, const char *kind, const char *fmt,
                   va_list ap) {
  if (d->quiet) return;
  int limit = d->max_errors ? d->max_errors : 20;
  if (d->errors > limit) return;
  const char *path = d->src ? d->src->path : "nnc";
  StrBuf text = {0};
  if (d->errors == limit && strcmp(kind, "error") == 0) {
    sb_printf(&text, "%s: note: too many errors, stopping\n", path);
    emit(d->sink, path, (Loc){0, 0}, NNC_NOTE, "too many errors, stopping", text.data);
    sb_free(&text);
    return;
  }
  StrBuf msg = {0};
  sb_vprintf(&msg, fmt, ap);
  put_shown(&text, path, path + strlen(path)); /* (a newline in a file name: \x0a) */
  if (loc.line > 0)
    sb_printf(&text, ":%d:%d: %s: %s\n", loc.line, loc.col, kind, msg.data ? msg.data : "");
  else
    sb_printf(&text, ": %s: %s\n", kind, msg.data ? msg.data : "");
  if (loc.line > 0) caret_text(&text, d->src, loc);
  emit(d->sink, path, loc, strcmp(kind, "error") == 0 ? NNC_ERROR : NNC_NOTE, msg.data ? msg.data : "", text.data);
  sb_free(&msg);
  sb_free(&text);
}

void diag_error(Diag *d, Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(d, loc, "error", fmt, ap);
  va_end(ap);
  d->errors++;
}

void diag_note(Diag *d, Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(d, loc, "note", fmt, ap);
  va_end(ap);
}

NncDiagnostics *diag_set_file_sink(NncDiagnostics *sink) {
  NncDiagnostics *old = file_sink;
  file_sink = sink;
  return old;
}

void diag_error_line(const char *line) {
  const char *sep = strstr(line, ": error: ");
  char *path = NULL;
  if (sep) {
    path = nnc_xmalloc((size_t)(sep - line) + 1);
    memcpy(path, line, (size_t)(sep - line));
    path[sep - line] = 0;
  }
  /* the path as diag_file_error shows it: a newline in it would split the
     line before emit sees it (the runtime formats these messages) */
  StrBuf text = {0};
  if (path) put_shown(&text, path, path + strlen(path));
  sb_printf(&text, "%s\n", sep ? sep : line);
  emit(file_sink, path ? path : "nnc", (Loc){0, 0}, NNC_ERROR, sep ? sep + 9 : line, text.data);
  sb_free(&text);
  free(path);
}

static void file_error(const char *path, Loc loc, const char *fmt, va_list ap) {
  StrBuf msg = {0}, text = {0};
  sb_vprintf(&msg, fmt, ap);
  put_shown(&text, path, path + strlen(path));
  if (loc.line > 0) sb_printf(&text, ":%d:%d", loc.line, loc.col);
  sb_printf(&text, ": error: %s\n", msg.data ? msg.data : "");
  emit(file_sink, path, loc, NNC_ERROR, msg.data ? msg.data : "", text.data);
  sb_free(&msg);
  sb_free(&text);
}

void diag_file_error(const char *path, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  file_error(path, (Loc){0, 0}, fmt, ap);
  va_end(ap);
}

void diag_file_error_at(const char *path, Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  file_error(path, loc, fmt, ap);
  va_end(ap);
}

int nnc_write_output(const char *path, const void *data, size_t len) {
  if (!path) {
    fwrite(data, 1, len, stdout);
    return fflush(stdout) == 0 ? 0 : 1;
  }
  int err = nnc_write_file(path, data, len, NNC_WRITE_SYNC);
  if (err) diag_file_error(path, "cannot write: %s", strerror(err));
  return err ? 1 : 0;
}
