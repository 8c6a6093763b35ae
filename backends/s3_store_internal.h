/*
 * s3_store_internal.h - the pure stages of the S3 store that tests reach
 * directly: endpoint parsing, URL layout, the one status/code -> errno table,
 * the retry predicate and the backoff. Included only by s3_store.c and tests.
 */
#ifndef FALLBACKFS_S3_STORE_INTERNAL_H
#define FALLBACKFS_S3_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sentinel of the error table: a 412, decided by the operation's context. */
#define S3_ERR_PRECONDITION 1

/* What a request meant, to turn a 412 into the errno of that meaning. */
enum s3_ctx {
	S3_CTX_READ,     /* GET/HEAD/LIST/DELETE: 412 -> -ESTALE */
	S3_CTX_CREATE,   /* If-None-Match: * -> -EEXIST */
	S3_CTX_IF_MATCH, /* If-Match or copy-source-if-match -> -ESTALE */
};

struct s3_endpoint {
	bool https;
	char host[256]; /* host name or IPv4, or [IPv6] with its brackets */
	unsigned port;  /* 0: the scheme's default */
};

/* Parse an endpoint URL ("http://minio:9000/", "https://s3.example"): only
 * scheme, host and port are used, as Kong does. 0 or -EINVAL with a
 * sentence in err. */
int s3_endpoint_parse(const char *url, struct s3_endpoint *out, char *err, size_t errlen);

/* The endpoint of AWS S3 itself for region (virtual-hosted capable). */
void s3_endpoint_aws(const char *region, struct s3_endpoint *out);

/* True if bucket can be a DNS label set under a virtual-hosted https name. */
bool s3_bucket_virtual_ok(const char *bucket, bool https);

/*
 * Lay out requests for bucket at ep: the Host header value (host_out, with
 * ":port" unless default, "bucket." in front when virtual) and the path
 * prefix of every request ("/bucket" path-style, "" virtual). 0 or -EINVAL
 * when a buffer is too small.
 */
int s3_layout(const struct s3_endpoint *ep, const char *bucket, bool virtual_host,
	      char *host_out, size_t host_len, char *path_prefix, size_t prefix_len);

/*
 * The one table: HTTP status plus S3 error code (may be NULL or "") to a
 * negative errno, with 412 resolved by ctx. *why (may be NULL) gets a short
 * sentence for the log when the answer needs one (credentials, region,
 * bucket), else NULL.
 */
int s3_status_errno(long status, const char *code, enum s3_ctx ctx, const char **why);

/* Whether a failure is worth another attempt: transport_err is the
 * http_perform() result (0 when an answer arrived), status/code the answer. */
bool s3_retryable(int transport_err, long status, const char *code);

/* Whether a failed write provably was not applied by the server, so that
 * repeating an unconditional write cannot overwrite a newer object. */
bool s3_not_applied(int transport_err, long status, const char *code);

/* Backoff before attempt number attempt+1 (attempt >= 0): capped
 * exponential with equal jitter, rnd being any random number. */
long s3_backoff_ms(unsigned attempt, uint32_t rnd);

/* Copy an ETag without its W/ prefix and surrounding quotes. */
void s3_etag_unquote(const char *in, char *out, size_t len);

/* Seconds since the epoch of an IMF-fixdate ("Tue, 24 Nov 2026 04:03:17
 * GMT"), or -1. */
int64_t s3_http_date(const char *s);

/* Percent-encode a key for x-amz-copy-source (unreserved bytes and '/'
 * kept). 0, or -EFBIG when out is too small. */
int s3_uri_encode_path(const char *in, char *out, size_t len);

#endif
