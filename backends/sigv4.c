/*
 * sigv4.c - AWS Signature Version 4 (header form) for S3, on OpenSSL.
 *
 * This is the signer and its canonicaliser: pure functions from a request
 * description to header values, in the stages AWS documents (canonical
 * request, string to sign, signing key, signature). It is not an HTTP client
 * and does no I/O or logging. Every intermediate string may contain the
 * session token and every intermediate key is derived from the secret, so
 * all of them are wiped before they are freed, including buffers given up
 * while growing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sigv4.h"
#include "sigv4_internal.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

/* A growing string with a hard cap; the first error sticks and is reported once. */
struct sbuf {
	char *p;
	size_t len;
	size_t cap;
	int err;
};

/* One canonicalised header, remembering its input position so repeats keep their order. */
struct canon_header {
	char *name;
	char *value;
	size_t index;
};

/* One encoded query pair. */
struct canon_pair {
	char *name;
	char *value;
};

/* Overwrite and free a string that may hold a secret; NULL is a no-op. */
static void wipe_free(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* Make room for need more bytes plus a NUL, moving (and wiping) rather than realloc()ing
 * so no copy of a secret is left behind in freed memory. */
static void sbuf_reserve(struct sbuf *b, size_t need)
{
	size_t cap;
	char *p;

	if (b->err)
		return;
	if (need > SIGV4_MAX_STRING || b->len + need + 1 > SIGV4_MAX_STRING) {
		b->err = -EINVAL;
		return;
	}
	if (b->len + need + 1 <= b->cap)
		return;
	cap = b->cap ? b->cap : 128;
	while (cap < b->len + need + 1)
		cap *= 2;
	p = malloc(cap);
	if (!p) {
		b->err = -ENOMEM;
		return;
	}
	if (b->p) {
		memcpy(p, b->p, b->len);
		OPENSSL_cleanse(b->p, b->cap);
		free(b->p);
	}
	p[b->len] = '\0';
	b->p = p;
	b->cap = cap;
}

/* Append n bytes. */
static void sbuf_add(struct sbuf *b, const char *s, size_t n)
{
	sbuf_reserve(b, n);
	if (b->err)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Append a NUL-terminated string. */
static void sbuf_puts(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}

/* Append one byte. */
static void sbuf_putc(struct sbuf *b, char c)
{
	sbuf_add(b, &c, 1);
}

/* Wipe and free the buffer. */
static void sbuf_wipe(struct sbuf *b)
{
	if (b->p) {
		OPENSSL_cleanse(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}

/* Hand the string over to *out (an empty string if nothing was added), or report the error. */
static int sbuf_finish(struct sbuf *b, char **out)
{
	int ret;

	sbuf_reserve(b, 0);
	ret = b->err;
	if (ret) {
		sbuf_wipe(b);
		return ret;
	}
	*out = b->p;
	memset(b, 0, sizeof(*b));
	return 0;
}

/* True for the RFC 3986 unreserved characters, the only ones SigV4 leaves unencoded. */
static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* True for an RFC 9110 token character, which is all a header name may contain. */
static bool is_tchar(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Append in, percent-encoded; upper-case hex because AWS compares byte-for-byte. */
static void encode_into(struct sbuf *b, const char *in, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s;
	char esc[3];

	for (s = (const unsigned char *)in; *s; s++) {
		if (is_unreserved(*s) || (keep_slash && *s == '/')) {
			sbuf_putc(b, (char)*s);
			continue;
		}
		esc[0] = '%';
		esc[1] = hex[*s >> 4];
		esc[2] = hex[*s & 0xf];
		sbuf_add(b, esc, 3);
	}
}

/* One encoder for paths, query names and values, so the three can never disagree. */
int sigv4_uri_encode(const char *in, bool keep_slash, char **out)
{
	struct sbuf b = { 0 };

	if (!in || !out)
		return -EINVAL;
	encode_into(&b, in, keep_slash);
	return sbuf_finish(&b, out);
}

/* Order query pairs by encoded name, then encoded value, as SigV4 requires. */
static int pair_cmp(const void *a, const void *b)
{
	const struct canon_pair *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

/* Encode before sorting: AWS orders by the encoded bytes, not the raw ones. */
int sigv4_canonical_query(const struct sigv4_param *query, size_t count, char **out)
{
	struct canon_pair *pairs = NULL;
	struct sbuf b = { 0 };
	size_t i;
	int ret = 0;

	if (!out || (count && !query) || count > SIGV4_MAX_PARAMS)
		return -EINVAL;
	*out = NULL;
	if (count) {
		pairs = calloc(count, sizeof(*pairs));
		if (!pairs)
			return -ENOMEM;
	}
	for (i = 0; i < count; i++) {
		if (!query[i].name || !query[i].name[0]) {
			ret = -EINVAL;
			goto out;
		}
		ret = sigv4_uri_encode(query[i].name, false, &pairs[i].name);
		if (ret)
			goto out;
		ret = sigv4_uri_encode(query[i].value ? query[i].value : "", false,
				       &pairs[i].value);
		if (ret)
			goto out;
	}
	if (count)
		qsort(pairs, count, sizeof(*pairs), pair_cmp);
	for (i = 0; i < count; i++) {
		if (i)
			sbuf_putc(&b, '&');
		sbuf_puts(&b, pairs[i].name);
		sbuf_putc(&b, '=');
		sbuf_puts(&b, pairs[i].value);
	}
	ret = sbuf_finish(&b, out);
out:
	for (i = 0; pairs && i < count; i++) {
		wipe_free(pairs[i].name);
		wipe_free(pairs[i].value);
	}
	free(pairs);
	sbuf_wipe(&b);
	return ret;
}

/* Lower-cased copy of a header name, or -EINVAL if it is not an HTTP token. */
static int canon_name(const char *name, char **out)
{
	size_t i, n;
	char *p;

	if (!name || !name[0])
		return -EINVAL;
	n = strlen(name);
	if (n > SIGV4_MAX_STRING)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (!is_tchar((unsigned char)name[i]))
			return -EINVAL;
	p = malloc(n + 1);
	if (!p)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		p[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
	p[n] = '\0';
	*out = p;
	return 0;
}

/*
 * Trimmed copy of a header value with each run of spaces and tabs made one
 * space (the AWS "Trimall", as botocore applies it). Other control bytes are
 * refused: CR or LF would let a value forge extra canonical header lines.
 */
static int canon_value(const char *value, char **out)
{
	const unsigned char *s;
	struct sbuf b = { 0 };
	bool pending_space = false;

	for (s = (const unsigned char *)(value ? value : ""); *s; s++) {
		if (*s == ' ' || *s == '\t') {
			pending_space = b.len > 0;
			continue;
		}
		if (*s < 0x20 || *s == 0x7f) {
			sbuf_wipe(&b);
			return -EINVAL;
		}
		if (pending_space)
			sbuf_putc(&b, ' ');
		pending_space = false;
		sbuf_putc(&b, (char)*s);
	}
	return sbuf_finish(&b, out);
}

/* Order headers by lower-cased name, keeping input order among repeats. */
static int header_cmp(const void *a, const void *b)
{
	const struct canon_header *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Both outputs come from one sorted list so the signed list always names the signed lines. */
int sigv4_canonical_headers(const struct sigv4_param *headers, size_t count,
			    char **canonical, char **signed_headers)
{
	struct canon_header *hs = NULL;
	struct sbuf cb = { 0 }, sb = { 0 };
	size_t i;
	int ret;

	if (!canonical || !signed_headers)
		return -EINVAL;
	*canonical = NULL;
	*signed_headers = NULL;
	if (!headers || !count || count > SIGV4_MAX_PARAMS)
		return -EINVAL;
	hs = calloc(count, sizeof(*hs));
	if (!hs)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		hs[i].index = i;
		ret = canon_name(headers[i].name, &hs[i].name);
		if (ret)
			goto out;
		ret = canon_value(headers[i].value, &hs[i].value);
		if (ret)
			goto out;
	}
	qsort(hs, count, sizeof(*hs), header_cmp);
	for (i = 0; i < count; i++) {
		bool first = i == 0 || strcmp(hs[i].name, hs[i - 1].name) != 0;

		if (first) {
			if (i) {
				sbuf_putc(&cb, '\n');
				sbuf_putc(&sb, ';');
			}
			sbuf_puts(&cb, hs[i].name);
			sbuf_putc(&cb, ':');
			sbuf_puts(&sb, hs[i].name);
		} else {
			sbuf_putc(&cb, ',');
		}
		sbuf_puts(&cb, hs[i].value);
	}
	sbuf_putc(&cb, '\n');
	ret = sbuf_finish(&cb, canonical);
	if (ret)
		goto out;
	ret = sbuf_finish(&sb, signed_headers);
	if (ret) {
		wipe_free(*canonical);
		*canonical = NULL;
	}
out:
	for (i = 0; i < count; i++) {
		wipe_free(hs[i].name);
		wipe_free(hs[i].value);
	}
	free(hs);
	sbuf_wipe(&cb);
	sbuf_wipe(&sb);
	return ret;
}

/* 0 if method is one or more upper-case letters, the only form S3 accepts. */
static int check_method(const char *method)
{
	const char *p;

	if (!method || !method[0] || strlen(method) > 32)
		return -EINVAL;
	for (p = method; *p; p++)
		if (*p < 'A' || *p > 'Z')
			return -EINVAL;
	return 0;
}

/* 0 if hash is 64 lower-case hex digits or the unsigned-payload marker. */
static int check_payload_hash(const char *hash)
{
	size_t i;

	if (!hash)
		return -EINVAL;
	if (!strcmp(hash, SIGV4_UNSIGNED_PAYLOAD))
		return 0;
	for (i = 0; i < 64; i++)
		if (!((hash[i] >= '0' && hash[i] <= '9') || (hash[i] >= 'a' && hash[i] <= 'f')))
			return -EINVAL;
	return hash[64] == '\0' ? 0 : -EINVAL;
}

/* 0 if s can sit between the '/' of a credential scope: a region or a service name. */
static int check_scope_part(const char *s)
{
	size_t i;

	if (!s || !s[0])
		return -EINVAL;
	for (i = 0; s[i]; i++) {
		if (i >= 64)
			return -EINVAL;
		if (!is_unreserved((unsigned char)s[i]))
			return -EINVAL;
	}
	return 0;
}

/* 0 if key can be the first field of Credential=: the server splits on '/', ',' and '='. */
static int check_access_key(const char *key)
{
	size_t i;

	if (!key || !key[0])
		return -EINVAL;
	for (i = 0; key[i]; i++) {
		unsigned char c = (unsigned char)key[i];

		if (i >= 256 || c <= 0x20 || c >= 0x7f || c == '/' || c == ',' || c == '=')
			return -EINVAL;
	}
	return 0;
}

/* 0 if d looks like an x-amz-date value, "YYYYMMDDTHHMMSSZ". */
static int check_amz_date(const char *d)
{
	size_t i;

	if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return -EINVAL;
	for (i = 0; i < 15; i++)
		if (i != 8 && (d[i] < '0' || d[i] > '9'))
			return -EINVAL;
	return 0;
}

/* Validates everything it joins, because a stray newline in any part would change the meaning. */
int sigv4_canonical_request(const struct sigv4_request *req, char **out, char **signed_headers)
{
	char *path = NULL, *query = NULL, *headers = NULL, *signed_list = NULL;
	struct sbuf b = { 0 };
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (signed_headers)
		*signed_headers = NULL;
	if (!req || !req->path || req->path[0] != '/')
		return -EINVAL;
	ret = check_method(req->method);
	if (!ret)
		ret = check_payload_hash(req->payload_hash);
	if (ret)
		return ret;
	ret = sigv4_uri_encode(req->path, true, &path);
	if (ret)
		goto out;
	ret = sigv4_canonical_query(req->query, req->query_count, &query);
	if (ret)
		goto out;
	ret = sigv4_canonical_headers(req->headers, req->header_count, &headers, &signed_list);
	if (ret)
		goto out;
	sbuf_puts(&b, req->method);
	sbuf_putc(&b, '\n');
	sbuf_puts(&b, path);
	sbuf_putc(&b, '\n');
	sbuf_puts(&b, query);
	sbuf_putc(&b, '\n');
	sbuf_puts(&b, headers);
	sbuf_putc(&b, '\n');
	sbuf_puts(&b, signed_list);
	sbuf_putc(&b, '\n');
	sbuf_puts(&b, req->payload_hash);
	ret = sbuf_finish(&b, out);
	if (!ret && signed_headers) {
		*signed_headers = signed_list;
		signed_list = NULL;
	}
out:
	wipe_free(path);
	wipe_free(query);
	wipe_free(headers);
	wipe_free(signed_list);
	sbuf_wipe(&b);
	return ret;
}

/* gmtime_r, not gmtime: signing happens on many threads at once. */
int sigv4_format_time(time_t t, char out[17])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		return -EINVAL;
	if (strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
		return -EINVAL;
	return 0;
}

/* Lower-case hex of n bytes into hex (2n + 1 bytes). */
static void to_hex(const unsigned char *in, size_t n, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		hex[2 * i] = digits[in[i] >> 4];
		hex[2 * i + 1] = digits[in[i] & 0xf];
	}
	hex[2 * n] = '\0';
}

/* The scope date is taken from amz_date so the two can never straddle midnight. */
int sigv4_string_to_sign(const char *amz_date, const char *region, const char *service,
			 const char *canonical_request, char **out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	char hex[2 * SIGV4_KEY_LEN + 1];
	struct sbuf b = { 0 };

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (check_amz_date(amz_date) || check_scope_part(region) || check_scope_part(service) ||
	    !canonical_request)
		return -EINVAL;
	if (!EVP_Digest(canonical_request, strlen(canonical_request), md, &md_len, EVP_sha256(),
			NULL) ||
	    md_len != SIGV4_KEY_LEN)
		return -EIO;
	to_hex(md, md_len, hex);
	sbuf_puts(&b, ALGORITHM "\n");
	sbuf_puts(&b, amz_date);
	sbuf_putc(&b, '\n');
	sbuf_add(&b, amz_date, 8);
	sbuf_putc(&b, '/');
	sbuf_puts(&b, region);
	sbuf_putc(&b, '/');
	sbuf_puts(&b, service);
	sbuf_puts(&b, "/aws4_request\n");
	sbuf_puts(&b, hex);
	return sbuf_finish(&b, out);
}

/* out = HMAC-SHA256(key, msg); 0 or -EIO. */
static int hmac_sha256(const unsigned char *key, size_t key_len, const void *msg,
		       size_t msg_len, unsigned char out[SIGV4_KEY_LEN])
{
	unsigned int len = 0;

	if (key_len > INT32_MAX)
		return -EIO;
	if (!HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, out, &len) ||
	    len != SIGV4_KEY_LEN)
		return -EIO;
	return 0;
}

/* Every intermediate key is as good as the secret for a day, so each is wiped. */
int sigv4_signing_key(const char *secret_key, const char *date8, const char *region,
		      const char *service, unsigned char key[SIGV4_KEY_LEN])
{
	unsigned char k_date[SIGV4_KEY_LEN], k_region[SIGV4_KEY_LEN], k_service[SIGV4_KEY_LEN];
	unsigned char *k_secret = NULL;
	size_t secret_len, i;
	int ret;

	if (!secret_key || !secret_key[0] || !date8 || strlen(date8) != 8 ||
	    check_scope_part(region) || check_scope_part(service) || !key)
		return -EINVAL;
	for (i = 0; i < 8; i++)
		if (date8[i] < '0' || date8[i] > '9')
			return -EINVAL;
	secret_len = strlen(secret_key);
	if (secret_len > SIGV4_MAX_STRING)
		return -EINVAL;
	k_secret = malloc(secret_len + 4);
	if (!k_secret)
		return -ENOMEM;
	memcpy(k_secret, "AWS4", 4);
	memcpy(k_secret + 4, secret_key, secret_len);
	ret = hmac_sha256(k_secret, secret_len + 4, date8, 8, k_date);
	if (!ret)
		ret = hmac_sha256(k_date, sizeof(k_date), region, strlen(region), k_region);
	if (!ret)
		ret = hmac_sha256(k_region, sizeof(k_region), service, strlen(service), k_service);
	if (!ret)
		ret = hmac_sha256(k_service, sizeof(k_service), "aws4_request", 12, key);
	if (ret)
		OPENSSL_cleanse(key, SIGV4_KEY_LEN);
	OPENSSL_cleanse(k_secret, secret_len + 4);
	free(k_secret);
	OPENSSL_cleanse(k_date, sizeof(k_date));
	OPENSSL_cleanse(k_region, sizeof(k_region));
	OPENSSL_cleanse(k_service, sizeof(k_service));
	return ret;
}

/* The raw MAC is wiped too: only its hex form leaves this function. */
int sigv4_signature(const unsigned char key[SIGV4_KEY_LEN], const char *string_to_sign,
		    char hex[65])
{
	unsigned char mac[SIGV4_KEY_LEN];
	int ret;

	if (!key || !string_to_sign || !hex)
		return -EINVAL;
	ret = hmac_sha256(key, SIGV4_KEY_LEN, string_to_sign, strlen(string_to_sign), mac);
	if (!ret)
		to_hex(mac, sizeof(mac), hex);
	OPENSSL_cleanse(mac, sizeof(mac));
	return ret;
}

/* 0 if the caller's headers include host and none of the headers the signer owns. */
static int check_caller_headers(const struct sigv4_request *req)
{
	static const char *const owned[] = { "authorization", "x-amz-date",
					     "x-amz-content-sha256", "x-amz-security-token" };
	bool host = false;
	size_t i, j;

	if (!req->headers || !req->header_count || req->header_count > SIGV4_MAX_PARAMS - 3)
		return -EINVAL;
	for (i = 0; i < req->header_count; i++) {
		if (!req->headers[i].name)
			return -EINVAL;
		if (!strcasecmp(req->headers[i].name, "host"))
			host = true;
		for (j = 0; j < sizeof(owned) / sizeof(owned[0]); j++)
			if (!strcasecmp(req->headers[i].name, owned[j]))
				return -EINVAL;
	}
	return host ? 0 : -EINVAL;
}

/* 0 if a session token can travel as a header value unchanged. */
static int check_token(const char *token)
{
	const unsigned char *s;

	for (s = (const unsigned char *)token; *s; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			return -EINVAL;
	return 0;
}

/* Only the token is secret, but zeroing everything makes a double cleanup harmless. */
void sigv4_auth_cleanup(struct sigv4_auth *auth)
{
	if (!auth)
		return;
	free(auth->authorization);
	wipe_free(auth->security_token);
	memset(auth, 0, sizeof(*auth));
}

/* Validate up front so that a refused request never leaves half an output behind. */
int sigv4_sign(const struct sigv4_request *req, const struct sigv4_credentials *creds,
	       const char *region, const char *service, time_t now, struct sigv4_auth *out)
{
	unsigned char key[SIGV4_KEY_LEN];
	struct sigv4_param *headers = NULL;
	struct sigv4_request full;
	char *canonical = NULL, *signed_list = NULL, *sts = NULL;
	char signature[2 * SIGV4_KEY_LEN + 1];
	char date8[9];
	const char *token;
	struct sbuf b = { 0 };
	size_t n;
	int ret;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	memset(key, 0, sizeof(key));
	if (!req || !creds || !creds->secret_key || !creds->secret_key[0] ||
	    check_access_key(creds->access_key) || check_scope_part(region) ||
	    check_scope_part(service) || check_caller_headers(req) ||
	    check_payload_hash(req->payload_hash))
		return -EINVAL;
	token = creds->session_token && creds->session_token[0] ? creds->session_token : NULL;
	if (token && (strlen(token) > SIGV4_MAX_STRING / 2 || check_token(token)))
		return -EINVAL;
	ret = sigv4_format_time(now, out->amz_date);
	if (ret)
		goto out;
	memcpy(date8, out->amz_date, 8);
	date8[8] = '\0';
	snprintf(out->content_sha256, sizeof(out->content_sha256), "%s", req->payload_hash);
	if (token) {
		out->security_token = strdup(token);
		if (!out->security_token) {
			ret = -ENOMEM;
			goto out;
		}
	}

	/* The headers the signer owns are signed like any other, so the server can
	 * reject a replay with another date, body or token. */
	n = req->header_count;
	headers = calloc(n + 3, sizeof(*headers));
	if (!headers) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(headers, req->headers, n * sizeof(*headers));
	headers[n++] = (struct sigv4_param){ "x-amz-content-sha256", out->content_sha256 };
	headers[n++] = (struct sigv4_param){ "x-amz-date", out->amz_date };
	if (token)
		headers[n++] = (struct sigv4_param){ "x-amz-security-token", token };
	full = *req;
	full.headers = headers;
	full.header_count = n;

	ret = sigv4_canonical_request(&full, &canonical, &signed_list);
	if (ret)
		goto out;
	ret = sigv4_string_to_sign(out->amz_date, region, service, canonical, &sts);
	if (ret)
		goto out;
	ret = sigv4_signing_key(creds->secret_key, date8, region, service, key);
	if (ret)
		goto out;
	ret = sigv4_signature(key, sts, signature);
	if (ret)
		goto out;
	sbuf_puts(&b, ALGORITHM " Credential=");
	sbuf_puts(&b, creds->access_key);
	sbuf_putc(&b, '/');
	sbuf_puts(&b, date8);
	sbuf_putc(&b, '/');
	sbuf_puts(&b, region);
	sbuf_putc(&b, '/');
	sbuf_puts(&b, service);
	sbuf_puts(&b, "/aws4_request,SignedHeaders=");
	sbuf_puts(&b, signed_list);
	sbuf_puts(&b, ",Signature=");
	sbuf_puts(&b, signature);
	ret = sbuf_finish(&b, &out->authorization);
out:
	OPENSSL_cleanse(key, sizeof(key));
	wipe_free(canonical);
	wipe_free(signed_list);
	wipe_free(sts);
	free(headers);
	sbuf_wipe(&b);
	if (ret)
		sigv4_auth_cleanup(out);
	return ret;
}

/* Built by the same encoders as the canonical request, which is the point of having it. */
int sigv4_target(const struct sigv4_request *req, char **out)
{
	char *query = NULL;
	struct sbuf b = { 0 };
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!req || !req->path || req->path[0] != '/')
		return -EINVAL;
	ret = sigv4_canonical_query(req->query, req->query_count, &query);
	if (ret)
		return ret;
	encode_into(&b, req->path, true);
	if (query[0]) {
		sbuf_putc(&b, '?');
		sbuf_puts(&b, query);
	}
	ret = sbuf_finish(&b, out);
	wipe_free(query);
	return ret;
}
