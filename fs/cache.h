/*
 * cache.h - the local object cache: for each key, the last version read or
 * written, with its etag, in one file under the cache directory.
 *
 * An entry is a single file "objects/<sha256(key)>": an 8 KiB header (magic,
 * then JSON with key, etag, mtime, size) followed by the body. Entries are
 * written to a temporary file and renamed into place, so an entry is always
 * whole, and an fd opened on an entry keeps reading that version even after
 * a newer one replaces it. The cache holds no state in memory: the caller
 * (the filesystem) remembers which etag it believes is cached and verifies it
 * against the header when it opens the entry.
 */
#ifndef FALLBACKFS_CACHE_H
#define FALLBACKFS_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

/* Offset of the body in an entry file. */
#define CACHE_HDR 8192

struct cache;

/* Use (creating if needed, mode 0700) dir as the cache directory. Caller
 * frees with cache_destroy(). Errors carry a sentence for the user in err. */
int cache_create(const char *dir, struct cache **out, char *err, size_t errlen);

/* Free the handle (not the files); NULL is a no-op. */
void cache_destroy(struct cache *c);

/* Open the entry of key: *fd_out (caller closes; body at CACHE_HDR) and its
 * metadata. -ENOENT when there is no valid entry. */
int cache_open(struct cache *c, const char *key, int *fd_out, struct store_meta *meta);

/* Get key from the store into a new entry, conditionally on if_none_match
 * (may be NULL). Returns 0 with the new entry open in *fd_out (caller closes),
 * STORE_NOT_MODIFIED with meta filled and no fd, or a negative errno (the
 * previous entry is untouched). */
int cache_fetch(struct cache *c, struct store *s, const char *key, const char *if_none_match,
		int *fd_out, struct store_meta *meta);

/* A download whose entry can be read while it is written, for readers that
 * should not wait for the whole body: start makes the temporary entry and
 * returns an fd reading it (*fd_out, caller closes; its size grows as the
 * body arrives, body at CACHE_HDR); finish downloads key into it under the
 * conditions of store_get() and publishes it as cache_fetch() does, then
 * frees d; cancel frees it instead. Returns 0, STORE_NOT_MODIFIED or a negative errno. */
struct cache_download;
int cache_download_start(struct cache *c, struct cache_download **out, int *fd_out);
int cache_download_finish(struct cache_download *d, struct store *s, const char *key,
			  const char *if_none_match, const char *if_match,
			  struct store_meta *meta);
/* Give up a download before finish (the entry is never published). */
void cache_download_cancel(struct cache_download *d);

/* Make size bytes of src at src_off the entry of key, with meta (used after
 * a commit, so a writer's own upload is not downloaded again). */
int cache_install(struct cache *c, const char *key, int src, off_t src_off,
		  const struct store_meta *meta);

/* Make the staging file fd, laid out as an entry (body at CACHE_HDR, size
 * bytes of it), the entry of key with meta: linked in where the filesystem
 * allows, else copied. The caller must not write to fd afterwards (readers
 * of the entry may share it), only read and close it. */
int cache_adopt(struct cache *c, const char *key, int fd, const struct store_meta *meta);

/* Drop the entry of key, if any (open fds keep their version). */
void cache_evict(struct cache *c, const char *key);

/* An unnamed private file in the cache directory, for staging writes; the
 * caller closes it. Staging lives on disk, never in memory, laid out as an
 * entry (body at CACHE_HDR) so that cache_adopt() can publish it. */
int cache_staging_create(struct cache *c);

/* The cache directory's path (for status output). */
const char *cache_dir(const struct cache *c);

/* Bytes used by entries (a directory scan; for status output). */
uint64_t cache_bytes(struct cache *c);

#endif
