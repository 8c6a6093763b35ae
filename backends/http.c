/*
 * http.c - libcurl transport for the remote backends and the credential
 * sources: one request in, one answer (or one negative errno) out.
 *
 * It is not a retry loop, a signer or a status interpreter (see http.h).
 *
 * Connection reuse: each thread takes a libcurl easy handle from a small
 * pool and gives it back after the request; an easy handle keeps its own
 * live connections across curl_easy_reset(), so sequential requests reuse
 * one kept-alive connection. Connections are deliberately not put in the
 * CURLSH share: libcurl documents sharing the connection cache between
 * concurrently running threads as unsupported. The share holds what is safe
 * to share under our lock callbacks: the DNS cache and TLS session IDs.
 *
 * Bulk transfers: bodies to or from an fd use large libcurl buffers
 * (HTTP_BULK_BUFFER), and the callbacks pread()/pwrite() straight between
 * the fd and libcurl's own buffer, so a body is copied once between the
 * socket and the page cache and no more.
 *
 * Resends: libcurl repeats a request by itself, once, when a reused
 * connection turns out dead before any answer arrived (the server may have
 * closed it just as we sent, or may have applied the request and died).
 * For requests marked no_resend, the pre-request callback sees the second
 * send on the same transfer and refuses it; the caller gets -ECONNRESET and
 * decides, by its own rules, whether the request may be repeated.
 */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifndef FALLBACKFS_VERSION
#define FALLBACKFS_VERSION "dev"
#endif

/* libcurl's receive and upload buffers for bodies to or from an fd: large
 * enough that a 30 MB body is a few hundred syscalls, small enough for a
 * dozen transfers at once under the daemon's memory target. */
#define HTTP_BULK_BUFFER (256L * 1024)

struct http_client {
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t lock;
	CURL **idle;        /* protected by lock */
	size_t idle_count;  /* protected by lock */
	size_t max_idle;
	long connect_timeout_ms;
	long timeout_ms;
	long low_speed_limit;
	long low_speed_time_s;
	char *ca_file;
	char *user_agent;
	atomic_uint_fast64_t n_requests;
	atomic_uint_fast64_t n_errors;
	atomic_uint_fast64_t n_connections;
	atomic_uint_fast64_t n_sent;
	atomic_uint_fast64_t n_received;
};

/* State of one transfer, shared with the libcurl callbacks. */
struct transfer {
	const struct http_request *req;
	struct http_response *resp;
	CURL *easy;
	uint64_t up_pos;     /* next request-body byte curl will read */
	size_t cap;          /* memory body cap */
	size_t alloc;        /* bytes allocated for resp->body */
	size_t header_bytes; /* header bytes of the current answer */
	int cb_err;          /* negative errno of a callback that aborted */
	bool sink_decided;   /* to_fd/is_2xx set for the current answer */
	bool to_fd;
	bool is_2xx;
	bool stopped_ok;     /* we stopped a non-2xx body at the cap on purpose */
	unsigned sends;      /* times libcurl was about to send the request */
	bool resend_refused; /* a no_resend request was about to go out again */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

/* One errno per libcurl failure: the only place transport errors are mapped. */
static const struct {
	CURLcode code;
	int err;
	const char *what;
} curl_errors[] = {
	{ CURLE_OPERATION_TIMEDOUT, -ETIMEDOUT, "timed out" },
	{ CURLE_COULDNT_RESOLVE_HOST, -EHOSTUNREACH, "cannot resolve host" },
	{ CURLE_COULDNT_RESOLVE_PROXY, -EHOSTUNREACH, "cannot resolve proxy" },
	{ CURLE_COULDNT_CONNECT, -EHOSTUNREACH, "cannot connect" },
	{ CURLE_RECV_ERROR, -ECONNRESET, "connection failed while receiving" },
	{ CURLE_SEND_ERROR, -ECONNRESET, "connection failed while sending" },
	{ CURLE_GOT_NOTHING, -ECONNRESET, "connection closed without an answer" },
	{ CURLE_PARTIAL_FILE, -ECONNRESET, "connection closed before the whole body" },
	{ CURLE_HTTP2, -ECONNRESET, "HTTP/2 connection failed" },
	{ CURLE_HTTP2_STREAM, -ECONNRESET, "HTTP/2 stream reset" },
	{ CURLE_PEER_FAILED_VERIFICATION, -EACCES,
	  "TLS verification failed (untrusted certificate or host name mismatch)" },
	{ CURLE_SSL_CACERT_BADFILE, -EACCES, "TLS verification failed (cannot use CA file)" },
	{ CURLE_SSL_CONNECT_ERROR, -EIO, "TLS handshake failed" },
	{ CURLE_OUT_OF_MEMORY, -ENOMEM, "out of memory" },
	{ CURLE_URL_MALFORMAT, -EINVAL, "malformed URL" },
	{ CURLE_UNSUPPORTED_PROTOCOL, -EINVAL, "unsupported URL scheme" },
	{ CURLE_FILESIZE_EXCEEDED, -EFBIG, "response too large" },
};

/* Initialise libcurl once per process; curl_global_cleanup is never called
 * because other libraries in the process may still use libcurl. */
static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* CURLSH lock callback: one mutex per kind of shared data. */
static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
	struct http_client *c = arg;

	(void)h;
	(void)access;
	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&c->share_locks[data]);
}

/* CURLSH unlock callback. */
static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
	struct http_client *c = arg;

	(void)h;
	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&c->share_locks[data]);
}

/* Create a client: copy the config, set up the DNS/TLS share. */
struct http_client *http_client_create(const struct http_client_config *cfg)
{
	struct http_client_config def = { 0 };
	struct http_client *c = NULL;
	int i;

	if (!cfg)
		cfg = &def;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return NULL;

	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	pthread_mutex_init(&c->lock, NULL);

	c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms
							     : HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
	c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
	c->low_speed_limit = cfg->low_speed_limit ? cfg->low_speed_limit
						  : HTTP_DEFAULT_LOW_SPEED_LIMIT;
	c->low_speed_time_s = cfg->low_speed_time_s > 0 ? cfg->low_speed_time_s
							: HTTP_DEFAULT_LOW_SPEED_TIME_S;
	c->max_idle = cfg->max_idle ? cfg->max_idle : HTTP_DEFAULT_MAX_IDLE;
	c->idle = calloc(c->max_idle, sizeof(*c->idle));
	if (!c->idle)
		goto fail;
	if (cfg->ca_file && !(c->ca_file = strdup(cfg->ca_file)))
		goto fail;
	c->user_agent = strdup(cfg->user_agent ? cfg->user_agent
					       : "fallbackfs/" FALLBACKFS_VERSION);
	if (!c->user_agent)
		goto fail;

	c->share = curl_share_init();
	if (!c->share)
		goto fail;
	if (curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) ||
	    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
	    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION))
		goto fail;
	return c;

fail:
	http_client_destroy(c);
	return NULL;
}

/* Free the pooled handles (closing their connections), then the share. */
void http_client_destroy(struct http_client *c)
{
	size_t i;
	int j;

	if (!c)
		return;
	/* Easy handles first: they reference the share. */
	for (i = 0; i < c->idle_count; i++)
		curl_easy_cleanup(c->idle[i]);
	free(c->idle);
	if (c->share)
		curl_share_cleanup(c->share);
	for (j = 0; j < CURL_LOCK_DATA_LAST; j++)
		pthread_mutex_destroy(&c->share_locks[j]);
	pthread_mutex_destroy(&c->lock);
	free(c->ca_file);
	free(c->user_agent);
	free(c);
}

/* Snapshot the counters; each is atomic, the set is not. */
void http_client_stats(struct http_client *c, struct http_stats *out)
{
	out->requests = atomic_load(&c->n_requests);
	out->transport_errors = atomic_load(&c->n_errors);
	out->connections = atomic_load(&c->n_connections);
	out->bytes_sent = atomic_load(&c->n_sent);
	out->bytes_received = atomic_load(&c->n_received);
}

/* Take an idle easy handle (with its live connections) or make a new one. */
static CURL *acquire_handle(struct http_client *c)
{
	CURL *easy = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->idle_count > 0)
		easy = c->idle[--c->idle_count];
	pthread_mutex_unlock(&c->lock);
	if (!easy)
		easy = curl_easy_init();
	return easy;
}

/* Return a handle to the pool, keeping its connections, or free it when the
 * pool is full. */
static void release_handle(struct http_client *c, CURL *easy)
{
	/* Reset drops every option (and pointers into our stack frame) but keeps
	 * live connections, the DNS cache and TLS sessions. */
	curl_easy_reset(easy);
	pthread_mutex_lock(&c->lock);
	if (c->idle_count < c->max_idle) {
		c->idle[c->idle_count++] = easy;
		easy = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (easy)
		curl_easy_cleanup(easy);
}

/* Zero a request and mark both fd fields unused. */
void http_request_init(struct http_request *req, const char *method, const char *url)
{
	memset(req, 0, sizeof(*req));
	req->method = method;
	req->url = url;
	req->body_fd = -1;
	req->resp_fd = -1;
}

/* Free the kept response headers (they may carry tokens, so wipe them). */
static void free_headers(struct http_response *resp)
{
	size_t i;

	for (i = 0; i < resp->header_count; i++) {
		if (resp->headers[i].value) {
			explicit_bzero(resp->headers[i].value, strlen(resp->headers[i].value));
			free(resp->headers[i].value);
		}
		free(resp->headers[i].name);
	}
	free(resp->headers);
	resp->headers = NULL;
	resp->header_count = 0;
}

/* Drop the memory body, wiping it: bodies may hold credentials. */
static void free_body(struct http_response *resp, size_t alloc)
{
	if (resp->body) {
		explicit_bzero(resp->body, alloc);
		free(resp->body);
	}
	resp->body = NULL;
	resp->body_len = 0;
	resp->body_truncated = false;
}

/* Free and wipe a response; safe on a zeroed one. */
void http_response_cleanup(struct http_response *resp)
{
	free_headers(resp);
	if (resp->body)
		free_body(resp, resp->body_len + 1);
	memset(resp, 0, sizeof(*resp));
}

/* Linear search: answers carry a handful of headers. */
const char *http_response_header(const struct http_response *resp, const char *name)
{
	size_t i;

	for (i = 0; i < resp->header_count; i++)
		if (strcasecmp(resp->headers[i].name, name) == 0)
			return resp->headers[i].value;
	return NULL;
}

/* Return s[0..n) without surrounding blanks (spaces, tabs, CR, LF). */
static void trim(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && strchr(" \t\r\n", (*s)[*n - 1]))
		(*n)--;
}

/* libcurl header callback: keep the headers of the final answer only. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct transfer *t = arg;
	struct http_response *resp = t->resp;
	struct http_response_header *grown;
	const char *name = data, *value, *colon;
	size_t n = size * nmemb, name_len, value_len;

	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* A new answer (after 100 Continue, or a resend): forget the
		 * previous one, including any body bytes it delivered. */
		free_headers(resp);
		free_body(resp, t->alloc);
		t->alloc = 0;
		t->header_bytes = 0;
		t->sink_decided = false;
		resp->fd_bytes = 0;
		return n;
	}
	t->header_bytes += n;
	if (t->header_bytes > HTTP_MAX_HEADER_BYTES) {
		t->cb_err = -EFBIG;
		return 0;
	}
	colon = memchr(data, ':', n);
	if (!colon)
		return n; /* the blank line ending the headers, or junk */
	name_len = (size_t)(colon - data);
	value = colon + 1;
	value_len = n - name_len - 1;
	trim(&name, &name_len);
	trim(&value, &value_len);
	if (name_len == 0)
		return n;

	grown = realloc(resp->headers, (resp->header_count + 1) * sizeof(*grown));
	if (!grown)
		goto nomem;
	resp->headers = grown;
	grown[resp->header_count].name = strndup(name, name_len);
	grown[resp->header_count].value = strndup(value, value_len);
	resp->header_count++;
	if (!grown[resp->header_count - 1].name || !grown[resp->header_count - 1].value)
		goto nomem;
	return n;

nomem:
	t->cb_err = -ENOMEM;
	return 0;
}

/* Decide where this answer's body goes, once its status is known. */
static void decide_sink(struct transfer *t)
{
	long status = 0;

	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	t->is_2xx = status >= 200 && status < 300;
	t->to_fd = t->is_2xx && t->req->resp_fd >= 0;
	t->sink_decided = true;
}

/* Append n bytes to the memory body, honouring the cap; 0 or negative errno. */
static int append_body(struct transfer *t, const char *data, size_t n)
{
	struct http_response *resp = t->resp;
	size_t need, new_alloc;
	char *grown;

	if (n > t->cap - resp->body_len) {
		if (t->is_2xx)
			return -EFBIG;
		/* Keep what fits of an error body and stop reading it. */
		n = t->cap - resp->body_len;
		resp->body_truncated = true;
	}
	need = resp->body_len + n + 1;
	if (need > t->alloc) {
		new_alloc = t->alloc ? t->alloc : 4096;
		while (new_alloc < need)
			new_alloc *= 2;
		if (new_alloc > t->cap + 1)
			new_alloc = t->cap + 1;
		/* malloc-copy-wipe rather than realloc, so no copy of a body that
		 * may hold credentials is left behind in freed memory. */
		grown = malloc(new_alloc);
		if (!grown)
			return -ENOMEM;
		if (resp->body) {
			memcpy(grown, resp->body, resp->body_len);
			explicit_bzero(resp->body, t->alloc);
			free(resp->body);
		}
		resp->body = grown;
		t->alloc = new_alloc;
	}
	memcpy(resp->body + resp->body_len, data, n);
	resp->body_len += n;
	resp->body[resp->body_len] = '\0';
	return resp->body_truncated ? 1 : 0;
}

/* Write n bytes at the sink offset of the caller's fd; 0 or negative errno. */
static int write_fd(struct transfer *t, const char *data, size_t n)
{
	struct http_response *resp = t->resp;
	ssize_t w;

	while (n > 0) {
		w = pwrite(t->req->resp_fd, data, n,
			   t->req->resp_offset + (off_t)resp->fd_bytes);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += w;
		n -= (size_t)w;
		resp->fd_bytes += (uint64_t)w;
	}
	return 0;
}

/* Do two ETag values name the same version (quotes ignored)? */
static bool same_etag(const char *a, const char *b)
{
	size_t la, lb;

	if (!a || !b)
		return false;
	if (*a == '"')
		a++;
	if (*b == '"')
		b++;
	la = strcspn(a, "\"");
	lb = strcspn(b, "\"");
	return la == lb && memcmp(a, b, la) == 0;
}

/* libcurl write callback: 2xx bodies to the fd when given, else to memory. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct transfer *t = arg;
	size_t n = size * nmemb;
	int rc;

	if (!t->sink_decided) {
		decide_sink(t);
		if (t->to_fd && t->req->only_etag &&
		    !same_etag(http_response_header(t->resp, "ETag"), t->req->only_etag)) {
			t->cb_err = -ESTALE;
			return 0;
		}
	}
	rc = t->to_fd ? write_fd(t, data, n) : append_body(t, data, n);
	if (rc < 0) {
		t->cb_err = rc;
		return 0;
	}
	if (rc > 0) {
		t->stopped_ok = true;
		return 0; /* abort the transfer: the truncated error body is enough */
	}
	return n;
}

/* libcurl read callback: the request body from memory or pread from the fd. */
static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct transfer *t = arg;
	const struct http_request *req = t->req;
	uint64_t left = req->body_size - t->up_pos;
	size_t want = size * nitems;
	ssize_t r;

	if (want > left)
		want = (size_t)left;
	if (want == 0)
		return 0;
	if (req->body) {
		memcpy(buf, (const char *)req->body + t->up_pos, want);
		t->up_pos += want;
		return want;
	}
	do
		r = pread(req->body_fd, buf, want, req->body_offset + (off_t)t->up_pos);
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		/* A short file would make us send fewer bytes than Content-Length. */
		t->cb_err = r < 0 ? -errno : -EIO;
		return CURL_READFUNC_ABORT;
	}
	t->up_pos += (uint64_t)r;
	return (size_t)r;
}

/* libcurl seek callback: rewind the body when curl must resend it. */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
	struct transfer *t = arg;

	if (origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	if (offset < 0 || (uint64_t)offset > t->req->body_size)
		return CURL_SEEKFUNC_FAIL;
	t->up_pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

#if LIBCURL_VERSION_NUM >= 0x075000
/* libcurl pre-request callback: runs once per send of the request, so a
 * second call is libcurl resending it; refused for no_resend requests. */
static int on_prereq(void *arg, char *primary_ip, char *local_ip, int primary_port,
		     int local_port)
{
	struct transfer *t = arg;

	(void)primary_ip;
	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	if (++t->sends > 1 && t->req->no_resend) {
		t->resend_refused = true;
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}
#endif

/* Map a failed transfer to a negative errno and a message in resp->error. */
static int map_curl_error(CURLcode rc, const struct transfer *t, const char *detail)
{
	struct http_response *resp = t->resp;
	const char *what = "transfer failed";
	int err = -EIO;
	size_t i;

	if (t->resend_refused) {
		/* The first send may or may not have been applied: a reset. */
		snprintf(resp->error, sizeof(resp->error), "connection closed before any "
			 "answer; request not resent (it must not be repeated blindly)");
		return -ECONNRESET;
	}
	if (t->cb_err) {
		/* Our own callbacks stopped the transfer: their reason wins over
		 * libcurl's generic "write/read error". */
		err = t->cb_err;
		if (err == -EFBIG)
			what = "response larger than the cap";
		else if (err == -ENOMEM)
			what = "out of memory";
		else if (err == -ESTALE)
			what = "the answer is another version than the one asked for";
		else
			what = "local file I/O failed";
		snprintf(resp->error, sizeof(resp->error), "%s (%s)", what, strerror(-err));
		return err;
	}
	for (i = 0; i < sizeof(curl_errors) / sizeof(curl_errors[0]); i++) {
		if (curl_errors[i].code == rc) {
			err = curl_errors[i].err;
			what = curl_errors[i].what;
			break;
		}
	}
	snprintf(resp->error, sizeof(resp->error), "%s: %s", what,
		 detail[0] ? detail : curl_easy_strerror(rc));
	return err;
}

/* Free a request header list, wiping it: it may carry tokens. */
static void free_header_list(struct curl_slist *list)
{
	struct curl_slist *l;

	for (l = list; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(list);
}

/* Build the header list; 0, -EINVAL for a header with CR/LF, or -ENOMEM. */
static int build_headers(const struct http_request *req, struct curl_slist **out)
{
	struct curl_slist *list = NULL, *next;
	char *line = NULL;
	size_t i;
	int ret = 0;

	for (i = 0; i < req->header_count; i++) {
		const char *name = req->headers[i].name;
		const char *value = req->headers[i].value ? req->headers[i].value : "";

		if (!name || !name[0] || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) {
			ret = -EINVAL;
			goto out;
		}
		/* "Name;" is libcurl's spelling of a header with an empty value. */
		if (value[0] ? asprintf(&line, "%s: %s", name, value) < 0
			     : asprintf(&line, "%s;", name) < 0) {
			line = NULL;
			ret = -ENOMEM;
			goto out;
		}
		next = curl_slist_append(list, line);
		/* Header values may be tokens (IMDS, ECS): wipe our copy. */
		explicit_bzero(line, strlen(line));
		free(line);
		line = NULL;
		if (!next) {
			ret = -ENOMEM;
			goto out;
		}
		list = next;
	}
	/* No "Expect: 100-continue": it costs a round trip (or a 1 s stall with
	 * servers that ignore it) and S3 answers errors early anyway. */
	next = curl_slist_append(list, "Expect:");
	if (!next) {
		ret = -ENOMEM;
		goto out;
	}
	list = next;

out:
	if (ret < 0) {
		free_header_list(list);
		list = NULL;
	}
	*out = list;
	return ret;
}

/* Set the method and body options of one request. */
static CURLcode set_method(CURL *easy, const struct http_request *req, struct transfer *t)
{
	bool has_body = req->body || req->body_fd >= 0;
	curl_off_t size = (curl_off_t)req->body_size;
	CURLcode rc = CURLE_OK;

	if (req->body_fd >= 0)
		rc |= curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, HTTP_BULK_BUFFER);
	if (has_body) {
		rc |= curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_read);
		rc |= curl_easy_setopt(easy, CURLOPT_READDATA, t);
		rc |= curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, on_seek);
		rc |= curl_easy_setopt(easy, CURLOPT_SEEKDATA, t);
	}
	if (strcmp(req->method, "GET") == 0 && !has_body) {
		rc |= curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(req->method, "HEAD") == 0) {
		rc |= curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
	} else if (strcmp(req->method, "POST") == 0) {
		rc |= curl_easy_setopt(easy, CURLOPT_POST, 1L);
		if (has_body) {
			/* A known size makes curl send Content-Length, not chunks. */
			rc |= curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, size);
		} else {
			rc |= curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "");
			rc |= curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		}
	} else if (strcmp(req->method, "PUT") == 0 || has_body) {
		/* Upload mode with an explicit size: Content-Length, never chunked;
		 * an empty PUT gets "Content-Length: 0". */
		rc |= curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
		rc |= curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, has_body ? size : 0);
		if (!has_body) {
			rc |= curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_read);
			rc |= curl_easy_setopt(easy, CURLOPT_READDATA, t);
		}
		if (strcmp(req->method, "PUT") != 0)
			rc |= curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);
	} else {
		rc |= curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);
	}
	return rc;
}

/* Perform one request on a pooled handle; see http.h for the contract. */
int http_perform(struct http_client *c, const struct http_request *req,
		 struct http_response *resp)
{
	char detail[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	struct transfer t = { 0 };
	CURL *easy = NULL;
	CURLcode rc = CURLE_OK;
	long connects = 0;
	int ret = 0;

	memset(resp, 0, sizeof(*resp));
	atomic_fetch_add(&c->n_requests, 1);
	if (!req->method || !req->url || (req->body && req->body_fd >= 0)) {
		snprintf(resp->error, sizeof(resp->error), "invalid request");
		ret = -EINVAL;
		goto out;
	}
	ret = build_headers(req, &headers);
	if (ret < 0) {
		snprintf(resp->error, sizeof(resp->error), "%s",
			 ret == -EINVAL ? "invalid request header" : "out of memory");
		goto out;
	}
	easy = acquire_handle(c);
	if (!easy) {
		snprintf(resp->error, sizeof(resp->error), "out of memory");
		ret = -ENOMEM;
		goto out;
	}

	t.req = req;
	t.resp = resp;
	t.easy = easy;
	t.cap = req->max_body ? req->max_body : HTTP_DEFAULT_MAX_BODY;

	rc |= curl_easy_setopt(easy, CURLOPT_URL, req->url);
	rc |= curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, detail);
	rc |= curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
	rc |= curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	rc |= curl_easy_setopt(easy, CURLOPT_SHARE, c->share);
#if LIBCURL_VERSION_NUM >= 0x075500
	rc |= curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	rc |= curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	/* S3 speaks HTTP/1.1 only; pinning it keeps Content-Length semantics
	 * and connection reuse identical for every backend. */
	rc |= curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	rc |= curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	rc |= curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file)
		rc |= curl_easy_setopt(easy, CURLOPT_CAINFO, c->ca_file);
	rc |= curl_easy_setopt(easy, CURLOPT_USERAGENT, c->user_agent);
	rc |= curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
			       req->connect_timeout_ms > 0 ? req->connect_timeout_ms
							   : c->connect_timeout_ms);
	rc |= curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
			       req->timeout_ms > 0 ? req->timeout_ms : c->timeout_ms);
	if (c->low_speed_limit > 0) {
		rc |= curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, c->low_speed_limit);
		rc |= curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, c->low_speed_time_s);
	}
	if (req->no_proxy)
		rc |= curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
	rc |= curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	rc |= curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	rc |= curl_easy_setopt(easy, CURLOPT_HEADERDATA, &t);
	rc |= curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	rc |= curl_easy_setopt(easy, CURLOPT_WRITEDATA, &t);
	if (req->resp_fd >= 0)
		rc |= curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, HTTP_BULK_BUFFER);
#if LIBCURL_VERSION_NUM >= 0x075000
	rc |= curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, on_prereq);
	rc |= curl_easy_setopt(easy, CURLOPT_PREREQDATA, &t);
#else
	/* No pre-request callback: a fresh connection is never resent. */
	if (req->no_resend)
		rc |= curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
#endif
	rc |= set_method(easy, req, &t);
	if (rc != CURLE_OK) {
		/* OR-ed codes are not meaningful; any failure here means a libcurl
		 * built without a feature we rely on. */
		snprintf(resp->error, sizeof(resp->error), "libcurl rejected an option");
		ret = -EIO;
		goto out;
	}

	rc = curl_easy_perform(easy);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &resp->status);
	if (curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0)
		atomic_fetch_add(&c->n_connections, (uint64_t)connects);
	atomic_fetch_add(&c->n_sent, t.up_pos);
	atomic_fetch_add(&c->n_received, resp->body_len + resp->fd_bytes);
	if (rc != CURLE_OK && !(t.stopped_ok && resp->status > 0))
		ret = map_curl_error(rc, &t, detail);
	else if (resp->status == 0) {
		snprintf(resp->error, sizeof(resp->error), "no HTTP status in the answer");
		ret = -EIO;
	}

out:
	if (easy)
		release_handle(c, easy);
	free_header_list(headers);
	if (ret < 0)
		atomic_fetch_add(&c->n_errors, 1);
	return ret;
}
