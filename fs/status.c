/*
 * status.c - render the counters as JSON (cJSON) and as Prometheus text.
 */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "status.h"

/* The filesystem's counters: one row each for both renderings. */
static const struct {
	const char *json;   /* key under "fs" in status */
	const char *metric; /* fallbackfs_<metric> */
	const char *help;
	size_t off;
} fs_rows[] = {
	{ "opens", "opens_total", "Opens for reading.", offsetof(struct fs_counters, opens) },
	{ "cache_hits", "cache_hits_total", "Opens served without asking the store.",
	  offsetof(struct fs_counters, cache_hits) },
	{ "revalidations", "revalidations_total", "Revalidations that found no change.",
	  offsetof(struct fs_counters, revalidations) },
	{ "fetches", "fetches_total", "Object bodies downloaded.",
	  offsetof(struct fs_counters, fetches) },
	{ "stale_served", "stale_served_total",
	  "Opens served from the local cache because the store failed.",
	  offsetof(struct fs_counters, stale_served) },
	{ "commits", "commits_total", "Staged writes uploaded.",
	  offsetof(struct fs_counters, commits) },
	{ "commit_errors", "commit_errors_total", "Uploads of staged writes that failed.",
	  offsetof(struct fs_counters, commit_errors) },
	{ "read_bytes", "fuse_read_bytes_total",
	  "Bytes read through FUSE (the kernel page cache serves the rest).",
	  offsetof(struct fs_counters, read_bytes) },
};

/* The value of row i of fs_rows. */
static uint64_t fs_value(const struct fs_counters *c, size_t i)
{
	return atomic_load((_Atomic uint64_t *)((char *)c + fs_rows[i].off));
}

/* ISO-8601 UTC, or NULL (JSON null) for "never". */
static cJSON *iso_time(int64_t t)
{
	char buf[32];
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0 || !gmtime_r(&tt, &tm))
		return cJSON_CreateNull();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return cJSON_CreateString(buf);
}

char *status_json(const struct status_input *in)
{
	cJSON *root = cJSON_CreateObject(), *st, *req, *err, *fs, *cache;
	char *text = NULL;

	if (!root)
		return NULL;
	cJSON_AddStringToObject(root, "url", in->url);
	cJSON_AddNumberToObject(root, "freshness_seconds", (double)in->freshness_ms / 1000.0);
	st = cJSON_AddObjectToObject(root, "store");
	if (st && in->store) {
		const struct store_stats *s = in->store;

		cJSON_AddBoolToObject(st, "reachable", s->reachable);
		cJSON_AddItemToObject(st, "last_success", iso_time(s->last_ok));
		if (s->last_error) {
			cJSON *le = cJSON_AddObjectToObject(st, "last_error");

			if (le) {
				cJSON_AddStringToObject(le, "op", stats_op_name(s->last_error_op));
				cJSON_AddStringToObject(le, "error", store_strerror(s->last_error));
				cJSON_AddItemToObject(le, "at", iso_time(s->last_error_at));
			}
		} else {
			cJSON_AddNullToObject(st, "last_error");
		}
		req = cJSON_AddObjectToObject(st, "requests");
		err = cJSON_AddObjectToObject(st, "errors");
		for (int i = 0; i < STATS_NOPS && req && err; i++) {
			cJSON_AddNumberToObject(req, stats_op_name(i), (double)s->requests[i]);
			cJSON_AddNumberToObject(err, stats_op_name(i), (double)s->errors[i]);
		}
		cJSON_AddNumberToObject(st, "not_modified", (double)s->not_modified);
		cJSON_AddNumberToObject(st, "bytes_in", (double)s->bytes_in);
		cJSON_AddNumberToObject(st, "bytes_out", (double)s->bytes_out);
	}
	cache = cJSON_AddObjectToObject(root, "cache");
	if (cache) {
		cJSON_AddStringToObject(cache, "dir", in->cache_dir);
		cJSON_AddNumberToObject(cache, "bytes", (double)in->cache_bytes);
	}
	fs = cJSON_AddObjectToObject(root, "fs");
	for (size_t i = 0; fs && i < sizeof(fs_rows) / sizeof(fs_rows[0]); i++)
		cJSON_AddNumberToObject(fs, fs_rows[i].json, (double)fs_value(in->fs, i));
	text = cJSON_Print(root);
	cJSON_Delete(root);
	if (text) {
		size_t n = strlen(text);
		char *t2 = realloc(text, n + 2);

		if (t2) {
			t2[n] = '\n';
			t2[n + 1] = '\0';
			text = t2;
		}
	}
	return text;
}

/* A growing text buffer for the exposition (bounded: a fixed set of lines). */
struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap * 2 + (size_t)(n > 0 ? n : 0);
			char *p = realloc(b->p, cap);

			if (!p) {
				b->oom = true;
				return;
			}
			b->p = p;
			b->cap = cap;
		}
	}
}

/* One counter family with its HELP and TYPE lines. */
static void family(struct buf *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP fallbackfs_%s %s\n# TYPE fallbackfs_%s %s\n", name, help, name, type);
}

char *status_metrics(const struct status_input *in)
{
	struct buf b = { .p = malloc(4096), .cap = 4096 };
	const struct fs_counters *c = in->fs;

	if (!b.p)
		return NULL;
	b.p[0] = '\0';
	if (in->store) {
		const struct store_stats *s = in->store;

		family(&b, "store_requests_total", "counter", "Store requests by operation.");
		for (int i = 0; i < STATS_NOPS; i++)
			put(&b, "fallbackfs_store_requests_total{op=\"%s\"} %llu\n", stats_op_name(i),
			    (unsigned long long)s->requests[i]);
		family(&b, "store_errors_total", "counter", "Failed store requests by operation.");
		for (int i = 0; i < STATS_NOPS; i++)
			put(&b, "fallbackfs_store_errors_total{op=\"%s\"} %llu\n", stats_op_name(i),
			    (unsigned long long)s->errors[i]);
		family(&b, "store_not_modified_total", "counter",
		       "Conditional GETs answered unchanged (no body).");
		put(&b, "fallbackfs_store_not_modified_total %llu\n",
		    (unsigned long long)s->not_modified);
		family(&b, "store_bytes_total", "counter", "Object bytes moved, by direction.");
		put(&b, "fallbackfs_store_bytes_total{direction=\"in\"} %llu\n",
		    (unsigned long long)s->bytes_in);
		put(&b, "fallbackfs_store_bytes_total{direction=\"out\"} %llu\n",
		    (unsigned long long)s->bytes_out);
		family(&b, "store_up", "gauge", "1 if the last store request got an answer.");
		put(&b, "fallbackfs_store_up %d\n", s->reachable ? 1 : 0);
		family(&b, "store_last_success_timestamp_seconds", "gauge",
		       "Unix time of the last answer from the store.");
		put(&b, "fallbackfs_store_last_success_timestamp_seconds %lld\n",
		    (long long)s->last_ok);
	}
	for (size_t i = 0; i < sizeof(fs_rows) / sizeof(fs_rows[0]); i++) {
		family(&b, fs_rows[i].metric, "counter", fs_rows[i].help);
		put(&b, "fallbackfs_%s %llu\n", fs_rows[i].metric,
		    (unsigned long long)fs_value(c, i));
	}
	family(&b, "cache_bytes", "gauge", "Bytes held in the local cache directory.");
	put(&b, "fallbackfs_cache_bytes %llu\n", (unsigned long long)in->cache_bytes);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}
