/*
 * test_http.c - unit tests of the libcurl transport (backends/http.c).
 *
 * What it is: the client against a small HTTP/1.1 server forked from this
 * test on 127.0.0.1 (keep-alive, a connection counter, an echo for uploads,
 * a route that never answers and one that resets), plus an optional TLS check
 * with `openssl s_server` and a throwaway certificate.
 * What it is not: a test of any backend's status handling.
 */
#include "check.h"
#include "http.h"
#include "loopback.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define SERVER_LIFETIME_S 60
#define MAX_REQ_HEAD 16384

static atomic_int conn_count;
static atomic_int reset_count; /* /reset requests the server has seen */
static char base_url[64];
static pid_t server_pid = -1;

/* ---- the forked server ---- */

/* Byte i of a generated body, so any misplaced byte is detected. */
static unsigned char pattern(size_t i)
{
	return (unsigned char)((i * 7 + 3) ^ (i >> 9));
}

/* Write all of buf; false if the peer went away. */
static bool write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Send one answer with a Content-Length. */
static bool reply(int fd, int status, const char *extra, const void *body, size_t len)
{
	char head[512];
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n", status, len,
		     extra ? extra : "");
	return write_all(fd, head, (size_t)n) && (len == 0 || write_all(fd, body, len));
}

/* Value of header name in the request head, copied to out; false if absent. */
static bool find_header(const char *head, const char *name, char *out, size_t out_len)
{
	const char *p = head;
	size_t nl = strlen(name);

	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *e;

			while (*v == ' ')
				v++;
			e = strstr(v, "\r\n");
			if (!e || (size_t)(e - v) >= out_len)
				return false;
			memcpy(out, v, (size_t)(e - v));
			out[e - v] = '\0';
			return true;
		}
	}
	return false;
}

/* Serve requests on one connection until it closes. */
static void *serve_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	int id = atomic_fetch_add(&conn_count, 1) + 1;
	char *buf = malloc(MAX_REQ_HEAD);
	size_t have = 0;

	for (;;) {
		char method[16], path[256], val[64], small[64];
		char *end, *body = NULL;
		size_t head_len, clen = 0, got;
		ssize_t r;

		while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
			if (have == MAX_REQ_HEAD)
				goto done;
			r = recv(fd, buf + have, MAX_REQ_HEAD - have, 0);
			if (r <= 0)
				goto done;
			have += (size_t)r;
		}
		head_len = (size_t)(end - buf) + 4;
		buf[head_len - 2] = '\0';
		if (sscanf(buf, "%15s %255s", method, path) != 2)
			goto done;
		bool has_len = find_header(buf, "Content-Length", val, sizeof(val));
		bool chunked = find_header(buf, "Transfer-Encoding", small, sizeof(small));

		if (has_len)
			clen = strtoul(val, NULL, 10);
		body = malloc(clen + 1);
		got = have - head_len < clen ? have - head_len : clen;
		memcpy(body, buf + head_len, got);
		memmove(buf, buf + head_len + got, have - head_len - got);
		have -= head_len + got;
		while (got < clen) {
			r = recv(fd, body + got, clen - got, 0);
			if (r <= 0) {
				free(body);
				goto done;
			}
			got += (size_t)r;
		}

		bool ok = true;
		if (strcmp(path, "/hello") == 0) {
			ok = reply(fd, 200, "ETag: \"abc123\"\r\nx-amz-meta-Foo: bar\r\n",
				   "hello world", 11);
		} else if (strncmp(path, "/big/", 5) == 0) {
			size_t n = strtoul(path + 5, NULL, 10), i;
			unsigned char *b = malloc(n + 1);

			for (i = 0; i < n; i++)
				b[i] = pattern(i);
			ok = reply(fd, 200, NULL, b, n);
			free(b);
		} else if (strcmp(path, "/conn") == 0) {
			snprintf(small, sizeof(small), "%d", id);
			ok = reply(fd, 200, NULL, small, strlen(small));
		} else if (strcmp(path, "/stats") == 0) {
			snprintf(small, sizeof(small), "%d", atomic_load(&conn_count));
			ok = reply(fd, 200, NULL, small, strlen(small));
		} else if (strcmp(path, "/echo") == 0) {
			/* The upload checks: a real Content-Length, never chunked. */
			if (!has_len || chunked)
				ok = reply(fd, 400, NULL, "no content-length", 17);
			else
				ok = reply(fd, 200, strcmp(method, "PUT") == 0 ? "X-Method: PUT\r\n"
										: "X-Method: other\r\n",
					   body, clen);
		} else if (strcmp(path, "/status/404") == 0) {
			ok = reply(fd, 404, NULL, "<Error><Code>NoSuchKey</Code></Error>", 37);
		} else if (strcmp(path, "/error/big") == 0) {
			char *b = malloc(100000);

			memset(b, 'E', 100000);
			ok = reply(fd, 500, NULL, b, 100000);
			free(b);
		} else if (strcmp(path, "/hang") == 0) {
			/* Never answer; wait (bounded) for the client to give up. */
			struct pollfd p = { .fd = fd, .events = POLLIN };

			poll(&p, 1, 20000);
			ok = false;
		} else if (strcmp(path, "/resets") == 0) {
			snprintf(small, sizeof(small), "%d", atomic_load(&reset_count));
			ok = reply(fd, 200, NULL, small, strlen(small));
		} else if (strcmp(path, "/reset") == 0) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };

			atomic_fetch_add(&reset_count, 1);
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			ok = false;
		} else {
			ok = reply(fd, 404, NULL, "", 0);
		}
		free(body);
		if (!ok)
			break;
	}
done:
	free(buf);
	close(fd);
	return NULL;
}

/* The server process: accept forever (until killed or its lifetime ends). */
static void run_server(int lfd)
{
	alarm(SERVER_LIFETIME_S);
	for (;;) {
		pthread_t th;
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			continue;
		if (pthread_create(&th, NULL, serve_conn, (void *)(intptr_t)fd) != 0) {
			close(fd);
			continue;
		}
		pthread_detach(th);
	}
}

/* Fork the server; the parent keeps only its URL. */
static void start_server(void)
{
	int port, lfd = listen_loopback(&port);

	server_pid = fork();
	REQUIRE(server_pid >= 0);
	if (server_pid == 0) {
		run_server(lfd);
		_exit(0);
	}
	close(lfd);
	snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", port);
}

/* Kill our own server child by its pid. */
static void stop_server(void)
{
	if (server_pid > 0) {
		kill(server_pid, SIGKILL);
		waitpid(server_pid, NULL, 0);
		server_pid = -1;
	}
}

/* ---- helpers ---- */

/* Monotonic time in seconds. */
static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* GET path into memory with the given client; returns http_perform's result. */
static int get(struct http_client *c, const char *path, struct http_response *resp)
{
	char url[256];
	struct http_request req;

	snprintf(url, sizeof(url), "%s%s", base_url, path);
	http_request_init(&req, "GET", url);
	return http_perform(c, &req, resp);
}

/* A temporary file, already unlinked. */
static int temp_fd(void)
{
	char name[] = "/tmp/test_http_XXXXXX";
	int fd = mkstemp(name);

	REQUIRE(fd >= 0);
	unlink(name);
	return fd;
}

/* ---- tests ---- */

/* A GET lands in memory with its headers found case-insensitively. */
static void test_get_memory(struct http_client *c)
{
	struct http_response resp = { 0 };

	REQUIRE(get(c, "/hello", &resp) == 0);
	REQUIRE(resp.status == 200);
	REQUIRE(resp.body_len == 11 && strcmp(resp.body, "hello world") == 0);
	REQUIRE(strcmp(http_response_header(&resp, "etag"), "\"abc123\"") == 0);
	REQUIRE(strcmp(http_response_header(&resp, "X-AMZ-META-FOO"), "bar") == 0);
	REQUIRE(strcmp(http_response_header(&resp, "Content-Length"), "11") == 0);
	REQUIRE(http_response_header(&resp, "x-missing") == NULL);
	http_response_cleanup(&resp);
	REQUIRE(resp.body == NULL && resp.header_count == 0);
}

/* A 2xx body goes to the fd at the offset; an error body still goes to memory. */
static void test_get_fd(struct http_client *c)
{
	struct http_response resp = { 0 };
	struct http_request req;
	char url[256];
	unsigned char *back;
	size_t n = 300000, i;
	int fd = temp_fd();

	snprintf(url, sizeof(url), "%s/big/%zu", base_url, n);
	http_request_init(&req, "GET", url);
	req.resp_fd = fd;
	req.resp_offset = 100;
	REQUIRE(http_perform(c, &req, &resp) == 0);
	REQUIRE(resp.status == 200);
	REQUIRE(resp.fd_bytes == n);
	REQUIRE(resp.body_len == 0);
	back = malloc(n);
	REQUIRE(pread(fd, back, n, 100) == (ssize_t)n);
	for (i = 0; i < n; i++)
		REQUIRE(back[i] == pattern(i));
	free(back);
	http_response_cleanup(&resp);

	/* A non-2xx body goes to memory even when an fd sink is given. */
	snprintf(url, sizeof(url), "%s/status/404", base_url);
	http_request_init(&req, "GET", url);
	req.resp_fd = fd;
	REQUIRE(http_perform(c, &req, &resp) == 0);
	REQUIRE(resp.status == 404);
	REQUIRE(resp.fd_bytes == 0);
	REQUIRE(resp.body && strstr(resp.body, "NoSuchKey"));
	http_response_cleanup(&resp);

	/* Pinned to a version: another ETag is refused before its body lands. */
	{
		int pinned = temp_fd();
		struct stat st;

		snprintf(url, sizeof(url), "%s/hello", base_url);
		http_request_init(&req, "GET", url);
		req.resp_fd = pinned;
		req.only_etag = "not-abc123";
		REQUIRE(http_perform(c, &req, &resp) == -ESTALE);
		REQUIRE(fstat(pinned, &st) == 0 && st.st_size == 0);
		http_response_cleanup(&resp);
		http_request_init(&req, "GET", url);
		req.resp_fd = pinned;
		req.only_etag = "abc123";
		REQUIRE(http_perform(c, &req, &resp) == 0);
		REQUIRE(resp.fd_bytes == 11);
		http_response_cleanup(&resp);
		close(pinned);
	}
	close(fd);
}

/* Uploads from an fd range and memory carry Content-Length and arrive intact. */
static void test_put_fd_range(struct http_client *c)
{
	struct http_response resp = { 0 };
	struct http_request req;
	char url[256];
	size_t total = 1 << 20, off = 12345, n = 500000, i;
	unsigned char *data = malloc(total);
	int fd = temp_fd();

	for (i = 0; i < total; i++)
		data[i] = pattern(i);
	REQUIRE(pwrite(fd, data, total, 0) == (ssize_t)total);
	snprintf(url, sizeof(url), "%s/echo", base_url);
	http_request_init(&req, "PUT", url);
	req.body_fd = fd;
	req.body_offset = (off_t)off;
	req.body_size = n;
	REQUIRE(http_perform(c, &req, &resp) == 0);
	REQUIRE(resp.status == 200); /* 400 if the server saw no Content-Length */
	REQUIRE(strcmp(http_response_header(&resp, "x-method"), "PUT") == 0);
	REQUIRE(resp.body_len == n);
	REQUIRE(memcmp(resp.body, data + off, n) == 0);
	http_response_cleanup(&resp);

	/* An empty PUT still carries Content-Length: 0. */
	http_request_init(&req, "PUT", url);
	REQUIRE(http_perform(c, &req, &resp) == 0);
	REQUIRE(resp.status == 200 && resp.body_len == 0);
	http_response_cleanup(&resp);

	/* A POST from memory. */
	http_request_init(&req, "POST", url);
	req.body = "a=1&b=2";
	req.body_size = 7;
	REQUIRE(http_perform(c, &req, &resp) == 0);
	REQUIRE(resp.status == 200 && resp.body_len == 7 && strcmp(resp.body, "a=1&b=2") == 0);
	http_response_cleanup(&resp);

	/* An fd shorter than body_size fails rather than send a short body. */
	http_request_init(&req, "PUT", url);
	req.body_fd = fd;
	req.body_offset = (off_t)(total - 10);
	req.body_size = 100;
	REQUIRE(http_perform(c, &req, &resp) == -EIO);
	http_response_cleanup(&resp);
	free(data);
	close(fd);
}

/* Memory bodies stop at the cap: -EFBIG for 2xx, truncation for errors. */
static void test_cap(struct http_client *c)
{
	struct http_response resp = { 0 };
	struct http_request req;
	char url[256];

	snprintf(url, sizeof(url), "%s/big/300000", base_url);
	http_request_init(&req, "GET", url);
	req.max_body = 100000;
	REQUIRE(http_perform(c, &req, &resp) == -EFBIG);
	REQUIRE(strstr(resp.error, "cap") != NULL);
	http_response_cleanup(&resp);

	/* Exactly at the cap is fine. */
	req.max_body = 300000;
	REQUIRE(http_perform(c, &req, &resp) == 0 && resp.body_len == 300000);
	http_response_cleanup(&resp);

	/* An error body over the cap is truncated; the status survives. */
	snprintf(url, sizeof(url), "%s/error/big", base_url);
	http_request_init(&req, "GET", url);
	req.max_body = 1000;
	REQUIRE(http_perform(c, &req, &resp) == 0);
	REQUIRE(resp.status == 500 && resp.body_len == 1000 && resp.body_truncated);
	http_response_cleanup(&resp);
}

/* A server that never answers costs the deadline, not more: -ETIMEDOUT. */
static void test_deadline(struct http_client *c)
{
	struct http_response resp = { 0 };
	struct http_request req;
	char url[256];
	double t0 = now_s(), dt;

	snprintf(url, sizeof(url), "%s/hang", base_url);
	http_request_init(&req, "GET", url);
	req.timeout_ms = 1000;
	REQUIRE(http_perform(c, &req, &resp) == -ETIMEDOUT);
	dt = now_s() - t0;
	REQUIRE(dt >= 0.9 && dt < 5);
	REQUIRE(strstr(resp.error, "timed out") != NULL);
	http_response_cleanup(&resp);
}

/* Nothing listening or no such host is -EHOSTUNREACH; a bad scheme -EINVAL. */
static void test_refused(struct http_client *c)
{
	struct http_response resp = { 0 };
	struct http_request req;
	char url[256];
	int port, fd = listen_loopback(&port);

	close(fd); /* nothing listens there any more */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
	http_request_init(&req, "GET", url);
	REQUIRE(http_perform(c, &req, &resp) == -EHOSTUNREACH);
	REQUIRE(resp.error[0] != '\0');
	http_response_cleanup(&resp);

	http_request_init(&req, "GET", "http://no-such-host.invalid/x");
	REQUIRE(http_perform(c, &req, &resp) == -EHOSTUNREACH);
	http_response_cleanup(&resp);

	http_request_init(&req, "GET", "ftp://127.0.0.1/x");
	REQUIRE(http_perform(c, &req, &resp) == -EINVAL);
	http_response_cleanup(&resp);
}

/* A reset connection is -ECONNRESET and leaves the client usable. */
static void test_reset(struct http_client *c)
{
	struct http_response resp = { 0 };

	REQUIRE(get(c, "/reset", &resp) == -ECONNRESET);
	http_response_cleanup(&resp);
	/* The client is still usable afterwards. */
	REQUIRE(get(c, "/hello", &resp) == 0 && resp.status == 200);
	http_response_cleanup(&resp);
}

/* How many /reset requests the server has seen. */
static int resets_seen(struct http_client *c)
{
	struct http_response resp = { 0 };
	int n = -1;

	if (get(c, "/resets", &resp) == 0 && resp.status == 200 && resp.body)
		n = atoi(resp.body);
	http_response_cleanup(&resp);
	return n;
}

/* A reused connection dying before any answer: libcurl resends a GET by
 * itself once (on a fresh connection), but never a no_resend PUT, which
 * fails with -ECONNRESET after exactly one send. */
static void test_no_resend(struct http_client *c)
{
	struct http_response resp = { 0 };
	struct http_request req;
	char url[256];
	int before;

	snprintf(url, sizeof(url), "%s/reset", base_url);
	before = resets_seen(c); /* also leaves a kept-alive connection */
	REQUIRE(get(c, "/reset", &resp) == -ECONNRESET);
	http_response_cleanup(&resp);
	REQUIRE(resets_seen(c) == before + 2); /* libcurl's own resend, for a GET */

	before = resets_seen(c);
	http_request_init(&req, "PUT", url);
	req.body = "x";
	req.body_size = 1;
	req.no_resend = true;
	REQUIRE(http_perform(c, &req, &resp) == -ECONNRESET);
	REQUIRE(strstr(resp.error, "not resent") != NULL);
	http_response_cleanup(&resp);
	REQUIRE(resets_seen(c) == before + 1);

	/* keep-alive still works for the requests that follow */
	REQUIRE(get(c, "/hello", &resp) == 0 && resp.status == 200);
	http_response_cleanup(&resp);
}

/* A header value with CR/LF is refused, not injected. */
static void test_bad_header(struct http_client *c)
{
	struct http_header h = { "X-Bad", "a\r\nInjected: 1" };
	struct http_response resp = { 0 };
	struct http_request req;
	char url[256];

	snprintf(url, sizeof(url), "%s/hello", base_url);
	http_request_init(&req, "GET", url);
	req.headers = &h;
	req.header_count = 1;
	REQUIRE(http_perform(c, &req, &resp) == -EINVAL);
	http_response_cleanup(&resp);
}

/* Sequential requests reuse one connection (server and client counts agree). */
static void test_keepalive(void)
{
	struct http_client *c = http_client_create(NULL);
	struct http_response resp = { 0 };
	struct http_stats st;
	char first[32] = "";
	int i, before, after;

	REQUIRE(c);
	REQUIRE(get(c, "/stats", &resp) == 0);
	before = atoi(resp.body);
	http_response_cleanup(&resp);
	for (i = 0; i < 10; i++) {
		REQUIRE(get(c, "/conn", &resp) == 0 && resp.status == 200);
		if (i == 0)
			snprintf(first, sizeof(first), "%s", resp.body);
		REQUIRE(strcmp(first, resp.body) == 0);
		http_response_cleanup(&resp);
	}
	REQUIRE(get(c, "/stats", &resp) == 0);
	after = atoi(resp.body);
	http_response_cleanup(&resp);
	REQUIRE(after == before); /* not one new connection on the server */
	http_client_stats(c, &st);
	REQUIRE(st.connections == 1);
	REQUIRE(st.requests == 12);
	http_client_destroy(c);
}

struct worker {
	struct http_client *c;
	int id;
	int failures;
};

/* One of the concurrent threads: GETs and PUTs, checking every byte. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct http_response resp = { 0 };
	struct http_request req;
	char url[256], body[4096];
	size_t n = 20000 + (size_t)w->id * 1000, i;
	int k;

	for (k = 0; k < 25; k++) {
		snprintf(url, sizeof(url), "%s/big/%zu", base_url, n);
		if (get(w->c, url + strlen(base_url), &resp) != 0 || resp.status != 200 ||
		    resp.body_len != n)
			w->failures++;
		else
			for (i = 0; i < n; i++)
				if ((unsigned char)resp.body[i] != pattern(i)) {
					w->failures++;
					break;
				}
		http_response_cleanup(&resp);

		snprintf(body, sizeof(body), "worker %d request %d", w->id, k);
		snprintf(url, sizeof(url), "%s/echo", base_url);
		http_request_init(&req, "PUT", url);
		req.body = body;
		req.body_size = strlen(body);
		if (http_perform(w->c, &req, &resp) != 0 || resp.status != 200 ||
		    resp.body_len != strlen(body) || strcmp(resp.body, body) != 0)
			w->failures++;
		http_response_cleanup(&resp);
	}
	return NULL;
}

/* 8 threads share one client without errors and mostly reuse connections. */
static void test_concurrent(void)
{
	struct http_client *c = http_client_create(NULL);
	struct worker w[8];
	pthread_t th[8];
	struct http_stats st;
	int i;

	REQUIRE(c);
	for (i = 0; i < 8; i++) {
		w[i] = (struct worker){ .c = c, .id = i };
		REQUIRE(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		REQUIRE(w[i].failures == 0);
	}
	http_client_stats(c, &st);
	REQUIRE(st.requests == 8 * 50);
	REQUIRE(st.transport_errors == 0);
	/* Handles go back to the pool, so connections are reused across threads. */
	REQUIRE(st.connections <= 16);
	http_client_destroy(c);
}

/* Run a shell command; true when it exits 0. */
static bool run(const char *cmd)
{
	int st = system(cmd);

	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* TLS: an untrusted certificate is refused with -EACCES, and trusted through
 * ca_file. Skipped (not failed) without the openssl tool. */
static void test_tls(void)
{
	char dir[] = "/tmp/test_http_tls_XXXXXX", cmd[1024], url[128], ca[128];
	struct http_client_config cfg = { 0 };
	struct http_client *c = NULL;
	struct http_response resp = { 0 };
	struct http_request req;
	pid_t pid;
	int port, fd, i, rc;

	if (!run("command -v openssl >/dev/null 2>&1")) {
		fprintf(stderr, "skip: no openssl tool for the TLS test\n");
		return;
	}
	REQUIRE(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
		 " -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
		 " -days 1 -keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
		 dir, dir);
	REQUIRE(run(cmd));
	fd = listen_loopback(&port);
	close(fd);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		char accept_arg[32], cert[128], key[128];
		int devnull = open("/dev/null", O_RDWR);

		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		alarm(SERVER_LIFETIME_S);
		snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", port);
		snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
		snprintf(key, sizeof(key), "%s/key.pem", dir);
		execlp("openssl", "openssl", "s_server", "-quiet", "-www", "-accept",
		       accept_arg, "-cert", cert, "-key", key, (char *)NULL);
		_exit(127);
	}
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", port);
	c = http_client_create(NULL);
	REQUIRE(c);
	/* Wait for s_server to listen: refused until then. */
	for (i = 0; i < 100; i++) {
		http_request_init(&req, "GET", url);
		rc = http_perform(c, &req, &resp);
		http_response_cleanup(&resp);
		if (rc != -EHOSTUNREACH)
			break;
		usleep(50000);
	}
	http_request_init(&req, "GET", url);
	REQUIRE(http_perform(c, &req, &resp) == -EACCES);
	REQUIRE(strstr(resp.error, "TLS verification failed") != NULL);
	http_response_cleanup(&resp);
	http_client_destroy(c);

	snprintf(ca, sizeof(ca), "%s/cert.pem", dir);
	cfg.ca_file = ca;
	c = http_client_create(&cfg);
	REQUIRE(c);
	http_request_init(&req, "GET", url);
	REQUIRE(http_perform(c, &req, &resp) == 0);
	REQUIRE(resp.status == 200);
	http_response_cleanup(&resp);
	http_client_destroy(c);

	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	run(cmd);
}

/* Start the server(s), run every test, clean up. */
int main(void)
{
	struct http_client_config cfg = { .connect_timeout_ms = 2000, .timeout_ms = 10000 };
	struct http_client *c;

	signal(SIGPIPE, SIG_IGN);
	start_server(); /* before any thread exists in this process */
	c = http_client_create(&cfg);
	REQUIRE(c);
	test_get_memory(c);
	test_get_fd(c);
	test_put_fd_range(c);
	test_cap(c);
	test_deadline(c);
	test_refused(c);
	test_reset(c);
	test_no_resend(c);
	test_bad_header(c);
	http_client_destroy(c);
	http_client_destroy(NULL);
	test_keepalive();
	test_concurrent();
	stop_server();
	test_tls();
	printf("test_http: ok\n");
	return 0;
}
