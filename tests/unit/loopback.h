/*
 * loopback.h - the listening socket the network unit tests serve from:
 * 127.0.0.1 only, on a free port. Test-only and header-only; a socket that
 * cannot be had is a broken test machine, so it exits 99 (meson's "error").
 */
#ifndef FALLBACKFS_LOOPBACK_H
#define FALLBACKFS_LOOPBACK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

/* Bind and listen on 127.0.0.1 with a free port (in *port); returns the fd.
 * Nothing accepts until the caller does, so it also serves as a server
 * that connects but never answers. */
static inline int listen_loopback(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		perror("listen_loopback");
		exit(99);
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

#endif
