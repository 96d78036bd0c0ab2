/*
 * objcache.h - the JIT's compiled objects on disk, so that running the same
 * model again skips LLVM's optimizer and code generator (as ccache, or JAX's
 * persistent compilation cache).
 *
 * The key is a BLAKE2b-256 hash (libsodium) of everything that decides an
 * object's bytes: nnc's and LLVM's versions, the target CPU and its
 * features, the optimization level, and the LLVM module before
 * optimization as bitcode (which holds every size, constant and
 * hyperparameter).
 * Objects live in $NNC_CACHE_DIR, else $XDG_CACHE_HOME/nnc, else
 * $HOME/.cache/nnc; NNC_CACHE=0 turns the cache off.
 *
 * The cache holds code that nnc runs, so it is used only when the directory
 * and each entry belong to the user and nobody else can write them; anything
 * else is said once on standard error and the run compiles instead. Entries
 * are opened without following links and used only when they are regular
 * files with their key, size and a hash of their bytes in the header. The
 * directory is kept under NNC_CACHE_SIZE bytes (default 256 MiB) by
 * removing the least recently used entries. Every other failure to read or
 * write the cache is silent: the cache only ever saves time.
 */
#ifndef NNC_OBJCACHE_H
#define NNC_OBJCACHE_H

#include <llvm-c/Core.h>
#include <sodium/crypto_generichash.h>
#include <stddef.h>
#include <stdint.h>

enum { OBJKEY_BYTES = 32 };

typedef struct ObjKey {
  crypto_generichash_state state; /* while adding */
  unsigned char hash[OBJKEY_BYTES]; /* after objkey_final */
} ObjKey;

void objkey_init(ObjKey *k);
/* Add a string (or NULL) to what the key stands for. */
void objkey_add_str(ObjKey *k, const char *s);
/* Add n bytes. */
void objkey_add_bytes(ObjKey *k, const void *data, size_t n);
void objkey_final(ObjKey *k);

/* Whether the cache is on (NNC_CACHE is not 0 and a directory is known). */
int objcache_enabled(void);
/* The cached object for the (final) key, or NULL. */
LLVMMemoryBufferRef objcache_load(const ObjKey *k);
/* Keep obj (not taken) under the key, then evict down to the size limit. */
void objcache_store(const ObjKey *k, LLVMMemoryBufferRef obj);

#endif
