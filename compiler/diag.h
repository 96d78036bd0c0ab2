/*
 * diag.h - user diagnostics.
 *
 * A source error prints, on standard error,
 *     moons.nn:7:8: error: unknown op 'relux'
 *       y = x -> relux
 *                ^
 * Errors are counted and the stage goes on where it can (several errors per
 * run); the driver stops after a stage that reported any. Errors that concern
 * a whole file (a checkpoint, a CSV file) are one line: `PATH: error: ...`.
 */
#ifndef NNC_DIAG_H
#define NNC_DIAG_H

#include <stdbool.h>
#include <stddef.h>

#include "nnc.h"

/* A position in a .nn file: 1-based line and column (bytes). */
typedef struct Loc {
  int line, col;
} Loc;

/* A source file held in memory for the whole compilation. */
typedef struct Source {
  const char *path; /* as given on the command line */
  const char *name; /* basename, used in dumps */
  char *text;       /* NUL-terminated copy of the file */
  size_t len;
} Source;

typedef struct Diag {
  const Source *src;
  int errors;
  int max_errors; /* stop printing after this many (0 = 20) */
  bool quiet;     /* count but print nothing (fuzzing) */
  NncDiagnostics *sink; /* when set: collect there instead of printing */
} Diag;

/* Biggest .nn file nnc reads. */
#define NNC_MAX_SOURCE_BYTES (4u << 20)

/* Read path into src. On failure prints `PATH: error: ...` and returns -1. */
int source_read(Source *src, const char *path);
/* Use text (not copied: must outlive src) as the source named path. */
void source_from_text(Source *src, const char *path, const char *text,
                      size_t len);
/* What source_read does to a file's text, in place: a UTF-8 byte order mark
 * at the start is dropped and a lone CR (old Mac line ends) becomes a
 * newline, so the lexer and the caret lines see one kind of line end. */
void source_normalize(char *text, size_t *len);

/* s for a message: bytes that are not printable as \xNN (valid UTF-8 is
 * kept), and cut to about 40 characters with "..." when longer. */
const char *diag_excerpt(char *buf, size_t n, const char *s);
void source_free(Source *src);

void diag_error(Diag *d, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* `PATH: error: MESSAGE` on one line (into the file sink when one is set). */
void diag_file_error(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* `PATH:LINE:COL: error: MESSAGE` on one line, for a place in a data file
 * (no source line or caret: the file is not the model's). */
void diag_file_error_at(const char *path, Loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write data to path (nnc_write_file: durable, never half a file) or, with
 * path NULL, to standard output. Returns 0, or 1 after reporting
 * `PATH: error: cannot write: ...`. */
int nnc_write_output(const char *path, const void *data, size_t len);

/* A one-line error already formatted as `PATH: error: MESSAGE` (the
 * runtime's messages), reported as diag_file_error reports. */
void diag_error_line(const char *line);

/* Collect this thread's diag_file_error messages into sink instead of
 * printing them (NULL: print again). Returns the previous sink. */
NncDiagnostics *diag_set_file_sink(NncDiagnostics *sink);

#endif
