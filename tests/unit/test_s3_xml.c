/*
 * test_s3_xml.c - unit tests for backends/s3_xml.c: every parser against
 * responses shaped like AWS's documented examples, the variants s3rver,
 * MinIO and Ceph RGW produce, and hostile or broken documents.
 *
 * No network and no store: the documents are inline strings. This is not a
 * fuzzer (tests/fuzz/fuzz_s3_xml.c is).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3_xml.h"

static int failures;

/* Report a failed expectation without stopping, so one run shows them all. */
static void check(bool ok, int line, const char *what)
{
	if (!ok) {
		fprintf(stderr, "test_s3_xml.c:%d: FAILED: %s\n", line, what);
		failures++;
	}
}

#define CHECK(cond) check((cond), __LINE__, #cond)
#define CHECK_RC(expr, want)                                                        \
	do {                                                                        \
		int rc_ = (expr);                                                   \
		if (rc_ != (want)) {                                                \
			fprintf(stderr, "test_s3_xml.c:%d: FAILED: %s = %d, want %d\n", \
				__LINE__, #expr, rc_, (want));                      \
			failures++;                                                 \
		}                                                                   \
	} while (0)

/* A heap string built with printf, for generated documents; aborts on OOM
 * because a test has nothing better to do. */
__attribute__((format(printf, 1, 2))) static char *xfmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

/* parse_list over a NUL-terminated document. */
static int list(const char *xml, const char *prefix, struct store_list_page *page,
		bool *truncated)
{
	memset(page, 0, sizeof(*page));
	return s3_xml_parse_list(xml, strlen(xml), prefix, page, truncated);
}

/* Whether a failed parse left the page zeroed, as the contract says. */
static bool page_empty(const struct store_list_page *p)
{
	return p->entries == NULL && p->count == 0 && p->next_token == NULL;
}

/* A listing body around the given inner elements, with IsTruncated false. */
static char *listing(const char *inner)
{
	return xfmt("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		    "<Name>b</Name><IsTruncated>false</IsTruncated>%s</ListBucketResult>",
		    inner);
}

/* One <Contents> with fixed metadata for key. */
static char *contents(const char *key)
{
	return xfmt("<Contents><Key>%s</Key><LastModified>2024-01-10T21:17:49.123Z"
		    "</LastModified><ETag>\"e\"</ETag><Size>1</Size></Contents>",
		    key);
}

/* Expect a one-entry listing of inner to fail with want. */
static void list_fails(const char *inner, const char *prefix, int want, int line)
{
	char *doc = listing(inner);
	struct store_list_page p;
	int rc = list(doc, prefix, &p, NULL);

	if (rc != want) {
		fprintf(stderr, "test_s3_xml.c:%d: FAILED: listing rc %d, want %d\n", line, rc,
			want);
		failures++;
	}
	check(page_empty(&p), line, "page left empty");
	store_list_page_cleanup(&p);
	free(doc);
}

/* AWS's documented ListObjectsV2 example, one Contents, bucket root. */
static void test_list_aws_example(void)
{
	static const char doc[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
		"    <Name>bucket</Name>\n"
		"    <Prefix/>\n"
		"    <KeyCount>205</KeyCount>\n"
		"    <MaxKeys>1000</MaxKeys>\n"
		"    <IsTruncated>false</IsTruncated>\n"
		"    <Contents>\n"
		"        <Key>my-image.jpg</Key>\n"
		"        <LastModified>2009-10-12T17:50:30.000Z</LastModified>\n"
		"        <ETag>\"fba9dede5f27731c9771645a39863328\"</ETag>\n"
		"        <Size>434234</Size>\n"
		"        <StorageClass>STANDARD</StorageClass>\n"
		"    </Contents>\n"
		"</ListBucketResult>\n";
	struct store_list_page p;
	bool tr = true;

	CHECK_RC(list(doc, NULL, &p, &tr), 0);
	CHECK(!tr);
	CHECK(p.count == 1);
	CHECK(p.next_token == NULL);
	if (p.count == 1) {
		CHECK(strcmp(p.entries[0].key, "my-image.jpg") == 0);
		CHECK(!p.entries[0].is_prefix);
		CHECK(strcmp(p.entries[0].meta.etag, "fba9dede5f27731c9771645a39863328") == 0);
		CHECK(p.entries[0].meta.size == 434234);
		CHECK(p.entries[0].meta.mtime_ns == 1255369830LL * 1000000000);
	}
	store_list_page_cleanup(&p);
}

/* AWS's continuation example: truncated page with a token to carry on. */
static void test_list_truncated(void)
{
	static const char doc[] =
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
		"  <Name>bucket</Name>\n"
		"  <Prefix>kong/</Prefix>\n"
		"  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
		"</NextContinuationToken>\n"
		"  <KeyCount>1</KeyCount>\n"
		"  <MaxKeys>1</MaxKeys>\n"
		"  <IsTruncated>true</IsTruncated>\n"
		"  <Contents>\n"
		"    <Key>kong/happyface.jpg</Key>\n"
		"    <LastModified>2014-11-21T19:40:05.000Z</LastModified>\n"
		"    <ETag>\"70ee1738b6b21e2c8a43f3a5ab0eee71\"</ETag>\n"
		"    <Size>11</Size>\n"
		"    <StorageClass>STANDARD</StorageClass>\n"
		"  </Contents>\n"
		"</ListBucketResult>";
	struct store_list_page p;
	bool tr = false;

	CHECK_RC(list(doc, "kong/", &p, &tr), 0);
	CHECK(tr);
	CHECK(p.next_token && strcmp(p.next_token,
				     "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=") == 0);
	CHECK(p.count == 1 && strcmp(p.entries[0].key, "happyface.jpg") == 0);
	store_list_page_cleanup(&p);

	/* a token with IsTruncated false is stale information: dropped */
	{
		char *d = listing("<NextContinuationToken>abc</NextContinuationToken>");

		CHECK_RC(list(d, NULL, &p, &tr), 0);
		CHECK(!tr && p.next_token == NULL && p.count == 0);
		store_list_page_cleanup(&p);
		free(d);
	}
	/* truncated without a token, or with an empty one: we could loop or stop short */
	{
		static const char *bad[] = {
			"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
			"<ListBucketResult><IsTruncated>true</IsTruncated>"
			"<NextContinuationToken></NextContinuationToken></ListBucketResult>",
			"<ListBucketResult><Name>b</Name></ListBucketResult>",
			"<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>",
			"<ListBucketResult><IsTruncated>false</IsTruncated>"
			"<IsTruncated>true</IsTruncated></ListBucketResult>",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			CHECK_RC(list(bad[i], NULL, &p, &tr), -EIO);
			CHECK(page_empty(&p));
		}
	}
	/* whitespace around a boolean is tolerated */
	CHECK_RC(list("<ListBucketResult><IsTruncated>\n  FALSE \n</IsTruncated>"
		      "</ListBucketResult>", NULL, &p, &tr), 0);
	store_list_page_cleanup(&p);
}

/* The Kong layout with a delimiter: two groups merged into one order. */
static void test_list_merge_prefixes(void)
{
	static const char doc[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>kong-bucket</Name><Prefix>kong/</Prefix><KeyCount>5</KeyCount>"
		"<MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated>"
		"<Contents><Key>kong/3.6.0.0.json</Key><LastModified>2024-01-10T21:17:49.123Z"
		"</LastModified><ETag>\"a1\"</ETag><Size>10</Size><StorageClass>STANDARD"
		"</StorageClass></Contents>"
		"<Contents><Key>kong/README</Key><LastModified>2024-01-10T21:17:50Z"
		"</LastModified><ETag>\"a2\"</ETag><Size>20</Size></Contents>"
		"<Contents><Key>kong/z</Key><LastModified>2024-01-10T21:17:51Z"
		"</LastModified><ETag>\"a3\"</ETag><Size>30</Size></Contents>"
		"<CommonPrefixes><Prefix>kong/3.6.0.0/</Prefix></CommonPrefixes>"
		"<CommonPrefixes><Prefix>kong/3.7.0.0/</Prefix></CommonPrefixes>"
		"<CommonPrefixes><Prefix>kong/a/</Prefix></CommonPrefixes>"
		"</ListBucketResult>";
	static const char *want[] = { "3.6.0.0.json", "3.6.0.0/", "3.7.0.0/",
				      "README", "a/", "z" };
	static const bool want_prefix[] = { false, true, true, false, true, false };
	struct store_list_page p;

	CHECK_RC(list(doc, "kong/", &p, NULL), 0);
	CHECK(p.count == 6);
	for (size_t i = 0; i < p.count && i < 6; i++) {
		CHECK(strcmp(p.entries[i].key, want[i]) == 0);
		CHECK(p.entries[i].is_prefix == want_prefix[i]);
	}
	if (p.count == 6) {
		CHECK(p.entries[0].meta.mtime_ns == 1704921469123000000LL);
		CHECK(p.entries[3].meta.size == 20 && strcmp(p.entries[3].meta.etag, "a2") == 0);
		CHECK(p.entries[1].meta.size == 0 && p.entries[1].meta.etag[0] == '\0');
	}
	store_list_page_cleanup(&p);
}

/* What Ceph RGW and s3rver send: extra elements, &quot; etags, odd spacing. */
static void test_list_ceph_s3rver(void)
{
	static const char ceph[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult "
		"xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>kong-bucket</Name>"
		"<Prefix>kong/3.6.0.0/election/</Prefix><MaxKeys>1000</MaxKeys>"
		"<IsTruncated>false</IsTruncated><Marker></Marker><KeyCount>2</KeyCount>"
		"<Contents><Key>kong/3.6.0.0/election/1704921469.123-30128332-39a4-4bc5-8435-"
		"9230693f4bec</Key><LastModified>2024-01-10T21:17:49.123Z</LastModified>"
		"<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size>"
		"<StorageClass>STANDARD</StorageClass><Owner><ID>kong</ID><DisplayName>Kong"
		"</DisplayName></Owner><Type>Normal</Type></Contents>"
		"<Contents><Key>kong/3.6.0.0/election/1704921470-4d2c1d0e-0000-4000-8000-"
		"000000000000</Key><LastModified>2024-01-10T21:17:50.000Z</LastModified>"
		"<ETag>&quot;9b2cf535f27731c974343645a3985328-3&quot;</ETag><Size>0</Size>"
		"<StorageClass>STANDARD</StorageClass><Owner><ID>kong</ID><DisplayName>Kong"
		"</DisplayName></Owner><Type>Multipart</Type></Contents></ListBucketResult>";
	static const char s3rver[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
		"  <IsTruncated>false</IsTruncated>\n"
		"  <Contents>\n"
		"    <Key>kong/3.6.0.0/config.json</Key>\n"
		"    <LastModified>2024-01-10T21:17:49.000Z</LastModified>\n"
		"    <ETag>&quot;6805f2cfc46c0f04559748bb039d69ae&quot;</ETag>\n"
		"    <Size>123456</Size>\n"
		"    <StorageClass>STANDARD</StorageClass>\n"
		"  </Contents>\n"
		"  <Name>kong-bucket</Name>\n"
		"  <Prefix>kong/</Prefix>\n"
		"  <MaxKeys>1000</MaxKeys>\n"
		"  <KeyCount>1</KeyCount>\n"
		"</ListBucketResult>\n";
	/* a namespace prefix instead of a default namespace; names still match */
	static const char prefixed[] =
		"<s3:ListBucketResult xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<s3:IsTruncated>false</s3:IsTruncated><s3:Contents><s3:Key>kong/x</s3:Key>"
		"<s3:LastModified>2024-01-10T21:17:49Z</s3:LastModified><s3:ETag>\"e\""
		"</s3:ETag><s3:Size>7</s3:Size></s3:Contents></s3:ListBucketResult>";
	struct store_list_page p;

	CHECK_RC(list(ceph, "kong/3.6.0.0/election/", &p, NULL), 0);
	CHECK(p.count == 2);
	if (p.count == 2) {
		CHECK(strcmp(p.entries[0].key,
			     "1704921469.123-30128332-39a4-4bc5-8435-9230693f4bec") == 0);
		CHECK(strcmp(p.entries[0].meta.etag, "d41d8cd98f00b204e9800998ecf8427e") == 0);
		CHECK(strcmp(p.entries[1].meta.etag, "9b2cf535f27731c974343645a3985328-3") == 0);
		CHECK(p.entries[1].meta.mtime_ns == 1704921470LL * 1000000000);
	}
	store_list_page_cleanup(&p);

	CHECK_RC(list(s3rver, "kong/", &p, NULL), 0);
	CHECK(p.count == 1 && strcmp(p.entries[0].key, "3.6.0.0/config.json") == 0 &&
	      p.entries[0].meta.size == 123456);
	store_list_page_cleanup(&p);

	CHECK_RC(list(prefixed, "kong/", &p, NULL), 0);
	CHECK(p.count == 1 && strcmp(p.entries[0].key, "x") == 0);
	store_list_page_cleanup(&p);

	/* an unquoted etag (some gateways) is taken as it is */
	{
		char *d = listing("<Contents><Key>k</Key><LastModified>2024-01-10T21:17:49Z"
				  "</LastModified><ETag>abc</ETag><Size>1</Size></Contents>");

		CHECK_RC(list(d, "", &p, NULL), 0);
		CHECK(p.count == 1 && strcmp(p.entries[0].meta.etag, "abc") == 0);
		store_list_page_cleanup(&p);
		free(d);
	}
}

/* Keys carrying XML escapes, character references, CDATA and unicode. */
static void test_list_escapes_unicode(void)
{
	char *c1 = contents("kong/a&amp;b&lt;c&gt;&apos;&quot;.json");
	char *c2 = contents("kong/caf\xc3\xa9-&#x1F600;-&#233;");
	char *c3 = contents("kong/<![CDATA[x<y>&z]]>");
	char *c4 = contents("kong/ lead and trail ");
	char *inner = xfmt("%s%s%s%s", c1, c2, c3, c4);
	char *doc = listing(inner);
	struct store_list_page p;

	CHECK_RC(list(doc, "kong/", &p, NULL), 0);
	CHECK(p.count == 4);
	if (p.count == 4) {
		/* bytewise order: ' ' < 'a' < 'c' < 'x' */
		CHECK(strcmp(p.entries[0].key, " lead and trail ") == 0);
		CHECK(strcmp(p.entries[1].key, "a&b<c>'\".json") == 0);
		CHECK(strcmp(p.entries[2].key, "caf\xc3\xa9-\xf0\x9f\x98\x80-\xc3\xa9") == 0);
		CHECK(strcmp(p.entries[3].key, "x<y>&z") == 0);
	}
	store_list_page_cleanup(&p);
	free(c1);
	free(c2);
	free(c3);
	free(c4);
	free(inner);
	free(doc);

	/* latin-1 documents are converted to UTF-8 by expat */
	{
		static const char latin1[] =
			"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><ListBucketResult>"
			"<IsTruncated>false</IsTruncated><Contents><Key>caf\xe9</Key>"
			"<LastModified>2024-01-10T21:17:49Z</LastModified><ETag>e</ETag>"
			"<Size>1</Size></Contents></ListBucketResult>";

		CHECK_RC(list(latin1, NULL, &p, NULL), 0);
		CHECK(p.count == 1 && strcmp(p.entries[0].key, "caf\xc3\xa9") == 0);
		store_list_page_cleanup(&p);
	}
	/* an encoding expat does not know, and invalid UTF-8 in a UTF-8 document */
	CHECK_RC(list("<?xml version=\"1.0\" encoding=\"EBCDIC-XYZ\"?><ListBucketResult>"
		      "<IsTruncated>false</IsTruncated></ListBucketResult>", NULL, &p, NULL),
		 -EIO);
	{
		char *bad = contents("k\xff\xfe");

		list_fails(bad, NULL, -EIO, __LINE__);
		free(bad);
	}
}

/* encoding-type=url as AWS (early) and MinIO (last) place it. */
static void test_list_url_encoding(void)
{
	static const char aws[] =
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>b</Name><Prefix>kong%2F</Prefix><KeyCount>3</KeyCount>"
		"<MaxKeys>1000</MaxKeys><Delimiter>%2F</Delimiter>"
		"<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
		"<NextContinuationToken>a%2Bb+c</NextContinuationToken>"
		"<Contents><Key>kong/my+file%2Bv2.json</Key><LastModified>"
		"2024-01-10T21:17:49.123Z</LastModified><ETag>\"e1\"</ETag><Size>1</Size>"
		"</Contents><Contents><Key>kong%2F%C3%A9t%C3%A9%0A%01</Key><LastModified>"
		"2024-01-10T21:17:49.123Z</LastModified><ETag>\"e2\"</ETag><Size>2</Size>"
		"</Contents><CommonPrefixes><Prefix>kong/dir%20x%2F</Prefix></CommonPrefixes>"
		"</ListBucketResult>";
	struct store_list_page p;
	bool tr;

	CHECK_RC(list(aws, "kong/", &p, &tr), 0);
	CHECK(tr);
	/* tokens are not url-encoded by S3, so they are left as sent */
	CHECK(p.next_token && strcmp(p.next_token, "a%2Bb+c") == 0);
	CHECK(p.count == 3);
	if (p.count == 3) {
		CHECK(strcmp(p.entries[0].key, "dir x/") == 0 && p.entries[0].is_prefix);
		CHECK(strcmp(p.entries[1].key, "my file+v2.json") == 0);
		CHECK(strcmp(p.entries[2].key, "\xc3\xa9t\xc3\xa9\n\x01") == 0);
	}
	store_list_page_cleanup(&p);

	/* MinIO puts EncodingType after the entries: decoding must wait for it */
	{
		static const char minio[] =
			"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>"
			"kong%2Fa%25b</Key><LastModified>2024-01-10T21:17:49Z</LastModified>"
			"<ETag>e</ETag><Size>1</Size></Contents><EncodingType>url</EncodingType>"
			"</ListBucketResult>";

		CHECK_RC(list(minio, "kong/", &p, NULL), 0);
		CHECK(p.count == 1 && strcmp(p.entries[0].key, "a%b") == 0);
		store_list_page_cleanup(&p);
	}
	/* without EncodingType nothing is decoded */
	{
		char *c = contents("kong/a%2Bb+c");
		char *d = listing(c);

		CHECK_RC(list(d, "kong/", &p, NULL), 0);
		CHECK(p.count == 1 && strcmp(p.entries[0].key, "a%2Bb+c") == 0);
		store_list_page_cleanup(&p);
		free(c);
		free(d);
	}
	/* bad escapes, an encoded NUL, invalid UTF-8, unknown encodings */
	{
		static const char *bad_keys[] = { "kong/a%2", "kong/a%", "kong/%zz",
						  "kong/a%00b", "kong/%FF", "kong/%C0%AF",
						  "kong/%ED%A0%80" };

		for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
			char *c = contents(bad_keys[i]);
			char *inner = xfmt("<EncodingType>url</EncodingType>%s", c);

			list_fails(inner, "kong/", -EIO, __LINE__);
			free(c);
			free(inner);
		}
		list_fails("<EncodingType>base64</EncodingType>", NULL, -EIO, __LINE__);
		list_fails("<EncodingType>url</EncodingType><EncodingType>url</EncodingType>",
			   NULL, -EIO, __LINE__);
	}
}

/* Entries outside the asked prefix mean the store lied: refuse the page. */
static void test_list_prefix(void)
{
	char *a = contents("kong/ok");
	char *b = contents("other/x");
	char *ab = xfmt("%s%s", a, b);
	char *marker = contents("kong/");
	char *marker_and_a = xfmt("%s%s", marker, a);
	char *short_key = contents("kon");
	char *d;
	struct store_list_page p;

	list_fails(ab, "kong/", -EIO, __LINE__);
	list_fails(short_key, "kong/", -EIO, __LINE__);
	list_fails("<CommonPrefixes><Prefix>kang/x/</Prefix></CommonPrefixes>", "kong/", -EIO,
		   __LINE__);
	/* a common prefix equal to the asked prefix is not a directory below it */
	list_fails("<CommonPrefixes><Prefix>kong/</Prefix></CommonPrefixes>", "kong/", -EIO,
		   __LINE__);

	/* the console's "folder" object named like the prefix is skipped */
	d = listing(marker_and_a);
	CHECK_RC(list(d, "kong/", &p, NULL), 0);
	CHECK(p.count == 1 && strcmp(p.entries[0].key, "ok") == 0);
	store_list_page_cleanup(&p);
	free(d);

	/* no prefix: keys come back whole */
	d = listing(ab);
	CHECK_RC(list(d, "", &p, NULL), 0);
	CHECK(p.count == 2 && strcmp(p.entries[0].key, "kong/ok") == 0 &&
	      strcmp(p.entries[1].key, "other/x") == 0);
	store_list_page_cleanup(&p);
	free(d);

	free(a);
	free(b);
	free(ab);
	free(marker);
	free(marker_and_a);
	free(short_key);
}

/* Contents that lack, repeat or garble a field. */
static void test_list_bad_contents(void)
{
	static const char *bad[] = {
		/* missing each required field */
		"<Contents><LastModified>2024-01-10T21:17:49Z</LastModified><ETag>e</ETag>"
		"<Size>1</Size></Contents>",
		"<Contents><Key>k</Key><ETag>e</ETag><Size>1</Size></Contents>",
		"<Contents><Key>k</Key><LastModified>2024-01-10T21:17:49Z</LastModified>"
		"<Size>1</Size></Contents>",
		"<Contents><Key>k</Key><LastModified>2024-01-10T21:17:49Z</LastModified>"
		"<ETag>e</ETag></Contents>",
		/* repeated field */
		"<Contents><Key>k</Key><Key>j</Key><LastModified>2024-01-10T21:17:49Z"
		"</LastModified><ETag>e</ETag><Size>1</Size></Contents>",
		/* bad values */
		"<Contents><Key>k</Key><LastModified>2024-13-10T21:17:49Z</LastModified>"
		"<ETag>e</ETag><Size>1</Size></Contents>",
		"<Contents><Key>k</Key><LastModified>2023-02-29T21:17:49Z</LastModified>"
		"<ETag>e</ETag><Size>1</Size></Contents>",
		"<Contents><Key>k</Key><LastModified>2024-01-10 21:17:49Z</LastModified>"
		"<ETag>e</ETag><Size>1</Size></Contents>",
		"<Contents><Key>k</Key><LastModified>2024-01-10T21:17:49.Z</LastModified>"
		"<ETag>e</ETag><Size>1</Size></Contents>",
		"<Contents><Key>k</Key><LastModified>2024-01-10T21:17:49Zjunk</LastModified>"
		"<ETag>e</ETag><Size>1</Size></Contents>",
		"<Contents><Key>k</Key><LastModified>9999-01-10T21:17:49Z</LastModified>"
		"<ETag>e</ETag><Size>1</Size></Contents>",
		"<Contents><Key>k</Key><LastModified>2024-01-10T21:17:49Z</LastModified>"
		"<ETag>\"\"</ETag><Size>1</Size></Contents>",
		"<Contents><Key>k</Key><LastModified>2024-01-10T21:17:49Z</LastModified>"
		"<ETag>e</ETag><Size>-1</Size></Contents>",
		"<Contents><Key>k</Key><LastModified>2024-01-10T21:17:49Z</LastModified>"
		"<ETag>e</ETag><Size>18446744073709551616</Size></Contents>",
		"<Contents><Key>k</Key><LastModified>2024-01-10T21:17:49Z</LastModified>"
		"<ETag>e</ETag><Size>1k</Size></Contents>",
		/* an element inside a value */
		"<Contents><Key>a<b/>c</Key><LastModified>2024-01-10T21:17:49Z</LastModified>"
		"<ETag>e</ETag><Size>1</Size></Contents>",
		/* the same key twice */
		"<Contents><Key>k</Key><LastModified>2024-01-10T21:17:49Z</LastModified>"
		"<ETag>e</ETag><Size>1</Size></Contents><Contents><Key>k</Key><LastModified>"
		"2024-01-10T21:17:49Z</LastModified><ETag>e</ETag><Size>1</Size></Contents>",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *d = listing(bad[i]);
		struct store_list_page p;
		int rc = list(d, NULL, &p, NULL);

		if (rc != -EIO) {
			fprintf(stderr, "test_s3_xml.c: FAILED: bad contents #%zu rc %d\n", i, rc);
			failures++;
		}
		CHECK(page_empty(&p));
		free(d);
	}

	/* the largest size, and time zones / fractions that are fine */
	{
		char *d = listing("<Contents><Key>a</Key><LastModified>2024-01-10T22:17:49+01:00"
				  "</LastModified><ETag>e</ETag><Size> 18446744073709551615 "
				  "</Size></Contents><Contents><Key>b</Key><LastModified>"
				  "2024-01-10T21:17:49.123456789123Z</LastModified><ETag>e</ETag>"
				  "<Size>0</Size></Contents><Contents><Key>c</Key><LastModified>"
				  "1969-12-31T23:59:59.5Z</LastModified><ETag>e</ETag>"
				  "<Size>0</Size></Contents><Contents><Key>d</Key><LastModified>"
				  "2024-02-29T00:00:00-0130</LastModified><ETag>e</ETag>"
				  "<Size>0</Size></Contents>");
		struct store_list_page p;

		CHECK_RC(list(d, NULL, &p, NULL), 0);
		CHECK(p.count == 4);
		if (p.count == 4) {
			CHECK(p.entries[0].meta.mtime_ns == 1704921469LL * 1000000000);
			CHECK(p.entries[0].meta.size == UINT64_MAX);
			CHECK(p.entries[1].meta.mtime_ns == 1704921469123456789LL);
			CHECK(p.entries[2].meta.mtime_ns == -500000000LL);
			CHECK(p.entries[3].meta.mtime_ns == (1709164800LL + 5400) * 1000000000);
		}
		store_list_page_cleanup(&p);
		free(d);
	}
}

/* Documents that are not XML, not finished, or not a listing. */
static void test_list_malformed(void)
{
	static const char full[] =
		"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k</Key>"
		"<LastModified>2024-01-10T21:17:49Z</LastModified><ETag>e</ETag><Size>1</Size>"
		"</Contents></ListBucketResult>";
	static const char *bad[] = {
		"",
		"not xml at all",
		"<ListBucketResult>",
		"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResul>",
		"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult><x/>",
		"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
		"<ListAllMyBucketsResult><IsTruncated>false</IsTruncated></ListAllMyBucketsResult>",
		"<ListBucketResult><IsTruncated>false</IsTruncated>&undefined;</ListBucketResult>",
		"<s3:ListBucketResult><s3:IsTruncated>false</s3:IsTruncated></s3:ListBucketResult>",
	};
	struct store_list_page p;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_RC(list(bad[i], NULL, &p, NULL), -EIO);
		CHECK(page_empty(&p));
	}
	CHECK_RC(s3_xml_parse_list(NULL, 0, NULL, &p, NULL), -EIO);
	/* every strict prefix of a good document is refused */
	for (size_t n = 1; n < sizeof(full) - 1; n++) {
		memset(&p, 0, sizeof(p));
		if (s3_xml_parse_list(full, n, NULL, &p, NULL) != -EIO) {
			fprintf(stderr, "test_s3_xml.c: FAILED: prefix of %zu bytes parsed\n", n);
			failures++;
		}
		CHECK(page_empty(&p));
	}
	/* an embedded NUL byte */
	{
		static const char nul[] = "<ListBucketResult><IsTruncated>false\0</IsTruncated>"
					  "</ListBucketResult>";

		memset(&p, 0, sizeof(p));
		CHECK_RC(s3_xml_parse_list(nul, sizeof(nul) - 1, NULL, &p, NULL), -EIO);
	}
	CHECK_RC(list(full, NULL, &p, NULL), 0);
	store_list_page_cleanup(&p);
}

/* Entity declarations and DOCTYPEs: billion laughs, external entities. */
static void test_entity_attacks(void)
{
	static const char laughs[] =
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE lolz [\n"
		" <!ENTITY lol \"lol\">\n"
		" <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
		" <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
		" <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
		" <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
		" <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
		" <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
		" <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
		" <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
		" <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
		"]>\n"
		"<Error><Code>&lol9;</Code><Message>x</Message></Error>";
	static const char xxe[] =
		"<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
		"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>&x;</Key>"
		"<LastModified>2024-01-10T21:17:49Z</LastModified><ETag>e</ETag><Size>1</Size>"
		"</Contents></ListBucketResult>";
	static const char dtd_only[] =
		"<!DOCTYPE Error SYSTEM \"http://example.com/evil.dtd\"><Error><Code>X</Code>"
		"</Error>";
	static const char param[] =
		"<!DOCTYPE r [<!ENTITY % p SYSTEM \"http://example.com/p\"> %p;]>"
		"<Error><Code>X</Code></Error>";
	char code[64], msg[64];
	struct store_list_page p;
	struct s3_xml_sts_credentials c;
	struct s3_xml_result r;
	clock_t t0 = clock();

	CHECK_RC(s3_xml_parse_error(laughs, strlen(laughs), code, sizeof(code), msg,
				    sizeof(msg)), -EIO);
	CHECK(code[0] == '\0');
	CHECK_RC(list(xxe, NULL, &p, NULL), -EIO);
	CHECK_RC(s3_xml_parse_error(dtd_only, strlen(dtd_only), code, sizeof(code), msg,
				    sizeof(msg)), -EIO);
	CHECK_RC(s3_xml_parse_error(param, strlen(param), code, sizeof(code), msg,
				    sizeof(msg)), -EIO);
	CHECK_RC(s3_xml_parse_sts_credentials(laughs, strlen(laughs), &c), -EIO);
	s3_xml_sts_credentials_cleanup(&c);
	CHECK_RC(s3_xml_parse_complete(laughs, strlen(laughs), &r), -EIO);
	/* refused before any expansion: well under a second even with sanitizers */
	CHECK((double)(clock() - t0) / CLOCKS_PER_SEC < 1.0);
}

/* Nesting, field and entry caps. */
static void test_caps(void)
{
	struct store_list_page p;
	char *d, *inner, *big;
	size_t pos;

	/* nesting: S3_XML_MAX_DEPTH levels are fine, one more is not */
	for (int extra = 0; extra <= 1; extra++) {
		int levels = S3_XML_MAX_DEPTH - 1 + extra; /* below the root */
		char *open = calloc((size_t)levels, 4), *close = calloc((size_t)levels, 5);

		for (int i = 0; i < levels; i++) {
			strcat(open, "<x>");
			strcat(close, "</x>");
		}
		inner = xfmt("%s%s", open, close);
		d = listing(inner);
		CHECK_RC(list(d, NULL, &p, NULL), extra ? -EIO : 0);
		store_list_page_cleanup(&p);
		free(open);
		free(close);
		free(inner);
		free(d);
	}

	/* key: S3_XML_KEY_MAX bytes fine, one more -EFBIG; url-encoded likewise */
	big = malloc(3 * S3_XML_KEY_MAX + 8);
	memset(big, 'k', S3_XML_KEY_MAX);
	big[S3_XML_KEY_MAX] = '\0';
	inner = contents(big);
	d = listing(inner);
	CHECK_RC(list(d, NULL, &p, NULL), 0);
	CHECK(p.count == 1 && strlen(p.entries[0].key) == S3_XML_KEY_MAX);
	store_list_page_cleanup(&p);
	free(inner);
	free(d);
	big[S3_XML_KEY_MAX] = 'k';
	big[S3_XML_KEY_MAX + 1] = '\0';
	inner = contents(big);
	list_fails(inner, NULL, -EFBIG, __LINE__);
	free(inner);
	for (pos = 0; pos < S3_XML_KEY_MAX; pos++)
		memcpy(big + 3 * pos, "%41", 3);
	big[3 * pos] = '\0';
	{
		char *c = contents(big);

		inner = xfmt("<EncodingType>url</EncodingType>%s", c);
		free(c);
	}
	d = listing(inner);
	CHECK_RC(list(d, NULL, &p, NULL), 0);
	CHECK(p.count == 1 && strlen(p.entries[0].key) == S3_XML_KEY_MAX);
	store_list_page_cleanup(&p);
	free(inner);
	free(d);
	memcpy(big + 3 * pos, "%41", 4);
	inner = contents(big);
	list_fails(inner, NULL, -EFBIG, __LINE__); /* raw text over its cap */
	free(inner);
	free(big);

	/* continuation token */
	big = malloc(S3_XML_TOKEN_MAX + 2);
	memset(big, 't', S3_XML_TOKEN_MAX);
	big[S3_XML_TOKEN_MAX] = '\0';
	d = xfmt("<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>%s"
		 "</NextContinuationToken></ListBucketResult>", big);
	CHECK_RC(list(d, NULL, &p, NULL), 0);
	CHECK(p.next_token && strlen(p.next_token) == S3_XML_TOKEN_MAX);
	store_list_page_cleanup(&p);
	free(d);
	strcat(big, "t");
	d = xfmt("<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>%s"
		 "</NextContinuationToken></ListBucketResult>", big);
	CHECK_RC(list(d, NULL, &p, NULL), -EFBIG);
	free(d);
	free(big);

	/* etag: STORE_ETAG_MAX - 1 characters inside quotes fine, one more not */
	big = malloc(STORE_ETAG_MAX + 2);
	memset(big, 'e', STORE_ETAG_MAX - 1);
	big[STORE_ETAG_MAX - 1] = '\0';
	inner = xfmt("<Contents><Key>k</Key><LastModified>2024-01-10T21:17:49Z</LastModified>"
		     "<ETag>\"%s\"</ETag><Size>1</Size></Contents>", big);
	d = listing(inner);
	CHECK_RC(list(d, NULL, &p, NULL), 0);
	CHECK(p.count == 1 && strlen(p.entries[0].meta.etag) == STORE_ETAG_MAX - 1);
	store_list_page_cleanup(&p);
	free(inner);
	free(d);
	strcat(big, "e");
	inner = xfmt("<Contents><Key>k</Key><LastModified>2024-01-10T21:17:49Z</LastModified>"
		     "<ETag>\"%s\"</ETag><Size>1</Size></Contents>", big);
	list_fails(inner, NULL, -EFBIG, __LINE__);
	free(inner);
	free(big);

	/* entries: S3_XML_MAX_ENTRIES fine (mixed kinds), one more -EFBIG */
	for (int extra = 0; extra <= 1; extra++) {
		size_t n = S3_XML_MAX_ENTRIES + (size_t)extra, cap = n * 160 + 256, off = 0;
		char *buf = malloc(cap);

		off += (size_t)snprintf(buf + off, cap - off,
					"<ListBucketResult><IsTruncated>false</IsTruncated>");
		for (size_t i = 0; i < n; i++) {
			if (i % 2)
				off += (size_t)snprintf(buf + off, cap - off,
							"<CommonPrefixes><Prefix>p%06zu/</Prefix>"
							"</CommonPrefixes>", i);
			else
				off += (size_t)snprintf(buf + off, cap - off,
							"<Contents><Key>k%06zu</Key><LastModified>"
							"2024-01-10T21:17:49Z</LastModified><ETag>e"
							"</ETag><Size>1</Size></Contents>", i);
		}
		snprintf(buf + off, cap - off, "</ListBucketResult>");
		CHECK_RC(list(buf, NULL, &p, NULL), extra ? -EFBIG : 0);
		if (!extra) {
			CHECK(p.count == S3_XML_MAX_ENTRIES);
			for (size_t i = 1; i < p.count; i++)
				if (strcmp(p.entries[i - 1].key, p.entries[i].key) >= 0) {
					CHECK(!"sorted");
					break;
				}
		}
		store_list_page_cleanup(&p);
		free(buf);
	}

	/* an overlong unknown element name is harmless: it matches no rule */
	big = malloc(4000);
	memset(big, 'N', 3999);
	big[3999] = '\0';
	inner = xfmt("<%s><Key>x</Key></%s>", big, big);
	d = listing(inner);
	CHECK_RC(list(d, NULL, &p, NULL), 0);
	CHECK(p.count == 0);
	store_list_page_cleanup(&p);
	free(inner);
	free(d);
	free(big);
}

/* <Error> bodies from S3 and <ErrorResponse> bodies from STS. */
static void test_error(void)
{
	static const char s3[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<Error>\n"
		"  <Code>NoSuchKey</Code>\n"
		"  <Message>The resource you requested does not exist</Message>\n"
		"  <Resource>/mybucket/myfoto.jpg</Resource>\n"
		"  <RequestId>4442587FB7D0A2F9</RequestId>\n"
		"</Error>";
	static const char sts[] =
		"<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
		"  <Error>\n"
		"    <Type>Sender</Type>\n"
		"    <Code>InvalidIdentityToken</Code>\n"
		"    <Message>Couldn't retrieve verification key from your identity provider"
		"</Message>\n"
		"  </Error>\n"
		"  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n"
		"</ErrorResponse>";
	static const char minio[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>PreconditionFailed"
		"</Code><Message>At least one of the pre-conditions you specified did not hold"
		"</Message><Key>kong/3.6.0.0/config.json</Key><BucketName>kong</BucketName>"
		"<Resource>/kong/kong/3.6.0.0/config.json</Resource><RequestId>17A8E2B1C3D4"
		"</RequestId><HostId>dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2"
		"e3e8</HostId></Error>";
	char code[32], msg[64], tiny[4];

	CHECK_RC(s3_xml_parse_error(s3, strlen(s3), code, sizeof(code), msg, sizeof(msg)), 0);
	CHECK(strcmp(code, "NoSuchKey") == 0);
	CHECK(strcmp(msg, "The resource you requested does not exist") == 0);
	CHECK_RC(s3_xml_parse_error(sts, strlen(sts), code, sizeof(code), NULL, 0), 0);
	CHECK(strcmp(code, "InvalidIdentityToken") == 0);
	CHECK_RC(s3_xml_parse_error(minio, strlen(minio), code, sizeof(code), msg, 20), 0);
	CHECK(strcmp(code, "PreconditionFailed") == 0);
	/* the message is cut to fit, never failing the parse */
	CHECK(strcmp(msg, "At least one of the") == 0);
	/* ...and at a character boundary: "é" is two bytes and would straddle */
	{
		static const char uni[] =
			"<Error><Code>X</Code><Message>ab\xc3\xa9</Message></Error>";

		CHECK_RC(s3_xml_parse_error(uni, strlen(uni), code, sizeof(code), tiny,
					    sizeof(tiny)), 0);
		CHECK(strcmp(tiny, "ab") == 0);
	}
	/* a code that does not fit cannot be mapped: -EFBIG */
	CHECK_RC(s3_xml_parse_error(s3, strlen(s3), tiny, sizeof(tiny), NULL, 0), -EFBIG);
	CHECK(tiny[0] == '\0');
	/* missing or empty code, wrong document, bad arguments */
	{
		static const char *bad[] = {
			"<Error><Message>m</Message></Error>",
			"<Error><Code></Code></Error>",
			"<Error><Code>A</Code><Code>B</Code></Error>",
			"<ListBucketResult/>",
			"<Error><Code>A</Code>",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			CHECK_RC(s3_xml_parse_error(bad[i], strlen(bad[i]), code, sizeof(code),
						    msg, sizeof(msg)), -EIO);
	}
	CHECK_RC(s3_xml_parse_error(s3, strlen(s3), code, 1, NULL, 0), -EINVAL);
	CHECK_RC(s3_xml_parse_error(s3, strlen(s3), NULL, 8, NULL, 0), -EINVAL);
}

/* InitiateMultipartUploadResult. */
static void test_upload_id(void)
{
	static const char doc[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<InitiateMultipartUploadResult\n"
		"    xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
		"  <Bucket>example-bucket</Bucket>\n"
		"  <Key>example-object</Key>\n"
		"  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA"
		"</UploadId>\n"
		"</InitiateMultipartUploadResult>";
	char id[128], small[8];

	CHECK_RC(s3_xml_parse_upload_id(doc, strlen(doc), id, sizeof(id)), 0);
	CHECK(strcmp(id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA") == 0);
	CHECK_RC(s3_xml_parse_upload_id(doc, strlen(doc), small, sizeof(small)), -EFBIG);
	CHECK(small[0] == '\0');
	{
		static const char *bad[] = {
			("<InitiateMultipartUploadResult><Bucket>b</Bucket>"
			 "</InitiateMultipartUploadResult>"),
			("<InitiateMultipartUploadResult><UploadId/>"
			 "</InitiateMultipartUploadResult>"),
			"<Error><Code>AccessDenied</Code></Error>",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			CHECK_RC(s3_xml_parse_upload_id(bad[i], strlen(bad[i]), id, sizeof(id)),
				 -EIO);
	}
	CHECK_RC(s3_xml_parse_upload_id(doc, strlen(doc), id, 0), -EINVAL);
}

/* CompleteMultipartUpload: success, and the 200 that carries an <Error>. */
static void test_complete(void)
{
	static const char ok[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<CompleteMultipartUploadResult\n"
		"    xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
		"  <Location>http://Example-Bucket.s3.us-east-1.amazonaws.com/Example-Object"
		"</Location>\n"
		"  <Bucket>Example-Bucket</Bucket>\n"
		"  <Key>Example-Object</Key>\n"
		"  <ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>\n"
		"</CompleteMultipartUploadResult>";
	/* S3 sends 200 and whitespace while it works, then this if it fails */
	static const char err[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"                                                  \n"
		"<Error>\n"
		"  <Code>InternalError</Code>\n"
		"  <Message>We encountered an internal error. Please try again.</Message>\n"
		"  <RequestId>656c76696e6727732072657175657374</RequestId>\n"
		"  <HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==</HostId>\n"
		"</Error>";
	struct s3_xml_result r;

	CHECK_RC(s3_xml_parse_complete(ok, strlen(ok), &r), 0);
	CHECK(strcmp(r.etag, "3858f62230ac3c915f300c664312c11f-9") == 0);
	CHECK(r.error_code[0] == '\0');
	CHECK_RC(s3_xml_parse_complete(err, strlen(err), &r), S3_XML_EMBEDDED_ERROR);
	CHECK(strcmp(r.error_code, "InternalError") == 0);
	CHECK(strncmp(r.error_message, "We encountered", 14) == 0);
	CHECK(r.etag[0] == '\0');
	{
		static const char *bad[] = {
			("<CompleteMultipartUploadResult><Key>k</Key>"
			 "</CompleteMultipartUploadResult>"),
			"<Error><Message>no code</Message></Error>",
			"<CopyObjectResult><ETag>\"e\"</ETag></CopyObjectResult>",
			"   ", /* S3's keep-alive spaces with the connection cut */
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			CHECK_RC(s3_xml_parse_complete(bad[i], strlen(bad[i]), &r), -EIO);
			CHECK(r.etag[0] == '\0' && r.error_code[0] == '\0');
		}
	}
}

/* CopyObject onto itself, used to refresh the modification time. */
static void test_copy(void)
{
	static const char aws[] =
		"<CopyObjectResult>\n"
		"   <LastModified>2009-10-28T22:32:00</LastModified>\n"
		"   <ETag>\"9b2cf535f27731c974343645a3985328\"</ETag>\n"
		"</CopyObjectResult>";
	static const char real[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult xmlns=\"http://"
		"s3.amazonaws.com/doc/2006-03-01/\"><LastModified>2024-01-10T21:17:49.123Z"
		"</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>"
		"<ChecksumCRC32>AAAAAA==</ChecksumCRC32></CopyObjectResult>";
	static const char err[] =
		"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
		"</Error>";
	struct s3_xml_result r;

	CHECK_RC(s3_xml_parse_copy(aws, strlen(aws), &r), 0);
	CHECK(strcmp(r.etag, "9b2cf535f27731c974343645a3985328") == 0);
	CHECK(r.mtime_ns == 1256769120LL * 1000000000);
	CHECK_RC(s3_xml_parse_copy(real, strlen(real), &r), 0);
	CHECK(r.mtime_ns == 1704921469123000000LL);
	CHECK_RC(s3_xml_parse_copy(err, strlen(err), &r), S3_XML_EMBEDDED_ERROR);
	CHECK(strcmp(r.error_code, "SlowDown") == 0 && r.mtime_ns == 0);
	{
		static const char *bad[] = {
			"<CopyObjectResult><ETag>\"e\"</ETag></CopyObjectResult>",
			"<CopyObjectResult><LastModified>2024-01-10T21:17:49Z</LastModified>"
			"</CopyObjectResult>",
			"<CopyObjectResult><LastModified>yesterday</LastModified><ETag>e</ETag>"
			"</CopyObjectResult>",
			"<CompleteMultipartUploadResult><ETag>e</ETag>"
			"</CompleteMultipartUploadResult>",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			CHECK_RC(s3_xml_parse_copy(bad[i], strlen(bad[i]), &r), -EIO);
	}
}

/* STS AssumeRoleWithWebIdentity and AssumeRole. */
static void test_sts(void)
{
	static const char web[] =
		"<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/"
		"2011-06-15/\">\n"
		"  <AssumeRoleWithWebIdentityResult>\n"
		"    <SubjectFromWebIdentityToken>amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A"
		"</SubjectFromWebIdentityToken>\n"
		"    <Audience>client.5498841531868486423.1548@apps.example.com</Audience>\n"
		"    <AssumedRoleUser>\n"
		"      <Arn>arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1"
		"</Arn>\n"
		"      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>\n"
		"    </AssumedRoleUser>\n"
		"    <Credentials>\n"
		"      <SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE"
		"</SessionToken>\n"
		"      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
		"</SecretAccessKey>\n"
		"      <Expiration>2014-10-24T23:00:23Z</Expiration>\n"
		"      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
		"    </Credentials>\n"
		"    <SourceIdentity>SourceIdentityValue</SourceIdentity>\n"
		"    <Provider>www.amazon.com</Provider>\n"
		"  </AssumeRoleWithWebIdentityResult>\n"
		"  <ResponseMetadata>\n"
		"    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>\n"
		"  </ResponseMetadata>\n"
		"</AssumeRoleWithWebIdentityResponse>";
	static const char role[] =
		"<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
		"<AssumeRoleResult><SourceIdentity>Alice</SourceIdentity><AssumedRoleUser>"
		"<Arn>arn:aws:sts::123456789012:assumed-role/demo/TestAR</Arn><AssumedRoleId>"
		"ARO123EXAMPLE123:TestAR</AssumedRoleId></AssumedRoleUser><Credentials>"
		"<AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId><SecretAccessKey>"
		"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey><SessionToken>"
		"AQoDYXdzEPT//////////wEXAMPLEtc764&amp;bNrC</SessionToken><Expiration>"
		"2019-11-09T13:34:41Z</Expiration></Credentials><PackedPolicySize>6"
		"</PackedPolicySize></AssumeRoleResult><ResponseMetadata><RequestId>"
		"c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>"
		"</AssumeRoleResponse>";
	struct s3_xml_sts_credentials c;

	CHECK_RC(s3_xml_parse_sts_credentials(web, strlen(web), &c), 0);
	CHECK(c.access_key_id && strcmp(c.access_key_id, "ASgeIAIOSFODNN7EXAMPLE") == 0);
	CHECK(c.secret_access_key &&
	      strcmp(c.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY") == 0);
	CHECK(c.session_token &&
	      strcmp(c.session_token, "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE") == 0);
	CHECK(c.expiration == 1414191623);
	s3_xml_sts_credentials_cleanup(&c);
	CHECK(c.access_key_id == NULL && c.secret_access_key == NULL &&
	      c.session_token == NULL && c.expiration == 0);
	s3_xml_sts_credentials_cleanup(&c); /* twice is harmless */
	s3_xml_sts_credentials_cleanup(NULL);

	CHECK_RC(s3_xml_parse_sts_credentials(role, strlen(role), &c), 0);
	CHECK(c.session_token &&
	      strcmp(c.session_token, "AQoDYXdzEPT//////////wEXAMPLEtc764&bNrC") == 0);
	CHECK(c.expiration == 1573306481);
	s3_xml_sts_credentials_cleanup(&c);

	{
		static const char *bad[] = {
			/* a field missing */
			"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A"
			"</AccessKeyId><SecretAccessKey>S</SecretAccessKey><Expiration>"
			"2019-11-09T13:34:41Z</Expiration></Credentials></AssumeRoleResult>"
			"</AssumeRoleResponse>",
			/* an unparseable expiration */
			"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A"
			"</AccessKeyId><SecretAccessKey>S</SecretAccessKey><SessionToken>T"
			"</SessionToken><Expiration>soon</Expiration></Credentials>"
			"</AssumeRoleResult></AssumeRoleResponse>",
			/* result element of the other call */
			"<AssumeRoleResponse><AssumeRoleWithWebIdentityResult><Credentials>"
			"<AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>"
			"<SessionToken>T</SessionToken><Expiration>2019-11-09T13:34:41Z"
			"</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
			"</AssumeRoleResponse>",
			/* an STS error is not credentials */
			"<ErrorResponse><Error><Code>ExpiredTokenException</Code></Error>"
			"</ErrorResponse>",
			/* a repeated secret */
			"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A"
			"</AccessKeyId><SecretAccessKey>S</SecretAccessKey><SecretAccessKey>S"
			"</SecretAccessKey><SessionToken>T</SessionToken><Expiration>"
			"2019-11-09T13:34:41Z</Expiration></Credentials></AssumeRoleResult>"
			"</AssumeRoleResponse>",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			CHECK_RC(s3_xml_parse_sts_credentials(bad[i], strlen(bad[i]), &c), -EIO);
			CHECK(c.access_key_id == NULL && c.secret_access_key == NULL &&
			      c.session_token == NULL);
			s3_xml_sts_credentials_cleanup(&c);
		}
	}
	/* a session token past S3_XML_TOKEN_MAX */
	{
		char *tok = malloc(S3_XML_TOKEN_MAX + 2);
		char *d;

		memset(tok, 'T', S3_XML_TOKEN_MAX + 1);
		tok[S3_XML_TOKEN_MAX + 1] = '\0';
		d = xfmt("<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A"
			 "</AccessKeyId><SecretAccessKey>S</SecretAccessKey><SessionToken>%s"
			 "</SessionToken><Expiration>2019-11-09T13:34:41Z</Expiration>"
			 "</Credentials></AssumeRoleResult></AssumeRoleResponse>", tok);
		CHECK_RC(s3_xml_parse_sts_credentials(d, strlen(d), &c), -EFBIG);
		s3_xml_sts_credentials_cleanup(&c);
		free(d);
		free(tok);
	}
}

int main(void)
{
	test_list_aws_example();
	test_list_truncated();
	test_list_merge_prefixes();
	test_list_ceph_s3rver();
	test_list_escapes_unicode();
	test_list_url_encoding();
	test_list_prefix();
	test_list_bad_contents();
	test_list_malformed();
	test_entity_attacks();
	test_caps();
	test_error();
	test_upload_id();
	test_complete();
	test_copy();
	test_sts();
	if (failures) {
		fprintf(stderr, "test_s3_xml: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_s3_xml: all passed\n");
	return 0;
}
