/*
 * test_sigv4.c - unit tests of the SigV4 signer, stage by stage.
 *
 * Runs every vector file (*.txt) in the directory named by the environment
 * variable FALLBACKFS_SIGV4_VECTORS (tests/meson.build sets it; the format is
 * described in sigv4_vectors/README), then a few checks that do not fit the
 * vector format (encoding tables, argument checks, cleanup). It does not talk
 * to any server; tests/unit/sigv4_botocore_check.py is the independent
 * cross-check against botocore.
 *
 * Exit status: 0 pass, 1 a check failed, 99 the vectors could not be read.
 */
#include <dirent.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sigv4.h"
#include "sigv4_internal.h"

#define MAX_PAIRS 64
#define MAX_VECTOR_FILES 256
#define QUERY_SET (1u << 30)
#define HEADERS_SET (1u << 31)

/* One vector as read from a file; every string is owned by it. */
struct vector {
	char *name;
	char *method;
	char *path;
	struct sigv4_param query[MAX_PAIRS];
	size_t query_count;
	struct sigv4_param headers[MAX_PAIRS];
	size_t header_count;
	char *payload;
	char *access_key;
	char *secret_key;
	char *token;
	char *region;
	char *service;
	char *time;
	char *expect_canonical_request;
	char *expect_signed_headers;
	char *expect_string_to_sign;
	char *expect_signing_key;
	char *expect_signature;
	char *expect_authorization;
	char *expect_target;
	char *expect_error;
	unsigned set_mask; /* fields given in this vector (or in the defaults), by index */
};

static int failures;
static int checks;

/* Record one failed check with a printf-style explanation. */
static void __attribute__((format(printf, 2, 3))) fail(const char *vector, const char *fmt, ...)
{
	va_list ap;

	failures++;
	fprintf(stderr, "FAIL [%s] ", vector);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Compare two strings as one check, printing both on a mismatch. */
static void check_str(const char *vector, const char *what, const char *got, const char *want)
{
	checks++;
	if (!got || strcmp(got, want) != 0)
		fail(vector, "%s:\n--- got ---\n%s\n--- want ---\n%s\n---", what,
		     got ? got : "(null)", want);
}

/* Compare two ints as one check. */
static void check_int(const char *vector, const char *what, int got, int want)
{
	checks++;
	if (got != want)
		fail(vector, "%s: got %d, want %d", what, got, want);
}

/* strdup that exits on failure, since a test without memory cannot go on. */
static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p) {
		perror("strdup");
		exit(99);
	}
	return p;
}

/* Free every string a pair list owns. */
static void pairs_free(struct sigv4_param *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free((char *)p[i].name);
		free((char *)p[i].value);
	}
}

/* Release a vector and zero it. */
static void vector_cleanup(struct vector *v)
{
	char **strings[] = { &v->name, &v->method, &v->path, &v->payload, &v->access_key,
			     &v->secret_key, &v->token, &v->region, &v->service, &v->time,
			     &v->expect_canonical_request, &v->expect_signed_headers,
			     &v->expect_string_to_sign, &v->expect_signing_key,
			     &v->expect_signature, &v->expect_authorization,
			     &v->expect_target, &v->expect_error };
	size_t i;

	for (i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		free(*strings[i]);
	pairs_free(v->query, v->query_count);
	pairs_free(v->headers, v->header_count);
	memset(v, 0, sizeof(*v));
}

/* Deep copy of a vector (used to start each vector from the file's defaults). */
static void vector_copy(struct vector *dst, const struct vector *src)
{
	char *const *from[] = { &src->name, &src->method, &src->path, &src->payload,
				&src->access_key, &src->secret_key, &src->token,
				&src->region, &src->service, &src->time };
	char **to[] = { &dst->name, &dst->method, &dst->path, &dst->payload, &dst->access_key,
			&dst->secret_key, &dst->token, &dst->region, &dst->service, &dst->time };
	size_t i;

	memset(dst, 0, sizeof(*dst));
	for (i = 0; i < sizeof(to) / sizeof(to[0]); i++)
		*to[i] = *from[i] ? xstrdup(*from[i]) : NULL;
	for (i = 0; i < src->query_count; i++) {
		dst->query[i].name = xstrdup(src->query[i].name);
		dst->query[i].value = src->query[i].value ? xstrdup(src->query[i].value) : NULL;
	}
	dst->query_count = src->query_count;
	for (i = 0; i < src->header_count; i++) {
		dst->headers[i].name = xstrdup(src->headers[i].name);
		dst->headers[i].value = xstrdup(src->headers[i].value);
	}
	dst->header_count = src->header_count;
}

/* Decode the escapes of a one-line value (\\ \t \n \r \s \xHH) into a new string; NULL if malformed. */
static char *unescape(const char *in, size_t len)
{
	char *out = malloc(len + 1), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i < len; i++) {
		if (in[i] != '\\') {
			*o++ = in[i];
			continue;
		}
		if (++i >= len)
			goto bad;
		switch (in[i]) {
		case '\\': *o++ = '\\'; break;
		case 't': *o++ = '\t'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 's': *o++ = ' '; break;
		case 'x': {
			int hi = i + 2 < len ? OPENSSL_hexchar2int((unsigned char)in[i + 1]) : -1;
			int lo = i + 2 < len ? OPENSSL_hexchar2int((unsigned char)in[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi | lo) == 0)
				goto bad;
			*o++ = (char)(hi << 4 | lo);
			i += 2;
			break;
		}
		default:
			goto bad;
		}
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* Store value into field number bit of v, overriding a file default but refusing a field
 * given twice in one vector. */
static int set_field(struct vector *v, unsigned bit, char **field, char *value)
{
	bool twice = (v->set_mask & (1u << bit)) != 0;

	v->set_mask |= 1u << bit;
	free(*field);
	*field = value;
	return twice ? -1 : 0;
}

/* Add "name|value" to a pair list; a query may omit "|value" for a NULL value. */
static int add_pair(struct sigv4_param *list, size_t *count, const char *raw, size_t len,
		    bool value_optional)
{
	const char *bar = memchr(raw, '|', len);
	char *name, *value = NULL;

	if (*count >= MAX_PAIRS || (!bar && !value_optional))
		return -1;
	name = unescape(raw, bar ? (size_t)(bar - raw) : len);
	if (bar)
		value = unescape(bar + 1, len - (size_t)(bar - raw) - 1);
	if (!name || (bar && !value)) {
		free(name);
		free(value);
		return -1;
	}
	list[*count].name = name;
	list[*count].value = value;
	(*count)++;
	return 0;
}

/* Apply one "field value" line to v; -1 on an unknown field or a bad value. */
static int apply_field(struct vector *v, const char *field, const char *raw, size_t len,
		       bool is_block)
{
	static const struct {
		const char *name;
		size_t offset;
	} fields[] = {
		{ "method", offsetof(struct vector, method) },
		{ "path", offsetof(struct vector, path) },
		{ "payload", offsetof(struct vector, payload) },
		{ "access-key", offsetof(struct vector, access_key) },
		{ "secret-key", offsetof(struct vector, secret_key) },
		{ "token", offsetof(struct vector, token) },
		{ "region", offsetof(struct vector, region) },
		{ "service", offsetof(struct vector, service) },
		{ "time", offsetof(struct vector, time) },
		{ "expect-canonical-request", offsetof(struct vector, expect_canonical_request) },
		{ "expect-signed-headers", offsetof(struct vector, expect_signed_headers) },
		{ "expect-string-to-sign", offsetof(struct vector, expect_string_to_sign) },
		{ "expect-signing-key", offsetof(struct vector, expect_signing_key) },
		{ "expect-signature", offsetof(struct vector, expect_signature) },
		{ "expect-authorization", offsetof(struct vector, expect_authorization) },
		{ "expect-target", offsetof(struct vector, expect_target) },
		{ "expect-error", offsetof(struct vector, expect_error) },
	};
	size_t i;
	char *value;

	/* The first query or header line of a vector replaces the defaults' list, not extends it. */
	if (!strcmp(field, "query") && !is_block) {
		if (!(v->set_mask & QUERY_SET)) {
			pairs_free(v->query, v->query_count);
			v->query_count = 0;
			v->set_mask |= QUERY_SET;
		}
		return add_pair(v->query, &v->query_count, raw, len, true);
	}
	if (!strcmp(field, "header") && !is_block) {
		if (!(v->set_mask & HEADERS_SET)) {
			pairs_free(v->headers, v->header_count);
			v->header_count = 0;
			v->set_mask |= HEADERS_SET;
		}
		return add_pair(v->headers, &v->header_count, raw, len, false);
	}
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strcmp(field, fields[i].name) != 0)
			continue;
		if (is_block) {
			value = malloc(len + 1);
			if (!value)
				return -1;
			memcpy(value, raw, len);
			value[len] = '\0';
		} else {
			value = unescape(raw, len);
			if (!value)
				return -1;
		}
		return set_field(v, (unsigned)i, (char **)((char *)v + fields[i].offset), value);
	}
	return -1;
}

/* "EINVAL" -> -EINVAL for the errors a vector may expect. */
static int parse_errno(const char *name)
{
	if (!strcmp(name, "EINVAL"))
		return -EINVAL;
	if (!strcmp(name, "ENOMEM"))
		return -ENOMEM;
	return 1; /* never a valid result, so the check fails loudly */
}

/* Build the request a vector describes (pointers into v). */
static void vector_request(const struct vector *v, struct sigv4_request *req)
{
	memset(req, 0, sizeof(*req));
	req->method = v->method;
	req->path = v->path;
	req->query = v->query;
	req->query_count = v->query_count;
	req->headers = v->headers;
	req->header_count = v->header_count;
	req->payload_hash = v->payload;
}

/* Parse "YYYYMMDDTHHMMSSZ" as UTC; -1 when malformed. */
static int parse_time(const char *s, time_t *out)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = s ? strptime(s, "%Y%m%dT%H%M%SZ", &tm) : NULL;
	if (!end || *end)
		return -1;
	*out = timegm(&tm);
	return 0;
}

/* Run the stage checks and the end-to-end check one vector asks for. */
static void run_vector(const struct vector *v)
{
	const char *name = v->name;
	struct sigv4_param all[MAX_PAIRS + 3];
	struct sigv4_credentials creds = { v->access_key, v->secret_key, v->token };
	struct sigv4_request req, full;
	struct sigv4_auth auth;
	unsigned char key[SIGV4_KEY_LEN];
	char *canonical = NULL, *signed_headers = NULL, *sts = NULL, *target = NULL;
	char amz_date[17], signature[65], key_hex[65];
	const char *sig_in_auth;
	time_t now = 0;
	size_t i, n;
	int ret;

	if (parse_time(v->time, &now)) {
		fail(name, "bad or missing time");
		return;
	}
	vector_request(v, &req);

	ret = sigv4_sign(&req, &creds, v->region, v->service, now, &auth);
	if (v->expect_error) {
		check_int(name, "sigv4_sign error", ret, parse_errno(v->expect_error));
		checks++;
		if (auth.authorization || auth.security_token || auth.amz_date[0])
			fail(name, "sigv4_auth not zeroed after an error");
		sigv4_auth_cleanup(&auth);
		return;
	}
	check_int(name, "sigv4_sign", ret, 0);
	if (ret)
		return;

	/* The stages over the same headers sigv4_sign() adds, in the same way. */
	check_int(name, "sigv4_format_time", sigv4_format_time(now, amz_date), 0);
	check_str(name, "x-amz-date", auth.amz_date, amz_date);
	check_str(name, "x-amz-content-sha256", auth.content_sha256, v->payload);
	check_str(name, "x-amz-security-token", auth.security_token ? auth.security_token : "",
		  v->token ? v->token : "");
	memcpy(all, v->headers, v->header_count * sizeof(all[0]));
	n = v->header_count;
	all[n++] = (struct sigv4_param){ "x-amz-content-sha256", v->payload };
	all[n++] = (struct sigv4_param){ "x-amz-date", amz_date };
	if (v->token && v->token[0])
		all[n++] = (struct sigv4_param){ "x-amz-security-token", v->token };
	full = req;
	full.headers = all;
	full.header_count = n;

	ret = sigv4_canonical_request(&full, &canonical, &signed_headers);
	check_int(name, "sigv4_canonical_request", ret, 0);
	if (ret)
		goto out;
	if (v->expect_canonical_request)
		check_str(name, "canonical request", canonical, v->expect_canonical_request);
	if (v->expect_signed_headers)
		check_str(name, "signed headers", signed_headers, v->expect_signed_headers);

	ret = sigv4_string_to_sign(amz_date, v->region, v->service, canonical, &sts);
	check_int(name, "sigv4_string_to_sign", ret, 0);
	if (ret)
		goto out;
	if (v->expect_string_to_sign)
		check_str(name, "string to sign", sts, v->expect_string_to_sign);

	amz_date[8] = '\0';
	ret = sigv4_signing_key(v->secret_key, amz_date, v->region, v->service, key);
	check_int(name, "sigv4_signing_key", ret, 0);
	if (ret)
		goto out;
	for (i = 0; i < SIGV4_KEY_LEN; i++)
		snprintf(key_hex + 2 * i, 3, "%02x", key[i]);
	if (v->expect_signing_key)
		check_str(name, "signing key", key_hex, v->expect_signing_key);

	ret = sigv4_signature(key, sts, signature);
	check_int(name, "sigv4_signature", ret, 0);
	if (ret)
		goto out;
	if (v->expect_signature)
		check_str(name, "signature", signature, v->expect_signature);

	/* The stages and the one-call path must agree, whatever the vector expects. */
	sig_in_auth = strstr(auth.authorization, ",Signature=");
	check_str(name, "signature inside Authorization",
		  sig_in_auth ? sig_in_auth + strlen(",Signature=") : NULL, signature);
	if (v->expect_authorization)
		check_str(name, "authorization", auth.authorization, v->expect_authorization);

	ret = sigv4_target(&req, &target);
	check_int(name, "sigv4_target", ret, 0);
	if (!ret && v->expect_target)
		check_str(name, "target", target, v->expect_target);
out:
	free(canonical);
	free(signed_headers);
	free(sts);
	free(target);
	sigv4_auth_cleanup(&auth);
}

/* True when the vector asks for at least one check, so a typo cannot pass silently. */
static bool vector_expects(const struct vector *v)
{
	return v->expect_canonical_request || v->expect_signed_headers ||
	       v->expect_string_to_sign || v->expect_signing_key || v->expect_signature ||
	       v->expect_authorization || v->expect_target || v->expect_error;
}

/* Read a whole file into a NUL-terminated buffer; NULL on error. */
static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long len;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto out;
	buf = malloc((size_t)len + 1);
	if (!buf)
		goto out;
	if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[len] = '\0';
out:
	fclose(f);
	return buf;
}

/* Parse one vector file and run its vectors; returns the number run, or -1 on a syntax error. */
static int run_file(const char *path)
{
	struct vector defaults, cur;
	bool in_vector = false;
	char *text = read_file(path), *line, *next, *field, *value;
	int lineno = 0, count = 0;

	if (!text) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	memset(&defaults, 0, sizeof(defaults));
	memset(&cur, 0, sizeof(cur));
	for (line = text; line && *line; line = next) {
		struct vector *v = in_vector ? &cur : &defaults;
		size_t len;
		bool is_block = false;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		if (line[0] == '#' || line[0] == '\0')
			continue;
		field = line;
		value = strchr(line, ' ');
		if (!value)
			goto syntax;
		*value++ = '\0';
		len = strlen(value);
		if (!strcmp(field, "vector")) {
			if (in_vector) {
				if (!vector_expects(&cur))
					goto syntax;
				run_vector(&cur);
				count++;
				vector_cleanup(&cur);
			}
			vector_copy(&cur, &defaults);
			cur.name = xstrdup(value);
			in_vector = true;
			continue;
		}
		if (!strcmp(value, "<<")) {
			/* A block keeps its bytes as written: canonical requests have blank lines. */
			char *end = next;

			value = next;
			while (end && strncmp(end, ">>\n", 3) != 0 && strcmp(end, ">>") != 0) {
				end = strchr(end, '\n');
				if (end)
					end++;
				lineno++;
			}
			if (!end || end == value)
				goto syntax;
			len = (size_t)(end - value) - 1;
			next = end[2] ? end + 3 : end + 2;
			is_block = true;
			lineno++;
		}
		if (apply_field(v, field, value, len, is_block))
			goto syntax;
	}
	if (in_vector) {
		if (!vector_expects(&cur))
			goto syntax;
		run_vector(&cur);
		count++;
	}
	vector_cleanup(&cur);
	vector_cleanup(&defaults);
	free(text);
	return count;
syntax:
	fprintf(stderr, "%s:%d: syntax error\n", path, lineno);
	vector_cleanup(&cur);
	vector_cleanup(&defaults);
	free(text);
	return -1;
}

/* qsort comparator for file names, so vectors run in a stable order. */
static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every *.txt in dir; returns the number of vectors run, or -1. */
static int run_dir(const char *dir)
{
	char *names[MAX_VECTOR_FILES];
	size_t n = 0, i, len;
	struct dirent *de;
	char path[4096];
	int total = 0, r;
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 4, ".txt") != 0)
			continue;
		if (n == MAX_VECTOR_FILES)
			break;
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		r = run_file(path);
		if (r < 0)
			total = -1;
		else if (total >= 0)
			total += r;
		printf("%s: %d vectors\n", names[i], r);
		free(names[i]);
	}
	return total;
}

/* Encoding cases that are clearer as a table than as vectors. */
static void test_uri_encode(void)
{
	static const struct {
		const char *in;
		bool keep_slash;
		const char *want;
	} cases[] = {
		{ "", true, "" },
		{ "AZaz09-._~", false, "AZaz09-._~" },
		{ "a b+c=d&e", false, "a%20b%2Bc%3Dd%26e" },
		{ "/a/b/", true, "/a/b/" },
		{ "/a/b/", false, "%2Fa%2Fb%2F" },
		{ "100%", true, "100%25" },
		{ "\xc3\xa9\xe2\x82\xac", true, "%C3%A9%E2%82%AC" },
		{ "!'()*", true, "%21%27%28%29%2A" },
		{ "\x01\x7f\xff", true, "%01%7F%FF" },
		{ "a//b/./../c", true, "a//b/./../c" },
	};
	size_t i;
	char *out;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = sigv4_uri_encode(cases[i].in, cases[i].keep_slash, &out);

		check_int("uri_encode", cases[i].want, ret, 0);
		if (!ret)
			check_str("uri_encode", cases[i].in, out, cases[i].want);
		free(out);
	}
}

/* Header canonicalisation edge cases, and the values that must be refused. */
static void test_canonical_headers(void)
{
	static const struct sigv4_param ok[] = {
		{ "X-Amz-Meta-B", "  two   words\t\tand  tabs  " },
		{ "Host", "h" },
		{ "x-amz-meta-a", "first" },
		{ "X-AMZ-META-A", "second" },
		{ "x-amz-meta-empty", "   " },
		{ "x-amz-meta-null", NULL },
	};
	static const char *bad_values[] = { "a\r\nx-amz-date: 1", "a\nb", "a\x01", "a\x7f" };
	static const char *bad_names[] = { "", "a b", "a:b", "a\nb", "\xc3\xa9" };
	struct sigv4_param one;
	char *canon = NULL, *sh = NULL;
	size_t i;

	check_int("headers", "canonical_headers", sigv4_canonical_headers(ok, 6, &canon, &sh), 0);
	check_str("headers", "canonical", canon,
		  "host:h\nx-amz-meta-a:first,second\nx-amz-meta-b:two words and tabs\n"
		  "x-amz-meta-empty:\nx-amz-meta-null:\n");
	check_str("headers", "signed", sh,
		  "host;x-amz-meta-a;x-amz-meta-b;x-amz-meta-empty;x-amz-meta-null");
	free(canon);
	free(sh);
	for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
		one = (struct sigv4_param){ "x-bad", bad_values[i] };
		check_int("headers", "bad value", sigv4_canonical_headers(&one, 1, &canon, &sh),
			  -EINVAL);
		checks++;
		if (canon || sh)
			fail("headers", "outputs not NULL after an error");
	}
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		one = (struct sigv4_param){ bad_names[i], "v" };
		check_int("headers", "bad name", sigv4_canonical_headers(&one, 1, &canon, &sh),
			  -EINVAL);
	}
	check_int("headers", "no headers", sigv4_canonical_headers(ok, 0, &canon, &sh), -EINVAL);
}

/* Argument checks and cleanup rules of the public API. */
static void test_api_edges(void)
{
	static const struct sigv4_param host[] = { { "host", "h" } };
	static const struct sigv4_param q[] = { { "b", "2" }, { "a", NULL }, { "a", "" } };
	static const struct sigv4_param empty_name[] = { { "", "x" } };
	struct sigv4_credentials creds = { "AK", "SK", NULL };
	struct sigv4_request req = { "GET", "/b/k", NULL, 0, host, 1, SIGV4_EMPTY_SHA256 };
	struct sigv4_auth auth;
	char date[17], *s = NULL;

	memset(&auth, 0, sizeof(auth));
	sigv4_auth_cleanup(&auth);
	sigv4_auth_cleanup(NULL);

	check_int("api", "format epoch", sigv4_format_time(0, date), 0);
	check_str("api", "epoch", date, "19700101T000000Z");
	check_int("api", "format 2000-02-29", sigv4_format_time(951782400, date), 0);
	check_str("api", "2000-02-29", date, "20000229T000000Z");

	check_int("api", "target", sigv4_target(&req, &s), 0);
	check_str("api", "target without query", s, "/b/k");
	free(s);
	req.query = q;
	req.query_count = 3;
	check_int("api", "target", sigv4_target(&req, &s), 0);
	check_str("api", "target with empty values", s, "/b/k?a=&a=&b=2");
	free(s);
	req.query = empty_name;
	req.query_count = 1;
	check_int("api", "empty query name", sigv4_target(&req, &s), -EINVAL);
	req.query = NULL;
	req.query_count = 1;
	check_int("api", "NULL query with a count", sigv4_target(&req, &s), -EINVAL);
	req.query_count = 0;

	req.path = "b/k";
	check_int("api", "relative path", sigv4_target(&req, &s), -EINVAL);
	check_int("api", "relative path sign",
		  sigv4_sign(&req, &creds, "us-east-1", "s3", 0, &auth), -EINVAL);
	req.path = "/b/k";
	check_int("api", "NULL creds", sigv4_sign(&req, NULL, "us-east-1", "s3", 0, &auth),
		  -EINVAL);
	check_int("api", "NULL out", sigv4_sign(&req, &creds, "us-east-1", "s3", 0, NULL),
		  -EINVAL);
	check_int("api", "year 10000",
		  sigv4_sign(&req, &creds, "us-east-1", "s3", (time_t)253402300800LL, &auth),
		  -EINVAL);
	checks++;
	if (auth.authorization || auth.amz_date[0])
		fail("api", "auth not zeroed after a bad time");
	check_int("api", "sign", sigv4_sign(&req, &creds, "us-east-1", "s3", 0, &auth), 0);
	sigv4_auth_cleanup(&auth);
	checks++;
	if (auth.authorization || auth.amz_date[0])
		fail("api", "auth not zeroed by cleanup");
	check_int("api", "bad date", sigv4_string_to_sign("2013-05-24", "r", "s", "x", &s),
		  -EINVAL);
	check_int("api", "bad date8", sigv4_signing_key("SK", "2013052", "r", "s",
							(unsigned char[SIGV4_KEY_LEN]){ 0 }),
		  -EINVAL);
}

/* Vectors first: if the files cannot be read, nothing else is worth reporting. */
int main(void)
{
	const char *dir = getenv("FALLBACKFS_SIGV4_VECTORS");
	int vectors;

	if (!dir || !dir[0]) {
		fprintf(stderr, "FALLBACKFS_SIGV4_VECTORS is not set (tests/meson.build sets it)\n");
		return 99;
	}
	vectors = run_dir(dir);
	if (vectors <= 0) {
		fprintf(stderr, "no usable vectors in %s\n", dir);
		return 99;
	}
	test_uri_encode();
	test_canonical_headers();
	test_api_edges();
	printf("%d vectors, %d checks, %d failures\n", vectors, checks, failures);
	return failures ? 1 : 0;
}
