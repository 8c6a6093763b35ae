/*
 * fd_copy.h - copy a byte range between file descriptors by offset (never
 * using the fds' positions, so several threads may share an fd).
 */
#ifndef FALLBACKFS_FD_COPY_H
#define FALLBACKFS_FD_COPY_H

#include <stdint.h>
#include <sys/types.h>

/* Copy size bytes from in at in_off to out at out_off. 0, or a negative
 * errno; -EIO if in ends before size bytes. */
int fd_copy_range(int in, off_t in_off, int out, off_t out_off, uint64_t size);

#endif
