/*
 * stats_store.c - the counting layer (see stats_store.h). Counters are
 * atomics, so the layer adds no lock to the request path.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stats_store.h"

struct stats_store {
	struct store base;
	struct store *inner;
	_Atomic uint64_t requests[STATS_NOPS];
	_Atomic uint64_t errors[STATS_NOPS];
	_Atomic uint64_t not_modified, bytes_in, bytes_out;
	_Atomic int64_t last_ok, last_error_at;
	_Atomic int last_error, last_error_op;
	_Atomic bool reachable;
};

static const char *const op_names[STATS_NOPS] = { "head", "get", "put", "delete", "list", "touch" };

const char *stats_op_name(enum stats_op op)
{
	return op < STATS_NOPS ? op_names[op] : "?";
}

static struct stats_store *ss(struct store *s)
{
	return (struct stats_store *)s;
}

/* Answers that are the store speaking, not failing. */
static bool is_answer(int ret)
{
	return ret >= 0 || ret == -ENOENT || ret == -EEXIST || ret == -ESTALE ||
	       ret == -EINVAL || ret == -ENOTSUP;
}

/* Does this failure mean we could not talk to the store at all? */
static bool is_unreachable(int ret)
{
	return ret == -ETIMEDOUT || ret == -EHOSTUNREACH || ret == -ECONNRESET ||
	       ret == -ECONNREFUSED || ret == -ENETUNREACH;
}

/* Count one finished request. */
static int record(struct stats_store *s, enum stats_op op, int ret)
{
	atomic_fetch_add(&s->requests[op], 1);
	if (is_answer(ret)) {
		atomic_store(&s->last_ok, (int64_t)time(NULL));
		atomic_store(&s->reachable, true);
		return ret;
	}
	atomic_fetch_add(&s->errors[op], 1);
	atomic_store(&s->last_error, ret);
	atomic_store(&s->last_error_op, (int)op);
	atomic_store(&s->last_error_at, (int64_t)time(NULL));
	if (is_unreachable(ret))
		atomic_store(&s->reachable, false);
	else
		atomic_store(&s->last_ok, (int64_t)time(NULL)); /* it answered */
	return ret;
}

static int stats_head(struct store *s, const char *key, struct store_meta *out)
{
	return record(ss(s), STATS_HEAD, store_head(ss(s)->inner, key, out));
}

static int stats_get(struct store *s, const char *key, const char *inm, const char *im, int fd,
		     off_t off, struct store_meta *out)
{
	int ret = store_get(ss(s)->inner, key, inm, im, fd, off, out);

	if (ret == STORE_NOT_MODIFIED)
		atomic_fetch_add(&ss(s)->not_modified, 1);
	else if (ret == 0)
		atomic_fetch_add(&ss(s)->bytes_in, out->size);
	return record(ss(s), STATS_GET, ret);
}

static int stats_put(struct store *s, const char *key, int fd, off_t off, uint64_t size,
		     const struct store_put_cond *cond, struct store_meta *out)
{
	int ret = store_put(ss(s)->inner, key, fd, off, size, cond, out);

	if (ret == 0)
		atomic_fetch_add(&ss(s)->bytes_out, size);
	return record(ss(s), STATS_PUT, ret);
}

static int stats_del(struct store *s, const char *key, const char *if_match)
{
	return record(ss(s), STATS_DEL, store_del(ss(s)->inner, key, if_match));
}

static int stats_list(struct store *s, const char *prefix, const char *delim, const char *token,
		      unsigned max, struct store_list_page *out)
{
	return record(ss(s), STATS_LIST, store_list(ss(s)->inner, prefix, delim, token, max, out));
}

static int stats_touch(struct store *s, const char *key, struct store_meta *out)
{
	return record(ss(s), STATS_TOUCH, store_touch(ss(s)->inner, key, out));
}

/* An upload through this layer: counted as one put when it commits. */
struct stats_upload {
	struct store_upload base;
	struct store_upload *inner;
};

static int stats_upload_begin(struct store *s, const char *key, int fd, off_t off,
			      struct store_upload **out)
{
	struct stats_upload *u = calloc(1, sizeof(*u));
	int ret;

	if (!u)
		return -ENOMEM;
	ret = store_upload_begin(ss(s)->inner, key, fd, off, &u->inner);
	if (ret) {
		free(u);
		return ret;
	}
	u->base.store = s;
	*out = &u->base;
	return 0;
}

static void stats_upload_advance(struct store_upload *u, uint64_t stable)
{
	store_upload_advance(((struct stats_upload *)u)->inner, stable);
}

static int stats_upload_commit(struct store_upload *u, uint64_t size,
			       const struct store_put_cond *cond, struct store_meta *out)
{
	struct stats_store *s = ss(u->store);
	int ret = store_upload_commit(((struct stats_upload *)u)->inner, size, cond, out);

	free(u);
	if (ret == 0)
		atomic_fetch_add(&s->bytes_out, size);
	return record(s, STATS_PUT, ret);
}

static void stats_upload_abort(struct store_upload *u)
{
	store_upload_abort(((struct stats_upload *)u)->inner);
	free(u);
}

static void stats_destroy(struct store *s)
{
	store_destroy(ss(s)->inner);
	free(s);
}

static const struct store_ops stats_ops = {
	.name = "stats",
	.head = stats_head,
	.get = stats_get,
	.put = stats_put,
	.del = stats_del,
	.list = stats_list,
	.touch = stats_touch,
	.destroy = stats_destroy,
	.upload_begin = stats_upload_begin,
	.upload_advance = stats_upload_advance,
	.upload_commit = stats_upload_commit,
	.upload_abort = stats_upload_abort,
};

int stats_store_create(struct store *inner, struct store **out)
{
	struct stats_store *s = calloc(1, sizeof(*s));

	if (!s) {
		store_destroy(inner);
		return -ENOMEM;
	}
	s->base.ops = &stats_ops;
	s->base.caps = inner->caps;
	s->inner = inner;
	atomic_store(&s->reachable, true);
	*out = &s->base;
	return 0;
}

int stats_store_snapshot(struct store *st, struct store_stats *out)
{
	struct stats_store *s = ss(st);

	if (!st || st->ops != &stats_ops)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < STATS_NOPS; i++) {
		out->requests[i] = atomic_load(&s->requests[i]);
		out->errors[i] = atomic_load(&s->errors[i]);
	}
	out->not_modified = atomic_load(&s->not_modified);
	out->bytes_in = atomic_load(&s->bytes_in);
	out->bytes_out = atomic_load(&s->bytes_out);
	out->last_ok = atomic_load(&s->last_ok);
	out->last_error_at = atomic_load(&s->last_error_at);
	out->last_error = atomic_load(&s->last_error);
	out->last_error_op = (enum stats_op)atomic_load(&s->last_error_op);
	out->reachable = atomic_load(&s->reachable);
	return 0;
}
