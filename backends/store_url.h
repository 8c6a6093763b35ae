/*
 * store_url.h - parse and validate storage URLs (Kong's own forms):
 *   s3://bucket/prefix, gcs://bucket/prefix, gs://bucket/prefix,
 *   file:///absolute/dir
 * Parsing only: it does not touch the network or the disk.
 */
#ifndef FALLBACKFS_STORE_URL_H
#define FALLBACKFS_STORE_URL_H

#include <stddef.h>

enum store_scheme {
	STORE_SCHEME_FILE,
	STORE_SCHEME_S3,
	STORE_SCHEME_GCS,
};

struct store_url {
	enum store_scheme scheme;
	char *bucket; /* s3/gcs: bucket name; file: NULL */
	char *prefix; /* s3/gcs: "" or "a/b/" (always ends with '/'); file: NULL */
	char *path;   /* file: absolute directory without trailing '/'; else NULL */
};

/* Parse url into *out (caller cleans up with store_url_cleanup). On error
 * returns -EINVAL and writes a sentence a user can act on into err. */
int store_url_parse(const char *url, struct store_url *out, char *err, size_t errlen);

/* Free what store_url_parse() allocated; safe on a zeroed struct. */
void store_url_cleanup(struct store_url *u);

/* The scheme's canonical name ("file", "s3", "gcs"). */
const char *store_url_scheme_name(enum store_scheme scheme);

#endif
