/*
 * store_url.c - storage URL parsing. Validation is strict so that a typo is
 * reported on the terminal at mount time instead of becoming a strange
 * listing later.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_url.h"

static const struct {
	const char *prefix;
	enum store_scheme scheme;
} schemes[] = {
	{ "s3://", STORE_SCHEME_S3 },
	{ "gcs://", STORE_SCHEME_GCS },
	{ "gs://", STORE_SCHEME_GCS },
	{ "file://", STORE_SCHEME_FILE },
};

/* Canonical scheme name for messages. */
const char *store_url_scheme_name(enum store_scheme scheme)
{
	switch (scheme) {
	case STORE_SCHEME_S3: return "s3";
	case STORE_SCHEME_GCS: return "gcs";
	case STORE_SCHEME_FILE: return "file";
	}
	return "?";
}

/* Bucket names as both S3 (including S3-compatible servers) and GCS accept. */
static bool bucket_ok(const char *b, size_t n)
{
	if (n < 3 || n > 222)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = b[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '-' || c == '_'))
			return false;
	}
	return b[0] != '.' && b[0] != '-' && b[n - 1] != '.' && b[n - 1] != '-';
}

/* A prefix or path made of non-empty segments other than "." and "..". */
static bool segments_ok(const char *s)
{
	const char *seg = s;

	for (const char *p = s;; p++) {
		if (*p == '/' || *p == '\0') {
			size_t n = (size_t)(p - seg);

			if (n == 0 || (n == 1 && seg[0] == '.') ||
			    (n == 2 && seg[0] == '.' && seg[1] == '.'))
				return false;
			if (*p == '\0')
				return true;
			seg = p + 1;
		}
		if ((unsigned char)*p < 0x20)
			return false;
	}
}

/* Split, validate and copy the parts of url. */
int store_url_parse(const char *url, struct store_url *out, char *err, size_t errlen)
{
	const char *rest = NULL;
	char *trimmed = NULL;
	int ret = -EINVAL;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].prefix);

		if (strncmp(url, schemes[i].prefix, n) == 0) {
			out->scheme = schemes[i].scheme;
			rest = url + n;
			break;
		}
	}
	if (!rest) {
		snprintf(err, errlen, "unsupported storage URL '%.200s': expected "
			 "s3://bucket/prefix, gcs://bucket/prefix, gs://bucket/prefix "
			 "or file:///absolute/dir", url);
		goto out;
	}
	if (strpbrk(rest, "?#")) {
		snprintf(err, errlen, "storage URL '%.200s' must not contain '?' or '#'", url);
		goto out;
	}

	if (out->scheme == STORE_SCHEME_FILE) {
		if (strncmp(rest, "localhost/", 10) == 0)
			rest += 9;
		if (rest[0] != '/') {
			snprintf(err, errlen, "file URL '%.200s' must name an absolute "
				 "directory, as in file:///srv/kong-fallback", url);
			goto out;
		}
		trimmed = strdup(rest);
		if (!trimmed) {
			ret = -ENOMEM;
			goto out;
		}
		for (size_t n = strlen(trimmed); n > 1 && trimmed[n - 1] == '/'; n--)
			trimmed[n - 1] = '\0';
		if (strcmp(trimmed, "/") != 0 && !segments_ok(trimmed + 1)) {
			snprintf(err, errlen, "file URL '%.200s' has an empty, '.' or '..' "
				 "path segment", url);
			goto out;
		}
		out->path = trimmed;
		trimmed = NULL;
		return 0;
	}

	{
		const char *slash = strchr(rest, '/');
		size_t blen = slash ? (size_t)(slash - rest) : strlen(rest);
		const char *p = slash ? slash + 1 : "";
		size_t plen = strlen(p);

		if (!bucket_ok(rest, blen)) {
			snprintf(err, errlen, "'%.200s': bucket name '%.*s' is not valid (3 to "
				 "222 lowercase letters, digits, '.', '-' or '_')", url,
				 (int)(blen > 100 ? 100 : blen), rest);
			goto out;
		}
		out->bucket = strndup(rest, blen);
		trimmed = strdup(p);
		if (!out->bucket || !trimmed) {
			ret = -ENOMEM;
			goto out;
		}
		while (plen > 0 && trimmed[plen - 1] == '/')
			trimmed[--plen] = '\0';
		if (plen > 0 && !segments_ok(trimmed)) {
			snprintf(err, errlen, "'%.200s': prefix has an empty, '.' or '..' segment",
				 url);
			goto out;
		}
		if (plen > 512) {
			snprintf(err, errlen, "'%.200s': prefix is longer than 512 bytes", url);
			goto out;
		}
		out->prefix = malloc(plen + 2);
		if (!out->prefix) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(out->prefix, trimmed, plen);
		if (plen)
			out->prefix[plen++] = '/';
		out->prefix[plen] = '\0';
		free(trimmed);
		return 0;
	}
out:
	free(trimmed);
	store_url_cleanup(out);
	return ret;
}

/* Free and zero. */
void store_url_cleanup(struct store_url *u)
{
	if (!u)
		return;
	free(u->bucket);
	free(u->prefix);
	free(u->path);
	memset(u, 0, sizeof(*u));
}
