/*
 * stats_store.h - a store layer that counts what passes through it: requests
 * and errors by operation, conditional GETs answered "not modified", bytes
 * each way, and the time and kind of the last success and failure. It
 * implements the store table over an inner store and changes nothing.
 */
#ifndef FALLBACKFS_STATS_STORE_H
#define FALLBACKFS_STATS_STORE_H

#include <stdint.h>

#include "store.h"

enum stats_op { STATS_HEAD, STATS_GET, STATS_PUT, STATS_DEL, STATS_LIST, STATS_TOUCH, STATS_NOPS };

struct store_stats {
	uint64_t requests[STATS_NOPS];
	uint64_t errors[STATS_NOPS]; /* failures other than "not found" / "precondition" */
	uint64_t not_modified;
	uint64_t bytes_in;  /* object bodies received */
	uint64_t bytes_out; /* object bodies sent */
	int64_t last_ok;    /* unix seconds of the last answer from the store; 0 none */
	int64_t last_error_at;
	int last_error;     /* negative errno of the last failure; 0 none */
	enum stats_op last_error_op;
	bool reachable;     /* the last request got an answer from the store */
};

/* Wrap inner (taking ownership) in a counting layer. */
int stats_store_create(struct store *inner, struct store **out);

/* Copy the counters of a stats layer; -EINVAL if s is not one. */
int stats_store_snapshot(struct store *s, struct store_stats *out);

/* "head", "get", ... for labels. */
const char *stats_op_name(enum stats_op op);

#endif
