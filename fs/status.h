/*
 * status.h - what the mount tells about itself: the filesystem's counters and
 * the two renderings of them served under .fallbackfs/ (status as JSON,
 * metrics in Prometheus text format). Formatting only.
 */
#ifndef FALLBACKFS_STATUS_H
#define FALLBACKFS_STATUS_H

#include <stdatomic.h>
#include <stdint.h>

#include "stats_store.h"

/* Counted by the filesystem (the store layer counts requests). */
struct fs_counters {
	_Atomic uint64_t opens;         /* open() for reading */
	_Atomic uint64_t cache_hits;    /* opens served without asking the store */
	_Atomic uint64_t revalidations; /* conditional requests answered "unchanged" */
	_Atomic uint64_t fetches;       /* bodies downloaded */
	_Atomic uint64_t stale_served;  /* opens served from the cache because the store failed */
	_Atomic uint64_t commits;       /* uploads of staged writes */
	_Atomic uint64_t commit_errors;
	_Atomic uint64_t read_bytes;    /* bytes read through FUSE (not the page cache) */
};

struct status_input {
	const char *url;
	const char *cache_dir;
	uint64_t cache_bytes;
	int64_t freshness_ms;
	const struct store_stats *store; /* NULL if the stack has no stats layer */
	const struct fs_counters *fs;
};

/* JSON status document (caller frees), NULL on ENOMEM. */
char *status_json(const struct status_input *in);

/* Prometheus text exposition (caller frees), NULL on ENOMEM. */
char *status_metrics(const struct status_input *in);

#endif
