/*
 * fs.h - the FUSE face of fallbackfs: turns POSIX calls on the mount into
 * store operations through the cache. Knows nothing of a particular backend.
 */
#ifndef FALLBACKFS_FS_H
#define FALLBACKFS_FS_H

#include <fuse.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache.h"
#include "store.h"

struct fs_config {
	int64_t freshness_ms; /* open() sees versions at most this old */
	bool read_only;
	uid_t uid;
	gid_t gid;
	mode_t umask;         /* files 0666 & ~umask, directories 0777 & ~umask */
	const char *tmpnames; /* ':'-separated globs of names never uploaded on their own */
	const char *url;      /* the storage URL, for status output (no secrets in it) */
};

struct fs;

/* Create the filesystem over store and cache, taking ownership of both
 * (freed by fs_destroy even on error). Caller frees with fs_destroy. */
int fs_create(const struct fs_config *cfg, struct store *store, struct cache *cache,
	      struct fs **out);

/* Free the filesystem, its store and cache; NULL is a no-op. */
void fs_destroy(struct fs *fs);

/* The operation table to hand to fuse_new() with the fs as user data. */
const struct fuse_operations *fs_operations(void);

#endif
