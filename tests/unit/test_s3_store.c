/*
 * test_s3_store.c - unit tests of the S3 store's pure stages: the one
 * status/code -> errno table, the retry and "not applied" predicates, the
 * backoff, endpoint parsing and URL layout, ETag and date helpers. No
 * network: the store itself is tested by tests/s3/test_s3_store.py.
 */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "s3_store_internal.h"

/* Every row of the table that matters to a caller. */
static void test_errno_table(void)
{
	const char *why = NULL;

	CHECK_EQ(s3_status_errno(200, NULL, S3_CTX_READ, NULL), 0);
	CHECK_EQ(s3_status_errno(404, "NoSuchKey", S3_CTX_READ, NULL), -ENOENT);
	CHECK_EQ(s3_status_errno(404, "", S3_CTX_READ, NULL), -ENOENT); /* HEAD */
	CHECK_EQ(s3_status_errno(404, "NoSuchBucket", S3_CTX_READ, &why), -EIO);
	CHECK(why && strstr(why, "bucket"));
	CHECK_EQ(s3_status_errno(403, "SignatureDoesNotMatch", S3_CTX_READ, &why), -EACCES);
	CHECK(why && strstr(why, "SignatureDoesNotMatch") && strstr(why, "secret"));
	CHECK_EQ(s3_status_errno(403, "InvalidAccessKeyId", S3_CTX_READ, &why), -EACCES);
	CHECK(why && strstr(why, "InvalidAccessKeyId"));
	CHECK_EQ(s3_status_errno(403, "AccessDenied", S3_CTX_READ, &why), -EACCES);
	CHECK(why && strstr(why, "AccessDenied"));
	CHECK_EQ(s3_status_errno(403, "", S3_CTX_READ, NULL), -EACCES);
	CHECK_EQ(s3_status_errno(401, NULL, S3_CTX_READ, NULL), -EACCES);
	CHECK_EQ(s3_status_errno(400, "ExpiredToken", S3_CTX_READ, NULL), -EACCES);
	CHECK_EQ(s3_status_errno(400, "AuthorizationHeaderMalformed", S3_CTX_READ, &why), -EACCES);
	CHECK(why && strstr(why, "region"));
	CHECK_EQ(s3_status_errno(412, "PreconditionFailed", S3_CTX_CREATE, NULL), -EEXIST);
	CHECK_EQ(s3_status_errno(412, "PreconditionFailed", S3_CTX_IF_MATCH, NULL), -ESTALE);
	CHECK_EQ(s3_status_errno(412, NULL, S3_CTX_READ, NULL), -ESTALE);
	CHECK_EQ(s3_status_errno(503, "SlowDown", S3_CTX_READ, NULL), -EAGAIN);
	CHECK_EQ(s3_status_errno(500, "InternalError", S3_CTX_READ, NULL), -EIO);
	CHECK_EQ(s3_status_errno(400, "RequestTimeout", S3_CTX_READ, NULL), -ETIMEDOUT);
	CHECK_EQ(s3_status_errno(409, "ConditionalRequestConflict", S3_CTX_CREATE, NULL), -EAGAIN);
	CHECK_EQ(s3_status_errno(429, NULL, S3_CTX_READ, NULL), -EAGAIN);
	CHECK_EQ(s3_status_errno(504, NULL, S3_CTX_READ, NULL), -ETIMEDOUT);
	CHECK_EQ(s3_status_errno(403, "QuotaExceeded", S3_CTX_READ, NULL), -ENOSPC);
	CHECK_EQ(s3_status_errno(400, "EntityTooLarge", S3_CTX_READ, NULL), -EFBIG);
	CHECK_EQ(s3_status_errno(501, "NotImplemented", S3_CTX_READ, NULL), -ENOTSUP);
	CHECK_EQ(s3_status_errno(405, "MethodNotAllowed", S3_CTX_READ, NULL), -ENOTSUP);
	CHECK_EQ(s3_status_errno(400, "InvalidArgument", S3_CTX_READ, NULL), -EIO);
	CHECK_EQ(s3_status_errno(418, NULL, S3_CTX_READ, NULL), -EIO);
	/* an <Error> inside a 200 (CompleteMultipartUpload, CopyObject) */
	CHECK_EQ(s3_status_errno(200, "AccessDenied", S3_CTX_READ, NULL), -EACCES);
}

/* Which failures are worth another attempt, and which prove nothing was applied. */
static void test_retry_predicates(void)
{
	CHECK(s3_retryable(-ECONNRESET, 0, NULL));
	CHECK(s3_retryable(-ETIMEDOUT, 0, NULL));
	CHECK(s3_retryable(-EHOSTUNREACH, 0, NULL));
	CHECK(!s3_retryable(-EACCES, 0, NULL)); /* TLS verification */
	CHECK(!s3_retryable(-ENOMEM, 0, NULL));
	CHECK(s3_retryable(0, 503, "SlowDown"));
	CHECK(s3_retryable(0, 503, ""));
	CHECK(s3_retryable(0, 500, "InternalError"));
	CHECK(s3_retryable(0, 502, NULL));
	CHECK(s3_retryable(0, 429, "TooManyRequests"));
	CHECK(s3_retryable(0, 400, "RequestTimeout"));
	CHECK(s3_retryable(0, 409, "ConditionalRequestConflict"));
	CHECK(s3_retryable(0, 200, "InternalError"));
	CHECK(!s3_retryable(0, 501, "NotImplemented"));
	CHECK(!s3_retryable(0, 403, "SignatureDoesNotMatch"));
	CHECK(!s3_retryable(0, 404, "NoSuchKey"));
	CHECK(!s3_retryable(0, 412, "PreconditionFailed"));
	CHECK(!s3_retryable(0, 400, "InvalidArgument"));

	CHECK(s3_not_applied(-EHOSTUNREACH, 0, NULL));
	CHECK(!s3_not_applied(-ECONNRESET, 0, NULL));
	CHECK(!s3_not_applied(-ETIMEDOUT, 0, NULL));
	CHECK(s3_not_applied(0, 503, "SlowDown"));
	CHECK(s3_not_applied(0, 429, NULL));
	CHECK(s3_not_applied(0, 400, "RequestTimeout"));
	CHECK(s3_not_applied(0, 409, "ConditionalRequestConflict"));
	CHECK(!s3_not_applied(0, 500, "InternalError"));
	CHECK(!s3_not_applied(0, 502, NULL));
}

/* Backoff grows, is capped, and its jitter stays in [d/2, d]. */
static void test_backoff(void)
{
	long prev_lo = 0;

	for (unsigned a = 0; a < 12; a++) {
		long lo = s3_backoff_ms(a, 0); /* d/2: the fixed half */

		CHECK(lo > 0 && lo >= prev_lo && 2 * lo <= 2000);
		prev_lo = lo;
		for (uint32_t r = 1; r < 100000; r += 7919) {
			long d = s3_backoff_ms(a, r);

			CHECK(d >= lo && d <= 2 * lo);
		}
		CHECK_EQ(s3_backoff_ms(a, (uint32_t)lo), 2 * lo); /* rnd % (d/2+1) == d/2 */
	}
	CHECK_EQ(s3_backoff_ms(0, 0), 25);
	CHECK_EQ(s3_backoff_ms(20, 0), 1000);
}

/* Only scheme, host and port of an endpoint count, as with Kong. */
static void test_endpoint(void)
{
	struct s3_endpoint ep;
	char err[256];

	CHECK_EQ(s3_endpoint_parse("http://minio:9000/", &ep, err, sizeof(err)), 0);
	CHECK(!ep.https && strcmp(ep.host, "minio") == 0 && ep.port == 9000);
	CHECK_EQ(s3_endpoint_parse("https://s3.example.com/ignored/path?x=1", &ep, err,
				   sizeof(err)), 0);
	CHECK(ep.https && strcmp(ep.host, "s3.example.com") == 0 && ep.port == 0);
	CHECK_EQ(s3_endpoint_parse("http://127.0.0.1:80", &ep, err, sizeof(err)), 0);
	CHECK(ep.port == 0); /* default port is left out of Host */
	CHECK_EQ(s3_endpoint_parse("HTTP://[::1]:9000", &ep, err, sizeof(err)), 0);
	CHECK(strcmp(ep.host, "[::1]") == 0 && ep.port == 9000);
	CHECK_EQ(s3_endpoint_parse("minio:9000", &ep, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "http://") != NULL);
	CHECK_EQ(s3_endpoint_parse("ftp://x", &ep, err, sizeof(err)), -EINVAL);
	CHECK_EQ(s3_endpoint_parse("http://", &ep, err, sizeof(err)), -EINVAL);
	CHECK_EQ(s3_endpoint_parse("http://h:0", &ep, err, sizeof(err)), -EINVAL);
	CHECK_EQ(s3_endpoint_parse("http://h:99999", &ep, err, sizeof(err)), -EINVAL);
	CHECK_EQ(s3_endpoint_parse("http://user:pw@h", &ep, err, sizeof(err)), -EINVAL);
	CHECK_EQ(s3_endpoint_parse("http://h x", &ep, err, sizeof(err)), -EINVAL);
	s3_endpoint_aws("eu-west-1", &ep);
	CHECK(ep.https && strcmp(ep.host, "s3.eu-west-1.amazonaws.com") == 0);
}

/* Path-style with a custom endpoint, virtual-hosted on AWS. */
static void test_layout(void)
{
	struct s3_endpoint ep;
	char host[300], pp[100], err[128];

	s3_endpoint_parse("http://127.0.0.1:9000", &ep, err, sizeof(err));
	CHECK_EQ(s3_layout(&ep, "bkt", false, host, sizeof(host), pp, sizeof(pp)), 0);
	CHECK(strcmp(host, "127.0.0.1:9000") == 0 && strcmp(pp, "/bkt") == 0);
	s3_endpoint_aws("us-east-1", &ep);
	CHECK_EQ(s3_layout(&ep, "bkt", true, host, sizeof(host), pp, sizeof(pp)), 0);
	CHECK(strcmp(host, "bkt.s3.us-east-1.amazonaws.com") == 0 && strcmp(pp, "") == 0);
	CHECK_EQ(s3_layout(&ep, "bkt", true, host, 8, pp, sizeof(pp)), -EINVAL);
	CHECK(s3_bucket_virtual_ok("my-bucket", true));
	CHECK(!s3_bucket_virtual_ok("my.bucket", true));
	CHECK(s3_bucket_virtual_ok("my.bucket", false));
	CHECK(!s3_bucket_virtual_ok("My_Bucket", false));
	CHECK(!s3_bucket_virtual_ok("ab", false));
}

/* ETag quotes, HTTP dates and copy-source encoding. */
static void test_helpers(void)
{
	char out[64];

	s3_etag_unquote("\"abc\"", out, sizeof(out));
	CHECK(strcmp(out, "abc") == 0);
	s3_etag_unquote("W/\"abc-2\"", out, sizeof(out));
	CHECK(strcmp(out, "abc-2") == 0);
	s3_etag_unquote("abc", out, sizeof(out));
	CHECK(strcmp(out, "abc") == 0);
	s3_etag_unquote("\"", out, sizeof(out));
	CHECK(strcmp(out, "\"") == 0);
	CHECK_EQ(s3_http_date("Tue, 24 Nov 2026 04:03:17 GMT"), 1795492997LL);
	CHECK_EQ(s3_http_date("Thu, 01 Jan 1970 00:00:01 GMT"), 1);
	CHECK_EQ(s3_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
	CHECK_EQ(s3_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), -1);
	CHECK_EQ(s3_http_date("garbage"), -1);
	CHECK_EQ(s3_http_date(NULL), -1);
	CHECK_EQ(s3_uri_encode_path("/b/a b+c/é.json", out, sizeof(out)), 0);
	CHECK(strcmp(out, "/b/a%20b%2Bc/%C3%A9.json") == 0);
	CHECK_EQ(s3_uri_encode_path("%%%%%%%%%%%%%%%%%%%%%%", out, sizeof(out)), -EFBIG);
}

int main(void)
{
	test_errno_table();
	test_retry_predicates();
	test_backoff();
	test_endpoint();
	test_layout();
	test_helpers();
	return check_exit("test_s3_store");
}
