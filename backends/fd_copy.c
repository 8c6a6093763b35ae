/*
 * fd_copy.c - range copies between fds: copy_file_range where the kernel
 * can (reflinks and in-kernel copies), pread/pwrite otherwise.
 */
#include <errno.h>
#include <unistd.h>

#include "fd_copy.h"

/* Fall back to a bounce buffer when copy_file_range cannot serve the pair
 * (different filesystems on old kernels, special files). */
static int copy_slow(int in, off_t in_off, int out, off_t out_off, uint64_t size)
{
	char buf[128 * 1024];

	while (size > 0) {
		size_t want = size < sizeof(buf) ? (size_t)size : sizeof(buf);
		ssize_t n = pread(in, buf, want, in_off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		for (ssize_t done = 0; done < n;) {
			ssize_t w = pwrite(out, buf + done, (size_t)(n - done), out_off + done);

			if (w < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			done += w;
		}
		in_off += n;
		out_off += n;
		size -= (uint64_t)n;
	}
	return 0;
}

/* Copy with copy_file_range, switching to copy_slow if the kernel refuses. */
int fd_copy_range(int in, off_t in_off, int out, off_t out_off, uint64_t size)
{
	while (size > 0) {
		size_t want = size > (1u << 30) ? (1u << 30) : (size_t)size;
		ssize_t n = copy_file_range(in, &in_off, out, &out_off, want, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			    errno == EOPNOTSUPP || errno == EBADF)
				return copy_slow(in, in_off, out, out_off, size);
			return -errno;
		}
		if (n == 0)
			return -EIO;
		size -= (uint64_t)n;
	}
	return 0;
}
