/*
 * util.c - arena, growable arrays, string builder, string map, closest
 * name, internal errors, code pages, output files.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <locale.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Noreturn void nnc_die_at(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "nnc: internal error at %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  abort();
}

/* Memory exhausted (a ulimit, a cgroup's limit, an overcommit policy): not
 * a broken invariant, so one error line and exit status 1, without a core
 * dump; an output being written is left as it was (its temporary file may
 * stay beside it). */
_Noreturn void nnc_out_of_memory(size_t bytes) {
  fprintf(stderr, "nnc: error: out of memory (an allocation of %zu bytes failed)\n", bytes);
  fflush(stdout);
  _exit(1);
}

void *nnc_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) nnc_out_of_memory(n);
  return p;
}

void *nnc_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) nnc_out_of_memory(n > SIZE_MAX / (size ? size : 1) ? SIZE_MAX : n * size);
  return p;
}

void *nnc_xaligned(size_t n) {
  size_t rounded = (n + 63) / 64 * 64;
  void *p = aligned_alloc(64, rounded ? rounded : 64);
  if (!p) nnc_out_of_memory(n);
  nnc_prefault(p, rounded);
  memset(p, 0, rounded ? rounded : 64);
  return p;
}

/* ---- large memory, its pages set up in bulk ---- */

#define HUGE_PAGE ((uintptr_t)2 << 20)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

static uintptr_t page_size(void) {
  static uintptr_t size;
  if (!size) {
    long s = sysconf(_SC_PAGESIZE);
    size = s > 0 ? (uintptr_t)s : 4096;
  }
  return size;
}

static uintptr_t round_up(uintptr_t x, uintptr_t to) { return (x + to - 1) / to * to; }

/* Huge pages for [hlo, hhi) (whole pages: the flag is per mapping, and
 * flagging part of one would split it in two, which mremap, and so
 * glibc's realloc of a large block, refuses to move: it copies instead),
 * then the pages of [lo, hi) present; -1 (errno set) when the kernel
 * refused the pages for lack of memory. */
static int populate(uintptr_t hlo, uintptr_t hhi, uintptr_t lo, uintptr_t hi) {
#ifdef MADV_HUGEPAGE
  if (hhi - hlo >= HUGE_PAGE) (void)madvise((void *)hlo, hhi - hlo, MADV_HUGEPAGE); /* a hint: THP may be off */
#endif
  if (hi > lo && madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) != 0) {
    /* an older kernel (EINVAL) leaves the pages to fault in as before */
    if (errno == ENOMEM || errno == EFAULT) return -1;
  }
  return 0;
}

void nnc_prefault(void *p, size_t n) {
  if (!p || n < NNC_BULK_MIN) return;
  uintptr_t ps = page_size();
  /* the huge-page hint over every page the range touches: for a large
     malloc block, its whole mapping; the pages made present are those
     wholly inside it (the pages at its ends may be shared with other
     allocations: they fault in as before) */
  uintptr_t first = (uintptr_t)p / ps * ps, end = round_up((uintptr_t)p + n, ps);
  uintptr_t lo = round_up((uintptr_t)p, ps), hi = ((uintptr_t)p + n) / ps * ps;
  int saved = errno;
  (void)populate(first, end, lo, hi);
  errno = saved;
}

void *nnc_xmalloc_filled(size_t n) {
  void *p = nnc_xmalloc(n);
  nnc_prefault(p, n);
  return p;
}

size_t nnc_bulk_size(size_t n) {
  if (n < NNC_BULK_MIN) return n;
  size_t len = round_up(n, page_size());
  size_t huge = round_up(n, HUGE_PAGE);
  return n >= HUGE_PAGE && huge - n <= n / 16 ? huge : len;
}

void *nnc_bulk_alloc(size_t n) {
  if (n < NNC_BULK_MIN) {
    size_t rounded = round_up(n ? n : 1, 64);
    void *p = aligned_alloc(64, rounded);
    if (p) memset(p, 0, rounded);
    return p;
  }
  size_t len = nnc_bulk_size(n);
  /* map a huge page more, then unmap what lies before the first 2 MiB
     boundary and after the length: the mapping starts on a huge page */
  size_t slack = len >= HUGE_PAGE ? HUGE_PAGE : 0;
  if (len > SIZE_MAX - slack) {
    errno = ENOMEM;
    return NULL;
  }
  char *m = mmap(NULL, len + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return NULL;
  char *p = m;
  if (slack) {
    p = (char *)round_up((uintptr_t)m, HUGE_PAGE);
    if (p > m) munmap(m, (size_t)(p - m));
    if (m + len + slack > p + len) munmap(p + len, (size_t)(m + len + slack - (p + len)));
  }
  if (populate((uintptr_t)p, (uintptr_t)p + len, (uintptr_t)p, (uintptr_t)p + len) != 0) {
    int saved = errno;
    munmap(p, len);
    errno = saved;
    return NULL;
  }
  return p;
}

void nnc_bulk_free(void *p, size_t n) {
  if (!p) return;
  if (n < NNC_BULK_MIN)
    free(p);
  else
    munmap(p, nnc_bulk_size(n));
}

void *nnc_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) nnc_out_of_memory(n);
  return q;
}

char *nnc_xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(nnc_xmalloc(n), s, n);
}

/* ---- arena ---- */

struct ArenaBlock {
  ArenaBlock *next;
  size_t size;
  _Alignas(16) unsigned char data[];
};

enum { ARENA_BLOCK = 64 * 1024 };

void arena_init(Arena *a) {
  a->head = NULL;
  a->used = 0;
}

void arena_free(Arena *a) {
  ArenaBlock *b = a->head;
  while (b) {
    ArenaBlock *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
  a->used = 0;
}

void *arena_alloc(Arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (!a->head || a->used + n > a->head->size) {
    size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
    ArenaBlock *b = nnc_xmalloc(sizeof(ArenaBlock) + size);
    b->size = size;
    b->next = a->head;
    a->head = b;
    a->used = 0;
  }
  void *p = a->head->data + a->used;
  a->used += n;
  memset(p, 0, n);
  return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *arena_strdup(Arena *a, const char *s) {
  return arena_strndup(a, s, strlen(s));
}

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = arena_alloc(a, (size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}

/* ---- PtrVec ---- */

void ptrvec_push(PtrVec *v, void *p) {
  if (v->len == v->cap) {
    v->cap = v->cap ? v->cap * 2 : 8;
    v->items = nnc_xrealloc(v->items, sizeof(void *) * (size_t)v->cap);
  }
  v->items[v->len++] = p;
}

void ptrvec_push_arena(Arena *a, PtrVec *v, void *p) {
  if (v->len == v->cap) {
    int cap = v->cap ? v->cap * 2 : 8;
    void **items = arena_alloc(a, sizeof(void *) * (size_t)cap);
    if (v->len) memcpy(items, v->items, sizeof(void *) * (size_t)v->len);
    v->items = items;
    v->cap = cap;
  }
  v->items[v->len++] = p;
}

void ptrvec_free(PtrVec *v) {
  free(v->items);
  v->items = NULL;
  v->len = v->cap = 0;
}

/* ---- StrMap ---- */

uint64_t bytes_hash(const void *data, size_t n) {
  const unsigned char *p = data;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

uint64_t str_hash(const char *s) { return bytes_hash(s, strlen(s)); }

/* The slot of key, or of the empty slot where it would go. */
static int strmap_slot(const StrMap *m, const char *key) {
  uint64_t mask = (uint64_t)m->cap - 1;
  uint64_t i = str_hash(key) & mask;
  while (m->keys[i] && strcmp(m->keys[i], key) != 0) i = (i + 1) & mask;
  return (int)i;
}

void *strmap_get(const StrMap *m, const char *key) {
  if (!m->cap) return NULL;
  int i = strmap_slot(m, key);
  return m->keys[i] ? m->vals[i] : NULL;
}

void strmap_put(StrMap *m, const char *key, void *val) {
  NNC_ASSERT(val);
  if (2 * (m->len + 1) > m->cap) { /* at most half full: grow, put everything back */
    StrMap old = *m;
    m->cap = old.cap ? old.cap * 2 : 64;
    m->keys = nnc_xcalloc((size_t)m->cap, sizeof *m->keys);
    m->vals = nnc_xcalloc((size_t)m->cap, sizeof *m->vals);
    m->len = 0;
    for (int i = 0; i < old.cap; i++)
      if (old.keys[i]) strmap_put(m, old.keys[i], old.vals[i]);
    strmap_free(&old);
  }
  int i = strmap_slot(m, key);
  if (!m->keys[i]) m->len++;
  m->keys[i] = key;
  m->vals[i] = val;
}

void strmap_free(StrMap *m) {
  free(m->keys);
  free(m->vals);
  *m = (StrMap){0};
}

/* ---- Closest ---- */

/* Edit distance, for names (longer ones are never close). */
static int edit_distance(const char *a, const char *b) {
  int la = (int)strlen(a), lb = (int)strlen(b);
  if (la > 40 || lb > 40) return 99;
  int d[41][41];
  for (int i = 0; i <= la; i++) d[i][0] = i;
  for (int j = 0; j <= lb; j++) d[0][j] = j;
  for (int i = 1; i <= la; i++)
    for (int j = 1; j <= lb; j++) {
      int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      d[i][j] = best;
    }
  return d[la][lb];
}

Closest closest_start(const char *name, int max_edits) {
  int len = (int)strlen(name);
  return (Closest){name, NULL, max_edits < len ? max_edits + 1 : len};
}

void closest_offer(Closest *c, const char *candidate) {
  int d = edit_distance(c->name, candidate);
  if (d < c->edits) {
    c->edits = d;
    c->best = candidate;
  }
}

/* ---- StrBuf ---- */

static void sb_reserve(StrBuf *sb, size_t extra) {
  if (sb->len + extra + 1 <= sb->cap) return;
  size_t cap = sb->cap ? sb->cap : 256;
  while (cap < sb->len + extra + 1) cap *= 2;
  sb->data = nnc_xrealloc(sb->data, cap);
  sb->cap = cap;
}

void sb_putc(StrBuf *sb, char c) {
  sb_reserve(sb, 1);
  sb->data[sb->len++] = c;
  sb->data[sb->len] = 0;
}

void sb_puts(StrBuf *sb, const char *s) {
  size_t n = strlen(s);
  sb_reserve(sb, n);
  memcpy(sb->data + sb->len, s, n + 1);
  sb->len += n;
}

void sb_append(StrBuf *sb, const void *data, size_t n) {
  sb_reserve(sb, n);
  memcpy(sb->data + sb->len, data, n);
  sb->len += n;
  sb->data[sb->len] = 0;
}

void sb_vprintf(StrBuf *sb, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  sb_reserve(sb, (size_t)n);
  vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  sb->len += (size_t)n;
}

void sb_printf(StrBuf *sb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sb_vprintf(sb, fmt, ap);
  va_end(ap);
}

void sb_pad_to(StrBuf *sb, size_t line_start, size_t col) {
  while (sb->len - line_start < col) sb_putc(sb, ' ');
}

void sb_free(StrBuf *sb) {
  free(sb->data);
  sb->data = NULL;
  sb->len = sb->cap = 0;
}

void fmt_number(char *out, size_t n, double v) {
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(out, n, "%.*g", prec, v);
    if (strtod(out, NULL) == v) return;
  }
}

double nnc_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- code pages ---- */

typedef struct Segment {
  uintptr_t addr;       /* in: an address in the segment */
  uintptr_t start, end; /* out: its pages, up to its unwind tables */
} Segment;

static int find_segment(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  Segment *seg = arg;
  uintptr_t page = page_size(), unwind = UINTPTR_MAX;
  const ElfW(Phdr) *found = NULL;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_GNU_EH_FRAME) unwind = info->dlpi_addr + ph->p_vaddr;
    uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && seg->addr >= lo && seg->addr < lo + ph->p_memsz) found = ph;
  }
  if (!found) return 0;
  uintptr_t lo = info->dlpi_addr + found->p_vaddr, hi = lo + found->p_memsz;
  if (unwind > lo && unwind < hi && seg->addr < unwind) hi = unwind;
  /* the pages wholly inside the segment: a page it shares with the data
     next to it keeps that data */
  seg->start = round_up(lo, page);
  seg->end = hi / page * page;
  return 1;
}

bool nnc_segment_of(const void *addr, uintptr_t *start, uintptr_t *end) {
  Segment seg = {.addr = (uintptr_t)addr};
  if (!dl_iterate_phdr(find_segment, &seg) || seg.end <= seg.start) return false;
  *start = seg.start;
  *end = seg.end;
  return true;
}

size_t nnc_release_code_pages(const void *code) {
  uintptr_t start, end;
  if (!nnc_segment_of(code, &start, &end)) return 0;
  /* a private file mapping never written: MADV_DONTNEED only unmaps */
  if (madvise((void *)start, end - start, MADV_DONTNEED) != 0) return 0;
  return end - start;
}

/* ---- output files ---- */

/* path with its symbolic links followed to what they name, which need not
 * exist (malloc'd; NULL with errno set). *fdno gets N when the links end
 * at a descriptor of this process (/dev/stdout is /proc/self/fd/1). */
static char *follow_links(const char *path, int *fdno) {
  char *p = nnc_xstrdup(path);
  *fdno = -1;
  for (int depth = 0; depth < 40; depth++) {
    int n = -1, end = 0;
    if ((sscanf(p, "/proc/self/fd/%d%n", &n, &end) == 1 || sscanf(p, "/dev/fd/%d%n", &n, &end) == 1) &&
        p[end] == 0 && n >= 0) {
      *fdno = n;
      return p;
    }
    struct stat st;
    if (lstat(p, &st) != 0 || !S_ISLNK(st.st_mode)) return p; /* the end, existing or not */
    char target[4096];
    ssize_t len = readlink(p, target, sizeof target - 1);
    if (len < 0) {
      free(p);
      return NULL;
    }
    target[len] = 0;
    char *slash = strrchr(p, '/');
    char *next;
    if (target[0] == '/' || !slash) {
      next = nnc_xstrdup(target);
    } else { /* relative to the link's directory */
      next = nnc_xmalloc((size_t)(slash - p) + 2 + (size_t)len);
      sprintf(next, "%.*s/%s", (int)(slash - p), p, target);
    }
    free(p);
    p = next;
  }
  free(p);
  errno = ELOOP;
  return NULL;
}

/* The directory part of path ("." when none), malloc'd. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return nnc_xstrdup(".");
  if (slash == path) return nnc_xstrdup("/");
  char *dir = nnc_xmalloc((size_t)(slash - path) + 1);
  memcpy(dir, path, (size_t)(slash - path));
  dir[slash - path] = 0;
  return dir;
}

char *nnc_out_target(const char *path) {
  int fdno;
  char *dest = follow_links(path, &fdno);
  if (!dest) return NULL;
  char *dir = dir_of(dest), *real = realpath(dir, NULL), *out = NULL;
  if (real) {
    const char *slash = strrchr(dest, '/');
    out = nnc_xmalloc(strlen(real) + strlen(dest) + 2);
    sprintf(out, "%s/%s", real, slash ? slash + 1 : dest);
  }
  free(dest), free(dir), free(real);
  return out;
}

/* Whether a regular file dest (existing or not) can be replaced as
 * nnc_out_close does it, asked of the system the same way: a temporary file
 * made beside it and removed (a deleted working directory, a read-only
 * file system, too few descriptors), and the rule of a sticky directory
 * (/tmp), which lets only the file's or the directory's owner rename over
 * a file. */
static int out_check_replace(const char *dest) {
  /* the trial's temporary has a short name when dest's is long, so a name
     past the file system's NAME_MAX is checked here, not at the rename */
  const char *slash = strrchr(dest, '/');
  char *dir = dir_of(dest);
  long name_max = pathconf(dir, _PC_NAME_MAX);
  int err = name_max > 0 && strlen(slash ? slash + 1 : dest) > (size_t)name_max ? ENAMETOOLONG : 0;
  NncOut trial;
  if (!err) err = nnc_out_open(&trial, dest, 0);
  if (err) {
    free(dir);
    return err;
  }
  nnc_out_discard(&trial);
  struct stat dir_st, st;
  uid_t me = geteuid();
  if (me != 0 && stat(dir, &dir_st) == 0 && (dir_st.st_mode & S_ISVTX) && stat(dest, &st) == 0 &&
      st.st_uid != me && dir_st.st_uid != me)
    err = EPERM;
  free(dir);
  return err;
}

int nnc_out_check(const char *path) {
  if (!*path) return ENOENT;
  int fdno;
  char *dest = follow_links(path, &fdno);
  if (!dest) return errno;
  struct stat st;
  bool exists = fdno < 0 && stat(dest, &st) == 0;
  int err = 0;
  if (fdno >= 0)
    err = fcntl(fdno, F_GETFL) < 0 ? errno : 0;
  else if (exists && S_ISDIR(st.st_mode))
    err = EISDIR;
  else if (exists && S_ISSOCK(st.st_mode))
    err = ENXIO; /* what open() says of a socket, found before any work */
  else if (exists && !S_ISREG(st.st_mode))
    err = access(dest, W_OK) != 0 ? errno : 0;
  else
    err = out_check_replace(dest);
  free(dest);
  return err;
}

static atomic_int files_being_written;

bool nnc_out_busy(void) { return atomic_load(&files_being_written) > 0; }

static int out_fail(NncOut *o, int err) {
  nnc_out_discard(o);
  return err ? err : EIO;
}

int nnc_out_open_at(NncOut *o, int dirfd, const char *name, int flags) {
  memset(o, 0, sizeof *o);
  o->flags = flags;
  o->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (o->dirfd < 0) return errno;
  o->name = nnc_xstrdup(name);
  /* the mode of the file it replaces, or of a new file (umask can only be
     read by setting it) */
  struct stat st;
  mode_t mask = umask(0);
  umask(mask);
  mode_t mode = (flags & NNC_WRITE_PRIVATE) ? 0600 & ~mask : 0666 & ~mask;
  bool replacing = !(flags & NNC_WRITE_PRIVATE) && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                   S_ISREG(st.st_mode);
  if (replacing) mode = st.st_mode & 07777;
  static atomic_uint serial;
  o->tmp = nnc_xmalloc(strlen(name) + 64);
  int fd = -1;
  /* NAME.tmp.PID.N, or without NAME when that would pass NAME_MAX (a name
     of 236 to 255 bytes is a file's, its temporary's would not be) */
  bool long_name = strlen(name) > 200;
  for (int tries = 0; fd < 0 && tries < 100; tries++) {
    sprintf(o->tmp, "%s.tmp.%d.%x%x", long_name ? ".nnc" : name, (int)getpid(), atomic_fetch_add(&serial, 1),
            (unsigned)(nnc_now() * 1e9));
    fd = openat(dirfd, o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    int err = errno;
    free(o->tmp);
    o->tmp = NULL;
    return out_fail(o, err);
  }
  /* root replacing another user's file gives it back to its owner (who
     could not read a file of mode 0600 that became root's) */
  if (replacing && geteuid() == 0 && (st.st_uid != 0 || st.st_gid != 0)) (void)!fchown(fd, st.st_uid, st.st_gid);
  fchmod(fd, mode); /* (after fchown, which clears set-id bits) */
  o->busy = true;
  atomic_fetch_add(&files_being_written, 1);
  if (!(o->f = fdopen(fd, "wb"))) {
    int err = errno;
    close(fd);
    return out_fail(o, err);
  }
  return 0;
}

int nnc_out_open(NncOut *o, const char *path, int flags) {
  memset(o, 0, sizeof *o);
  o->dirfd = -1;
  if (!*path) return ENOENT;
  int fdno, fd;
  char *dest = follow_links(path, &fdno);
  if (!dest) return errno;
  struct stat st;
  bool exists = fdno < 0 && stat(dest, &st) == 0;
  int err = 0;
  if (exists && S_ISDIR(st.st_mode)) {
    err = EISDIR;
  } else if (fdno >= 0 || (exists && !S_ISREG(st.st_mode))) { /* written directly */
    fd = fdno >= 0 ? fcntl(fdno, F_DUPFD_CLOEXEC, 0) : open(dest, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 || !(o->f = fdopen(fd, "wb"))) {
      err = errno;
      if (fd >= 0) close(fd);
    }
  } else { /* a temporary file beside the destination, renamed over it */
    char *dir = dir_of(dest);
    const char *slash = strrchr(dest, '/');
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    err = dirfd < 0 ? errno : nnc_out_open_at(o, dirfd, slash ? slash + 1 : dest, flags);
    if (dirfd >= 0) close(dirfd);
    free(dir);
  }
  free(dest);
  o->flags = flags;
  return err;
}

void nnc_out_write(NncOut *o, const void *data, size_t len) {
  if (!o->err && len && fwrite(data, 1, len, o->f) != len) o->err = errno ? errno : EIO;
}

int nnc_out_close(NncOut *o) {
  int err = o->err;
  if (!err && fflush(o->f) != 0) err = errno;
  if (!err && o->tmp && (o->flags & NNC_WRITE_SYNC) && fsync(fileno(o->f)) != 0) err = errno;
  if (fclose(o->f) != 0 && !err) err = errno;
  o->f = NULL;
  if (!err && o->tmp && renameat(o->dirfd, o->tmp, o->dirfd, o->name) != 0) err = errno;
  if (err) return out_fail(o, err);
  if (o->tmp && (o->flags & NNC_WRITE_SYNC)) fsync(o->dirfd); /* the rename, durable */
  free(o->tmp);
  o->tmp = NULL;
  nnc_out_discard(o);
  return 0;
}

void nnc_out_discard(NncOut *o) {
  if (o->f) fclose(o->f);
  if (o->tmp) unlinkat(o->dirfd, o->tmp, 0);
  if (o->busy) atomic_fetch_sub(&files_being_written, 1);
  if (o->dirfd >= 0) close(o->dirfd);
  free(o->tmp);
  free(o->name);
  memset(o, 0, sizeof *o);
  o->dirfd = -1;
}

int nnc_write_file(const char *path, const void *data, size_t len, int flags) {
  NncOut o;
  int err = nnc_out_open(&o, path, flags);
  if (err) return err;
  nnc_out_write(&o, data, len);
  return nnc_out_close(&o);
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

void *nnc_c_locale_begin(void) {
  pthread_once(&c_locale_once, make_c_locale);
  return c_locale ? (void *)uselocale(c_locale) : NULL; /* (none made: as it was) */
}

void nnc_c_locale_end(void *previous) {
  if (previous) uselocale((locale_t)previous);
}
