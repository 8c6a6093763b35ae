/*
 * s3_store.h - the s3:// store: Amazon S3 and S3-compatible servers (Ceph
 * RGW, MinIO, R2, ...) behind the store.h contract, configured from the same
 * environment an operator already gives Kong.
 *
 * It is a backend, not a cache and not a wrapper: it speaks SigV4-signed
 * HTTP through http.h, gets keys from aws_creds.h and maps every answer to
 * the store.h errnos. See s3_store.c for the retry and consistency rules.
 */
#ifndef FALLBACKFS_S3_STORE_H
#define FALLBACKFS_S3_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Default (and largest, until 10000 parts need more) multipart part size;
 * by default also the size above which a put goes multipart. */
#define S3_STORE_DEFAULT_PART_SIZE (16u << 20)
/* S3's smallest part (all but the last). */
#define S3_STORE_MIN_PART_SIZE (5u << 20)

struct s3_store_config {
	const char *bucket;     /* required */
	const char *prefix;     /* "" or "a/b/" (ends with '/') */
	const char *endpoint;   /* NULL: $AWS_CONFIG_STORAGE_ENDPOINT, else AWS */
	const char *region;     /* NULL: AWS_REGION, AWS_DEFAULT_REGION, config file */
	const char *addressing; /* NULL (path with an endpoint, virtual on AWS),
	                           "path" or "virtual" */
	const char *ca_file;    /* private CA bundle; NULL: the system's */
	unsigned timeout_ms;    /* deadline of one operation, retries included;
	                           0: 30000 */
	uint64_t part_size;     /* 0: $FALLBACKFS_S3_PART_SIZE or the default */
	uint64_t multipart_threshold; /* bodies larger than this go multipart;
	                           0: $FALLBACKFS_S3_MULTIPART_THRESHOLD or the
	                           part size; capped at S3's 5 GB single-PUT limit */
	bool read_only;         /* skip the write probe (no conditional/touch caps) */
};

/*
 * Create the store, list the bucket once and (unless read_only) probe what
 * the server enforces, so that every mistake a user can fix (no region, bad
 * credentials, unknown bucket, unreachable endpoint) is reported now as a
 * sentence in err. Caller frees *out with store_destroy(). Starts no thread:
 * the credential refresh thread starts with the first operation run from
 * another thread or process than the creator (i.e. after the daemon forks).
 */
int s3_store_create(const struct s3_store_config *cfg, struct store **out, char *err,
		    size_t errlen);

#endif
