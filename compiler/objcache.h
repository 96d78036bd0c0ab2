/*
 * objcache.h - the JIT's compiled objects on disk, so that running the same
 * model again skips LLVM's optimizer and code generator (as ccache, or JAX's
 * persistent compilation cache).
 *
 * The key hashes everything that decides an object's bytes: nnc's and
 * LLVM's versions, the target CPU and its features, the optimization level,
 * and the LLVM module's text before optimization (which holds every size,
 * constant and hyperparameter). Objects live in $NNC_CACHE_DIR, else
 * $XDG_CACHE_HOME/nnc, else $HOME/.cache/nnc; NNC_CACHE=0 turns the cache
 * off. Each file carries its key, size and a checksum: a damaged or foreign
 * file is ignored (and replaced), never loaded. Files are written to a
 * temporary name and renamed, so concurrent runs are safe. Every failure
 * to read or write the cache is silent: the cache only ever saves time.
 */
#ifndef NNC_OBJCACHE_H
#define NNC_OBJCACHE_H

#include <llvm-c/Core.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ObjKey {
  uint64_t h[2]; /* two FNV-1a hashes with different bases: 128 bits */
} ObjKey;

void objkey_init(ObjKey *k);
/* Add a string (or NULL) to what the key stands for. */
void objkey_add_str(ObjKey *k, const char *s);

/* Whether the cache is on (NNC_CACHE is not 0 and a directory is known). */
int objcache_enabled(void);
/* The cached object for the key, or NULL. */
LLVMMemoryBufferRef objcache_load(const ObjKey *k);
/* Keep obj (not taken) under the key. */
void objcache_store(const ObjKey *k, LLVMMemoryBufferRef obj);

#endif
