/*
 * objcache.c - compiled objects on disk (see objcache.h).
 *
 * A file is <dir>/<32 hex digits of the key>.o holding a 40-byte header,
 *   "NNCOBJ1\n", the key (16 bytes), the object's size and an FNV-1a hash of
 *   its bytes (8 bytes each, little-endian as the host),
 * then the object file itself.
 */
#include "objcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

enum { HEADER_BYTES = 40 };
static const char magic[8] = {'N', 'N', 'C', 'O', 'B', 'J', '1', '\n'};

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

void objkey_init(ObjKey *k) {
  k->h[0] = 0xcbf29ce484222325ull;
  k->h[1] = 0x84222325cbf29ce4ull;
}

static void objkey_add(ObjKey *k, const void *data, size_t n) {
  k->h[0] = fnv(k->h[0], data, n);
  k->h[1] = fnv(k->h[1] ^ n, data, n);
}

void objkey_add_str(ObjKey *k, const char *s) { objkey_add(k, s ? s : "", s ? strlen(s) + 1 : 1); }

/* The directory, or 0 when the cache is off or there is none. */
static int cache_dir(char *out, size_t n) {
  const char *off = getenv("NNC_CACHE");
  if (off && strcmp(off, "0") == 0) return 0;
  const char *dir = getenv("NNC_CACHE_DIR");
  int len;
  if (dir && *dir)
    len = snprintf(out, n, "%s", dir);
  else if (getenv("XDG_CACHE_HOME") && *getenv("XDG_CACHE_HOME"))
    len = snprintf(out, n, "%s/nnc", getenv("XDG_CACHE_HOME"));
  else if (getenv("HOME") && *getenv("HOME"))
    len = snprintf(out, n, "%s/.cache/nnc", getenv("HOME"));
  else
    return 0;
  return len > 0 && (size_t)len < n - 64;
}

int objcache_enabled(void) {
  char dir[4096];
  return cache_dir(dir, sizeof dir);
}

static int entry_path(const ObjKey *k, char *out, size_t n) {
  char dir[4096];
  if (!cache_dir(dir, sizeof dir)) return 0;
  snprintf(out, n, "%s/%016llx%016llx.o", dir, (unsigned long long)k->h[0], (unsigned long long)k->h[1]);
  return 1;
}

LLVMMemoryBufferRef objcache_load(const ObjKey *k) {
  char path[4200];
  if (!entry_path(k, path, sizeof path)) return NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  unsigned char header[HEADER_BYTES];
  uint64_t size = 0, sum = 0;
  LLVMMemoryBufferRef buf = NULL;
  char *data = NULL;
  struct stat st;
  if (fread(header, 1, HEADER_BYTES, f) != HEADER_BYTES || memcmp(header, magic, 8) != 0 ||
      memcmp(header + 8, k->h, 16) != 0 || fstat(fileno(f), &st) != 0)
    goto done;
  memcpy(&size, header + 24, 8);
  memcpy(&sum, header + 32, 8);
  if (size == 0 || size > (1ull << 32) || (uint64_t)st.st_size != size + HEADER_BYTES) goto done;
  data = malloc(size);
  if (!data || fread(data, 1, size, f) != size) goto done;
  if (fnv(0xcbf29ce484222325ull, data, size) != sum) goto done;
  buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(data, size, "nnc-cached-object");
done:
  free(data);
  fclose(f);
  return buf;
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

void objcache_store(const ObjKey *k, LLVMMemoryBufferRef obj) {
  char dir[4096], path[4200];
  if (!cache_dir(dir, sizeof dir) || !entry_path(k, path, sizeof path)) return;
  make_dirs(dir);
  const char *data = LLVMGetBufferStart(obj);
  uint64_t size = LLVMGetBufferSize(obj), sum = fnv(0xcbf29ce484222325ull, data, size);
  unsigned char *file = nnc_xmalloc(HEADER_BYTES + size);
  memcpy(file, magic, 8);
  memcpy(file + 8, k->h, 16);
  memcpy(file + 24, &size, 8);
  memcpy(file + 32, &sum, 8);
  memcpy(file + HEADER_BYTES, data, size);
  /* a cache entry need not survive a crash: a lost one is compiled again */
  nnc_write_file(path, file, HEADER_BYTES + size, NNC_WRITE_PRIVATE);
  free(file);
}
