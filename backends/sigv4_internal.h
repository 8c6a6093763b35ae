/*
 * sigv4_internal.h - the stages of the SigV4 signer, exposed for tests only.
 *
 * Included by sigv4.c and by the unit tests and fuzz target; nothing else
 * should call these, because sigv4_sign() is the only path that keeps the
 * stages consistent with each other. Each stage matches one step of the AWS
 * "Signature Calculations for the Authorization Header" procedure, so a
 * failing vector names the step that went wrong.
 */
#ifndef FALLBACKFS_SIGV4_INTERNAL_H
#define FALLBACKFS_SIGV4_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "sigv4.h"

/* Longest string any stage builds; beyond it inputs are refused with -EINVAL. */
#define SIGV4_MAX_STRING (256 * 1024)

/* SHA-256 output size, and so the size of a signing key. */
#define SIGV4_KEY_LEN 32

/*
 * Percent-encode in the S3 way: A-Za-z0-9 -._~ kept, '/' kept when
 * keep_slash, every other byte as %XX upper-case. *out is caller-frees.
 * Returns 0, -EINVAL (too long) or -ENOMEM.
 */
int sigv4_uri_encode(const char *in, bool keep_slash, char **out);

/*
 * The canonical query string: names and values encoded, pairs sorted by name
 * then value, joined with '&'; "" for no parameters. *out is caller-frees.
 * Returns 0, -EINVAL or -ENOMEM.
 */
int sigv4_canonical_query(const struct sigv4_param *query, size_t count, char **out);

/*
 * The canonical headers block (each "name:value\n", names lower-cased,
 * values trimmed with inner runs of spaces and tabs collapsed, sorted by name,
 * repeats comma-joined) and the signed headers list ("a;b;c"). Both are
 * caller-frees. Returns 0, -EINVAL (bad name or value, none given) or -ENOMEM.
 */
int sigv4_canonical_headers(const struct sigv4_param *headers, size_t count,
			    char **canonical, char **signed_headers);

/*
 * The canonical request over exactly req's headers (nothing is added), and
 * optionally (signed_headers may be NULL) its signed headers list. Both are
 * caller-frees and may hold a session token: wipe before free. Returns 0,
 * -EINVAL or -ENOMEM.
 */
int sigv4_canonical_request(const struct sigv4_request *req, char **out, char **signed_headers);

/* Format t as "YYYYMMDDTHHMMSSZ" into out; 0 or -EINVAL (unrepresentable). */
int sigv4_format_time(time_t t, char out[17]);

/*
 * The string to sign for a canonical request made at amz_date (the x-amz-date
 * value; its first 8 characters are the scope date). *out is caller-frees.
 * Returns 0, -EINVAL, -ENOMEM or -EIO.
 */
int sigv4_string_to_sign(const char *amz_date, const char *region, const char *service,
			 const char *canonical_request, char **out);

/*
 * Derive the signing key for date8 ("YYYYMMDD"), region and service into
 * key; the caller wipes it after use. Returns 0, -EINVAL, -ENOMEM or -EIO.
 */
int sigv4_signing_key(const char *secret_key, const char *date8, const char *region,
		      const char *service, unsigned char key[SIGV4_KEY_LEN]);

/* Hex HMAC-SHA256 of string_to_sign under key into hex; 0, -EINVAL or -EIO. */
int sigv4_signature(const unsigned char key[SIGV4_KEY_LEN], const char *string_to_sign,
		    char hex[65]);

#endif
