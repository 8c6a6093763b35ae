/*
 * store.c - helpers shared by every store: dispatch-free utilities for list
 * pages, key validation and error names. No backend logic lives here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/* Free a store through its own destroy; NULL is a no-op. */
void store_destroy(struct store *s)
{
	if (s)
		s->ops->destroy(s);
}

/* Release every key of a page and zero it so it can be reused. */
void store_list_page_cleanup(struct store_list_page *page)
{
	if (!page)
		return;
	for (size_t i = 0; i < page->count; i++)
		free(page->entries[i].key);
	free(page->entries);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

/* Append an entry; the array doubles whenever count reaches a power of two,
 * and the caller's max_keys bounds it. */
int store_list_page_add(struct store_list_page *page, const char *key, bool is_prefix,
			const struct store_meta *meta)
{
	struct store_list_entry *e;

	if ((page->count & (page->count - 1)) == 0) {
		size_t cap = page->count ? page->count * 2 : 1;
		struct store_list_entry *n;

		n = realloc(page->entries, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		page->entries = n;
	}
	e = &page->entries[page->count];
	memset(e, 0, sizeof(*e));
	e->key = strdup(key);
	if (!e->key)
		return -ENOMEM;
	e->is_prefix = is_prefix;
	if (meta && !is_prefix)
		e->meta = *meta;
	page->count++;
	return 0;
}

/* Keys are what a POSIX path below the mount root can name: no leading or
 * doubled '/', no "." or ".." segments, no NUL, bounded length. */
int store_key_check(const char *key)
{
	size_t len = strlen(key);
	const char *seg = key;

	if (len == 0 || len >= STORE_KEY_MAX || key[0] == '/')
		return -EINVAL;
	for (const char *p = key;; p++) {
		if (*p == '/' || *p == '\0') {
			size_t n = (size_t)(p - seg);

			if (n == 0 && *p == '/')
				return -EINVAL;
			if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
				return -EINVAL;
			if (*p == '\0')
				break;
			seg = p + 1;
		}
	}
	return 0;
}

/* Error names in the words of a store, for log lines and status files. */
const char *store_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0: return "ok";
	case ENOENT: return "no such object";
	case EEXIST: return "object already exists (create-only put refused)";
	case ESTALE: return "object changed since it was read (if-match refused)";
	case EACCES: return "access denied by the store (credentials or permissions)";
	case ETIMEDOUT: return "store did not answer before the deadline";
	case EHOSTUNREACH: return "store unreachable";
	case ECONNRESET: return "connection reset by the store";
	case ENOTSUP: return "operation not supported by this store";
	case EFBIG: return "response larger than the allowed maximum";
	case ENOSPC: return "store out of space";
	case EINVAL: return "invalid key or argument";
	case ENOMEM: return "out of memory";
	case EROFS: return "read-only mount";
	case EIO: return "store answered something unusable";
	default: return strerror(err < 0 ? -err : err);
	}
}
