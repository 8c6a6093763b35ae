/* test_store_url.c - every URL form Kong accepts, and the mistakes people make. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "store_url.h"

static void ok(const char *url, enum store_scheme scheme, const char *bucket, const char *prefix,
	       const char *path)
{
	struct store_url u;
	char err[256] = "";
	int ret = store_url_parse(url, &u, err, sizeof(err));

	CHECK_EQ(ret, 0);
	if (ret) {
		fprintf(stderr, "  %s: %s\n", url, err);
		return;
	}
	CHECK_EQ(u.scheme, scheme);
	CHECK((bucket == NULL) == (u.bucket == NULL));
	CHECK(!bucket || strcmp(u.bucket, bucket) == 0);
	CHECK(!prefix || strcmp(u.prefix, prefix) == 0);
	CHECK(!path || strcmp(u.path, path) == 0);
	store_url_cleanup(&u);
}

static void bad(const char *url, const char *words)
{
	struct store_url u;
	char err[256] = "";

	CHECK_EQ(store_url_parse(url, &u, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, words) != NULL);
	if (!strstr(err, words))
		fprintf(stderr, "  %s -> '%s' lacks '%s'\n", url, err, words);
	CHECK(u.bucket == NULL && u.prefix == NULL && u.path == NULL);
}

int main(void)
{
	ok("s3://my-bucket/kong", STORE_SCHEME_S3, "my-bucket", "kong/", NULL);
	ok("s3://my-bucket/kong/dp/", STORE_SCHEME_S3, "my-bucket", "kong/dp/", NULL);
	ok("s3://my-bucket", STORE_SCHEME_S3, "my-bucket", "", NULL);
	ok("s3://my-bucket/", STORE_SCHEME_S3, "my-bucket", "", NULL);
	ok("gcs://b.example.com/x", STORE_SCHEME_GCS, "b.example.com", "x/", NULL);
	ok("gs://bucket_1/x/y", STORE_SCHEME_GCS, "bucket_1", "x/y/", NULL);
	ok("file:///srv/kong", STORE_SCHEME_FILE, NULL, NULL, "/srv/kong");
	ok("file:///srv/kong/", STORE_SCHEME_FILE, NULL, NULL, "/srv/kong");
	ok("file://localhost/srv", STORE_SCHEME_FILE, NULL, NULL, "/srv");
	ok("file:///", STORE_SCHEME_FILE, NULL, NULL, "/");

	bad("http://x/y", "unsupported storage URL");
	bad("S3://bucket/x", "unsupported storage URL");
	bad("/srv/kong", "unsupported storage URL");
	bad("", "unsupported storage URL");
	bad("file://srv/kong", "absolute");
	bad("file:///srv/../etc", "segment");
	bad("s3://Bucket/x", "bucket name");
	bad("s3://ab/x", "bucket name");
	bad("s3:///x", "bucket name");
	bad("s3://-bucket/x", "bucket name");
	bad("s3://bucket/a//b", "segment");
	bad("s3://bucket/a/../b", "segment");
	bad("s3://bucket/a?versionId=1", "'?'");
	CHECK(strcmp(store_url_scheme_name(STORE_SCHEME_GCS), "gcs") == 0);
	return check_exit("test_store_url");
}
