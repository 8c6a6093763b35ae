/*
 * s3_store.c - the s3:// store: S3 and S3-compatible object stores behind
 * the store.h contract.
 *
 * What it is: every store op as one or a few SigV4-signed requests through
 * http.h, with one table from HTTP status + S3 error code to errno
 * (s3_status_errno), a separate retry predicate (s3_retryable), capped
 * exponential backoff with jitter inside each operation's deadline, and a
 * probe at create time that finds out what the server really enforces.
 * What it is not: a cache, a FUSE layer, or an XML parser (s3_xml.c), a
 * signer (sigv4.c), a credential chain (aws_creds.c) or a transport (http.c).
 *
 * Requests. head = HEAD; get = GET with If-None-Match ("etag" quoted; 304
 * -> STORE_NOT_MODIFIED, where only out->etag is known because S3 sends no
 * size on a 304), the body streamed to the caller's fd and its length checked
 * against Content-Length; put = PUT with Content-MD5 (see Integrity),
 * Content-Type application/json for ".json" names,
 * If-None-Match: * for create-only and If-Match: <etag> unquoted (AWS takes
 * both forms, Ceph RGW 16 only the unquoted one); above the multipart
 * threshold (by default one part size, 16 MiB) a multipart upload whose
 * parts go up S3_PART_THREADS at a time and whose conditions go on
 * CompleteMultipartUpload, aborted on any failure. (Measured on RGW, a
 * 30 MB body as 4 parallel parts took 110 ms, as one PUT 140 ms; on AWS
 * one connection is the usual bottleneck, so parallel parts win there too.
 * Parts shrink, down to S3's 5 MiB minimum, so that every thread has one.)
 * Where the probe finds that completion ignores conditions (Ceph RGW 16),
 * conditional puts go as one PUT, which enforces them, up to 5 GB.
 * Streamed uploads (store_upload_*) are the same multipart upload, started
 * while the file is still being written: 5 MiB parts go up as soon as they
 * are whole and stable, the rest at commit; one that fails before commit is
 * redone whole at commit.
 * del = HEAD (S3 answers 204 for a missing key,
 * the contract wants -ENOENT, and RGW ignores If-Match on DELETE, so the
 * etag is compared here too) then DELETE with If-Match; list =
 * ListObjectsV2 (url encoding, keys relative to the store prefix, keys that
 * break store_key_check() skipped); touch = HEAD then CopyObject onto itself
 * with REPLACE, keeping Content-Type and x-amz-meta-*, guarded by
 * x-amz-copy-source-if-match.
 *
 * Integrity. Every PUT and every part carries Content-MD5, so the server
 * rejects a body that arrived different from what we read (BadDigest). The
 * body is read once for that MD5 and once more while it is sent; its SHA-256
 * is not computed: x-amz-content-sha256 is UNSIGNED-PAYLOAD, as curl and the
 * AWS SDKs send over HTTPS. That is safe because Content-MD5 is itself a
 * signed header: the signature covers the digest, the digest covers the
 * body, so neither can be changed in transit without the request failing.
 * (What an unsigned payload gives up is a cryptographic hash of the body:
 * over plain http a deliberate attacker able to forge MD5 collisions could
 * swap the body; over https TLS rules that out, and plain http is meant for
 * loopback and private endpoints.) Small bodies built in memory
 * (CompleteMultipartUpload) keep a signed SHA-256.
 *
 * Deadlines. Every operation has one deadline (timeout_ms) covering all its
 * attempts and backoff sleeps; each attempt gets the time left as its curl
 * timeout, and a sleep that would pass the deadline ends the operation with
 * -ETIMEDOUT. A multipart upload is a sequence of operations: each part and
 * the completion get a deadline of their own. Parts are sent by up to
 * S3_PART_THREADS threads (the caller's and short-lived helpers), each on
 * its own connection; the first failure stops the others from starting new
 * parts, and the upload is aborted only after every thread has finished, so
 * no part can land after the abort.
 *
 * Retrying writes. Reads, listings, conditional writes, parts of an upload,
 * CompleteMultipartUpload (one-shot per upload id) and the guarded copy are
 * safe to repeat and are retried on every retryable failure. An
 * unconditional PUT or DELETE is repeated blindly only when the failure
 * proves the server did not apply it (s3_not_applied: no connection, 503
 * SlowDown, 429, RequestTimeout, 409 ConditionalRequestConflict). After an
 * ambiguous failure (a reset, a timeout, a 500) the object is looked at: if
 * it already carries this write's id (below), the write landed; if it is missing or was
 * last modified before this operation began (server clock, 2 s margin for
 * Last-Modified's one-second resolution), nobody wrote since, and the retry
 * is sent guarded (If-Match the etag seen, or If-None-Match: *) where the
 * server enforces conditions; otherwise another writer got there after us
 * and repeating our older write could overwrite it, so the original error is
 * returned. libcurl's own silent resend on a dead reused connection is
 * refused for every request but GET and HEAD (http.h no_resend): this loop
 * alone decides what is repeated, and knows when a retry was ambiguous. "Our body landed" is never judged by the ETag (an MD5: a
 * compare-and-swap counter writes the same "6" from several nodes): every
 * write carries a random id in x-amz-meta-fallbackfs-put, and HEAD compares
 * that. The same check turns a 412 on a conditional retry, after an
 * ambiguous first attempt, into success when the first attempt had landed.
 * (Ceph RGW answers 500 UnknownError to a conditional PUT that lost a race;
 * it was not applied, the retry gets its 412.)
 *
 * Capabilities. STORE_CAP_CONDITIONAL_PUT and STORE_CAP_TOUCH are only set
 * after the probe saw the server enforce them: a create-only PUT of
 * ".fallbackfs/probe-<random>" twice (the second must be 412), an If-Match
 * PUT with a wrong etag (must be 412), and two self-copies whose
 * LastModified must advance; then the probe object is deleted. s3rver and
 * other servers that ignore the headers get neither cap. The probe is
 * skipped for read_only stores, and credentials without write permission
 * (AccessDenied) just leave the caps off. Keys under ".fallbackfs/" are ours:
 * -EINVAL as keys, hidden from listings, as in the file store.
 *
 * Credentials come from aws_creds; its refresh thread must start after the
 * daemon forks, and store.h has no "start" hook, so it starts with the first
 * operation run by another thread or process than the one that created the
 * store (a FUSE worker, or the daemon child). Secrets are never logged; keys
 * are escaped with log_key().
 */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "aws_creds.h"
#include "digest.h"
#include "http.h"
#include "log.h"
#include "s3_store.h"
#include "s3_store_internal.h"
#include "s3_xml.h"
#include "sigv4.h"

#define INTERNAL_DIR ".fallbackfs"
#define S3_DEFAULT_TIMEOUT_MS 30000
#define S3_MAX_ATTEMPTS 8
#define S3_BACKOFF_BASE_MS 50
#define S3_BACKOFF_CAP_MS 2000
#define S3_MAX_HDRS 32
#define S3_MAX_PARTS 10000
#define S3_LIST_MAX_BODY (16u << 20)
#define S3_SMALL_MAX_BODY (256u << 10)
#define S3_ABORT_TIMEOUT_MS 10000
#define S3_PART_THREADS 4
#define S3_MAX_SINGLE_PUT (5ULL << 30) /* S3's limit for one PUT */

struct s3_store {
	struct store base;
	struct http_client *http; /* of process http_pid; protected by http_lock */
	pid_t http_pid;           /* protected by http_lock */
	pthread_mutex_t http_lock;
	struct http_client_config http_cfg;
	char *ca_file;
	struct aws_creds *creds;
	char *bucket;
	char *prefix;      /* "" or "a/b/" */
	char *path_prefix; /* "/bucket" or "" (virtual) */
	char *host;        /* Host header */
	char *base_url;    /* scheme://host */
	char region[64];
	unsigned timeout_ms;
	uint64_t part_size;
	uint64_t multipart_threshold; /* larger bodies go multipart */
	bool cond_complete; /* probed: CompleteMultipartUpload honours conditions
	                       (AWS does; Ceph RGW 16 ignores them) */
	pid_t creator_pid;
	pthread_t creator_thread;
	atomic_bool refresh_started;
	atomic_int_fast64_t skew_s;     /* server clock minus ours, from Date */
	atomic_int_fast64_t last_auth_log; /* monotonic s of the last 403 log line */
	atomic_uint_fast64_t n_ops;
	atomic_uint_fast64_t n_retries;
};

/* One request as the retry loop sees it. */
struct s3_call {
	const char *method;
	const char *path; /* raw: path_prefix + "/" + key, or the bucket path */
	const struct sigv4_param *query;
	size_t query_count;
	struct sigv4_param hdrs[S3_MAX_HDRS]; /* lower-case names; signed and sent */
	size_t hdr_count;
	const char *payload_hash; /* NULL: empty body */
	const void *body;
	int body_fd;
	off_t body_offset;
	uint64_t body_size;
	int resp_fd;
	off_t resp_offset;
	const char *only_etag; /* http_request.only_etag */
	size_t max_body;
	enum s3_ctx ctx;
	bool replay_safe; /* every retryable failure may be repeated */
	bool allow_304;
	/* parse a 2xx body: 0 ok, S3_XML_EMBEDDED_ERROR with code set, or <0 */
	int (*on_2xx)(struct s3_call *c, const struct http_response *resp);
	void *arg;
	int64_t deadline_ms; /* CLOCK_MONOTONIC */
	/* results */
	bool ambiguous;         /* stopped on a failure that may have been applied */
	bool retried_ambiguous; /* an ambiguous failure was retried (conditional) */
	long status;
	char code[S3_XML_CODE_MAX];
	char message[160];
	const char *why;
	char transport[HTTP_ERROR_MAX];
};

static struct s3_store *s3_of(struct store *s)
{
	return (struct s3_store *)s;
}

/* Milliseconds on the monotonic clock. */
static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Nanoseconds since the epoch, on our clock. */
static int64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* Pure stages (s3_store_internal.h)                                          */

/* Parse scheme://host[:port][/ignored]; only scheme, host and port count. */
int s3_endpoint_parse(const char *url, struct s3_endpoint *out, char *err, size_t errlen)
{
	const char *p, *host, *end;
	size_t hlen;

	memset(out, 0, sizeof(*out));
	if (strncasecmp(url, "https://", 8) == 0) {
		out->https = true;
		p = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		p = url + 7;
	} else {
		snprintf(err, errlen, "S3 endpoint '%.200s' must start with http:// or https://",
			 url);
		return -EINVAL;
	}
	host = p;
	if (*p == '[') {
		end = strchr(p, ']');
		if (!end)
			goto bad;
		end++;
	} else {
		end = p + strcspn(p, ":/?#");
	}
	hlen = (size_t)(end - host);
	if (hlen == 0 || hlen >= sizeof(out->host) || memchr(host, '@', hlen))
		goto bad;
	for (size_t i = 0; i < hlen; i++) {
		char ch = host[i];

		if (!(ch == '.' || ch == '-' || ch == '_' || ch == '[' || ch == ']' || ch == ':' ||
		      (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z')))
			goto bad;
	}
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	if (*end == ':') {
		char *stop;
		unsigned long port = strtoul(end + 1, &stop, 10);

		if (stop == end + 1 || port == 0 || port > 65535 ||
		    (*stop && *stop != '/' && *stop != '?' && *stop != '#'))
			goto bad;
		if (port != (out->https ? 443u : 80u))
			out->port = (unsigned)port;
	} else if (*end && *end != '/' && *end != '?' && *end != '#') {
		goto bad;
	}
	return 0;
bad:
	snprintf(err, errlen, "S3 endpoint '%.200s' is not a URL like http://host:port", url);
	return -EINVAL;
}

/* AWS's own regional endpoint. */
void s3_endpoint_aws(const char *region, struct s3_endpoint *out)
{
	memset(out, 0, sizeof(*out));
	out->https = true;
	snprintf(out->host, sizeof(out->host), "s3.%s.amazonaws.com%s", region,
		 strncmp(region, "cn-", 3) == 0 ? ".cn" : "");
}

/* DNS-compatible bucket names only; no dots under https (certificate). */
bool s3_bucket_virtual_ok(const char *bucket, bool https)
{
	size_t n = strlen(bucket);

	if (n < 3 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = bucket[i];

		if (ch == '.' && https)
			return false;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		      ch == '.'))
			return false;
	}
	return bucket[0] != '-' && bucket[n - 1] != '-';
}

/* Host header and path prefix for path-style or virtual-hosted requests. */
int s3_layout(const struct s3_endpoint *ep, const char *bucket, bool virtual_host,
	      char *host_out, size_t host_len, char *path_prefix, size_t prefix_len)
{
	char port[16] = "";
	int n;

	if (ep->port)
		snprintf(port, sizeof(port), ":%u", ep->port);
	n = snprintf(host_out, host_len, "%s%s%s%s", virtual_host ? bucket : "",
		     virtual_host ? "." : "", ep->host, port);
	if (n < 0 || (size_t)n >= host_len)
		return -EINVAL;
	n = snprintf(path_prefix, prefix_len, "%s%s", virtual_host ? "" : "/",
		     virtual_host ? "" : bucket);
	if (n < 0 || (size_t)n >= prefix_len)
		return -EINVAL;
	return 0;
}

/* The one table. First matching row wins: code rows, then status rows. */
static const struct s3_error_row {
	long status;      /* 0: any */
	const char *code; /* NULL: any */
	int err;          /* negative errno or S3_ERR_PRECONDITION */
	bool retry;
	const char *why;  /* logged / shown to the user */
} s3_errors[] = {
	{ 0, "NoSuchKey", -ENOENT, false, NULL },
	{ 0, "NoSuchUpload", -ENOENT, false, NULL },
	{ 0, "NoSuchBucket", -EIO, false, "the bucket does not exist" },
	{ 0, "SignatureDoesNotMatch", -EACCES, false,
	  "the store rejected our signature (SignatureDoesNotMatch): the secret access key "
	  "does not belong to the access key id" },
	{ 0, "InvalidAccessKeyId", -EACCES, false,
	  "the store does not know the access key id (InvalidAccessKeyId)" },
	{ 0, "AccessDenied", -EACCES, false,
	  "the credentials are not allowed to do this (AccessDenied)" },
	{ 0, "AllAccessDisabled", -EACCES, false, "all access to the bucket is disabled" },
	{ 0, "AccountProblem", -EACCES, false, "the account has a problem (AccountProblem)" },
	{ 0, "ExpiredToken", -EACCES, false, "the session token has expired (ExpiredToken)" },
	{ 0, "InvalidToken", -EACCES, false, "the session token is invalid (InvalidToken)" },
	{ 0, "TokenRefreshRequired", -EACCES, false, "the session token must be refreshed" },
	{ 0, "RequestTimeTooSkewed", -EACCES, false,
	  "the local clock differs too much from the store's (RequestTimeTooSkewed)" },
	{ 0, "AuthorizationHeaderMalformed", -EACCES, false,
	  "the request was signed for the wrong region (AuthorizationHeaderMalformed)" },
	{ 0, "PermanentRedirect", -EIO, false,
	  "the bucket must be addressed through another endpoint or region" },
	{ 0, "QuotaExceeded", -ENOSPC, false, "the store's quota is exhausted" },
	{ 0, "EntityTooLarge", -EFBIG, false, NULL },
	{ 0, "SlowDown", -EAGAIN, true, NULL },
	{ 0, "ServiceUnavailable", -EAGAIN, true, NULL },
	{ 0, "TooManyRequests", -EAGAIN, true, NULL },
	{ 0, "RequestTimeout", -ETIMEDOUT, true, NULL },
	{ 0, "InternalError", -EIO, true, NULL },
	{ 0, "ConditionalRequestConflict", -EAGAIN, true, NULL },
	{ 0, "OperationAborted", -EAGAIN, true, NULL },
	{ 0, "PreconditionFailed", S3_ERR_PRECONDITION, false, NULL },
	{ 0, "NotImplemented", -ENOTSUP, false, NULL },
	{ 0, "MethodNotAllowed", -ENOTSUP, false, NULL },
	{ 0, "BadDigest", -EIO, false, "the body arrived corrupted (BadDigest)" },
	{ 301, NULL, -EIO, false, "the bucket must be addressed through another endpoint or "
				 "region (HTTP 301)" },
	{ 307, NULL, -EIO, false, "the store redirected us (HTTP 307): wrong region?" },
	{ 400, NULL, -EIO, false, NULL },
	{ 401, NULL, -EACCES, false, "the store wants authentication (HTTP 401)" },
	{ 403, NULL, -EACCES, false, "access denied (HTTP 403)" },
	{ 404, NULL, -ENOENT, false, NULL },
	{ 405, NULL, -ENOTSUP, false, NULL },
	{ 409, NULL, -EIO, false, NULL },
	{ 412, NULL, S3_ERR_PRECONDITION, false, NULL },
	{ 429, NULL, -EAGAIN, true, NULL },
	{ 500, NULL, -EIO, true, NULL },
	{ 501, NULL, -ENOTSUP, false, NULL },
	{ 502, NULL, -EIO, true, NULL },
	{ 503, NULL, -EAGAIN, true, NULL },
	{ 504, NULL, -ETIMEDOUT, true, NULL },
	{ 507, NULL, -ENOSPC, false, NULL },
};

/* Find the row for an answer, or NULL. */
static const struct s3_error_row *error_row(long status, const char *code)
{
	for (size_t i = 0; i < sizeof(s3_errors) / sizeof(s3_errors[0]); i++) {
		const struct s3_error_row *r = &s3_errors[i];

		if (r->code && (!code || strcmp(code, r->code) != 0))
			continue;
		if (r->status && r->status != status)
			continue;
		return r;
	}
	return NULL;
}

/* Status + code to errno, a 412 by context. */
int s3_status_errno(long status, const char *code, enum s3_ctx ctx, const char **why)
{
	const struct s3_error_row *r = error_row(status, code);
	int err = r ? r->err : -EIO;

	if (why)
		*why = r ? r->why : NULL;
	if (status >= 200 && status < 300 && (!code || !code[0]))
		return 0;
	if (err == S3_ERR_PRECONDITION)
		err = ctx == S3_CTX_CREATE ? -EEXIST : -ESTALE;
	return err;
}

/* Transport resets and timeouts, 5xx (not 501), 429, and the retry codes. */
bool s3_retryable(int transport_err, long status, const char *code)
{
	const struct s3_error_row *r;

	if (transport_err)
		return transport_err == -ECONNRESET || transport_err == -ETIMEDOUT ||
		       transport_err == -EHOSTUNREACH;
	r = error_row(status, code);
	if (r)
		return r->retry || (status >= 500 && status != 501 && r->code == NULL);
	return status >= 500 && status != 501;
}

/* Failures that prove the server did not apply the request. */
bool s3_not_applied(int transport_err, long status, const char *code)
{
	if (transport_err)
		return transport_err == -EHOSTUNREACH; /* no connection was made */
	if (code && (strcmp(code, "SlowDown") == 0 || strcmp(code, "RequestTimeout") == 0 ||
		     strcmp(code, "ConditionalRequestConflict") == 0 ||
		     strcmp(code, "TooManyRequests") == 0))
		return true;
	return status == 429 || (status == 503 && (!code || !code[0] ||
						   strcmp(code, "ServiceUnavailable") == 0));
}

/* Capped exponential backoff, equal jitter: half fixed, half random. */
long s3_backoff_ms(unsigned attempt, uint32_t rnd)
{
	long d = S3_BACKOFF_BASE_MS;

	for (unsigned i = 0; i < attempt && d < S3_BACKOFF_CAP_MS; i++)
		d *= 2;
	if (d > S3_BACKOFF_CAP_MS)
		d = S3_BACKOFF_CAP_MS;
	return d / 2 + (long)(rnd % (uint32_t)(d / 2 + 1));
}

/* Strip W/ and quotes. */
void s3_etag_unquote(const char *in, char *out, size_t len)
{
	size_t n;

	if (strncmp(in, "W/", 2) == 0)
		in += 2;
	n = strlen(in);
	if (n >= 2 && in[0] == '"' && in[n - 1] == '"') {
		in++;
		n -= 2;
	}
	if (n >= len)
		n = len - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

/* Parse "Tue, 24 Nov 2026 04:03:17 GMT" without the locale. */
int64_t s3_http_date(const char *s)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char mon[4], tz[4];
	int d, y, hh, mm, ss, n = 0;
	struct tm tm = { 0 };
	const char *m;

	if (!s)
		return -1;
	if (strchr(s, ','))
		s = strchr(s, ',') + 1;
	if (sscanf(s, " %d %3s %d %d:%d:%d %3s%n", &d, mon, &y, &hh, &mm, &ss, tz, &n) != 7 ||
	    strcmp(tz, "GMT") != 0)
		return -1;
	m = strstr(months, mon);
	if (!m || (m - months) % 3 != 0 || strlen(mon) != 3)
		return -1;
	tm.tm_mday = d;
	tm.tm_mon = (int)(m - months) / 3;
	tm.tm_year = y - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	return (int64_t)timegm(&tm);
}

/* Percent-encode every byte but A-Za-z0-9 -._~ and '/'. */
int s3_uri_encode_path(const char *in, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		bool keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
			    *p == '~' || *p == '/';

		if (o + (keep ? 1 : 3) >= len)
			return -EFBIG;
		if (keep) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

/* Start the credential refresh thread once we run after the fork. */
static void maybe_start_refresh(struct s3_store *s)
{
	bool expected = false;

	if (atomic_load(&s->refresh_started))
		return;
	if (getpid() == s->creator_pid && pthread_equal(pthread_self(), s->creator_thread))
		return;
	if (!atomic_compare_exchange_strong(&s->refresh_started, &expected, true))
		return;
	if (aws_creds_start_refresh(s->creds) < 0)
		log_msg(LOG_WARNING, "s3: cannot start the credential refresh thread; "
			"expired credentials will be fetched on demand");
}

/* Add one signed header to a call. */
static void add_hdr(struct s3_call *c, const char *name, const char *value)
{
	if (c->hdr_count < S3_MAX_HDRS) {
		c->hdrs[c->hdr_count].name = name;
		c->hdrs[c->hdr_count].value = value;
		c->hdr_count++;
	}
}

/* Initialise a call with the store's deadline. */
static void call_init(struct s3_store *s, struct s3_call *c, const char *method,
		      const char *path, enum s3_ctx ctx)
{
	memset(c, 0, sizeof(*c));
	c->method = method;
	c->path = path;
	c->ctx = ctx;
	c->body_fd = -1;
	c->resp_fd = -1;
	c->replay_safe = true;
	c->deadline_ms = mono_ms() + s->timeout_ms;
}

/* Remember how far the server's clock is from ours. */
static void note_date(struct s3_store *s, const struct http_response *resp)
{
	int64_t t = s3_http_date(http_response_header(resp, "Date"));

	if (t > 0)
		atomic_store(&s->skew_s, t - (int64_t)time(NULL));
}

/*
 * The HTTP client of this process. A forked child must not share the
 * parent's kept-alive connections (two processes writing one socket), so it
 * gets a client of its own; the inherited one is abandoned, not destroyed,
 * because closing it could shut down TLS sessions the parent still uses.
 */
static struct http_client *http_for(struct s3_store *s)
{
	struct http_client *h;
	pid_t pid = getpid();

	pthread_mutex_lock(&s->http_lock);
	if (s->http_pid != pid) {
		h = http_client_create(&s->http_cfg);
		if (h) {
			s->http = h;
			s->http_pid = pid;
		}
	}
	h = s->http_pid == pid ? s->http : NULL;
	pthread_mutex_unlock(&s->http_lock);
	return h;
}

/* Sign and send one attempt; returns http_perform()'s result. */
static int send_once(struct s3_store *s, struct s3_call *c, struct http_response *resp,
		     long timeout_ms)
{
	struct aws_credentials cr = { 0 };
	struct sigv4_auth auth = { 0 };
	struct sigv4_param sh[S3_MAX_HDRS + 1];
	struct http_header hh[S3_MAX_HDRS + 5];
	struct sigv4_credentials sc;
	struct sigv4_request sr = { 0 };
	struct http_request req;
	struct http_client *http = http_for(s);
	char *target = NULL, *url = NULL;
	size_t n = 0;
	int ret;

	memset(resp, 0, sizeof(*resp));
	if (!http) {
		snprintf(resp->error, sizeof(resp->error), "out of memory");
		return -ENOMEM;
	}
	ret = aws_creds_get(s->creds, &cr);
	if (ret < 0) {
		snprintf(resp->error, sizeof(resp->error), "no usable AWS credentials (%s)",
			 strerror(-ret));
		goto out;
	}
	sh[0].name = "host";
	sh[0].value = s->host;
	for (size_t i = 0; i < c->hdr_count; i++)
		sh[i + 1] = c->hdrs[i];
	sr.method = c->method;
	sr.path = c->path;
	sr.query = c->query;
	sr.query_count = c->query_count;
	sr.headers = sh;
	sr.header_count = c->hdr_count + 1;
	sr.payload_hash = c->payload_hash ? c->payload_hash : SIGV4_EMPTY_SHA256;
	ret = sigv4_target(&sr, &target);
	if (ret < 0)
		goto out;
	if (asprintf(&url, "%s%s", s->base_url, target) < 0) {
		url = NULL;
		ret = -ENOMEM;
		goto out;
	}
	sc.access_key = cr.access_key_id;
	sc.secret_key = cr.secret_access_key;
	sc.session_token = cr.session_token;
	ret = sigv4_sign(&sr, &sc, s->region, "s3", time(NULL), &auth);
	if (ret < 0) {
		snprintf(resp->error, sizeof(resp->error), "cannot sign the request (%s)",
			 strerror(-ret));
		goto out;
	}
	hh[n++] = (struct http_header){ "Host", s->host };
	hh[n++] = (struct http_header){ "x-amz-date", auth.amz_date };
	hh[n++] = (struct http_header){ "x-amz-content-sha256", auth.content_sha256 };
	hh[n++] = (struct http_header){ "Authorization", auth.authorization };
	if (auth.security_token)
		hh[n++] = (struct http_header){ "x-amz-security-token", auth.security_token };
	for (size_t i = 0; i < c->hdr_count; i++)
		hh[n++] = (struct http_header){ c->hdrs[i].name, c->hdrs[i].value };

	http_request_init(&req, c->method, url);
	req.headers = hh;
	req.header_count = n;
	req.body = c->body;
	req.body_fd = c->body_fd;
	req.body_offset = c->body_offset;
	req.body_size = c->body_size;
	req.resp_fd = c->resp_fd;
	req.resp_offset = c->resp_offset;
	req.only_etag = c->only_etag;
	req.max_body = c->max_body ? c->max_body : S3_SMALL_MAX_BODY;
	req.timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
	/* Only this module's retry loop repeats writes (see the header). */
	req.no_resend = strcmp(c->method, "GET") != 0 && strcmp(c->method, "HEAD") != 0;
	ret = http_perform(http, &req, resp);
	if (ret == 0)
		note_date(s, resp);
out:
	sigv4_auth_cleanup(&auth);
	aws_credentials_cleanup(&cr);
	free(target);
	free(url);
	return ret;
}

/* Log a refused request, at most once every 10 s (they come in bursts). */
static void log_refusal(struct s3_store *s, const struct s3_call *c, const char *key, int err)
{
	int64_t now = mono_ms() / 1000, last = atomic_load(&s->last_auth_log);
	char kb[256];

	if (err != -EACCES && !c->why)
		return;
	if (now - last < 10 || !atomic_compare_exchange_strong(&s->last_auth_log, &last, now))
		return;
	log_msg(LOG_ERR, "s3: %s %s: %s (HTTP %ld%s%s)", c->method,
		key ? log_key(key, kb, sizeof(kb)) : "(bucket)",
		c->why ? c->why : "access denied", c->status, c->code[0] ? " " : "", c->code);
}

/*
 * Run a call with retries inside its deadline. Returns 0 on 2xx (resp holds
 * the answer), STORE_NOT_MODIFIED on an allowed 304, else a negative errno
 * (c->status/code/why describe the last answer). The caller cleans up resp.
 */
static int s3_exec(struct s3_store *s, struct s3_call *c, const char *key,
		   struct http_response *resp)
{
	unsigned attempt;
	int ret = -EIO;

	maybe_start_refresh(s);
	for (attempt = 0;; attempt++) {
		int64_t left = c->deadline_ms - mono_ms();
		int terr;
		bool retry;

		if (left <= 0)
			return -ETIMEDOUT;
		http_response_cleanup(resp);
		c->status = 0;
		c->code[0] = '\0';
		c->message[0] = '\0';
		c->why = NULL;
		c->transport[0] = '\0';
		terr = send_once(s, c, resp, (long)left);
		if (terr == 0) {
			c->status = resp->status;
			if (resp->status == 304 && c->allow_304)
				return STORE_NOT_MODIFIED;
			if (resp->status >= 200 && resp->status < 300) {
				const char *cl = http_response_header(resp, "Content-Length");
				int r = 0;

				if (c->resp_fd >= 0 && cl &&
				    strtoull(cl, NULL, 10) != resp->fd_bytes) {
					/* a short body: as good as a reset */
					terr = -ECONNRESET;
					snprintf(c->transport, sizeof(c->transport),
						 "body shorter than Content-Length");
				} else if (c->on_2xx) {
					r = c->on_2xx(c, resp);
					if (r == 0)
						return 0;
					if (r < 0)
						return r;
				} else {
					return 0;
				}
			} else if (resp->body_len > 0) {
				s3_xml_parse_error(resp->body, resp->body_len, c->code,
						   sizeof(c->code), c->message, sizeof(c->message));
			}
		} else {
			snprintf(c->transport, sizeof(c->transport), "%s", resp->error);
		}
		if (terr) {
			ret = terr;
			retry = s3_retryable(terr, 0, NULL);
		} else {
			ret = s3_status_errno(c->status, c->code, c->ctx, &c->why);
			retry = s3_retryable(0, c->status, c->code);
		}
		if (!retry) {
			log_refusal(s, c, key, ret);
			return ret;
		}
		if (!c->replay_safe && !s3_not_applied(terr, c->status, c->code)) {
			c->ambiguous = true;
			return ret;
		}
		if (attempt + 1 >= S3_MAX_ATTEMPTS)
			return ret;
		{
			uint32_t rnd = 0;
			long delay;

			if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) < 0)
				rnd = (uint32_t)mono_ms();
			delay = s3_backoff_ms(attempt, rnd);
			if (mono_ms() + delay >= c->deadline_ms)
				return -ETIMEDOUT;
			if (terr && !s3_not_applied(terr, 0, NULL))
				c->retried_ambiguous = true;
			else if (!terr && c->status >= 500 && !s3_not_applied(0, c->status, c->code))
				c->retried_ambiguous = true;
			atomic_fetch_add(&s->n_retries, 1);
			log_msg(LOG_DEBUG, "s3: %s: %s (HTTP %ld %s), retry %u in %ld ms",
				c->method, terr ? c->transport : "error", c->status, c->code,
				attempt + 1, delay);
			usleep((useconds_t)delay * 1000);
		}
	}
}

/* Meta of the version an answer describes (HEAD or GET). */
static int meta_from_headers(const struct http_response *resp, struct store_meta *out)
{
	const char *etag = http_response_header(resp, "ETag");
	const char *len = http_response_header(resp, "Content-Length");
	int64_t t = s3_http_date(http_response_header(resp, "Last-Modified"));

	memset(out, 0, sizeof(*out));
	if (!etag || !len)
		return -EIO;
	s3_etag_unquote(etag, out->etag, sizeof(out->etag));
	if (!out->etag[0])
		return -EIO;
	out->size = strtoull(len, NULL, 10);
	out->mtime_ns = t > 0 ? t * 1000000000 : 0;
	return 0;
}

/* Our keys: the contract's rules, and ".fallbackfs/" is reserved. */
static int key_ok(const char *key)
{
	int ret = store_key_check(key);

	if (ret)
		return ret;
	if (strncmp(key, INTERNAL_DIR, sizeof(INTERNAL_DIR) - 1) == 0 &&
	    (key[sizeof(INTERNAL_DIR) - 1] == '/' || key[sizeof(INTERNAL_DIR) - 1] == '\0'))
		return -EINVAL;
	return 0;
}

/* The raw request path of key (caller frees), or NULL. */
static char *object_path(struct s3_store *s, const char *key)
{
	char *p;

	if (asprintf(&p, "%s/%s%s", s->path_prefix, s->prefix, key) < 0)
		return NULL;
	return p;
}

/* HEAD of a full request path into *out. */
static int head_path(struct s3_store *s, const char *path, const char *key,
		     struct store_meta *out, struct http_response *keep)
{
	struct http_response resp = { 0 };
	struct s3_call c;
	int ret;

	call_init(s, &c, "HEAD", path, S3_CTX_READ);
	ret = s3_exec(s, &c, key, &resp);
	if (ret == 0)
		ret = meta_from_headers(&resp, out);
	if (keep && ret == 0)
		*keep = resp;
	else
		http_response_cleanup(&resp);
	return ret;
}

/* head: HEAD. */
static int s3_head(struct store *st, const char *key, struct store_meta *out)
{
	struct s3_store *s = s3_of(st);
	char *path;
	int ret = key_ok(key);

	if (ret)
		return ret;
	path = object_path(s, key);
	if (!path)
		return -ENOMEM;
	atomic_fetch_add(&s->n_ops, 1);
	ret = head_path(s, path, key, out, NULL);
	free(path);
	return ret;
}

/* get: conditional GET streamed to the fd. */
/* A conditional header's value: the etag, quoted. */
static void quoted(const char *etag, char *out, size_t len)
{
	snprintf(out, len, etag[0] == '"' ? "%s" : "\"%s\"", etag);
}

static int s3_get(struct store *st, const char *key, const char *if_none_match,
		  const char *if_match, int fd, off_t fd_offset, struct store_meta *out)
{
	struct s3_store *s = s3_of(st);
	struct http_response resp = { 0 };
	char inm[STORE_ETAG_MAX + 4], im[STORE_ETAG_MAX + 4], *path = NULL;
	struct s3_call c;
	int ret = key_ok(key);

	if (ret)
		return ret;
	path = object_path(s, key);
	if (!path)
		return -ENOMEM;
	atomic_fetch_add(&s->n_ops, 1);
	call_init(s, &c, "GET", path, if_match ? S3_CTX_IF_MATCH : S3_CTX_READ);
	c.resp_fd = fd;
	c.resp_offset = fd_offset;
	if (if_none_match && if_none_match[0]) {
		quoted(if_none_match, inm, sizeof(inm));
		add_hdr(&c, "if-none-match", inm);
		c.allow_304 = true;
	}
	if (if_match) {
		/* asked of the server, and checked here for servers that ignore it */
		quoted(if_match, im, sizeof(im));
		add_hdr(&c, "if-match", im);
		c.only_etag = if_match;
	}
	ret = s3_exec(s, &c, key, &resp);
	if (ret == STORE_NOT_MODIFIED) {
		/* S3 sends neither size nor ETag on a 304: only the etag is known. */
		const char *e = http_response_header(&resp, "ETag");
		int64_t t = s3_http_date(http_response_header(&resp, "Last-Modified"));

		memset(out, 0, sizeof(*out));
		s3_etag_unquote(e ? e : if_none_match, out->etag, sizeof(out->etag));
		out->mtime_ns = t > 0 ? t * 1000000000 : 0;
	} else if (ret == 0) {
		char want[STORE_ETAG_MAX];

		ret = meta_from_headers(&resp, out);
		if (ret == 0 && resp.fd_bytes != out->size)
			ret = -EIO;
		if (ret == 0 && if_match) {
			s3_etag_unquote(if_match, want, sizeof(want));
			if (strcmp(want, out->etag) != 0)
				ret = -ESTALE; /* an empty body of another version */
		}
	}
	http_response_cleanup(&resp);
	free(path);
	return ret;
}

/* Content-Type of a new object: Kong's exporter writes JSON as such. */
static const char *content_type(const char *key)
{
	size_t n = strlen(key);

	return n >= 5 && strcmp(key + n - 5, ".json") == 0 ? "application/json"
							    : "application/octet-stream";
}

/* Hex MD5 (a single-part ETag) from a base64 Content-MD5. */
static int md5_hex(const char *b64, char hex[33])
{
	unsigned char raw[24];

	if (EVP_DecodeBlock(raw, (const unsigned char *)b64, 24) < 16)
		return -EIO;
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

/* Fill *out for a version we just wrote: its etag, our size, the server's
 * Date as its modification time (S3 returns no Last-Modified on PUT). */
static void meta_after_put(struct s3_store *s, const struct http_response *resp,
			   const char *etag, uint64_t size, struct store_meta *out)
{
	int64_t t = resp ? s3_http_date(http_response_header(resp, "Date")) : -1;

	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	s3_etag_unquote(etag, out->etag, sizeof(out->etag));
	out->size = size;
	out->mtime_ns = t > 0 ? t * 1000000000
			      : real_ns() + atomic_load(&s->skew_s) * 1000000000;
}

struct put_args {
	const char *path;
	const char *key; /* for logs */
	int fd;
	off_t offset;
	uint64_t size;
	enum store_put_mode mode;
	const char *etag;   /* IF_MATCH: unquoted */
	int64_t start_ns;   /* server clock when the operation began */
	char put_id[17];    /* x-amz-meta-fallbackfs-put: names this write */
};

#define PUT_ID_HEADER "x-amz-meta-fallbackfs-put"

/*
 * Did our write land? HEAD the key and compare the write id we stored in
 * its metadata: unlike the ETag (an MD5), it tells our version apart from
 * someone else's with the same body (CAS counters write the same "6").
 * 1 (ours, *cur filled), 0 (another version, *cur filled), or -errno.
 */
static int landed(struct s3_store *s, const struct put_args *a, struct store_meta *cur)
{
	struct http_response head = { 0 };
	const char *id;
	int ret = head_path(s, a->path, a->key, cur, &head);

	if (ret < 0)
		return ret;
	id = http_response_header(&head, PUT_ID_HEADER);
	ret = id && strcmp(id, a->put_id) == 0;
	http_response_cleanup(&head);
	return ret;
}

/* One single-request PUT under the given condition. */
static int put_single(struct s3_store *s, const struct put_args *a,
		      const struct digest_result *dg, bool replay_safe,
		      struct http_response *resp, struct s3_call *c)
{
	call_init(s, c, "PUT", a->path,
		  a->mode == STORE_PUT_CREATE ? S3_CTX_CREATE
		  : a->mode == STORE_PUT_IF_MATCH ? S3_CTX_IF_MATCH : S3_CTX_READ);
	c->body_fd = a->fd;
	c->body_offset = a->offset;
	c->body_size = a->size;
	c->payload_hash = SIGV4_UNSIGNED_PAYLOAD; /* Content-MD5 is signed instead */
	c->replay_safe = replay_safe;
	add_hdr(c, "content-md5", dg->md5_base64);
	add_hdr(c, "content-type", content_type(a->key));
	add_hdr(c, PUT_ID_HEADER, a->put_id);
	if (a->mode == STORE_PUT_CREATE)
		add_hdr(c, "if-none-match", "*");
	else if (a->mode == STORE_PUT_IF_MATCH)
		add_hdr(c, "if-match", a->etag);
	return s3_exec(s, c, a->key, resp);
}

/* After an If-Match 412: RGW answers 412 (not 404) for a missing key. */
static int precondition_result(struct s3_store *s, const struct put_args *a, int ret,
			       bool ambiguous_before, struct store_meta *out)
{
	struct store_meta cur;
	int h;

	if (ret != -ESTALE && ret != -EEXIST)
		return ret;
	h = landed(s, a, &cur);
	if (h == -ENOENT)
		return a->mode == STORE_PUT_IF_MATCH ? -ENOENT : ret;
	/* An earlier attempt of ours may have landed before the reply was lost. */
	if (h == 1 && ambiguous_before) {
		if (out)
			*out = cur;
		return 0;
	}
	return ret;
}

/*
 * An unconditional write failed ambiguously: decide from the object whether
 * it landed, may be repeated (guarded), or must not be (see the header).
 * retry_mode and retry_etag say how to repeat; returns 0 (landed, *out
 * filled), 1 (repeat), or orig.
 */
static int resolve_ambiguous(struct s3_store *s, const struct put_args *a, int orig,
			     struct store_meta *out, enum store_put_mode *retry_mode,
			     char *retry_etag)
{
	struct store_meta cur;
	int h = landed(s, a, &cur);
	char kb[256];

	if (h == 1) {
		if (out)
			*out = cur;
		return 0;
	}
	if (h == -ENOENT) {
		*retry_mode = STORE_PUT_CREATE;
		return 1;
	}
	if (h == 0 && cur.mtime_ns + 2000000000LL <= a->start_ns) {
		*retry_mode = STORE_PUT_IF_MATCH;
		snprintf(retry_etag, STORE_ETAG_MAX, "%s", cur.etag);
		return 1;
	}
	log_msg(LOG_WARNING, "s3: PUT %s failed ambiguously (%s) and the object changed "
		"since; not repeating it over a possibly newer version",
		log_key(a->key, kb, sizeof(kb)), store_strerror(orig));
	return orig;
}

/* A 200 whose body was an <Error> (CompleteMultipartUpload and CopyObject
 * can answer so): record it as the failure it is, for the errno table. */
static int embedded_error(struct s3_call *c, const struct s3_xml_result *r, int ret)
{
	if (ret == S3_XML_EMBEDDED_ERROR) {
		snprintf(c->code, sizeof(c->code), "%s", r->error_code);
		c->status = strcmp(r->error_code, "InternalError") == 0 ? 500 : 400;
	}
	return ret;
}

/* on_2xx of CompleteMultipartUpload: 200 may carry an <Error>. */
static int complete_2xx(struct s3_call *c, const struct http_response *resp)
{
	struct s3_xml_result *r = c->arg;

	return embedded_error(c, r, s3_xml_parse_complete(resp->body ? resp->body : "",
							   resp->body_len, r));
}

/* Abort an upload so no parts are left behind; logs when it cannot. */
static void abort_upload(struct s3_store *s, const char *path, const char *upload_id,
			 const char *key)
{
	struct http_response resp = { 0 };
	struct sigv4_param q[1] = { { "uploadId", upload_id } };
	struct s3_call c;
	char kb[256];
	int ret;

	call_init(s, &c, "DELETE", path, S3_CTX_READ);
	c.deadline_ms = mono_ms() + S3_ABORT_TIMEOUT_MS;
	c.query = q;
	c.query_count = 1;
	ret = s3_exec(s, &c, key, &resp);
	if (ret < 0 && ret != -ENOENT)
		log_msg(LOG_WARNING, "s3: aborting the multipart upload of %s failed (%s%s%s); "
			"its parts stay until a lifecycle rule removes them",
			log_key(key, kb, sizeof(kb)), store_strerror(ret), c.code[0] ? ", " : "",
			c.code);
	http_response_cleanup(&resp);
}

/*
 * A multipart upload. It is fed in one of two ways: a put above the
 * threshold, whose body is all there (every byte stable, size final at
 * once), or store_upload_*, whose body is still being written: the caller
 * advances the stable mark and parts go up in the background as soon as
 * they are whole, so that the upload runs alongside the writer instead of
 * after it. Either way up to S3_PART_THREADS threads send parts (helpers,
 * plus the committer once the size is final), the first failure stops new
 * parts from starting, and completion or abort comes only after every
 * thread has finished, so no part can land after an abort.
 */
struct s3_upload {
	struct store_upload base;
	struct s3_store *s;
	struct put_args a;       /* a.path owned; a.size and a.mode set at commit */
	uint64_t part;           /* size of every part but the last */
	bool streamed;           /* fed by store_upload_*, not by one put */
	char cond_etag[STORE_ETAG_MAX]; /* IF_MATCH, unquoted */
	pthread_mutex_t lock;
	pthread_cond_t cv;
	/* protected by lock: */
	uint64_t stable;         /* bytes that will not change */
	bool final;              /* a.size is the body's size */
	bool stop;               /* aborting: start nothing new */
	bool initiating;
	char upload_id[S3_XML_TOKEN_MAX + 1];
	unsigned next;           /* next part to send (0-based) */
	unsigned cap;            /* slots in etags */
	char (*etags)[STORE_ETAG_MAX];
	int err;                 /* first failure */
	pthread_t tid[S3_PART_THREADS - 1];
	unsigned nthreads;
};

static struct s3_upload *s3_upload_of(struct store_upload *u)
{
	return (struct s3_upload *)u;
}

/* POST ?uploads: the upload id, or -errno. */
static int upload_initiate(struct s3_upload *u, char *id, size_t idlen)
{
	struct http_response resp = { 0 };
	struct sigv4_param q[1] = { { "uploads", "" } };
	struct s3_call c;
	int ret;

	call_init(u->s, &c, "POST", u->a.path, S3_CTX_READ);
	c.query = q;
	c.query_count = 1;
	add_hdr(&c, "content-type", content_type(u->a.key));
	add_hdr(&c, PUT_ID_HEADER, u->a.put_id);
	ret = s3_exec(u->s, &c, u->a.key, &resp);
	if (ret == 0)
		ret = s3_xml_parse_upload_id(resp.body ? resp.body : "", resp.body_len, id, idlen);
	http_response_cleanup(&resp);
	return ret;
}

/* Digest and send one part (partno 1-based) with a deadline of its own. */
static int upload_part(struct s3_upload *u, const char *upload_id, unsigned partno,
		       uint64_t off, uint64_t len, char etag[STORE_ETAG_MAX])
{
	struct http_response resp = { 0 };
	struct digest_result dg;
	struct sigv4_param q[2];
	struct s3_call c;
	char num[16];
	const char *e;
	int ret;

	ret = digest_md5_fd_range(u->a.fd, u->a.offset + (off_t)off, len, &dg);
	if (ret < 0)
		return ret;
	snprintf(num, sizeof(num), "%u", partno);
	q[0] = (struct sigv4_param){ "partNumber", num };
	q[1] = (struct sigv4_param){ "uploadId", upload_id };
	call_init(u->s, &c, "PUT", u->a.path, S3_CTX_READ);
	c.query = q;
	c.query_count = 2;
	c.body_fd = u->a.fd;
	c.body_offset = u->a.offset + (off_t)off;
	c.body_size = len;
	c.payload_hash = SIGV4_UNSIGNED_PAYLOAD; /* Content-MD5 is signed instead */
	add_hdr(&c, "content-md5", dg.md5_base64);
	ret = s3_exec(u->s, &c, u->a.key, &resp);
	e = ret == 0 ? http_response_header(&resp, "ETag") : NULL;
	if (ret == 0 && (!e || strlen(e) >= STORE_ETAG_MAX))
		ret = -EIO;
	if (ret == 0)
		snprintf(etag, STORE_ETAG_MAX, "%s", e);
	http_response_cleanup(&resp);
	return ret;
}

/* The work loop of every sender (u->lock held on entry and exit): initiate
 * once, then send whole stable parts until none is left (final), one
 * failed, or the upload is being aborted. */
static void upload_work_locked(struct s3_upload *u)
{
	while (!u->stop && !u->err) {
		char id[S3_XML_TOKEN_MAX + 1], etag[STORE_ETAG_MAX];
		uint64_t off, len;
		unsigned i;
		int ret;

		if (!u->upload_id[0]) {
			if (u->initiating) {
				pthread_cond_wait(&u->cv, &u->lock);
				continue;
			}
			u->initiating = true;
			pthread_mutex_unlock(&u->lock);
			ret = upload_initiate(u, id, sizeof(id));
			pthread_mutex_lock(&u->lock);
			u->initiating = false;
			if (ret)
				u->err = ret;
			else
				memcpy(u->upload_id, id, sizeof(id));
			pthread_cond_broadcast(&u->cv);
			continue;
		}
		off = (uint64_t)u->next * u->part;
		if (u->final ? off >= u->a.size : off + u->part > u->stable) {
			if (u->final)
				break;
			pthread_cond_wait(&u->cv, &u->lock);
			continue;
		}
		if (u->next >= S3_MAX_PARTS) {
			u->err = -EFBIG; /* streamed parts too small for this body */
			break;
		}
		if (u->next >= u->cap) {
			unsigned cap = u->cap ? u->cap * 2 : 16;
			void *e = realloc(u->etags, cap * sizeof(*u->etags));

			if (!e) {
				u->err = -ENOMEM;
				break;
			}
			u->etags = e;
			u->cap = cap;
		}
		i = u->next++;
		len = u->final && u->a.size - off < u->part ? u->a.size - off : u->part;
		memcpy(id, u->upload_id, sizeof(id));
		pthread_mutex_unlock(&u->lock);
		ret = upload_part(u, id, i + 1, off, len, etag);
		pthread_mutex_lock(&u->lock);
		if (ret && !u->err)
			u->err = ret;
		else if (ret == 0)
			memcpy(u->etags[i], etag, STORE_ETAG_MAX);
		pthread_cond_broadcast(&u->cv);
	}
}

static void *upload_thread(void *arg)
{
	struct s3_upload *u = arg;

	pthread_mutex_lock(&u->lock);
	upload_work_locked(u);
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

/* Start helpers, at most want in all (u->lock held); a helper that cannot
 * be created just leaves more to the others and the committer. */
static void upload_spawn_locked(struct s3_upload *u, unsigned want)
{
	if (want > S3_PART_THREADS - 1)
		want = S3_PART_THREADS - 1;
	while (u->nthreads < want &&
	       pthread_create(&u->tid[u->nthreads], NULL, upload_thread, u) == 0)
		u->nthreads++;
}

/* Wait for every helper to finish (u->lock not held). */
static void upload_join(struct s3_upload *u)
{
	for (unsigned k = 0; k < u->nthreads; k++)
		pthread_join(u->tid[k], NULL);
	u->nthreads = 0;
}

static struct s3_upload *upload_new(struct s3_store *s, const char *key, int fd, off_t offset)
{
	struct s3_upload *u = calloc(1, sizeof(*u));
	unsigned long long id = 0;

	if (!u)
		return NULL;
	u->a.path = object_path(s, key);
	u->a.key = strdup(key);
	if (!u->a.path || !u->a.key) {
		free((char *)u->a.path);
		free((char *)u->a.key);
		free(u);
		return NULL;
	}
	u->base.store = &s->base;
	u->s = s;
	u->a.fd = fd;
	u->a.offset = offset;
	u->a.start_ns = real_ns() + atomic_load(&s->skew_s) * 1000000000;
	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) < 0)
		id = (unsigned long long)real_ns() ^ ((unsigned long long)getpid() << 32);
	snprintf(u->a.put_id, sizeof(u->a.put_id), "%016llx", id);
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cv, NULL);
	return u;
}

/* Stop, wait for the senders, abort what was started, and free. */
static void upload_discard(struct s3_upload *u)
{
	pthread_mutex_lock(&u->lock);
	u->stop = true;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->lock);
	upload_join(u);
	if (u->upload_id[0])
		abort_upload(u->s, u->a.path, u->upload_id, u->a.key);
	pthread_cond_destroy(&u->cv);
	pthread_mutex_destroy(&u->lock);
	free(u->etags);
	free((char *)u->a.path);
	free((char *)u->a.key);
	free(u);
}

/* CompleteMultipartUpload with the put's condition (every part sent). */
static int upload_complete(struct s3_upload *u, struct store_meta *out)
{
	const struct put_args *a = &u->a;
	struct s3_store *s = u->s;
	struct http_response resp = { 0 };
	struct s3_xml_result res;
	struct sigv4_param q[1];
	struct digest_result dg;
	struct s3_call c;
	char *xml = NULL;
	size_t xlen = 0;
	FILE *xf = open_memstream(&xml, &xlen);
	int ret;

	if (!xf)
		return -ENOMEM;
	fputs("<CompleteMultipartUpload>", xf);
	for (unsigned i = 0; i < u->next; i++) {
		char et[STORE_ETAG_MAX];

		s3_etag_unquote(u->etags[i], et, sizeof(et));
		fprintf(xf, "<Part><PartNumber>%u</PartNumber><ETag>\"%s\"</ETag></Part>", i + 1,
			et);
	}
	fputs("</CompleteMultipartUpload>", xf);
	if (fclose(xf) != 0) {
		free(xml);
		return -ENOMEM;
	}
	ret = digest_buffer(xml, xlen, &dg);
	if (ret < 0)
		goto out;
	q[0] = (struct sigv4_param){ "uploadId", u->upload_id };
	call_init(s, &c, "POST", a->path,
		  a->mode == STORE_PUT_CREATE ? S3_CTX_CREATE
		  : a->mode == STORE_PUT_IF_MATCH ? S3_CTX_IF_MATCH : S3_CTX_READ);
	c.query = q;
	c.query_count = 1;
	c.body = xml;
	c.body_size = xlen;
	c.payload_hash = dg.sha256_hex;
	c.on_2xx = complete_2xx;
	memset(&res, 0, sizeof(res));
	c.arg = &res;
	add_hdr(&c, "content-md5", dg.md5_base64);
	add_hdr(&c, "content-type", "application/xml");
	if (a->mode == STORE_PUT_CREATE)
		add_hdr(&c, "if-none-match", "*");
	else if (a->mode == STORE_PUT_IF_MATCH)
		add_hdr(&c, "if-match", a->etag);
	ret = s3_exec(s, &c, a->key, &resp);
	if (ret == -ENOENT && c.retried_ambiguous) {
		/* NoSuchUpload after a lost answer: did our completion land? */
		struct store_meta cur;

		if (landed(s, a, &cur) == 1) {
			u->upload_id[0] = '\0';
			if (out)
				*out = cur;
			ret = 0;
			goto out;
		}
		ret = -EIO;
	}
	if (ret == -ESTALE || ret == -EEXIST)
		ret = precondition_result(s, a, ret, c.retried_ambiguous, out);
	if (ret < 0)
		goto out;
	u->upload_id[0] = '\0'; /* completed: nothing to abort */
	if (res.etag[0]) {
		meta_after_put(s, &resp, res.etag, a->size, out);
	} else if (out) {
		/* Ceph RGW answers an empty ETag: ask for it. */
		struct store_meta cur;

		ret = head_path(s, a->path, a->key, &cur, NULL);
		if (ret == 0)
			*out = cur;
	}
out:
	http_response_cleanup(&resp);
	free(xml);
	return ret;
}

static int do_put(struct s3_store *s, const char *key, int fd, off_t offset, uint64_t size,
		  const struct store_put_cond *cond, struct store_meta *out);

/* The size is final: send what is left, then complete under cond; frees u.
 * A streamed upload that failed before its size was known, or whose parts
 * turned out too small for 10000, is started over as one put with fresh
 * deadlines: the body is all there now. */
static int upload_finish(struct s3_upload *u, uint64_t size, const struct store_put_cond *cond,
			 struct store_meta *out)
{
	struct s3_store *s = u->s;
	bool started;
	int ret;

	pthread_mutex_lock(&u->lock);
	if (size < u->stable && !u->err)
		u->err = -EINVAL; /* bytes promised stable are gone: start over */
	u->final = true;
	u->a.size = size;
	u->a.mode = cond ? cond->mode : STORE_PUT_ANY;
	if (u->a.mode == STORE_PUT_IF_MATCH) {
		s3_etag_unquote(cond->etag, u->cond_etag, sizeof(u->cond_etag));
		u->a.etag = u->cond_etag;
	}
	started = u->upload_id[0] || u->initiating || u->err || u->nthreads;
	pthread_cond_broadcast(&u->cv);
	/* Small after all, or a condition only a single PUT can carry here:
	 * one plain PUT. */
	if ((!started && size <= s->multipart_threshold) ||
	    (u->a.mode != STORE_PUT_ANY && !s->cond_complete)) {
		pthread_mutex_unlock(&u->lock);
		ret = -EAGAIN;
		goto restart;
	}
	upload_spawn_locked(u, (unsigned)((size + u->part - 1) / u->part) - 1);
	upload_work_locked(u);
	pthread_mutex_unlock(&u->lock);
	upload_join(u);
	ret = u->err;
	if (ret && u->streamed)
		goto restart;
	if (ret == 0)
		ret = upload_complete(u, out);
	upload_discard(u);
	return ret;
restart:
	{
		int fd = u->a.fd;
		off_t offset = u->a.offset;
		char kb[256], *key = strdup(u->a.key);

		if (ret != -EAGAIN)
			log_msg(LOG_INFO, "s3: streamed upload of %s failed (%s); sending it whole",
				log_key(u->a.key, kb, sizeof(kb)), store_strerror(ret));
		upload_discard(u);
		if (!key)
			return -ENOMEM;
		ret = do_put(s, key, fd, offset, size, cond, out);
		free(key);
		return ret;
	}
}

/* Multipart put of a body that is all there. */
static int put_multipart(struct s3_store *s, const struct put_args *a,
			 const struct store_put_cond *cond, struct store_meta *out)
{
	struct s3_upload *u = upload_new(s, a->key, a->fd, a->offset);
	uint64_t part = s->part_size;

	if (!u)
		return -ENOMEM;
	/* Enough parts to keep every thread busy, none below S3's minimum. */
	if (part > (a->size + S3_PART_THREADS - 1) / S3_PART_THREADS) {
		part = (a->size + S3_PART_THREADS - 1) / S3_PART_THREADS;
		part = (part + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
		if (part < S3_STORE_MIN_PART_SIZE)
			part = S3_STORE_MIN_PART_SIZE;
	}
	while ((a->size + part - 1) / part > S3_MAX_PARTS)
		part *= 2;
	u->part = part;
	u->stable = a->size;
	return upload_finish(u, a->size, cond, out);
}

/* store_upload_*: streamed parts are S3's smallest, so the first goes up
 * as early as possible; a body that outgrows 10000 of them (50 GB) is sent
 * whole at commit instead. Streaming starts once the stable bytes pass the
 * multipart threshold: smaller bodies stay one plain PUT. */
static int s3_upload_begin(struct store *st, const char *key, int fd, off_t offset,
			   struct store_upload **out)
{
	struct s3_store *s = s3_of(st);
	struct s3_upload *u;
	int ret = key_ok(key);

	if (ret)
		return ret;
	u = upload_new(s, key, fd, offset);
	if (!u)
		return -ENOMEM;
	u->part = S3_STORE_MIN_PART_SIZE;
	u->streamed = true;
	*out = &u->base;
	return 0;
}

static void s3_upload_advance(struct store_upload *up, uint64_t stable)
{
	struct s3_upload *u = s3_upload_of(up);
	uint64_t boundary;

	pthread_mutex_lock(&u->lock);
	boundary = ((uint64_t)u->next + 1) * u->part;
	if (stable > u->stable) {
		bool crossed = u->stable < boundary && stable >= boundary;

		u->stable = stable;
		if (stable > u->s->multipart_threshold && !u->nthreads)
			upload_spawn_locked(u, S3_PART_THREADS - 1);
		else if (crossed)
			pthread_cond_broadcast(&u->cv);
	}
	pthread_mutex_unlock(&u->lock);
}

static int s3_upload_commit(struct store_upload *up, uint64_t size,
			    const struct store_put_cond *cond, struct store_meta *out)
{
	struct s3_upload *u = s3_upload_of(up);

	if (cond && cond->mode != STORE_PUT_ANY && !(u->s->base.caps & STORE_CAP_CONDITIONAL_PUT)) {
		upload_discard(u);
		return -ENOTSUP;
	}
	if (cond && cond->mode == STORE_PUT_IF_MATCH && (!cond->etag || !cond->etag[0])) {
		upload_discard(u);
		return -EINVAL;
	}
	atomic_fetch_add(&u->s->n_ops, 1);
	return upload_finish(u, size, cond, out);
}

static void s3_upload_abort(struct store_upload *up)
{
	upload_discard(s3_upload_of(up));
}

/* put: single PUT or multipart, conditions enforced by the server. */
static int do_put(struct s3_store *s, const char *key, int fd, off_t offset, uint64_t size,
		  const struct store_put_cond *cond, struct store_meta *out)
{
	struct http_response resp = { 0 };
	struct put_args a = { 0 };
	struct digest_result dg;
	struct s3_call c;
	char our_etag[33], retry_etag[STORE_ETAG_MAX], cond_etag[STORE_ETAG_MAX];
	enum store_put_mode retry_mode = STORE_PUT_ANY;
	int ret, r;

	a.key = key;
	a.fd = fd;
	a.offset = offset;
	a.size = size;
	a.mode = cond ? cond->mode : STORE_PUT_ANY;
	a.start_ns = real_ns() + atomic_load(&s->skew_s) * 1000000000;
	{
		unsigned long long id = 0;

		if (getrandom(&id, sizeof(id), GRND_NONBLOCK) < 0)
			id = (unsigned long long)real_ns() ^ ((unsigned long long)getpid() << 32);
		snprintf(a.put_id, sizeof(a.put_id), "%016llx", id);
	}
	if (a.mode == STORE_PUT_IF_MATCH) {
		if (!cond->etag || !cond->etag[0])
			return -EINVAL;
		s3_etag_unquote(cond->etag, cond_etag, sizeof(cond_etag));
		a.etag = cond_etag;
	}
	a.path = object_path(s, key);
	if (!a.path)
		return -ENOMEM;
	if (size > s->multipart_threshold && (a.mode == STORE_PUT_ANY || s->cond_complete)) {
		ret = put_multipart(s, &a, cond, out);
		goto out;
	}
	if (size > S3_MAX_SINGLE_PUT) {
		char kb[256];

		log_msg(LOG_ERR, "s3: a conditional put of %s above 5 GB needs a server that "
			"enforces conditions on multipart completion; this one does not",
			log_key(key, kb, sizeof(kb)));
		ret = -ENOTSUP;
		goto out;
	}
	ret = digest_md5_fd_range(fd, offset, size, &dg);
	if (ret < 0)
		goto out;
	ret = md5_hex(dg.md5_base64, our_etag);
	if (ret < 0)
		goto out;
	ret = put_single(s, &a, &dg, a.mode != STORE_PUT_ANY, &resp, &c);
	if (ret == 0) {
		const char *e = http_response_header(&resp, "ETag");

		meta_after_put(s, &resp, e ? e : our_etag, size, out);
		goto out;
	}
	if (a.mode != STORE_PUT_ANY) {
		ret = precondition_result(s, &a, ret, c.retried_ambiguous, out);
		goto out;
	}
	if (!c.ambiguous)
		goto out;
	/* unconditional write, ambiguous failure: see the header comment */
	r = resolve_ambiguous(s, &a, ret, out, &retry_mode, retry_etag);
	if (r != 1) {
		ret = r;
		goto out;
	}
	http_response_cleanup(&resp);
	if (s->base.caps & STORE_CAP_CONDITIONAL_PUT) {
		struct put_args g = a;
		int g_ret;

		g.mode = retry_mode;
		g.etag = retry_etag;
		g_ret = put_single(s, &g, &dg, true, &resp, &c);
		if (g_ret == 0) {
			const char *e = http_response_header(&resp, "ETag");

			meta_after_put(s, &resp, e ? e : our_etag, size, out);
		} else if (g_ret == -EEXIST || g_ret == -ESTALE || g_ret == -ENOENT) {
			/* ours landed after all, or someone newer won: look once more */
			struct store_meta cur;

			g_ret = landed(s, &a, &cur) == 1 ? 0 : ret;
			if (g_ret == 0 && out)
				*out = cur;
		}
		ret = g_ret;
	} else {
		/* The server ignores conditions: one plain repeat, whose window is
		 * a single round trip after we saw the old version. */
		ret = put_single(s, &a, &dg, false, &resp, &c);
		if (ret == 0) {
			const char *e = http_response_header(&resp, "ETag");

			meta_after_put(s, &resp, e ? e : our_etag, size, out);
		}
	}
out:
	http_response_cleanup(&resp);
	free((char *)a.path);
	return ret;
}

/* put: the contract's entry point. */
static int s3_put(struct store *st, const char *key, int fd, off_t offset, uint64_t size,
		  const struct store_put_cond *cond, struct store_meta *out)
{
	struct s3_store *s = s3_of(st);
	int ret = key_ok(key);

	if (ret)
		return ret;
	if (cond && cond->mode != STORE_PUT_ANY && !(st->caps & STORE_CAP_CONDITIONAL_PUT))
		return -ENOTSUP;
	atomic_fetch_add(&s->n_ops, 1);
	return do_put(s, key, fd, offset, size, cond, out);
}

/* del: HEAD (for -ENOENT and the etag check), then DELETE. */
static int s3_del(struct store *st, const char *key, const char *if_match)
{
	struct s3_store *s = s3_of(st);
	struct http_response resp = { 0 };
	struct store_meta cur, now;
	char want[STORE_ETAG_MAX];
	struct s3_call c;
	char *path;
	int ret = key_ok(key);

	if (ret)
		return ret;
	path = object_path(s, key);
	if (!path)
		return -ENOMEM;
	atomic_fetch_add(&s->n_ops, 1);
	ret = head_path(s, path, key, &cur, NULL);
	if (ret < 0)
		goto out;
	if (if_match) {
		s3_etag_unquote(if_match, want, sizeof(want));
		if (strcmp(want, cur.etag) != 0) {
			ret = -ESTALE;
			goto out;
		}
	}
	for (int round = 0; round < 3; round++) {
		call_init(s, &c, "DELETE", path, S3_CTX_READ);
		c.replay_safe = false;
		/* enforced by AWS and MinIO; Ceph RGW 16 ignores it (our check above) */
		if (if_match)
			add_hdr(&c, "if-match", cur.etag);
		ret = s3_exec(s, &c, key, &resp);
		http_response_cleanup(&resp);
		if (ret == 0 || ret == -ENOENT) {
			ret = 0;
			break;
		}
		if (!c.ambiguous)
			break;
		/* Lost answer: gone means done; the version we saw means repeat;
		 * another version means a newer write that we must not delete. */
		if (head_path(s, path, key, &now, NULL) == -ENOENT) {
			ret = 0;
			break;
		}
		if (strcmp(now.etag, cur.etag) != 0) {
			ret = if_match ? -ESTALE : 0;
			break;
		}
	}
out:
	free(path);
	return ret;
}

/* list: ListObjectsV2, keys relative to the store prefix. */
static int s3_list(struct store *st, const char *prefix, const char *delimiter,
		   const char *token, unsigned max_keys, struct store_list_page *out)
{
	struct s3_store *s = s3_of(st);
	struct store_list_page raw = { 0 };
	struct http_response resp = { 0 };
	struct sigv4_param q[6];
	char maxk[16], *full = NULL, kb[256];
	struct s3_call c;
	size_t nq = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!prefix)
		prefix = "";
	if (prefix[0] == '/' || strlen(prefix) >= STORE_KEY_MAX)
		return -EINVAL;
	if (max_keys == 0 || max_keys > STORE_LIST_MAX_KEYS)
		max_keys = STORE_LIST_MAX_KEYS;
	if (asprintf(&full, "%s%s", s->prefix, prefix) < 0)
		return -ENOMEM;
	snprintf(maxk, sizeof(maxk), "%u", max_keys);
	q[nq++] = (struct sigv4_param){ "list-type", "2" };
	q[nq++] = (struct sigv4_param){ "prefix", full };
	q[nq++] = (struct sigv4_param){ "max-keys", maxk };
	q[nq++] = (struct sigv4_param){ "encoding-type", "url" };
	if (delimiter && delimiter[0])
		q[nq++] = (struct sigv4_param){ "delimiter", delimiter };
	if (token)
		q[nq++] = (struct sigv4_param){ "continuation-token", token };
	atomic_fetch_add(&s->n_ops, 1);
	call_init(s, &c, "GET", s->path_prefix[0] ? s->path_prefix : "/", S3_CTX_READ);
	c.query = q;
	c.query_count = nq;
	c.max_body = S3_LIST_MAX_BODY;
	ret = s3_exec(s, &c, NULL, &resp);
	if (ret < 0)
		goto out;
	ret = s3_xml_parse_list(resp.body ? resp.body : "", resp.body_len, s->prefix, &raw,
				NULL);
	if (ret < 0)
		goto out;
	for (size_t i = 0; i < raw.count; i++) {
		struct store_list_entry *e = &raw.entries[i];
		char check[STORE_KEY_MAX];
		size_t n = strlen(e->key), dl = delimiter ? strlen(delimiter) : 0;

		snprintf(check, sizeof(check), "%s", e->key);
		if (e->is_prefix && dl && n >= dl && n - dl < sizeof(check))
			check[n - dl] = '\0';
		if (store_key_check(check) < 0 || key_ok(check) < 0) {
			if (strncmp(check, INTERNAL_DIR, sizeof(INTERNAL_DIR) - 1) != 0)
				log_msg(LOG_DEBUG, "s3: list: skipping key %s (not a valid path)",
					log_key(e->key, kb, sizeof(kb)));
			continue;
		}
		ret = store_list_page_add(out, e->key, e->is_prefix, &e->meta);
		if (ret < 0)
			goto out;
	}
	out->next_token = raw.next_token;
	raw.next_token = NULL;
out:
	if (ret < 0)
		store_list_page_cleanup(out);
	store_list_page_cleanup(&raw);
	http_response_cleanup(&resp);
	free(full);
	return ret;
}

/* on_2xx of CopyObject: 200 may carry an <Error>. */
static int copy_2xx(struct s3_call *c, const struct http_response *resp)
{
	struct s3_xml_result *r = c->arg;

	return embedded_error(c, r, s3_xml_parse_copy(resp->body ? resp->body : "",
						       resp->body_len, r));
}

/* One self-copy with REPLACE of the version etag; keeps type and x-amz-meta-*. */
static int self_copy(struct s3_store *s, const char *path, const char *key,
		     const struct http_response *head, const char *etag,
		     struct s3_xml_result *res)
{
	struct http_response resp = { 0 };
	char src[3 * (STORE_KEY_MAX + 256)], quoted[STORE_ETAG_MAX + 2];
	const char *ctype = head ? http_response_header(head, "Content-Type") : NULL;
	struct s3_call c;
	int ret;

	if (s->path_prefix[0])
		ret = s3_uri_encode_path(path, src, sizeof(src));
	else {
		char tmp[sizeof(src)];

		snprintf(tmp, sizeof(tmp), "/%s%s", s->bucket, path);
		ret = s3_uri_encode_path(tmp, src, sizeof(src));
	}
	if (ret < 0)
		return -EINVAL;
	call_init(s, &c, "PUT", path, S3_CTX_IF_MATCH);
	c.on_2xx = copy_2xx;
	memset(res, 0, sizeof(*res));
	c.arg = res;
	add_hdr(&c, "x-amz-copy-source", src);
	add_hdr(&c, "x-amz-metadata-directive", "REPLACE");
	add_hdr(&c, "content-type", ctype ? ctype : content_type(key));
	snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
	add_hdr(&c, "x-amz-copy-source-if-match", quoted);
	for (size_t i = 0; head && i < head->header_count; i++) {
		if (strncasecmp(head->headers[i].name, "x-amz-meta-", 11) == 0 &&
		    c.hdr_count < S3_MAX_HDRS)
			add_hdr(&c, head->headers[i].name, head->headers[i].value);
	}
	ret = s3_exec(s, &c, key, &resp);
	http_response_cleanup(&resp);
	return ret;
}

/* touch: CopyObject onto itself with REPLACE (a new LastModified). */
static int s3_touch(struct store *st, const char *key, struct store_meta *out)
{
	struct s3_store *s = s3_of(st);
	struct s3_xml_result res;
	char *path;
	int ret = key_ok(key);

	if (ret)
		return ret;
	if (!(st->caps & STORE_CAP_TOUCH))
		return -ENOTSUP;
	path = object_path(s, key);
	if (!path)
		return -ENOMEM;
	atomic_fetch_add(&s->n_ops, 1);
	for (int round = 0; round < 3; round++) {
		struct http_response head = { 0 };
		struct store_meta cur;

		ret = head_path(s, path, key, &cur, &head);
		if (ret < 0)
			break;
		ret = self_copy(s, path, key, &head, cur.etag, &res);
		http_response_cleanup(&head);
		if (ret == -ESTALE)
			continue; /* changed between HEAD and COPY: again */
		if (ret == 0 && out) {
			memset(out, 0, sizeof(*out));
			s3_etag_unquote(res.etag, out->etag, sizeof(out->etag));
			if (!out->etag[0])
				snprintf(out->etag, sizeof(out->etag), "%s", cur.etag);
			out->size = cur.size;
			out->mtime_ns = res.mtime_ns;
		}
		break;
	}
	free(path);
	return ret;
}

/* destroy: stop the refresh thread, close connections, free. */
static void s3_destroy(struct store *st)
{
	struct s3_store *s = s3_of(st);

	if (!s)
		return;
	log_msg(LOG_DEBUG, "s3: %llu operations, %llu retries",
		(unsigned long long)atomic_load(&s->n_ops),
		(unsigned long long)atomic_load(&s->n_retries));
	aws_creds_destroy(s->creds);
	if (s->http_pid == getpid())
		http_client_destroy(s->http);
	pthread_mutex_destroy(&s->http_lock);
	free(s->ca_file);
	free(s->bucket);
	free(s->prefix);
	free(s->path_prefix);
	free(s->host);
	free(s->base_url);
	free(s);
}

static const struct store_ops s3_ops = {
	.name = "s3",
	.head = s3_head,
	.get = s3_get,
	.put = s3_put,
	.del = s3_del,
	.list = s3_list,
	.touch = s3_touch,
	.destroy = s3_destroy,
	.upload_begin = s3_upload_begin,
	.upload_advance = s3_upload_advance,
	.upload_commit = s3_upload_commit,
	.upload_abort = s3_upload_abort,
};

/* ------------------------------------------------------------------------ */
/* Creation and probing                                                      */

/* A sentence for the user about a failed first contact. */
static void explain(struct s3_store *s, const struct s3_call *c, int ret, char *err,
		    size_t errlen)
{
	char desc[256] = "", who[320] = "";

	if (ret == -EACCES && c->status) {
		aws_creds_describe(s->creds, desc, sizeof(desc));
		if (desc[0])
			snprintf(who, sizeof(who), " (credentials from %s)", desc);
	}
	if (c->status == 0 && ret != -ETIMEDOUT)
		snprintf(err, errlen, "cannot reach the S3 endpoint %s: %s", s->base_url,
			 c->transport[0] ? c->transport : store_strerror(ret));
	else if (ret == -ETIMEDOUT)
		snprintf(err, errlen, "the S3 endpoint %s did not answer within %u s%s%s",
			 s->base_url, s->timeout_ms / 1000, c->transport[0] ? ": " : "",
			 c->transport);
	else if (strcmp(c->code, "NoSuchBucket") == 0 || (c->status == 404 && !c->code[0]))
		snprintf(err, errlen, "bucket '%s' does not exist at %s", s->bucket, s->base_url);
	else if (ret == -EACCES)
		snprintf(err, errlen, "S3 refused access to bucket '%s' at %s: %s%s", s->bucket,
			 s->base_url, c->why ? c->why : "access denied", who);
	else
		snprintf(err, errlen, "S3 at %s answered HTTP %ld%s%s for bucket '%s'%s%s",
			 s->base_url, c->status, c->code[0] ? " " : "", c->code, s->bucket,
			 c->why ? ": " : "", c->why ? c->why : "");
}

/* A tiny body in a memory fd, for the probe. */
static int probe_fd(void)
{
	int fd = memfd_create("fallbackfs-probe", MFD_CLOEXEC);

	if (fd >= 0 && pwrite(fd, "probe\n", 6, 0) != 6) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Find what the server enforces by trying it on a key of our own. */
/* Does CompleteMultipartUpload honour If-None-Match? A one-part upload
 * onto the existing probe object must be refused. */
static bool probe_cond_complete(struct s3_store *s, const char *key, int fd)
{
	struct s3_upload *u = upload_new(s, key, fd, 0);
	int ret;

	if (!u)
		return false;
	u->part = S3_STORE_MIN_PART_SIZE;
	u->a.size = 6;
	u->a.mode = STORE_PUT_CREATE;
	pthread_mutex_lock(&u->lock);
	u->final = true;
	upload_work_locked(u); /* initiate and the one part, on this thread */
	ret = u->err;
	pthread_mutex_unlock(&u->lock);
	if (ret == 0)
		ret = upload_complete(u, NULL);
	upload_discard(u); /* aborts it unless it completed */
	return ret == -EEXIST;
}

static void probe_caps(struct s3_store *s)
{
	struct store_put_cond create = { .mode = STORE_PUT_CREATE };
	struct store_put_cond match = { .mode = STORE_PUT_IF_MATCH,
					 .etag = "00000000000000000000000000000000" };
	struct s3_xml_result r1, r2;
	struct store_meta m;
	unsigned long long rnd = 0;
	char key[64], *path = NULL;
	bool cond = false, touch = false;
	int fd = probe_fd(), ret;

	if (fd < 0)
		return;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) < 0)
		rnd = (unsigned long long)real_ns();
	snprintf(key, sizeof(key), INTERNAL_DIR "/probe-%016llx", rnd);
	path = object_path(s, key);
	if (!path)
		goto out;
	s->base.caps = STORE_CAP_CONDITIONAL_PUT; /* let the probe's puts through */
	ret = do_put(s, key, fd, 0, 6, &create, &m);
	if (ret < 0) {
		log_msg(ret == -EACCES ? LOG_INFO : LOG_WARNING,
			"s3: cannot write the probe object (%s): conditional writes and touch "
			"are off for this mount", store_strerror(ret));
		s->base.caps = 0;
		goto out;
	}
	cond = do_put(s, key, fd, 0, 6, &create, NULL) == -EEXIST &&
	       do_put(s, key, fd, 0, 6, &match, NULL) == -ESTALE;
	s->cond_complete = cond && probe_cond_complete(s, key, fd);
	if (cond && !s->cond_complete)
		log_msg(LOG_INFO, "s3: %s does not enforce conditions on multipart completion; "
			"create-only and compare-and-swap puts go as one PUT (up to 5 GB)",
			s->base_url);
	s->base.caps = STORE_CAP_TOUCH;
	if (self_copy(s, path, key, NULL, m.etag, &r1) == 0) {
		for (int i = 0; i < 3 && !touch; i++) {
			usleep(20000);
			if (self_copy(s, path, key, NULL, m.etag, &r2) < 0)
				break;
			touch = r2.mtime_ns > r1.mtime_ns;
		}
	}
	s->base.caps = (cond ? STORE_CAP_CONDITIONAL_PUT : 0) | (touch ? STORE_CAP_TOUCH : 0);
	if (!cond)
		log_msg(LOG_WARNING, "s3: %s does not enforce conditional writes "
			"(If-None-Match/If-Match); create-only and compare-and-swap puts will "
			"fail with ENOTSUP", s->base_url);
	if (!touch)
		log_msg(LOG_INFO, "s3: %s does not refresh LastModified on a self-copy; "
			"touch is unsupported", s->base_url);
	{
		struct http_response resp = { 0 };
		struct s3_call c;

		call_init(s, &c, "DELETE", path, S3_CTX_READ);
		if (s3_exec(s, &c, key, &resp) < 0)
			log_msg(LOG_WARNING, "s3: could not delete the probe object %s", key);
		http_response_cleanup(&resp);
	}
out:
	free(path);
	close(fd);
}

/* Resolve region, endpoint and addressing into the store's fields. */
static int configure(struct s3_store *s, const struct s3_store_config *cfg, char *err,
		     size_t errlen, struct s3_endpoint *ep)
{
	const char *endpoint = cfg->endpoint;
	char host[512], pp[300];
	bool virtual_host;
	int ret;

	if (cfg->region && cfg->region[0])
		snprintf(s->region, sizeof(s->region), "%s", cfg->region);
	else if (aws_creds_default_region(NULL, s->region, sizeof(s->region)) < 0) {
		snprintf(err, errlen, "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION "
			 "(or -o region=), as Kong requires even for S3-compatible stores");
		return -EINVAL;
	}
	for (const char *p = s->region; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) {
			snprintf(err, errlen, "AWS region '%.60s' is not a region name", s->region);
			return -EINVAL;
		}
	}
	if (!endpoint || !endpoint[0])
		endpoint = getenv("AWS_CONFIG_STORAGE_ENDPOINT");
	if (endpoint && endpoint[0]) {
		ret = s3_endpoint_parse(endpoint, ep, err, errlen);
		if (ret < 0)
			return ret;
		virtual_host = false;
	} else {
		s3_endpoint_aws(s->region, ep);
		virtual_host = s3_bucket_virtual_ok(cfg->bucket, true);
	}
	if (cfg->addressing && strcmp(cfg->addressing, "path") == 0) {
		virtual_host = false;
	} else if (cfg->addressing && strcmp(cfg->addressing, "virtual") == 0) {
		if (!s3_bucket_virtual_ok(cfg->bucket, ep->https)) {
			snprintf(err, errlen, "bucket '%s' cannot be addressed virtual-hosted "
				 "(not a DNS name%s); use -o addressing=path", cfg->bucket,
				 ep->https ? " without dots" : "");
			return -EINVAL;
		}
		virtual_host = true;
	} else if (cfg->addressing && cfg->addressing[0]) {
		snprintf(err, errlen, "addressing must be 'path' or 'virtual'");
		return -EINVAL;
	}
	ret = s3_layout(ep, cfg->bucket, virtual_host, host, sizeof(host), pp, sizeof(pp));
	if (ret < 0) {
		snprintf(err, errlen, "S3 endpoint or bucket name too long");
		return ret;
	}
	s->host = strdup(host);
	s->path_prefix = strdup(pp);
	if (!s->host || !s->path_prefix ||
	    asprintf(&s->base_url, "%s://%s", ep->https ? "https" : "http", host) < 0) {
		s->base_url = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Build the store, check the bucket, probe the server's guarantees. */
int s3_store_create(const struct s3_store_config *cfg, struct store **out, char *err,
		    size_t errlen)
{
	struct aws_creds_config ac = { 0 };
	struct store_list_page page = { 0 };
	struct http_response resp = { 0 };
	struct sigv4_param q[4];
	struct s3_endpoint ep;
	struct s3_store *s;
	struct s3_call c;
	const char *env;
	char aerr[AWS_CREDS_ERROR_MAX] = "";
	int ret;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->base.ops = &s3_ops;
	pthread_mutex_init(&s->http_lock, NULL);
	s->creator_pid = getpid();
	s->creator_thread = pthread_self();
	s->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : S3_DEFAULT_TIMEOUT_MS;
	s->part_size = cfg->part_size;
	env = getenv("FALLBACKFS_S3_PART_SIZE");
	if (!s->part_size && env && env[0])
		s->part_size = strtoull(env, NULL, 10);
	if (!s->part_size)
		s->part_size = S3_STORE_DEFAULT_PART_SIZE;
	if (s->part_size < S3_STORE_MIN_PART_SIZE)
		s->part_size = S3_STORE_MIN_PART_SIZE;
	s->multipart_threshold = cfg->multipart_threshold;
	env = getenv("FALLBACKFS_S3_MULTIPART_THRESHOLD");
	if (!s->multipart_threshold && env && env[0])
		s->multipart_threshold = strtoull(env, NULL, 10);
	if (!s->multipart_threshold)
		s->multipart_threshold = s->part_size;
	if (s->multipart_threshold > S3_MAX_SINGLE_PUT)
		s->multipart_threshold = S3_MAX_SINGLE_PUT;
	s->bucket = strdup(cfg->bucket ? cfg->bucket : "");
	s->prefix = strdup(cfg->prefix ? cfg->prefix : "");
	if (!s->bucket || !s->prefix) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = configure(s, cfg, err, errlen, &ep);
	if (ret < 0)
		goto fail;

	if (cfg->ca_file) {
		s->ca_file = strdup(cfg->ca_file);
		if (!s->ca_file) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	s->http_cfg.ca_file = s->ca_file;
	s->http_cfg.timeout_ms = s->timeout_ms;
	s->http = http_client_create(&s->http_cfg);
	s->http_pid = getpid();
	if (!s->http) {
		snprintf(err, errlen, "cannot initialise the HTTP client (libcurl)");
		ret = -ENOMEM;
		goto fail;
	}
	ac.region = s->region;
	ac.ca_file = cfg->ca_file;
	ret = aws_creds_create(&ac, &s->creds, aerr, sizeof(aerr));
	if (ret < 0) {
		snprintf(err, errlen, "%s", aerr[0] ? aerr : "no AWS credentials found");
		goto fail;
	}

	/* First contact: one listing of the prefix, the probe main.c also does. */
	q[0] = (struct sigv4_param){ "list-type", "2" };
	q[1] = (struct sigv4_param){ "prefix", s->prefix };
	q[2] = (struct sigv4_param){ "max-keys", "1" };
	q[3] = (struct sigv4_param){ "delimiter", "/" };
	call_init(s, &c, "GET", s->path_prefix[0] ? s->path_prefix : "/", S3_CTX_READ);
	c.query = q;
	c.query_count = 4;
	ret = s3_exec(s, &c, NULL, &resp);
	if (ret == 0)
		ret = s3_xml_parse_list(resp.body ? resp.body : "", resp.body_len, s->prefix,
					&page, NULL);
	store_list_page_cleanup(&page);
	http_response_cleanup(&resp);
	if (ret < 0) {
		if (ret == -EIO && c.status >= 200 && c.status < 300)
			snprintf(err, errlen, "S3 at %s answered a listing of bucket '%s' that is "
				 "not S3 XML (is this an S3 endpoint?)", s->base_url, s->bucket);
		else
			explain(s, &c, ret, err, errlen);
		goto fail;
	}
	if (!cfg->read_only)
		probe_caps(s);
	log_msg(LOG_DEBUG, "s3: bucket %s at %s (%s-style, region %s), caps%s%s", s->bucket,
		s->base_url, s->path_prefix[0] ? "path" : "virtual", s->region,
		s->base.caps & STORE_CAP_CONDITIONAL_PUT ? " conditional-put" : "",
		s->base.caps & STORE_CAP_TOUCH ? " touch" : "");
	*out = &s->base;
	return 0;
fail:
	s3_destroy(&s->base);
	return ret;
}
