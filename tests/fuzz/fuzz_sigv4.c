/*
 * fuzz_sigv4.c - fuzz target for the SigV4 canonicaliser and signer.
 *
 * The input is split into lines: the method, the path, then lines that start
 * with 'q' (query "name=value"), 'h' (header "name:value"), 't' (session
 * token), 'p' (payload hash) or 'r' (region). Every call must either fail
 * cleanly or produce output that obeys the invariants checked below (the
 * target and the canonical request agree, encodings are well formed, the
 * signature is 64 hex digits); a violation aborts.
 *
 * Built with -DFUZZING_LIBFUZZER and -fsanitize=fuzzer it is a libFuzzer
 * target; otherwise it is a plain program that runs each file named on the
 * command line (or each file in a named directory) once, which is how meson
 * replays the vector files as a smoke test. It is not a correctness test:
 * test_sigv4 and the botocore cross-check are.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sigv4.h"
#include "sigv4_internal.h"

#define MAX_LINES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort with a message: the fuzzer records the input that got here. */
static void violated(const char *what)
{
	fprintf(stderr, "fuzz_sigv4: invariant violated: %s\n", what);
	abort();
}

/* True for the digits the signer may write after a '%'. */
static int is_upper_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* True if s[0..len) is a well-formed encoding: unreserved bytes, '/' when allowed, %XX. */
static int well_encoded(const char *s, size_t len, int allow_slash)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~' || (allow_slash && c == '/'))
			continue;
		if (c == '%' && i + 2 < len && is_upper_hex(s[i + 1]) && is_upper_hex(s[i + 2])) {
			i += 2;
			continue;
		}
		return 0;
	}
	return 1;
}

/* True if q[0..len) is name=value pairs joined by '&', each part well encoded. */
static int well_formed_query(const char *q, size_t len)
{
	size_t start = 0, i;
	int equals = 0;

	for (i = 0; i <= len; i++) {
		if (i < len && q[i] != '&' && q[i] != '=')
			continue;
		if (i < len && q[i] == '=')
			equals++;
		if (!well_encoded(q + start, i - start, 0))
			return 0;
		if (i == len || q[i] == '&') {
			if (equals != 1)
				return 0;
			equals = 0;
		}
		start = i + 1;
	}
	return 1;
}

/* True if s is exactly 64 lower-case hex digits. */
static int is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

/* Check what sigv4_target() and sigv4_canonical_request() produced against each other. */
static void check_outputs(const struct sigv4_request *req, const char *canonical,
			  const char *signed_headers)
{
	const char *l1, *l2, *l3, *p;
	char *target = NULL;
	size_t path_len, query_len;

	if (sigv4_target(req, &target))
		violated("target failed where the canonical request succeeded");
	l1 = strchr(canonical, '\n');
	l2 = l1 ? strchr(l1 + 1, '\n') : NULL;
	l3 = l2 ? strchr(l2 + 1, '\n') : NULL;
	if (!l3)
		violated("canonical request has fewer than four lines");
	path_len = (size_t)(l2 - l1 - 1);
	query_len = (size_t)(l3 - l2 - 1);
	if (!well_encoded(l1 + 1, path_len, 1))
		violated("badly encoded path");
	if (strncmp(target, l1 + 1, path_len) != 0)
		violated("target path differs from the signed path");
	if (query_len) {
		if (target[path_len] != '?' || strncmp(target + path_len + 1, l2 + 1, query_len) ||
		    target[path_len + 1 + query_len] != '\0')
			violated("target query differs from the signed query");
		if (!well_formed_query(l2 + 1, query_len))
			violated("badly encoded query");
	} else if (target[path_len] != '\0') {
		violated("target has a query the signature does not");
	}
	/* The line before the payload hash is the signed headers list. */
	p = strrchr(canonical, '\n');
	if (!p || (size_t)(p - canonical) < strlen(signed_headers) ||
	    strncmp(p - strlen(signed_headers), signed_headers, strlen(signed_headers)) != 0)
		violated("signed headers line differs from the signed headers list");
	free(target);
}

/* Drive the stage and the one-call path with the same input and cross-check them. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sigv4_param query[MAX_LINES], headers[MAX_LINES];
	const char *lines[MAX_LINES];
	struct sigv4_request req;
	struct sigv4_credentials creds = { "AKIAIOSFODNN7EXAMPLE", "secret", NULL };
	struct sigv4_auth auth;
	const char *region = "us-east-1", *payload = SIGV4_EMPTY_SHA256, *sig;
	char *text, *p, *canonical = NULL, *signed_headers = NULL, *sep;
	size_t nlines = 0, nq = 0, nh = 0, i;
	int ret;

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* Split at '\n' only: a '\r' or NUL left inside a value must be handled by the signer. */
	for (p = text; nlines < MAX_LINES;) {
		lines[nlines++] = p;
		p = strchr(p, '\n');
		if (!p)
			break;
		*p++ = '\0';
	}
	memset(&req, 0, sizeof(req));
	req.method = nlines > 0 ? lines[0] : "GET";
	req.path = nlines > 1 ? lines[1] : "/";
	for (i = 2; i < nlines; i++) {
		char *line = (char *)lines[i];

		switch (line[0]) {
		case 'q':
			sep = strchr(line + 1, '=');
			if (sep)
				*sep++ = '\0';
			query[nq++] = (struct sigv4_param){ line + 1, sep };
			break;
		case 'h':
			sep = strchr(line + 1, ':');
			if (sep)
				*sep++ = '\0';
			headers[nh++] = (struct sigv4_param){ line + 1, sep };
			break;
		case 't':
			creds.session_token = line + 1;
			break;
		case 'p':
			payload = line + 1;
			break;
		case 'r':
			region = line + 1;
			break;
		default:
			break;
		}
	}
	req.query = query;
	req.query_count = nq;
	req.headers = headers;
	req.header_count = nh;
	req.payload_hash = payload;

	ret = sigv4_canonical_request(&req, &canonical, &signed_headers);
	if (ret == 0)
		check_outputs(&req, canonical, signed_headers);
	else if (ret != -EINVAL && ret != -ENOMEM)
		violated("unexpected canonical request error");
	else if (canonical || signed_headers)
		violated("outputs set after an error");

	ret = sigv4_sign(&req, &creds, region, "s3", 1369353600, &auth);
	if (ret == 0) {
		sig = strstr(auth.authorization, ",Signature=");
		if (!sig || !is_hex64(sig + strlen(",Signature=")))
			violated("malformed signature");
		if (strlen(auth.amz_date) != 16)
			violated("malformed x-amz-date");
	} else if (ret != -EINVAL && ret != -ENOMEM) {
		violated("unexpected sign error");
	} else if (auth.authorization || auth.security_token) {
		violated("auth set after an error");
	}
	sigv4_auth_cleanup(&auth);
	free(canonical);
	free(signed_headers);
	free(text);
	return 0;
}

#ifndef FUZZING_LIBFUZZER
/* Run the target once over one file; -1 if it cannot be read. */
static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	do {
		if (len == cap) {
			uint8_t *grown = realloc(buf, cap ? cap * 2 : 4096);

			if (!grown) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = grown;
			cap = cap ? cap * 2 : 4096;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

/* Replay files, or every regular file in the directories, given as arguments. */
int main(int argc, char **argv)
{
	char path[4096];
	struct dirent *de;
	struct stat st;
	int i, runs = 0, errors = 0;
	DIR *d;

	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			d = opendir(argv[i]);
			if (!d) {
				errors++;
				continue;
			}
			while ((de = readdir(d)) != NULL) {
				snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
				if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
					errors += run_file(path) != 0;
					runs++;
				}
			}
			closedir(d);
		} else {
			errors += run_file(argv[i]) != 0;
			runs++;
		}
	}
	printf("fuzz_sigv4: %d inputs replayed, %d unreadable\n", runs, errors);
	return errors || !runs ? 1 : 0;
}
#endif
