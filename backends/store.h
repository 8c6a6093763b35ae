/*
 * store.h - the object-store interface that every backend implements.
 *
 * A store is a flat namespace of keys (relative to the mount's prefix) holding
 * immutable object versions. Each version has an opaque etag that changes with
 * every version, a modification time and a size. Directories do not exist in a
 * store; they are derived from key prefixes by the caller.
 *
 * This header is the contract, not an implementation: backends (file://, s3://,
 * gcs://) fill a struct store_ops; wrapping layers (statistics, fault injection)
 * implement the same table over an inner store. Callers use the store_*()
 * dispatch helpers below, never the table directly.
 *
 * Conventions for every operation:
 *   - returns 0 on success or a negative errno; STORE_NOT_MODIFIED (positive)
 *     only where documented;
 *   - may be called concurrently from any number of threads on the same store;
 *   - has a deadline: it never blocks longer than the store's configured
 *     timeout (plus retries), and fails with -ETIMEDOUT past it;
 *   - keys are UTF-8, never start with '/', never contain "." or ".."
 *     segments or empty segments; a key that breaks this gets -EINVAL.
 *
 * Error meanings shared by all operations:
 *   -ENOENT       the key does not exist
 *   -EACCES       the store refused our credentials or permissions
 *   -ETIMEDOUT    the deadline passed
 *   -EHOSTUNREACH the store could not be reached
 *   -EIO          the store answered something we cannot use
 *   -ENOMEM       allocation failure
 *   -EFBIG        a response was larger than our hard cap
 *   -ENOSPC       the store is out of space
 */
#ifndef FALLBACKFS_STORE_H
#define FALLBACKFS_STORE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STORE_ETAG_MAX 128
#define STORE_KEY_MAX 1024
#define STORE_LIST_MAX_KEYS 1000

/* Returned (positive) by get() when the object still has the etag asked about. */
#define STORE_NOT_MODIFIED 1

/* What a store guarantees; set by the backend at create time, or after probing. */
enum store_caps {
	/* create-only and if-match puts are decided atomically by the store */
	STORE_CAP_CONDITIONAL_PUT = 1 << 0,
	/* touch() refreshes the modification time without rewriting the body */
	STORE_CAP_TOUCH = 1 << 1,
};

struct store_meta {
	char etag[STORE_ETAG_MAX]; /* opaque; unique per version of one key */
	int64_t mtime_ns;          /* last modification, ns since the epoch */
	uint64_t size;             /* body size in bytes */
};

enum store_put_mode {
	STORE_PUT_ANY,      /* unconditional overwrite */
	STORE_PUT_CREATE,   /* only if the key does not exist: else -EEXIST */
	STORE_PUT_IF_MATCH, /* only if the current etag equals cond.etag: else -ESTALE
	                       (-ENOENT if the key is gone) */
};

struct store_put_cond {
	enum store_put_mode mode;
	const char *etag; /* for STORE_PUT_IF_MATCH */
};

struct store_list_entry {
	char *key;             /* full key (relative to the store root) */
	bool is_prefix;        /* a "common prefix" (ends with the delimiter) */
	struct store_meta meta; /* valid when !is_prefix */
};

struct store_list_page {
	struct store_list_entry *entries; /* sorted by key, bytewise */
	size_t count;
	char *next_token; /* NULL when the listing is complete */
};

struct store;
struct store_upload;

struct store_ops {
	const char *name; /* "file", "s3", "gcs", or a wrapper's name */

	/* Metadata of the current version of key. */
	int (*head)(struct store *s, const char *key, struct store_meta *out);

	/*
	 * Write the body of the current version of key to fd at offset
	 * fd_offset (pwrite; the fd position is not used) and fill *out.
	 * With if_none_match != NULL and equal to the current etag, returns
	 * STORE_NOT_MODIFIED, writes nothing and fills *out. With if_match !=
	 * NULL, only that version is written, from the start of the body
	 * onwards and by every attempt: another current version is -ESTALE.
	 * The body written and *out always describe one single version. On
	 * error the fd may hold a partial body: the caller discards it.
	 */
	int (*get)(struct store *s, const char *key, const char *if_none_match,
		   const char *if_match, int fd, off_t fd_offset, struct store_meta *out);

	/*
	 * Store size bytes read from fd at offset (pread) as the new version
	 * of key, atomically: readers see the previous version or this one,
	 * never a mix, and a failed put leaves the previous version intact.
	 * cond may be NULL (unconditional). Conditions are enforced by the store
	 * even against concurrent writers in other processes or hosts; a store
	 * without STORE_CAP_CONDITIONAL_PUT returns -ENOTSUP for a conditional
	 * put rather than pretend. Fills *out (may be NULL) with the new version.
	 */
	int (*put)(struct store *s, const char *key, int fd, off_t offset,
		   uint64_t size, const struct store_put_cond *cond,
		   struct store_meta *out);

	/* Delete key; with if_match, only if its etag matches (-ESTALE else).
	 * Deleting a missing key returns -ENOENT. */
	int (*del)(struct store *s, const char *key, const char *if_match);

	/*
	 * One page of the keys starting with prefix, in bytewise order, after
	 * the position named by token (NULL for the first page). With a
	 * delimiter, keys that contain it after the prefix are rolled up into
	 * one is_prefix entry each. At most max_keys (<= STORE_LIST_MAX_KEYS)
	 * entries. The caller frees *out with store_list_page_cleanup().
	 */
	int (*list)(struct store *s, const char *prefix, const char *delimiter,
		    const char *token, unsigned max_keys,
		    struct store_list_page *out);

	/* Set the modification time of key to now, keeping its body (requires
	 * STORE_CAP_TOUCH, else -ENOTSUP). Fills *out (may be NULL). */
	int (*touch)(struct store *s, const char *key, struct store_meta *out);

	/* Free the store and everything it owns (and its inner store). */
	void (*destroy)(struct store *s);

	/*
	 * Optional: a put whose body is still being written, so a big body
	 * can go up while it is produced. upload_begin (NULL in stores that
	 * cannot; store_upload_begin then returns -ENOTSUP) starts an upload
	 * of key from fd at offset; upload_advance says that the first
	 * `stable` bytes are final and may be sent now; upload_commit gives
	 * the final size and condition and then behaves exactly as put()
	 * (atomic, condition enforced, *out filled, nothing visible before);
	 * upload_abort gives up, leaving the previous version. Commit and
	 * abort free the upload. The caller keeps fd open and the stable bytes
	 * unchanged until then, and calls at most one of these at a time.
	 */
	int (*upload_begin)(struct store *s, const char *key, int fd, off_t offset,
			    struct store_upload **out);
	void (*upload_advance)(struct store_upload *u, uint64_t stable);
	int (*upload_commit)(struct store_upload *u, uint64_t size,
			     const struct store_put_cond *cond, struct store_meta *out);
	void (*upload_abort)(struct store_upload *u);
};

struct store {
	const struct store_ops *ops;
	unsigned caps; /* enum store_caps */
};

/* What every store's upload starts with: the store that made it. */
struct store_upload {
	struct store *store;
};

static inline int store_head(struct store *s, const char *key, struct store_meta *out)
{
	return s->ops->head(s, key, out);
}

static inline int store_get(struct store *s, const char *key, const char *if_none_match,
			    const char *if_match, int fd, off_t fd_offset,
			    struct store_meta *out)
{
	return s->ops->get(s, key, if_none_match, if_match, fd, fd_offset, out);
}

static inline int store_put(struct store *s, const char *key, int fd, off_t offset,
			    uint64_t size, const struct store_put_cond *cond,
			    struct store_meta *out)
{
	return s->ops->put(s, key, fd, offset, size, cond, out);
}

static inline int store_del(struct store *s, const char *key, const char *if_match)
{
	return s->ops->del(s, key, if_match);
}

static inline int store_list(struct store *s, const char *prefix, const char *delimiter,
			     const char *token, unsigned max_keys,
			     struct store_list_page *out)
{
	return s->ops->list(s, prefix, delimiter, token, max_keys, out);
}

static inline int store_touch(struct store *s, const char *key, struct store_meta *out)
{
	return s->ops->touch(s, key, out);
}

static inline int store_upload_begin(struct store *s, const char *key, int fd, off_t offset,
				     struct store_upload **out)
{
	return s->ops->upload_begin ? s->ops->upload_begin(s, key, fd, offset, out) : -ENOTSUP;
}

static inline void store_upload_advance(struct store_upload *u, uint64_t stable)
{
	u->store->ops->upload_advance(u, stable);
}

static inline int store_upload_commit(struct store_upload *u, uint64_t size,
				      const struct store_put_cond *cond, struct store_meta *out)
{
	return u->store->ops->upload_commit(u, size, cond, out);
}

static inline void store_upload_abort(struct store_upload *u)
{
	u->store->ops->upload_abort(u);
}

/* Free a store and its inner stores; NULL is a no-op. */
void store_destroy(struct store *s);

/* Free what a list() put into *page and zero it; safe on a zeroed page. */
void store_list_page_cleanup(struct store_list_page *page);

/* Append one entry to *page (copies key); 0 or -ENOMEM. For backends. */
int store_list_page_add(struct store_list_page *page, const char *key, bool is_prefix,
			const struct store_meta *meta);

/* 0 if key obeys the key rules above, else -EINVAL. */
int store_key_check(const char *key);

/* Human-readable name of a store error (for logs); never NULL. */
const char *store_strerror(int err);

#endif
