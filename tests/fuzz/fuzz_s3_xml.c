/*
 * fuzz_s3_xml.c - fuzz target for every parser in backends/s3_xml.c.
 *
 * Built with -DFUZZING_LIBFUZZER and -fsanitize=fuzzer it is a libFuzzer
 * target; built plainly it is a program that runs each file named on the
 * command line (or each file inside a named directory) through the same
 * entry point, which is how the unit suite replays the seed corpus in
 * tests/fuzz/corpus_s3_xml/. It checks memory safety and the documented
 * result contract, not parsing correctness (tests/unit/test_s3_xml.c does).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "s3_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort (so the fuzzer records a crash) when a parser breaks its contract. */
static void expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_s3_xml: contract broken: %s\n", what);
		abort();
	}
}

/* Whether rc is one of the values the header allows for these parsers. */
static int rc_ok(int rc)
{
	return rc == 0 || rc == -EIO || rc == -EFBIG || rc == -ENOMEM;
}

/* Run the listing parser and check the page it returns. */
static void fuzz_list(const char *xml, size_t size, const char *prefix)
{
	struct store_list_page page = { 0 };
	bool truncated = false;
	int rc = s3_xml_parse_list(xml, size, prefix, &page, &truncated);

	expect(rc_ok(rc), "list rc");
	if (rc) {
		expect(page.entries == NULL && page.count == 0 && page.next_token == NULL,
		       "failed list leaves the page empty");
		return;
	}
	expect((page.next_token != NULL) == truncated, "token iff truncated");
	expect(page.count <= S3_XML_MAX_ENTRIES, "entry cap");
	for (size_t i = 0; i < page.count; i++) {
		expect(page.entries[i].key[0] != '\0', "no empty key");
		expect(strlen(page.entries[i].key) <= S3_XML_KEY_MAX, "key cap");
		if (i > 0)
			expect(strcmp(page.entries[i - 1].key, page.entries[i].key) < 0,
			       "strictly sorted");
	}
	store_list_page_cleanup(&page);
}

/* Every parser over the same bytes: each must fail cleanly or succeed. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *xml = (const char *)data;
	char code[S3_XML_CODE_MAX], msg[64], id[256];
	struct s3_xml_result r;
	struct s3_xml_sts_credentials c;
	int rc;

	fuzz_list(xml, size, NULL);
	fuzz_list(xml, size, "kong/");

	rc = s3_xml_parse_error(xml, size, code, sizeof(code), msg, sizeof(msg));
	expect(rc_ok(rc), "error rc");
	expect(rc != 0 || (code[0] != '\0' && strlen(msg) < sizeof(msg)), "error fields");
	rc = s3_xml_parse_error(xml, size, code, 4, NULL, 0);
	expect(rc_ok(rc), "error rc, small buffer");

	rc = s3_xml_parse_upload_id(xml, size, id, sizeof(id));
	expect(rc_ok(rc), "upload id rc");
	expect(rc != 0 || id[0] != '\0', "upload id set");

	rc = s3_xml_parse_complete(xml, size, &r);
	expect(rc_ok(rc) || rc == S3_XML_EMBEDDED_ERROR, "complete rc");
	expect(rc != 0 || r.etag[0] != '\0', "complete etag");
	expect(rc != S3_XML_EMBEDDED_ERROR || r.error_code[0] != '\0', "complete code");
	rc = s3_xml_parse_copy(xml, size, &r);
	expect(rc_ok(rc) || rc == S3_XML_EMBEDDED_ERROR, "copy rc");
	expect(rc != 0 || r.etag[0] != '\0', "copy etag");

	rc = s3_xml_parse_sts_credentials(xml, size, &c);
	expect(rc_ok(rc), "sts rc");
	expect(rc != 0 || (c.access_key_id && c.secret_access_key && c.session_token),
	       "sts fields");
	s3_xml_sts_credentials_cleanup(&c);
	return 0;
}

#ifndef FUZZING_LIBFUZZER
/* Read a whole file (the corpus files are small) and run it; -1 on error. */
static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	int rc = -1;

	if (!f) {
		perror(path);
		goto cleanup;
	}
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto cleanup;
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		goto cleanup;
	LLVMFuzzerTestOneInput((const uint8_t *)buf, (size_t)n);
	rc = 0;
cleanup:
	if (rc)
		fprintf(stderr, "fuzz_s3_xml: cannot read %s\n", path);
	free(buf);
	if (f)
		fclose(f);
	return rc;
}

/* Replay files and directories of files, as the unit suite does. */
int main(int argc, char **argv)
{
	int runs = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		DIR *d;
		struct dirent *de;

		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]))
				return 1;
			runs++;
			continue;
		}
		d = opendir(argv[i]);
		if (!d) {
			perror(argv[i]);
			return 1;
		}
		while ((de = readdir(d)) != NULL) {
			char path[4096];

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
			if (run_file(path)) {
				closedir(d);
				return 1;
			}
			runs++;
		}
		closedir(d);
	}
	if (runs == 0) {
		fprintf(stderr, "usage: fuzz_s3_xml FILE-OR-DIR...\n");
		return 1;
	}
	printf("fuzz_s3_xml: %d input(s) ran clean\n", runs);
	return 0;
}
#endif
