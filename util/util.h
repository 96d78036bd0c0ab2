/*
 * util.h - the small things every stage uses: an arena allocator (one per
 * compilation, freed at once), growable arrays, a string builder, a string
 * map, the closest-name search for "did you mean" hints, the internal-error
 * macros and the output-file writer. Depends on nothing else in nnc.
 *
 * User mistakes never go through here: they are diagnostics (diag.h).
 * NNC_ASSERT and nnc_die are for broken invariants inside nnc itself.
 */
#ifndef NNC_UTIL_H
#define NNC_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- internal errors ---- */

_Noreturn void nnc_die_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define nnc_die(...) nnc_die_at(__FILE__, __LINE__, __VA_ARGS__)
#define NNC_ASSERT(x) \
  ((x) ? (void)0 : nnc_die_at(__FILE__, __LINE__, "assertion failed: %s", #x))

/* Memory exhausted: "nnc: error: out of memory ...", exit status 1. */
_Noreturn void nnc_out_of_memory(size_t bytes);
/* malloc/calloc/realloc that end the process on exhaustion (sizes are checked against
 * the limits of limits.h long before they could be absurd). */
void *nnc_xmalloc(size_t n);
void *nnc_xcalloc(size_t n, size_t size);
void *nnc_xrealloc(void *p, size_t n);
char *nnc_xstrdup(const char *s);
/* n zeroed bytes, 64-byte aligned (a parameter buffer's alignment); free() it.
 * Its pages are set up in bulk (nnc_prefault): it is zeroed here anyway. */
void *nnc_xaligned(size_t n);

/* ---- large memory, its pages set up in bulk ----
 * A page touched for the first time costs a fault each (about 14-25 us on
 * a virtual machine); the kernel sets up a range's pages at once for a
 * fraction of that, in 2 MiB huge pages where it can (one fault, one TLB
 * entry for 512 pages). Below NNC_BULK_MIN none of this pays. */
#define NNC_BULK_MIN ((size_t)256 << 10)

/* n zeroed bytes, 64-byte aligned, every page present: from n >=
 * NNC_BULK_MIN a private mapping of its own (rounded up to whole huge
 * pages when that adds at most n/16 bytes), below it the heap. NULL (errno
 * set) when memory is short. Free with nnc_bulk_free and the same n. */
void *nnc_bulk_alloc(size_t n);
void nnc_bulk_free(void *p, size_t n);
/* The bytes nnc_bulk_alloc(n) takes (for accounts and tests). */
size_t nnc_bulk_size(size_t n);

/* Set up the pages of [p, p + n), memory the caller is about to write
 * all of (any allocation, freed as it was allocated), in bulk now instead
 * of one fault at a time at first touch: huge pages over the 2 MiB-aligned
 * stretches that lie inside it, then every page it touches made present
 * and writable. Nothing when n < NNC_BULK_MIN; best effort: a kernel
 * without it (Linux < 5.14) or memory pressure leave the pages to fault
 * in as before. */
void nnc_prefault(void *p, size_t n);
/* nnc_xmalloc(n) with its pages set up at once: for memory the caller
 * writes in full next (a data set, a copy of one). free() it. */
void *nnc_xmalloc_filled(size_t n);

/* ---- arena: bump allocation in chained blocks, freed all at once ---- */

typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
  ArenaBlock *head;
  size_t used; /* bytes used in head */
} Arena;

void arena_init(Arena *a);
void arena_free(Arena *a);
void *arena_alloc(Arena *a, size_t n); /* zeroed, 16-byte aligned */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define ARENA_NEW(a, T) ((T *)arena_alloc((a), sizeof(T)))
#define ARENA_ARRAY(a, T, n) ((T *)arena_alloc((a), sizeof(T) * (size_t)(n)))

/* ---- growable array of pointers (heap, owner frees) ---- */

typedef struct PtrVec {
  void **items;
  int len, cap;
} PtrVec;

void ptrvec_push(PtrVec *v, void *p);
void ptrvec_free(PtrVec *v);
/* The same growth in an arena (for vectors that live as long as it). */
void ptrvec_push_arena(Arena *a, PtrVec *v, void *p);

/* ---- string builder (heap) ---- */

typedef struct StrBuf {
  char *data;
  size_t len, cap;
} StrBuf;

void sb_putc(StrBuf *sb, char c);
void sb_puts(StrBuf *sb, const char *s);
/* n bytes, which may hold NULs (the buffer still ends in one more). */
void sb_append(StrBuf *sb, const void *data, size_t n);
void sb_printf(StrBuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sb_vprintf(StrBuf *sb, const char *fmt, va_list ap);
void sb_free(StrBuf *sb);
/* Pad with spaces until the current line is `col` characters wide. */
void sb_pad_to(StrBuf *sb, size_t line_start, size_t col);

/* ---- string map (heap, owner frees): open addressing on FNV-1a ---- */

typedef struct StrMap {
  const char **keys; /* not copied: each must live as long as the map */
  void **vals;
  int len, cap;      /* cap: a power of two, or 0 */
} StrMap;

/* The value stored under key, or NULL. */
void *strmap_get(const StrMap *m, const char *key);
/* Store val (not NULL) under key, replacing what was there. */
void strmap_put(StrMap *m, const char *key, void *val);
void strmap_free(StrMap *m);

/* FNV-1a, 64 bits: the string map's hash, and a stable one to derive
 * seeds from names; bytes_hash of n bytes (str_hash is that of s's). */
uint64_t str_hash(const char *s);
uint64_t bytes_hash(const void *data, size_t n);

/* ---- the closest name, for "did you mean" hints ----
 *
 *   Closest c = closest_start(name, 2);
 *   for (...) closest_offer(&c, candidate);
 *   if (c.best) ... "did you mean '%s'?", c.best
 *
 * A candidate counts when it is at most max_edits insertions, deletions or
 * substitutions away and fewer than name's length ('q' is not a misspelling
 * of 'x'); the first of the closest wins. */
typedef struct Closest {
  const char *name;
  const char *best; /* NULL while nothing counts */
  int edits;        /* a candidate must need fewer than this */
} Closest;

Closest closest_start(const char *name, int max_edits);
void closest_offer(Closest *c, const char *candidate);

/* Shortest %.17g-style text that reads back as the same double. */
void fmt_number(char *out, size_t n, double v);

/* Seconds from a monotonic clock. */
double nnc_now(void);

/* The pages of the loaded segment (of the program or a library) that
 * holds addr, up to its unwind tables (.eh_frame_hdr, .eh_frame) when they
 * lie in it after addr: read only when an exception is thrown. False when
 * no segment holds addr. */
bool nnc_segment_of(const void *addr, uintptr_t *start, uintptr_t *end);

/* Drop from this process the pages it has read of the executable code
 * mapped around `code` (the segment of the program or library holding
 * it): they stay in the page cache and come back on a page fault when run
 * again. Returns the bytes of the segment, 0 when none was found or the
 * system refused. */
size_t nnc_release_code_pages(const void *code);

/* ---- output files: every file nnc writes goes through here ---- */

enum {
  NNC_WRITE_PRIVATE = 1, /* a new file gets mode 0600 (else 0666), less the umask */
  NNC_WRITE_SYNC = 2,    /* fsync the data before the rename, the directory after */
};

/* An output being written. What the path names decides how:
 *   - a regular file, or nothing yet: a temporary file in the same directory
 *     (PATH.tmp.XXXXXX) is renamed over it once complete, so the path holds
 *     the old file or the new one, never half of one; a file that existed
 *     keeps its mode;
 *   - a symbolic link: the same for the file it names (links followed to
 *     the end), so the link stays and its target is replaced;
 *   - a device, FIFO or socket (/dev/null, a pipe), or a descriptor of this
 *     process (/dev/stdout, /dev/fd/N): written directly, since replacing
 *     it would destroy it (or write where nobody looks);
 *   - a directory, or an empty path: refused. */
typedef struct NncOut {
  FILE *f;
  int dirfd;  /* the directory the temporary file is in; -1 when writing directly */
  char *tmp;  /* the temporary file's name there */
  char *name; /* the name it replaces there */
  int flags;
  int err;   /* the first failure's errno, 0 while all is well */
  bool busy; /* counted in nnc_out_busy */
} NncOut;

/* 0, or the errno value of the failure (nothing is left behind then). */
int nnc_out_open(NncOut *o, const char *path, int flags);
/* The file name in the directory dirfd (not taken), always through a
 * temporary file renamed over name: a link there is replaced, not followed
 * (the compile cache, in a directory it has checked). */
int nnc_out_open_at(NncOut *o, int dirfd, const char *name, int flags);
/* Appends; a failure is kept for nnc_out_close. */
void nnc_out_write(NncOut *o, const void *data, size_t len);
/* Finish: the file is in place. 0, or the errno value of the first
 * failure, and then the temporary file is removed. */
int nnc_out_close(NncOut *o);
/* Give up: the temporary file is removed, path is as it was. */
void nnc_out_discard(NncOut *o);
/* The calling thread in the "C" locale (uselocale) until nnc_c_locale_end:
 * numbers are read and written with a '.' whatever locale the host
 * program set (libnnc's calls; the nnc command never sets one). Returns
 * what to give nnc_c_locale_end. */
void *nnc_c_locale_begin(void);
void nnc_c_locale_end(void *previous);

/* Whether a temporary file is being written (from a signal handler too:
 * a signal that would end the process waits until the file is whole). */
bool nnc_out_busy(void);
/* The whole file at once. 0, or the errno value of the failure. */
int nnc_write_file(const char *path, const void *data, size_t len, int flags);
/* The file a write to path creates or replaces, as the real path of its
 * directory and its name, its symbolic links followed (to a file not yet
 * there too): two names of one output compare equal. malloc'd; NULL when
 * the directory is not there, or the links loop. */
char *nnc_out_target(const char *path);
/* Whether path could be written (before a long run ends in "cannot
 * write"): 0, or the errno value of the reason (EISDIR, ENOENT, EACCES). */
int nnc_out_check(const char *path);

#endif
