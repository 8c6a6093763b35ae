/*
 * aws_creds.h - the AWS credential chain: where S3 requests get their keys.
 *
 * What it is: a provider that resolves credentials from the same sources, in
 * the same order, as AWS's C and C++ SDKs (aws-c-auth's default chain):
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN;
 *   2. shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
 *      AWS_CONFIG_FILE (~/.aws/config, "[profile NAME]"), profile from
 *      AWS_PROFILE (default "default"); a profile's web_identity_token_file +
 *      role_arn goes through STS like source 3;
 *   3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *      (+ AWS_ROLE_SESSION_NAME) via STS AssumeRoleWithWebIdentity, endpoint
 *      AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else regional STS;
 *   4. ECS/EKS container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
 *      (on 169.254.170.2) or AWS_CONTAINER_CREDENTIALS_FULL_URI, with
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE);
 *   5. EC2 IMDSv2, endpoint AWS_EC2_METADATA_SERVICE_ENDPOINT, off with
 *      AWS_EC2_METADATA_DISABLED=true, 1 s timeouts.
 * (The AWS CLI and boto try web identity before the shared files; the order
 * only matters when both are configured.)
 *
 * A source that is configured but broken (a missing named profile, an
 * unreadable token file, a failing container endpoint, a credential_process
 * or assume-role profile, which we do not support) ends the chain with its
 * error rather than silently falling through to other credentials. IMDS is
 * never "configured", so its failure ends with "no AWS credentials found:
 * tried ...".
 *
 * The environment is read once, in aws_creds_create(); files and endpoints
 * are read again at each refresh (token files rotate).
 *
 * What it is not: a signer, and not a full AWS config implementation:
 * credential_process, SSO and assume-role chains (role_arn + source_profile)
 * are refused with a clear message.
 */
#ifndef FALLBACKFS_AWS_CREDS_H
#define FALLBACKFS_AWS_CREDS_H

#include <stddef.h>
#include <stdint.h>

/* Default: refresh temporary credentials this long before they expire. */
#define AWS_CREDS_DEFAULT_REFRESH_MARGIN_S 300
/* Credentials closer than this to expiry are not handed out. */
#define AWS_CREDS_EXPIRY_SLACK_S 5
#define AWS_CREDS_ERROR_MAX 512

struct aws_credentials {
	char *access_key_id;
	char *secret_access_key; /* secret: wiped by aws_credentials_cleanup() */
	char *session_token;     /* secret; NULL for long-term keys */
	int64_t expiration;      /* Unix seconds; 0 when they do not expire */
};

struct aws_creds_config {
	const char *profile;   /* NULL: $AWS_PROFILE, else "default" */
	const char *region;    /* for the regional STS endpoint; NULL: from
	                          AWS_REGION, AWS_DEFAULT_REGION, the config file */
	const char *ca_file;   /* CA bundle for https endpoints; NULL: default */
	long refresh_margin_s; /* 0: AWS_CREDS_DEFAULT_REFRESH_MARGIN_S */
	long imds_timeout_ms;  /* per IMDS request; 0: 1000 */
	/* Optional sink for background refresh events (never secrets); NULL:
	 * fs/log.h's log_msg(). Called from the refresh thread. */
	void (*log)(void *log_arg, const char *msg);
	void *log_arg;
};

struct aws_creds;

/*
 * Resolve the chain once and return a provider in *out (caller destroys it
 * with aws_creds_destroy()). On failure returns a negative errno and a
 * message in err (no secrets): -ENOKEY when no source had credentials,
 * -ENOTSUP for an unsupported profile kind (credential_process, SSO,
 * assume-role), -ENOENT for a missing named profile or token file, the
 * open() errno for another unreadable file, -EINVAL for a malformed file or
 * half-set variables, -EACCES when an endpoint refused us, -EIO for an
 * unusable answer, transport errors as in http.h. cfg may be NULL.
 */
int aws_creds_create(const struct aws_creds_config *cfg, struct aws_creds **out,
		     char *err, size_t err_len);

/* Stop the refresh thread and free the provider; NULL is a no-op. */
void aws_creds_destroy(struct aws_creds *p);

/*
 * Start the background refresh thread (call after the daemon forks: threads
 * do not survive fork). A no-op returning 0 for credentials that never
 * expire. 0 or a negative errno.
 */
int aws_creds_start_refresh(struct aws_creds *p);

/*
 * Copy the current credentials into *out (caller wipes them with
 * aws_credentials_cleanup()). Thread-safe. Never waits for a background
 * refresh while the current credentials are valid; fetches synchronously only
 * when they have expired (e.g. the refresh thread kept failing). 0, -ENOMEM,
 * or the fetch's error.
 */
int aws_creds_get(struct aws_creds *p, struct aws_credentials *out);

/* Wipe and free what *c holds and zero it; safe on a zeroed struct. */
void aws_credentials_cleanup(struct aws_credentials *c);

/* Copy into buf which source supplied the current credentials, e.g.
 * "EC2 IMDSv2 (http://169.254.169.254, role r)", for logs; never secrets.
 * Returns buf. */
const char *aws_creds_describe(struct aws_creds *p, char *buf, size_t len);

/* The region from AWS_REGION, AWS_DEFAULT_REGION or the profile's "region"
 * in the config file, copied to buf; -ENOENT when none is set. Works without
 * a provider. */
int aws_creds_default_region(const char *profile, char *buf, size_t len);

#endif
