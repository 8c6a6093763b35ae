/*
 * store_open.h - build the store stack for a storage URL: the backend at the
 * bottom, then the wrapping layers, assembled in one place.
 */
#ifndef FALLBACKFS_STORE_OPEN_H
#define FALLBACKFS_STORE_OPEN_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

struct store_config {
	const char *url;        /* s3://, gcs://, gs:// or file:// */
	const char *endpoint;   /* S3-compatible endpoint (overrides the environment) */
	const char *region;     /* overrides AWS_REGION / AWS_DEFAULT_REGION */
	const char *addressing; /* "path" or "virtual" (S3) */
	const char *ca_file;    /* private CA bundle for HTTPS */
	unsigned timeout_ms;    /* deadline of one store operation, retries included */
	bool read_only;         /* the mount never writes: backends must not either,
	                           not even to probe (read-only credentials) */
};

/* Build and validate the stack (caller frees with store_destroy). Errors are
 * negative errnos with a sentence for the user in err. Starts no thread. */
int store_open(const struct store_config *cfg, struct store **out, char *err, size_t errlen);

#endif
