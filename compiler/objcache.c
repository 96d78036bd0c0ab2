/*
 * objcache.c - compiled objects on disk (see objcache.h).
 *
 * An entry is <dir>/<64 hex digits of the key>.o holding an 80-byte header,
 *   "NNCOBJ2\n", the key (32 bytes), the object's size (8 bytes, little-endian
 *   as the host) and a BLAKE2b-256 hash of the object (32 bytes),
 * then the object file itself. <dir>/size holds the bytes of all entries as
 * last counted plus what was stored since, so that a store needs to look at
 * every entry only when the total passes the limit.
 *
 * Everything is opened relative to the directory's descriptor, which was
 * checked once, so a directory swapped for another after the check is
 * never written or read.
 */
#include "objcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

enum { HEADER_BYTES = 8 + OBJKEY_BYTES + 8 + OBJKEY_BYTES };
static const char magic[8] = {'N', 'N', 'C', 'O', 'B', 'J', '2', '\n'};

#define DEFAULT_LIMIT ((uint64_t)256 << 20)
#define STALE_TEMP_SECONDS 3600 /* a temporary file this old was left by a crash */

/* ---- the key ---- */

void objkey_init(ObjKey *k) {
  if (sodium_init() < 0) nnc_die("libsodium cannot be initialized");
  crypto_generichash_init(&k->state, NULL, 0, OBJKEY_BYTES);
}

static void objkey_add(ObjKey *k, const void *data, size_t n) {
  uint64_t len = n; /* framed by its length: "ab","c" is not "a","bc" */
  crypto_generichash_update(&k->state, (const unsigned char *)&len, sizeof len);
  crypto_generichash_update(&k->state, data, n);
}

void objkey_add_str(ObjKey *k, const char *s) { objkey_add(k, s ? s : "", s ? strlen(s) : 0); }

void objkey_add_bytes(ObjKey *k, const void *data, size_t n) { objkey_add(k, data, n); }

void objkey_final(ObjKey *k) { crypto_generichash_final(&k->state, k->hash, OBJKEY_BYTES); }

static void content_hash(const void *data, size_t n, unsigned char out[OBJKEY_BYTES]) {
  crypto_generichash(out, OBJKEY_BYTES, data, n, NULL, 0);
}

/* ---- the directory and what may be trusted ---- */

/* The directory's path, or 0 when the cache is off or there is none.
 * XDG_CACHE_HOME and HOME count only as absolute paths (a relative one,
 * as the XDG base directory specification says, is ignored: it would put
 * a cache in whatever directory nnc runs in). */
static int cache_dir(char *out, size_t n) {
  const char *off = getenv("NNC_CACHE");
  if (off && strcmp(off, "0") == 0) return 0;
  const char *dir = getenv("NNC_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  int len;
  if (dir && *dir)
    len = snprintf(out, n, "%s", dir);
  else if (xdg && xdg[0] == '/')
    len = snprintf(out, n, "%s/nnc", xdg);
  else if (home && home[0] == '/')
    len = snprintf(out, n, "%s/.cache/nnc", home);
  else
    return 0;
  return len > 0 && (size_t)len < n;
}

int objcache_enabled(void) {
  char dir[4096];
  return cache_dir(dir, sizeof dir);
}

/* Says, once a process, why the cache is not used. */
__attribute__((format(printf, 1, 2))) static void distrust(const char *fmt, ...) {
  static atomic_flag said = ATOMIC_FLAG_INIT;
  if (atomic_flag_test_and_set(&said)) return;
  char why[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  /* one write: the other compile thread may be printing too */
  fprintf(stderr, "nnc: note: not using the compile cache: %s; compiling instead\n", why);
}

/* Why a file or directory may hold code written by someone else, or NULL. */
static const char *untrusted(const struct stat *st) {
  if (st->st_uid != geteuid()) return "is not owned by you";
  if (st->st_mode & (S_IWGRP | S_IWOTH)) return "is writable by others";
  return NULL;
}

static void make_dirs(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s", dir);
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    mkdir(path, 0700);
    *p = '/';
  }
  mkdir(path, 0700);
}

/* The cache directory, opened and checked, or -1. */
static int open_dir(bool create, char *dir, size_t n) {
  if (!cache_dir(dir, n)) return -1;
  if (create) make_dirs(dir);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  const char *why = fstat(fd, &st) != 0 ? "cannot be examined" : untrusted(&st);
  if (why) {
    distrust("the directory %s %s (it must be yours, mode 0700)", dir, why);
    close(fd);
    return -1;
  }
  return fd;
}

static void entry_name(const ObjKey *k, char out[OBJKEY_BYTES * 2 + 3]) {
  for (int i = 0; i < OBJKEY_BYTES; i++) snprintf(out + 2 * i, 3, "%02x", k->hash[i]);
  memcpy(out + 2 * OBJKEY_BYTES, ".o", 3);
}

static int read_all(int fd, void *data, size_t n) {
  char *p = data;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return 0;
    p += r;
    n -= (size_t)r;
  }
  return 1;
}

/* ---- load ---- */

/* The entry's object if it is one of ours, whole and for this key. */
static LLVMMemoryBufferRef read_entry(int fd, const ObjKey *k, const struct stat *st) {
  unsigned char header[HEADER_BYTES], sum[OBJKEY_BYTES];
  uint64_t size;
  if (!read_all(fd, header, HEADER_BYTES) || memcmp(header, magic, 8) != 0 ||
      memcmp(header + 8, k->hash, OBJKEY_BYTES) != 0)
    return NULL;
  memcpy(&size, header + 8 + OBJKEY_BYTES, 8);
  if (size == 0 || size > (1ull << 32) || (uint64_t)st->st_size != size + HEADER_BYTES) return NULL;
  char *data = malloc(size);
  LLVMMemoryBufferRef buf = NULL;
  if (data && read_all(fd, data, size)) {
    content_hash(data, size, sum);
    if (memcmp(sum, header + 16 + OBJKEY_BYTES, OBJKEY_BYTES) == 0)
      buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(data, size, "nnc-cached-object");
  }
  free(data);
  return buf;
}

LLVMMemoryBufferRef objcache_load(const ObjKey *k) {
  char dir[4096], name[OBJKEY_BYTES * 2 + 3];
  int dfd = open_dir(false, dir, sizeof dir);
  if (dfd < 0) return NULL;
  entry_name(k, name);
  /* not following a link, and not waiting for a writer if it is a FIFO */
  int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  close(dfd);
  if (fd < 0) {
    if (errno == ELOOP) distrust("%s/%s is a symbolic link", dir, name);
    return NULL;
  }
  struct stat st;
  const char *why = fstat(fd, &st) != 0 ? "cannot be examined" : !S_ISREG(st.st_mode) ? "is not a regular file"
                                                                                      : untrusted(&st);
  LLVMMemoryBufferRef buf = NULL;
  if (why)
    distrust("%s/%s %s", dir, name, why);
  else if ((buf = read_entry(fd, k, &st)))
    futimens(fd, NULL); /* recently used: evicted last */
  close(fd);
  return buf;
}

/* ---- eviction ---- */

static uint64_t size_limit(void) {
  const char *s = getenv("NNC_CACHE_SIZE");
  if (!s || !*s) return DEFAULT_LIMIT;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  int shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : *end == '\0' ? 0 : -1;
  if (shift > 0) end++;
  if (shift < 0 || *end || end == s || v > (UINT64_MAX >> 30)) return DEFAULT_LIMIT;
  return (uint64_t)v << shift;
}

static bool all_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
  return true;
}

typedef enum NameKind { NOT_OURS, ENTRY, OLD_ENTRY, TEMP } NameKind;

/* Only names nnc writes are ever counted or removed. */
static NameKind name_kind(const char *name) {
  size_t n = strlen(name), hex = 0;
  while (hex < n && all_hex(name + hex, 1)) hex++;
  if (strncmp(name + hex, ".o", 2) != 0) return NOT_OURS;
  if (hex == 2 * OBJKEY_BYTES && name[hex + 2] == '\0') return ENTRY;
  if (hex == 32 && name[hex + 2] == '\0') return OLD_ENTRY; /* keyed by an older nnc: never read again */
  if ((hex == 2 * OBJKEY_BYTES || hex == 32) && strncmp(name + hex, ".o.tmp.", 7) == 0) return TEMP;
  return NOT_OURS;
}

typedef struct Entry {
  struct timespec used;
  uint64_t bytes;
  char name[OBJKEY_BYTES * 2 + 3];
} Entry;

static int older_first(const void *a, const void *b) {
  const struct timespec *x = &((const Entry *)a)->used, *y = &((const Entry *)b)->used;
  if (x->tv_sec != y->tv_sec) return x->tv_sec < y->tv_sec ? -1 : 1;
  return x->tv_nsec < y->tv_nsec ? -1 : x->tv_nsec > y->tv_nsec;
}

/* Counts the entries, removes what is left of older nnc versions and of
 * crashed writers, and, past the limit, the least recently used entries
 * down to three quarters of it. Returns the bytes that remain. */
static uint64_t tidy(int dfd, uint64_t limit) {
  int copy = dup(dfd);
  DIR *d = copy >= 0 ? fdopendir(copy) : NULL;
  if (!d) {
    if (copy >= 0) close(copy);
    return 0;
  }
  Entry *entries = NULL;
  size_t n = 0, cap = 0;
  uint64_t total = 0;
  time_t now = time(NULL);
  for (struct dirent *de; (de = readdir(d));) {
    NameKind kind = name_kind(de->d_name);
    struct stat st;
    if (kind == NOT_OURS || fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (kind == OLD_ENTRY || (kind == TEMP && now - st.st_mtime > STALE_TEMP_SECONDS)) {
      unlinkat(dfd, de->d_name, 0);
      continue;
    }
    if (kind != ENTRY) continue;
    if (n == cap) {
      Entry *bigger = realloc(entries, (cap = cap ? 2 * cap : 256) * sizeof *entries);
      if (!bigger) break;
      entries = bigger;
    }
    entries[n].used = st.st_mtim;
    entries[n].bytes = (uint64_t)st.st_size;
    memcpy(entries[n].name, de->d_name, sizeof entries[n].name);
    total += entries[n++].bytes;
  }
  closedir(d);
  if (total > limit) {
    qsort(entries, n, sizeof *entries, older_first);
    for (size_t i = 0; i < n && total > limit / 4 * 3; i++)
      if (unlinkat(dfd, entries[i].name, 0) == 0) total -= entries[i].bytes;
  }
  free(entries);
  return total;
}

/* <dir>/size, open and locked for one store (concurrent runs, and the
 * threads of one run, store at once); -1 when it cannot be used. */
static int lock_size(int dfd) {
  int fd = openat(dfd, "size", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || untrusted(&st) || flock(fd, LOCK_EX) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Adds a stored entry's bytes to the locked size file fd; counts every
 * entry when the file is new, tidies past the limit. */
static void account(int fd, int dfd, uint64_t added) {
  char text[32] = {0};
  char *end;
  ssize_t got = pread(fd, text, sizeof text - 1, 0);
  unsigned long long before = got > 0 ? strtoull(text, &end, 10) : 0;
  uint64_t limit = size_limit(), total;
  if (got > 0 && *end == '\n' && before + added <= limit)
    total = before + added;
  else
    total = tidy(dfd, limit); /* a new count, or over the limit */
  int len = snprintf(text, sizeof text, "%llu\n", (unsigned long long)total);
  if (ftruncate(fd, 0) == 0 && pwrite(fd, text, (size_t)len, 0) != len) ftruncate(fd, 0);
}

/* ---- store ---- */

void objcache_store(const ObjKey *k, LLVMMemoryBufferRef obj) {
  char dir[4096], name[OBJKEY_BYTES * 2 + 3];
  int dfd = open_dir(true, dir, sizeof dir);
  if (dfd < 0) return;
  entry_name(k, name);
  const char *data = LLVMGetBufferStart(obj);
  uint64_t size = LLVMGetBufferSize(obj);
  unsigned char header[HEADER_BYTES];
  memcpy(header, magic, 8);
  memcpy(header + 8, k->hash, OBJKEY_BYTES);
  memcpy(header + 8 + OBJKEY_BYTES, &size, 8);
  content_hash(data, size, header + 16 + OBJKEY_BYTES);
  /* util's output file in the checked directory: a temporary file renamed
     over the entry (an entry need not survive a crash: it is compiled again) */
  /* The entry appears and is counted under the size file's lock: a count
     made afresh from the directory (tidy) must not find an entry whose own
     bytes are about to be added too. */
  int size_fd = lock_size(dfd);
  NncOut out;
  if (nnc_out_open_at(&out, dfd, name, NNC_WRITE_PRIVATE) == 0) {
    nnc_out_write(&out, header, HEADER_BYTES);
    nnc_out_write(&out, data, size);
    if (nnc_out_close(&out) == 0 && size_fd >= 0) account(size_fd, dfd, size + HEADER_BYTES);
  }
  if (size_fd >= 0) close(size_fd); /* and the lock with it */
  close(dfd);
}
