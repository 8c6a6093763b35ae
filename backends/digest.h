/*
 * digest.h - the payload digests an upload needs, computed in one pass.
 *
 * SHA-256 (hex, for x-amz-content-sha256) and MD5 (base64, for Content-MD5)
 * over a byte range of a file descriptor or over a memory buffer, or MD5
 * alone over a file range. The file
 * is read with pread(), so the descriptor's position is never used or moved
 * and one descriptor may be digested from several threads at once.
 *
 * This is not a general hashing library, does no caching, and says nothing
 * about what the digests are used for; MD5 here is an integrity check the
 * stores ask for, not a security measure.
 */
#ifndef FALLBACKFS_DIGEST_H
#define FALLBACKFS_DIGEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct digest_result {
	char sha256_hex[65]; /* 64 lower-case hex digits */
	char md5_base64[25]; /* 24 characters, padded base64 */
};

/*
 * Digest size bytes of fd starting at offset. Returns 0, -EINVAL (negative
 * offset, or a range past the largest off_t), -EIO if the file ends before
 * offset + size or OpenSSL fails, -ENOTSUP if OpenSSL refuses MD5 (a FIPS
 * policy), -ENOMEM, or the negative errno of a failed pread() (e.g. -EBADF).
 */
int digest_fd_range(int fd, off_t offset, uint64_t size, struct digest_result *out);

/* As digest_fd_range() but MD5 only (sha256_hex is ""): half the work, for
 * uploads that carry Content-MD5 and an unsigned payload hash. */
int digest_md5_fd_range(int fd, off_t offset, uint64_t size, struct digest_result *out);

/* Digest len bytes at buf (NULL allowed when len is 0). Returns 0, -EINVAL,
 * -ENOTSUP, -ENOMEM or -EIO as above. */
int digest_buffer(const void *buf, size_t len, struct digest_result *out);

#endif
