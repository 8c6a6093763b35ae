/*
 * digest.c - SHA-256 and MD5 of a file range or a buffer, in one pass.
 *
 * Both digests are fed from the same reads, so an upload body is read once
 * before it is sent instead of twice. This file only hashes: it does not
 * send, retry, or decide which digests a store wants.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "digest.h"

/* Large enough to make the syscall cost negligible, small enough for many threads at once. */
#define READ_CHUNK (128 * 1024)

#define OFF_T_MAX ((off_t)(((uint64_t)1 << (sizeof(off_t) * CHAR_BIT - 1)) - 1))

/* Both running digests; sha256 stays NULL when only MD5 is wanted. */
struct digest_state {
	EVP_MD_CTX *sha256;
	EVP_MD_CTX *md5;
};

/* Free both contexts; safe on a zeroed state. */
static void state_cleanup(struct digest_state *st)
{
	EVP_MD_CTX_free(st->sha256);
	EVP_MD_CTX_free(st->md5);
	st->sha256 = NULL;
	st->md5 = NULL;
}

/* Start the digests (SHA-256 only when with_sha256); -ENOTSUP when MD5 is
 * disabled, because that is a policy, not a bug. */
static int state_init(struct digest_state *st, bool with_sha256)
{
	st->sha256 = with_sha256 ? EVP_MD_CTX_new() : NULL;
	st->md5 = EVP_MD_CTX_new();
	if ((with_sha256 && !st->sha256) || !st->md5)
		return -ENOMEM;
	if (st->sha256 && !EVP_DigestInit_ex(st->sha256, EVP_sha256(), NULL))
		return -EIO;
	if (!EVP_DigestInit_ex(st->md5, EVP_md5(), NULL))
		return -ENOTSUP;
	return 0;
}

/* Feed len bytes to the running digests. */
static int state_update(struct digest_state *st, const void *buf, size_t len)
{
	if ((st->sha256 && !EVP_DigestUpdate(st->sha256, buf, len)) ||
	    !EVP_DigestUpdate(st->md5, buf, len))
		return -EIO;
	return 0;
}

/* Finish the digests and format them into *out (sha256_hex "" if not run). */
static int state_final(struct digest_state *st, struct digest_result *out)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	out->sha256_hex[0] = '\0';
	if (st->sha256) {
		if (!EVP_DigestFinal_ex(st->sha256, md, &len) || len != 32)
			return -EIO;
		for (i = 0; i < len; i++) {
			out->sha256_hex[2 * i] = digits[md[i] >> 4];
			out->sha256_hex[2 * i + 1] = digits[md[i] & 0xf];
		}
		out->sha256_hex[64] = '\0';
	}
	if (!EVP_DigestFinal_ex(st->md5, md, &len) || len != 16)
		return -EIO;
	if (EVP_EncodeBlock((unsigned char *)out->md5_base64, md, 16) != 24)
		return -EIO;
	return 0;
}

/* For bodies already in memory (small objects, tests). */
int digest_buffer(const void *buf, size_t len, struct digest_result *out)
{
	struct digest_state st = { 0 };
	int ret;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!buf && len)
		return -EINVAL;
	ret = state_init(&st, true);
	if (!ret && len)
		ret = state_update(&st, buf, len);
	if (!ret)
		ret = state_final(&st, out);
	state_cleanup(&st);
	if (ret)
		memset(out, 0, sizeof(*out));
	return ret;
}

/* pread() at explicit offsets so concurrent users of the same fd do not
 * disturb each other; SHA-256 too when with_sha256. */
static int fd_range(int fd, off_t offset, uint64_t size, bool with_sha256,
		    struct digest_result *out)
{
	struct digest_state st = { 0 };
	unsigned char *buf = NULL;
	uint64_t done = 0;
	int ret;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (offset < 0 || size > (uint64_t)(OFF_T_MAX - offset))
		return -EINVAL;
	ret = state_init(&st, with_sha256);
	if (ret)
		goto out;
	buf = malloc(READ_CHUNK);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	while (done < size) {
		size_t want = size - done < READ_CHUNK ? (size_t)(size - done) : READ_CHUNK;
		ssize_t got = pread(fd, buf, want, offset + (off_t)done);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			ret = -errno;
			goto out;
		}
		/* A file shorter than the range was truncated under us: never hash a guess. */
		if (got == 0) {
			ret = -EIO;
			goto out;
		}
		ret = state_update(&st, buf, (size_t)got);
		if (ret)
			goto out;
		done += (uint64_t)got;
	}
	ret = state_final(&st, out);
out:
	/* Bodies can be secrets (config.json carries credentials): leave no copy behind. */
	if (buf)
		OPENSSL_cleanse(buf, READ_CHUNK);
	free(buf);
	state_cleanup(&st);
	if (ret)
		memset(out, 0, sizeof(*out));
	return ret;
}

/* Both digests of a file range. */
int digest_fd_range(int fd, off_t offset, uint64_t size, struct digest_result *out)
{
	return fd_range(fd, offset, size, true, out);
}

/* MD5 alone: for bodies sent with Content-MD5 and an unsigned payload. */
int digest_md5_fd_range(int fd, off_t offset, uint64_t size, struct digest_result *out)
{
	return fd_range(fd, offset, size, false, out);
}
