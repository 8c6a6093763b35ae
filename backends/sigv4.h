/*
 * sigv4.h - AWS Signature Version 4 for S3 requests, header form only.
 *
 * Given one HTTP request described in raw (unencoded) terms, this module
 * produces the values of the headers that authenticate it: Authorization,
 * x-amz-date, x-amz-content-sha256 and, with a session token,
 * x-amz-security-token. It also builds the encoded path and query the HTTP
 * layer must put on the request line, from the same description, so that the
 * URL sent and the URL signed cannot differ.
 *
 * It is not an HTTP client, does no I/O, keeps no state and never logs. It
 * does not do presigned URLs, chunked (streaming) payload signatures, SigV4A,
 * or the double path encoding other AWS services use: paths are encoded the
 * S3 way, once, without dot-segment normalisation. All functions are safe to
 * call concurrently.
 */
#ifndef FALLBACKFS_SIGV4_H
#define FALLBACKFS_SIGV4_H

#include <stddef.h>
#include <time.h>

/* x-amz-content-sha256 of an empty body. */
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* x-amz-content-sha256 when the body is not covered by the signature. */
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* Most query parameters, and most headers, one request may carry. */
#define SIGV4_MAX_PARAMS 1024

/* One query parameter or one header, both raw: the signer does the encoding. */
struct sigv4_param {
	const char *name;
	const char *value; /* NULL is the same as "" */
};

struct sigv4_request {
	/* "GET", "PUT", ...: upper-case letters only. */
	const char *method;
	/*
	 * Raw path starting with '/', path-style, e.g. "/bucket/dir/a b+c.json".
	 * Every byte except A-Za-z0-9 -._~ and '/' is percent-encoded once.
	 */
	const char *path;
	/* Raw names and values; encoded and sorted by the signer. Names are
	 * non-empty; an empty value is sent and signed as "name=". */
	const struct sigv4_param *query;
	size_t query_count;
	/*
	 * Every header here is signed, so list exactly the headers that will be
	 * sent with exactly these values. "host" is mandatory and must be what
	 * the HTTP client sends (with ":port" unless the port is the scheme's
	 * default). Do not list authorization, x-amz-date, x-amz-content-sha256
	 * or x-amz-security-token: the signer produces those. Values may hold no
	 * control byte but tab; they are signed trimmed, with inner runs of
	 * spaces and tabs as one space, as servers canonicalise them. Repeated
	 * names are signed as one comma-joined value, in the order given.
	 */
	const struct sigv4_param *headers;
	size_t header_count;
	/* 64 lower-case hex digits of the body's SHA-256, or SIGV4_UNSIGNED_PAYLOAD. */
	const char *payload_hash;
};

struct sigv4_credentials {
	const char *access_key;    /* printable ASCII without '/', ',', '=' or spaces */
	const char *secret_key;    /* non-empty */
	const char *session_token; /* NULL or "" when there is none */
};

/* The header values for one signed request; released with sigv4_auth_cleanup(). */
struct sigv4_auth {
	char *authorization;     /* Authorization */
	char amz_date[17];       /* x-amz-date, "YYYYMMDDTHHMMSSZ" */
	char content_sha256[65]; /* x-amz-content-sha256 (the payload_hash given) */
	char *security_token;    /* x-amz-security-token, NULL when there is none */
};

/*
 * Sign req at time now (UTC seconds) for region and service ("s3") and fill
 * *out, which the caller releases with sigv4_auth_cleanup() (also after an
 * error, when it is zeroed). Returns 0, -EINVAL for a request or credential
 * that cannot be signed (see the field comments above) or that is too large
 * (more than SIGV4_MAX_PARAMS pairs, or a canonical request over 256 KiB),
 * -ENOMEM, or -EIO if OpenSSL fails.
 */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_credentials *creds,
	       const char *region, const char *service, time_t now, struct sigv4_auth *out);

/* Wipe and free what sigv4_sign() put in *auth and zero it; safe on a zeroed struct. */
void sigv4_auth_cleanup(struct sigv4_auth *auth);

/*
 * Build the request target to send: the encoded path, then '?' and the
 * canonical (encoded, sorted) query when there is one, e.g.
 * "/bucket/a%20b?list-type=2&prefix=". Only req->path and req->query are
 * used. *out is caller-frees. Returns 0, -EINVAL or -ENOMEM.
 */
int sigv4_target(const struct sigv4_request *req, char **out);

#endif
