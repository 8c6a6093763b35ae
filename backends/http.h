/*
 * http.h - the HTTP transport shared by every remote backend (S3, GCS) and by
 * the AWS credential sources.
 *
 * What it is: one thread-safe client built on libcurl that performs a single
 * HTTP request and hands back the answer: status, response headers, and a
 * body delivered to memory (hard-capped) or to a file descriptor (pwrite).
 * Connections are kept alive and reused; DNS answers and TLS sessions are
 * shared between threads.
 *
 * What it is not: it does not sign, retry, follow redirects or interpret
 * status codes. A 404 or 503 is a successful transport (returns 0); mapping
 * HTTP status to errno and deciding to retry belong to the backend (the S3
 * layer owns http_status_to_errno()).
 *
 * Transport errors map to a negative errno in exactly one table (http.c,
 * map_curl_error()):
 *   -ETIMEDOUT     connect timeout, request deadline, or low-speed abort
 *   -EHOSTUNREACH  host unresolvable, connection refused, network unreachable
 *   -ECONNRESET    connection reset, dropped, or closed mid-answer
 *   -EACCES        TLS verification of the peer failed (bad certificate, wrong
 *                  host name, unusable CA file): we refuse to talk to a peer we
 *                  cannot authenticate, which is a permission decision, not a
 *                  transient fault; never worth a retry. resp->error says
 *                  "TLS verification failed" so it is not mistaken for a
 *                  credentials problem.
 *   -EFBIG         a 2xx body sent to memory exceeded req->max_body, or the
 *                  response headers exceeded HTTP_MAX_HEADER_BYTES
 *   -ENOMEM        allocation failure
 *   -EINVAL        malformed request (bad URL, unsupported scheme)
 *   other          an errno from pread/pwrite on the caller's fds (e.g. -ENOSPC)
 *   -EIO           anything else
 */
#ifndef FALLBACKFS_HTTP_H
#define FALLBACKFS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Defaults used when a config or request field is 0. */
#define HTTP_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define HTTP_DEFAULT_TIMEOUT_MS 60000
#define HTTP_DEFAULT_LOW_SPEED_LIMIT 1024 /* bytes per second ... */
#define HTTP_DEFAULT_LOW_SPEED_TIME_S 30  /* ... for this long aborts */
#define HTTP_DEFAULT_MAX_BODY (1024 * 1024)
#define HTTP_DEFAULT_MAX_IDLE 16

/* Total size of the response headers we keep; beyond it -EFBIG. */
#define HTTP_MAX_HEADER_BYTES (64 * 1024)
/* Size of struct http_response.error. */
#define HTTP_ERROR_MAX 256

struct http_client_config {
	long connect_timeout_ms; /* 0: HTTP_DEFAULT_CONNECT_TIMEOUT_MS */
	long timeout_ms;         /* whole-request deadline; 0: HTTP_DEFAULT_TIMEOUT_MS */
	long low_speed_limit;    /* bytes/s; 0: default; <0: no low-speed abort */
	long low_speed_time_s;   /* 0: default */
	/*
	 * Optional CA bundle (PEM) trusted instead of libcurl's built-in default,
	 * for stores behind a private CA; NULL keeps the default. Peers and host
	 * names are always verified; AWS_CA_BUNDLE and friends are not read.
	 */
	const char *ca_file;
	const char *user_agent; /* NULL: "fallbackfs/<version>" */
	unsigned max_idle;      /* idle handles (connections) kept; 0: default */
};

struct http_header {
	const char *name;
	const char *value;
};

struct http_request {
	const char *method; /* "GET", "HEAD", "PUT", "POST", "DELETE", ... */
	const char *url;    /* full URL, http:// or https:// */
	const struct http_header *headers;
	size_t header_count;

	/* Request body: from memory (body != NULL), from an fd range
	 * (body_fd >= 0, read with pread), or none. Sent with Content-Length,
	 * never chunked; rewound automatically if libcurl must resend it. */
	const void *body;
	int body_fd; /* -1 when unused */
	off_t body_offset;
	uint64_t body_size; /* bytes of body / of the fd range */

	/* Response sink for 2xx answers: an fd (pwrite from resp_offset) when
	 * resp_fd >= 0, else memory. Non-2xx bodies always go to memory. */
	int resp_fd; /* -1 when unused */
	off_t resp_offset;
	/* With resp_fd: accept a 2xx body only if the answer's ETag equals
	 * this (quotes ignored); another version is refused before a byte of
	 * it is written and the call fails with -ESTALE. Pins a download to
	 * one version even where the server ignores If-Match. NULL: any. */
	const char *only_etag;
	/* Hard cap on a memory body; 0: HTTP_DEFAULT_MAX_BODY. A 2xx body over
	 * the cap fails with -EFBIG; a non-2xx body is truncated at the cap and
	 * resp->body_truncated is set, because its status is what matters. */
	size_t max_body;

	long timeout_ms;         /* per-request override of the deadline; 0: client's */
	long connect_timeout_ms; /* per-request override; 0: client's */
	bool no_proxy;           /* bypass any proxy from the environment (metadata
	                            endpoints are link-local) */
	/*
	 * Send this request at most once. libcurl silently resends a request
	 * whose reused connection died before any answer arrived; for a write
	 * that must not be repeated blindly (an unconditional PUT) that resend
	 * is refused and the call fails with -ECONNRESET instead, so the caller
	 * can find out whether the first send was applied. Connections are still
	 * reused, so keep-alive is kept for every request.
	 */
	bool no_resend;
};

struct http_response_header {
	char *name;
	char *value;
};

struct http_response {
	long status; /* HTTP status of the final answer; 0 if none arrived */
	struct http_response_header *headers; /* headers of the final answer */
	size_t header_count;
	char *body;     /* memory body, NUL-terminated (not counted in body_len) */
	size_t body_len;
	bool body_truncated; /* non-2xx body cut at max_body */
	uint64_t fd_bytes;   /* bytes written to req->resp_fd */
	char error[HTTP_ERROR_MAX]; /* short human message on failure; no secrets */
};

/* What a client has done since it was created (for the stats file). */
struct http_stats {
	uint64_t requests;         /* http_perform() calls */
	uint64_t transport_errors; /* calls that returned a negative errno */
	uint64_t connections;      /* new connections opened (not reused) */
	uint64_t bytes_sent;       /* request body bytes */
	uint64_t bytes_received;   /* response body bytes */
};

struct http_client;

/* Create a client; NULL on allocation or libcurl failure. Caller destroys it
 * with http_client_destroy(). */
struct http_client *http_client_create(const struct http_client_config *cfg);

/* Free a client and close its connections; NULL is a no-op. No request may be
 * in progress. */
void http_client_destroy(struct http_client *c);

/* Copy the client's counters into *out; safe while requests run. */
void http_client_stats(struct http_client *c, struct http_stats *out);

/* Initialise a request with no headers, no body and memory sink. */
void http_request_init(struct http_request *req, const char *method, const char *url);

/*
 * Perform one request; may be called from many threads at once on one client.
 * resp must be zeroed or cleaned up before; the caller frees it with
 * http_response_cleanup() whatever the result. Returns 0 when an HTTP answer
 * arrived (any status), else a negative errno from the table above with
 * resp->error set.
 */
int http_perform(struct http_client *c, const struct http_request *req,
		 struct http_response *resp);

/* Value of response header name (case-insensitive), or NULL when absent. */
const char *http_response_header(const struct http_response *resp, const char *name);

/* Free what http_perform() put into resp (wiping the body, which may hold
 * credentials) and zero it; safe on a zeroed response. */
void http_response_cleanup(struct http_response *resp);

#endif
