/*
 * test_digest.c - known-answer tests of the one-pass SHA-256 + MD5 digests.
 *
 * Checks digest_buffer() and digest_fd_range() against published or
 * independently computed digests (openssl dgst, sha256sum), including the
 * empty input, a range in the middle of a file, a range spanning several
 * read chunks, and the error returns. It does not test OpenSSL itself.
 *
 * Exit status: 0 pass, 1 a check failed, 99 the test could not set up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define EMPTY_MD5 "1B2M2Y8AsgTpgAmY7PhCfg=="
#define S3_BODY "Welcome to Amazon S3."
#define S3_SHA256 "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
#define S3_MD5 "1EfQ6PKJ8WoS/2AnznfCWA=="
#define MILLION_A_SHA256 "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
#define MILLION_A_MD5 "dwfWrk4CfHDuoqk1wilvIQ=="

static int failures;

/* Record one failed check. */
static void __attribute__((format(printf, 2, 3))) fail(const char *what, const char *fmt, ...)
{
	va_list ap;

	failures++;
	fprintf(stderr, "FAIL [%s] ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Check a return code and, on success, both digests. */
static void check(const char *what, int ret, int want_ret, const struct digest_result *r,
		  const char *sha256, const char *md5)
{
	if (ret != want_ret) {
		fail(what, "returned %d, want %d", ret, want_ret);
		return;
	}
	if (ret) {
		if (r->sha256_hex[0] || r->md5_base64[0])
			fail(what, "result not cleared after an error");
		return;
	}
	if (strcmp(r->sha256_hex, sha256) != 0)
		fail(what, "sha256 %s, want %s", r->sha256_hex, sha256);
	if (strcmp(r->md5_base64, md5) != 0)
		fail(what, "md5 %s, want %s", r->md5_base64, md5);
}

/* Write all of buf at the current position; exits on failure (setup, not a check). */
static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0) {
			perror("write");
			exit(99);
		}
		p += n;
		len -= (size_t)n;
	}
}

/* A file of 300001 'b', a million 'a', then the S3 body, then 7 'c': ranges cross chunks. */
static int make_file(void)
{
	char tmpl[] = "/tmp/test_digest.XXXXXX";
	char *buf = malloc(1000000);
	int fd = mkstemp(tmpl);

	if (fd < 0 || !buf) {
		perror("setup");
		exit(99);
	}
	unlink(tmpl);
	memset(buf, 'b', 300001);
	write_all(fd, buf, 300001);
	memset(buf, 'a', 1000000);
	write_all(fd, buf, 1000000);
	write_all(fd, S3_BODY, strlen(S3_BODY));
	write_all(fd, "ccccccc", 7);
	free(buf);
	return fd;
}

/* Buffers first, then file ranges on one file with a parked fd position, then errors. */
int main(void)
{
	const off_t s3_at = 300001 + 1000000, file_size = s3_at + 21 + 7;
	struct digest_result r;
	char *million = malloc(1000000);
	int fd, pipefd[2], dirfd;

	if (!million)
		return 99;
	memset(million, 'a', 1000000);

	check("buffer empty", digest_buffer("", 0, &r), 0, &r, EMPTY_SHA256, EMPTY_MD5);
	check("buffer NULL empty", digest_buffer(NULL, 0, &r), 0, &r, EMPTY_SHA256, EMPTY_MD5);
	check("buffer abc", digest_buffer("abc", 3, &r), 0, &r,
	      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	      "kAFQmDzST7DWlj99KOF/cg==");
	check("buffer s3 body", digest_buffer(S3_BODY, strlen(S3_BODY), &r), 0, &r, S3_SHA256,
	      S3_MD5);
	check("buffer million a", digest_buffer(million, 1000000, &r), 0, &r, MILLION_A_SHA256,
	      MILLION_A_MD5);
	check("buffer NULL with length", digest_buffer(NULL, 1, &r), -EINVAL, &r, NULL, NULL);
	free(million);

	fd = make_file();
	/* The fd position must be neither used nor moved: park it somewhere odd. */
	if (lseek(fd, 12345, SEEK_SET) != 12345)
		return 99;
	check("range in the middle", digest_fd_range(fd, s3_at, 21, &r), 0, &r, S3_SHA256,
	      S3_MD5);
	check("range across chunks", digest_fd_range(fd, 300001, 1000000, &r), 0, &r,
	      MILLION_A_SHA256, MILLION_A_MD5);
	check("md5 only, range in the middle", digest_md5_fd_range(fd, s3_at, 21, &r), 0, &r,
	      "", S3_MD5);
	check("md5 only, across chunks", digest_md5_fd_range(fd, 300001, 1000000, &r), 0, &r, "",
	      MILLION_A_MD5);
	check("md5 only, empty range", digest_md5_fd_range(fd, 777, 0, &r), 0, &r, "", EMPTY_MD5);
	check("md5 only, past the end", digest_md5_fd_range(fd, s3_at, 21 + 8, &r), -EIO, &r,
	      NULL, NULL);
	check("empty range in the middle", digest_fd_range(fd, 777, 0, &r), 0, &r, EMPTY_SHA256,
	      EMPTY_MD5);
	check("empty range at end", digest_fd_range(fd, file_size, 0, &r), 0, &r, EMPTY_SHA256,
	      EMPTY_MD5);
	check("range past the end", digest_fd_range(fd, s3_at, 21 + 8, &r), -EIO, &r, NULL, NULL);
	check("range starting past the end", digest_fd_range(fd, file_size + 1, 1, &r), -EIO, &r,
	      NULL, NULL);
	check("negative offset", digest_fd_range(fd, -1, 1, &r), -EINVAL, &r, NULL, NULL);
	check("range overflowing off_t", digest_fd_range(fd, 1, UINT64_MAX, &r), -EINVAL, &r,
	      NULL, NULL);
	if (lseek(fd, 0, SEEK_CUR) != 12345)
		fail("fd position", "moved to %lld", (long long)lseek(fd, 0, SEEK_CUR));
	close(fd);

	check("closed fd", digest_fd_range(fd, 0, 1, &r), -EBADF, &r, NULL, NULL);
	if (pipe(pipefd))
		return 99;
	check("pipe", digest_fd_range(pipefd[0], 0, 1, &r), -ESPIPE, &r, NULL, NULL);
	close(pipefd[0]);
	close(pipefd[1]);
	dirfd = open("/", O_RDONLY | O_DIRECTORY);
	if (dirfd < 0)
		return 99;
	check("directory", digest_fd_range(dirfd, 0, 1, &r), -EISDIR, &r, NULL, NULL);
	close(dirfd);

	printf("%d failures\n", failures);
	return failures ? 1 : 0;
}
