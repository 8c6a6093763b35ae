/*
 * aws_creds.c - the AWS credential chain (env, shared files, web identity,
 * ECS container endpoint, EC2 IMDSv2) with background refresh.
 *
 * It is not a signer and holds no S3 logic; see aws_creds.h for the contract.
 *
 * Refresh design: the provider holds one current set of credentials under
 * p->lock. Readers copy it and never wait for the network while it is still
 * valid. Fetches (the background thread's, or a reader's when the set has
 * expired) are serialised by p->fetch_lock and run without p->lock held;
 * only the final swap takes p->lock. The whole chain is re-run at each
 * refresh, so a rotated token file or a changed profile is picked up.
 *
 * The shared INI files are parsed by inih. Debian's libinih is built with a
 * 200-byte line buffer, shorter than a session token line, so our reader hands
 * inih long lines in pieces: the first piece as is, the rest as continuation
 * lines marked with "\x01" that the handler glues back together.
 */
#include "aws_creds.h"

#include "http.h"
#include "log.h"
#include "s3_xml.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A source that is not configured, or (IMDS) not there: try the next one. */
#define SKIP 1

#define ECS_HOST_URL "http://169.254.170.2"
#define IMDS_DEFAULT_URL "http://169.254.169.254"
#define IMDS_TOKEN_TTL "21600"
#define TOKEN_FILE_MAX (64 * 1024)
#define META_BODY_MAX (64 * 1024)
#define URL_MAX 2048
#define DESC_MAX 256
#define CONTINUATION_MARK '\x01'
#define REFRESH_MIN_INTERVAL_S 5

/* The environment as it was at create time; read once, so refresh threads
 * never call getenv() while something else might call setenv(). */
struct chain_env {
	char *key_id, *secret, *token; /* secret, token: wiped */
	char *profile;
	bool profile_explicit;
	char *creds_file, *config_file;
	char *wi_token_file, *wi_role_arn, *wi_session_name;
	char *sts_endpoint; /* AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL */
	char *region;
	char *ecs_relative, *ecs_full, *ecs_auth, *ecs_auth_file; /* ecs_auth: wiped */
	char *imds_endpoint;
	bool imds_disabled;
};

struct aws_creds {
	struct chain_env env;
	struct http_client *http;
	long refresh_margin_s;
	long imds_timeout_ms;
	void (*log)(void *log_arg, const char *msg);
	void *log_arg;

	pthread_mutex_t lock;
	pthread_cond_t cond;        /* wakes the refresh thread; with lock */
	struct aws_credentials cur; /* protected by lock */
	char desc[DESC_MAX];        /* protected by lock */
	int64_t fetched_at;         /* protected by lock */
	int64_t retry_at;           /* protected by lock; 0: no failed refresh */
	bool stop;                  /* protected by lock */

	pthread_mutex_t fetch_lock; /* one fetch at a time; taken before lock */
	pthread_t thread;
	bool thread_started;
};

/* What one profile says, from one of the two files. */
struct profile_values {
	bool found; /* the profile's section exists */
	char *key_id, *secret, *token, *region;
	char *credential_process, *role_arn, *source_profile, *credential_source;
	char *wi_token_file, *session_name, *sso_start_url, *sso_session;
};

/* inih handler state for one file. */
struct ini_ctx {
	struct profile_values *v;
	const char *profile;
	bool is_config;  /* config file: "[profile NAME]" sections */
	char **last;     /* slot the previous key went to, for continuations */
	int err;         /* -ENOMEM, or -EINVAL for a duplicate key */
	char dup_key[64];
};

/* Line reader that cuts lines longer than inih's buffer (see top comment). */
struct line_reader {
	FILE *f;
	char *line;
	size_t cap;
	size_t len;
	size_t pos;
	bool cont;     /* the next piece continues a key=value line */
	int too_long;  /* first line number that could not be cut */
	int lineno;
};

/* Keys of a profile we look at, and where they go. */
static const struct {
	const char *name;
	size_t off;
} profile_keys[] = {
	{ "aws_access_key_id", offsetof(struct profile_values, key_id) },
	{ "aws_secret_access_key", offsetof(struct profile_values, secret) },
	{ "aws_session_token", offsetof(struct profile_values, token) },
	{ "region", offsetof(struct profile_values, region) },
	{ "credential_process", offsetof(struct profile_values, credential_process) },
	{ "role_arn", offsetof(struct profile_values, role_arn) },
	{ "source_profile", offsetof(struct profile_values, source_profile) },
	{ "credential_source", offsetof(struct profile_values, credential_source) },
	{ "web_identity_token_file", offsetof(struct profile_values, wi_token_file) },
	{ "role_session_name", offsetof(struct profile_values, session_name) },
	{ "sso_start_url", offsetof(struct profile_values, sso_start_url) },
	{ "sso_session", offsetof(struct profile_values, sso_session) },
};

/* ---- small helpers ---- */

/* Wipe and free a string that may hold a secret. */
static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* Format into a caller's message buffer (which may be NULL). */
__attribute__((format(printf, 3, 4))) static void set_msg(char *buf, size_t len,
							   const char *fmt, ...)
{
	va_list ap;

	if (!buf || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Current wall-clock time in Unix seconds (expirations are wall-clock). */
static int64_t now_unix(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

/* strdup of getenv(name), NULL when unset or empty; -ENOMEM via *err. */
static char *env_dup(const char *name, int *err)
{
	const char *v = getenv(name);
	char *d;

	if (!v || !v[0])
		return NULL;
	d = strdup(v);
	if (!d)
		*err = -ENOMEM;
	return d;
}

/* True for values AWS tools read as "true" (case-insensitive). */
static bool env_true(const char *name)
{
	const char *v = getenv(name);

	return v && strcasecmp(v, "true") == 0;
}

/* Parse an ISO 8601 UTC time ("2024-01-02T03:04:05Z", fraction and
 * "+00:00" offsets allowed) into Unix seconds; 0 or -EINVAL. */
static int parse_iso8601(const char *s, int64_t *out)
{
	struct tm tm = { 0 };
	int off_h = 0, off_m = 0, n = 0, sign = 1;
	const char *p;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
			 &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -EINVAL;
	p = s + n;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++)
			;
	if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (sscanf(p + 1, "%2d:%2d", &off_h, &off_m) != 2)
			return -EINVAL;
	} else if (*p != 'Z' && *p != 'z') {
		return -EINVAL;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*out = (int64_t)timegm(&tm) - sign * (off_h * 3600 + off_m * 60);
	return 0;
}

/* Read a small token file, trimming trailing blanks; caller wipes and frees
 * *out. 0 or a negative errno with a message. */
static int read_token_file(const char *path, const char *what, char **out, char *why,
			   size_t why_len)
{
	char *buf = NULL;
	size_t len = 0;
	ssize_t r;
	int fd = -1, ret = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		set_msg(why, why_len, "%s: cannot read token file %s: %s", what, path,
			strerror(errno));
		goto out;
	}
	buf = malloc(TOKEN_FILE_MAX + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	while ((r = read(fd, buf + len, TOKEN_FILE_MAX + 1 - len)) > 0) {
		len += (size_t)r;
		if (len > TOKEN_FILE_MAX)
			break;
	}
	if (r < 0 || len > TOKEN_FILE_MAX) {
		ret = r < 0 ? -errno : -EFBIG;
		set_msg(why, why_len, "%s: cannot read token file %s: %s", what, path,
			strerror(-ret));
		goto out;
	}
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		len--;
	buf[len] = '\0';
	if (len == 0 || strpbrk(buf, "\r\n")) {
		ret = -EINVAL;
		set_msg(why, why_len, "%s: token file %s is empty or has several lines", what,
			path);
		goto out;
	}
	*out = buf;
	buf = NULL;
out:
	if (buf) {
		explicit_bzero(buf, TOKEN_FILE_MAX + 1);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/* Append s to the form body *buf percent-encoded (RFC 3986 unreserved kept). */
static int form_append(char **buf, size_t *len, const char *key, const char *s)
{
	size_t need = *len + strlen(key) + 2 + 3 * strlen(s) + 1;
	char *grown = malloc(need), *p;

	if (!grown)
		return -ENOMEM;
	/* malloc-copy-wipe: the body holds the web identity token. */
	if (*buf) {
		memcpy(grown, *buf, *len);
		explicit_bzero(*buf, *len);
		free(*buf);
	}
	*buf = grown;
	p = grown + *len;
	p += sprintf(p, "%s%s=", *len ? "&" : "", key);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~')
			*p++ = (char)ch;
		else
			p += sprintf(p, "%%%02X", ch);
	}
	*p = '\0';
	*len = (size_t)(p - grown);
	return 0;
}

/* Set *out to copies of the given strings; 0 or -ENOMEM. */
static int set_creds(struct aws_credentials *out, const char *key_id, const char *secret,
		     const char *token, int64_t expiration)
{
	memset(out, 0, sizeof(*out));
	out->access_key_id = strdup(key_id);
	out->secret_access_key = strdup(secret);
	out->session_token = token && token[0] ? strdup(token) : NULL;
	out->expiration = expiration;
	if (!out->access_key_id || !out->secret_access_key ||
	    (token && token[0] && !out->session_token)) {
		aws_credentials_cleanup(out);
		return -ENOMEM;
	}
	return 0;
}

/* Wipe the secrets, free everything, zero the struct. */
void aws_credentials_cleanup(struct aws_credentials *c)
{
	if (!c)
		return;
	free(c->access_key_id);
	free_secret(c->secret_access_key);
	free_secret(c->session_token);
	memset(c, 0, sizeof(*c));
}

/* Copy src to dst; 0 or -ENOMEM. */
static int copy_creds(struct aws_credentials *dst, const struct aws_credentials *src)
{
	return set_creds(dst, src->access_key_id, src->secret_access_key, src->session_token,
			 src->expiration);
}

/* Wipe every string of a cJSON tree before it is freed (cJSON does not). */
static void json_wipe(cJSON *item)
{
	for (; item; item = item->next) {
		if (item->valuestring)
			explicit_bzero(item->valuestring, strlen(item->valuestring));
		json_wipe(item->child);
	}
}

/* Parse the JSON credentials document of ECS and IMDS; 0 or negative errno. */
static int parse_json_creds(const char *body, size_t len, const char *what,
			    struct aws_credentials *out, char *why, size_t why_len)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	const cJSON *key_id, *secret, *token, *exp, *code;
	int64_t expiration = 0;
	int ret = 0;

	if (!root) {
		ret = -EIO;
		set_msg(why, why_len, "%s: answer is not JSON", what);
		goto out;
	}
	code = cJSON_GetObjectItemCaseSensitive(root, "Code");
	if (cJSON_IsString(code) && strcmp(code->valuestring, "Success") != 0) {
		ret = -EIO;
		set_msg(why, why_len, "%s: answer has Code %.64s", what, code->valuestring);
		goto out;
	}
	key_id = cJSON_GetObjectItemCaseSensitive(root, "AccessKeyId");
	secret = cJSON_GetObjectItemCaseSensitive(root, "SecretAccessKey");
	token = cJSON_GetObjectItemCaseSensitive(root, "Token");
	exp = cJSON_GetObjectItemCaseSensitive(root, "Expiration");
	if (!cJSON_IsString(key_id) || !cJSON_IsString(secret) || !key_id->valuestring[0] ||
	    !secret->valuestring[0]) {
		ret = -EIO;
		set_msg(why, why_len, "%s: answer lacks AccessKeyId or SecretAccessKey", what);
		goto out;
	}
	if (cJSON_IsString(exp) && parse_iso8601(exp->valuestring, &expiration) < 0) {
		ret = -EIO;
		set_msg(why, why_len, "%s: unreadable Expiration", what);
		goto out;
	}
	ret = set_creds(out, key_id->valuestring, secret->valuestring,
			cJSON_IsString(token) ? token->valuestring : NULL, expiration);
out:
	if (root) {
		json_wipe(root);
		cJSON_Delete(root);
	}
	return ret;
}

/* ---- shared files (inih) ---- */

/* inih reader: like fgets, but cuts lines longer than inih's buffer. */
static char *read_piece(char *str, int num, void *stream)
{
	struct line_reader *r = stream;
	size_t room, take, lead;
	ssize_t n;

	if (r->pos >= r->len) {
		n = getline(&r->line, &r->cap, r->f);
		if (n < 0)
			return NULL;
		r->len = (size_t)n;
		r->pos = 0;
		r->cont = false;
		r->lineno++;
	}
	room = (size_t)num - 1 - (r->cont ? 2 : 0);
	take = r->len - r->pos;
	if (take > room && r->pos == 0) {
		lead = strspn(r->line, " \t");
		/* Only "key = value" lines can be continued; a long comment is
		 * cut short (harmless), anything else is an error. */
		if (r->line[lead] == '#' || r->line[lead] == ';') {
			memcpy(str, r->line, room);
			str[room] = '\0';
			r->pos = r->len;
			r->cont = false;
			return str;
		}
		if ((r->line[lead] == '[' || !memchr(r->line, '=', room)) && !r->too_long)
			r->too_long = r->lineno;
	}
	if (take > room) {
		take = room;
		/* inih strips trailing blanks of a value: cut after a non-blank. */
		while (take > 1 && isspace((unsigned char)r->line[r->pos + take - 1]))
			take--;
	}
	if (r->cont) {
		str[0] = ' ';
		str[1] = CONTINUATION_MARK;
	}
	memcpy(str + (r->cont ? 2 : 0), r->line + r->pos, take);
	str[take + (r->cont ? 2 : 0)] = '\0';
	r->pos += take;
	r->cont = r->pos < r->len;
	return str;
}

/* True if an INI section names our profile in this file. */
static bool section_matches(const char *section, const char *profile, bool is_config)
{
	const char *s = section;
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (!is_config || strcmp(profile, "default") == 0) {
		if (n == strlen(profile) && strncmp(s, profile, n) == 0)
			return true;
		if (!is_config)
			return false;
	}
	/* "[profile NAME]" with any blanks between, as botocore splits it. */
	if (n < 8 || strncmp(s, "profile", 7) != 0 || !isspace((unsigned char)s[7]))
		return false;
	s += 7;
	n -= 7;
	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	return n == strlen(profile) && strncmp(s, profile, n) == 0;
}

/* inih callback: keep the keys we need from our profile's section. */
static int on_ini_value(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *ctx = user;
	char **slot = NULL, *joined;
	size_t i;

	if (!section_matches(section, ctx->profile, ctx->is_config)) {
		ctx->last = NULL;
		return 1;
	}
	ctx->v->found = true;
	if (value[0] == CONTINUATION_MARK) {
		/* The rest of a line our reader cut: glue it on. */
		if (!ctx->last || !*ctx->last)
			return 1;
		joined = malloc(strlen(*ctx->last) + strlen(value));
		if (!joined) {
			ctx->err = -ENOMEM;
			return 0;
		}
		strcpy(joined, *ctx->last);
		strcat(joined, value + 1);
		free_secret(*ctx->last);
		*ctx->last = joined;
		return 1;
	}
	for (i = 0; i < sizeof(profile_keys) / sizeof(profile_keys[0]); i++)
		if (strcasecmp(name, profile_keys[i].name) == 0)
			slot = (char **)((char *)ctx->v + profile_keys[i].off);
	ctx->last = slot;
	if (!slot)
		return 1;
	if (*slot) {
		/* A repeated key or an indented continuation of one we use:
		 * botocore rejects both, and guessing could pick the wrong key. */
		if (!ctx->err) {
			ctx->err = -EINVAL;
			snprintf(ctx->dup_key, sizeof(ctx->dup_key), "%s", name);
		}
		return 0;
	}
	*slot = strdup(value);
	if (!*slot) {
		ctx->err = -ENOMEM;
		return 0;
	}
	return 1;
}

/* Free what a profile_values holds, wiping secrets. */
static void profile_values_cleanup(struct profile_values *v)
{
	size_t i;

	for (i = 0; i < sizeof(profile_keys) / sizeof(profile_keys[0]); i++)
		free_secret(*(char **)((char *)v + profile_keys[i].off));
	memset(v, 0, sizeof(*v));
}

/* Read profile from one INI file into *v. A missing file is fine (0, not
 * found); an unreadable or malformed one is an error with a message. */
static int parse_profile_file(const char *path, const char *profile, bool is_config,
			      struct profile_values *v, char *why, size_t why_len)
{
	struct line_reader r = { 0 };
	struct ini_ctx ctx = { .v = v, .profile = profile, .is_config = is_config };
	int ret = 0, rc;

	r.f = fopen(path, "re");
	if (!r.f) {
		if (errno == ENOENT)
			return 0;
		ret = -errno;
		set_msg(why, why_len, "shared files: cannot read %s: %s", path, strerror(errno));
		return ret;
	}
	rc = ini_parse_stream(read_piece, &r, on_ini_value, &ctx);
	if (ctx.err == -ENOMEM || rc == -2) {
		ret = -ENOMEM;
	} else if (ctx.err == -EINVAL) {
		ret = -EINVAL;
		set_msg(why, why_len,
			"shared files: %s: key %s repeated or continued in profile %s", path,
			ctx.dup_key, profile);
	} else if (r.too_long) {
		ret = -EINVAL;
		set_msg(why, why_len, "shared files: %s line %d is too long", path, r.too_long);
	} else if (rc != 0) {
		ret = -EINVAL;
		set_msg(why, why_len, "shared files: %s line %d: syntax error", path, rc);
	}
	if (ferror(r.f) && ret == 0) {
		ret = -EIO;
		set_msg(why, why_len, "shared files: error reading %s", path);
	}
	fclose(r.f);
	if (r.line) {
		explicit_bzero(r.line, r.cap);
		free(r.line);
	}
	if (ret < 0)
		profile_values_cleanup(v);
	return ret;
}

/* Path of a shared file: the variable's value, else ~/.aws/<name>. */
static char *default_aws_path(const char *var, const char *name, int *err)
{
	const char *home = getenv("HOME");
	char *path = env_dup(var, err);

	if (path || *err)
		return path;
	if (!home || !home[0])
		return NULL;
	if (asprintf(&path, "%s/.aws/%s", home, name) < 0) {
		*err = -ENOMEM;
		return NULL;
	}
	return path;
}

/* Region from the environment, else from the profile in the config file. */
int aws_creds_default_region(const char *profile, char *buf, size_t len)
{
	struct profile_values v = { 0 };
	const char *r = getenv("AWS_REGION");
	char *config = NULL;
	int err = 0, ret = -ENOENT;

	if (!r || !r[0])
		r = getenv("AWS_DEFAULT_REGION");
	if (r && r[0]) {
		snprintf(buf, len, "%s", r);
		return 0;
	}
	if (!profile)
		profile = getenv("AWS_PROFILE");
	if (!profile || !profile[0])
		profile = "default";
	config = default_aws_path("AWS_CONFIG_FILE", "config", &err);
	if (err)
		return err;
	if (config && parse_profile_file(config, profile, true, &v, NULL, 0) == 0 && v.region &&
	    v.region[0]) {
		snprintf(buf, len, "%s", v.region);
		ret = 0;
	}
	profile_values_cleanup(&v);
	free(config);
	return ret;
}

/* ---- sources ---- */

/* Source 1: static keys from the environment. */
static int src_env(struct aws_creds *p, struct aws_credentials *out, char *desc,
		   size_t desc_len, char *why, size_t why_len)
{
	const struct chain_env *e = &p->env;

	if (!e->key_id && !e->secret) {
		set_msg(why, why_len, "env: AWS_ACCESS_KEY_ID not set");
		return SKIP;
	}
	if (!e->key_id || !e->secret) {
		set_msg(why, why_len, "env: %s is set but %s is not",
			e->key_id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			e->key_id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -EINVAL;
	}
	set_msg(desc, desc_len, "environment (AWS_ACCESS_KEY_ID)");
	return set_creds(out, e->key_id, e->secret, e->token, 0);
}

/* Ask STS to exchange a web identity token for role credentials. */
static int fetch_web_identity(struct aws_creds *p, const char *token_file,
			      const char *role_arn, const char *session_name,
			      struct aws_credentials *out, char *why, size_t why_len)
{
	struct s3_xml_sts_credentials sts = { 0 };
	struct http_header hdr[] = {
		{ "Content-Type", "application/x-www-form-urlencoded" },
		{ "Accept", "text/xml" },
	};
	struct http_response resp = { 0 };
	struct http_request req;
	char url[URL_MAX], session[64];
	char code[S3_XML_CODE_MAX], message[160];
	char *token = NULL, *body = NULL;
	size_t body_len = 0;
	int ret;

	ret = read_token_file(token_file, "web identity", &token, why, why_len);
	if (ret < 0)
		goto out;
	if (!session_name) {
		snprintf(session, sizeof(session), "fallbackfs-%lld", (long long)now_unix());
		session_name = session;
	}
	if (p->env.sts_endpoint && strlen(p->env.sts_endpoint) >= sizeof(url)) {
		set_msg(why, why_len, "web identity: STS endpoint URL is too long");
		ret = -EINVAL;
		goto out;
	}
	if (p->env.sts_endpoint)
		snprintf(url, sizeof(url), "%s", p->env.sts_endpoint);
	else if (p->env.region)
		snprintf(url, sizeof(url), "https://sts.%s.amazonaws.com%s", p->env.region,
			 strncmp(p->env.region, "cn-", 3) == 0 ? ".cn" : "");
	else
		snprintf(url, sizeof(url), "https://sts.amazonaws.com");

	if ((ret = form_append(&body, &body_len, "Action", "AssumeRoleWithWebIdentity")) ||
	    (ret = form_append(&body, &body_len, "Version", "2011-06-15")) ||
	    (ret = form_append(&body, &body_len, "RoleArn", role_arn)) ||
	    (ret = form_append(&body, &body_len, "RoleSessionName", session_name)) ||
	    (ret = form_append(&body, &body_len, "WebIdentityToken", token)))
		goto out;

	/* POST, not GET: the token stays out of URLs and proxy logs. The call is
	 * unsigned: the token is the proof. */
	http_request_init(&req, "POST", url);
	req.headers = hdr;
	req.header_count = sizeof(hdr) / sizeof(hdr[0]);
	req.body = body;
	req.body_size = body_len;
	req.max_body = META_BODY_MAX;
	req.timeout_ms = 10000;
	ret = http_perform(p->http, &req, &resp);
	if (ret < 0) {
		set_msg(why, why_len, "web identity: STS %s: %s", url, resp.error);
		goto out;
	}
	if (resp.status != 200) {
		if (!resp.body || s3_xml_parse_error(resp.body, resp.body_len, code,
						     sizeof(code), message, sizeof(message)) < 0)
			code[0] = message[0] = '\0';
		set_msg(why, why_len, "web identity: STS %s refused role %s: HTTP %ld %s %s",
			url, role_arn, resp.status, code, message);
		ret = resp.status == 400 || resp.status == 401 || resp.status == 403 ? -EACCES
										      : -EIO;
		goto out;
	}
	ret = s3_xml_parse_sts_credentials(resp.body, resp.body_len, &sts);
	if (ret < 0) {
		set_msg(why, why_len, "web identity: STS %s: unreadable answer", url);
		goto out;
	}
	ret = set_creds(out, sts.access_key_id, sts.secret_access_key, sts.session_token,
			sts.expiration);
out:
	s3_xml_sts_credentials_cleanup(&sts);
	http_response_cleanup(&resp);
	free_secret(token);
	free_secret(body);
	return ret;
}

/* Static keys from one shared file's profile: both halves, or a clear error.
 * kind is "credentials" or "config", for the description. */
static int static_keys(const struct profile_values *v, const char *kind, const char *file,
		       const char *profile, struct aws_credentials *out, char *desc,
		       size_t desc_len, char *why, size_t why_len)
{
	if (!v->key_id || !v->secret) {
		set_msg(why, why_len,
			"shared files: profile %s in %s needs both aws_access_key_id "
			"and aws_secret_access_key",
			profile, file);
		return -EINVAL;
	}
	set_msg(desc, desc_len, "shared %s file %s (profile %s)", kind, file, profile);
	return set_creds(out, v->key_id, v->secret, v->token, 0);
}

/* Source 2: the shared credentials and config files. */
static int src_profile(struct aws_creds *p, struct aws_credentials *out, char *desc,
		       size_t desc_len, char *why, size_t why_len)
{
	const struct chain_env *e = &p->env;
	struct profile_values cv = { 0 }, fv = { 0 };
	const char *creds_file = e->creds_file ? e->creds_file : "(no HOME)";
	const char *config_file = e->config_file ? e->config_file : "(no HOME)";
	int ret;

	if (e->creds_file) {
		ret = parse_profile_file(e->creds_file, e->profile, false, &cv, why, why_len);
		if (ret < 0)
			goto out;
	}
	if (e->config_file) {
		ret = parse_profile_file(e->config_file, e->profile, true, &fv, why, why_len);
		if (ret < 0)
			goto out;
	}
	if (!cv.found && !fv.found) {
		set_msg(why, why_len, "shared files: profile %s not found in %s or %s", e->profile,
			creds_file, config_file);
		/* A profile the user named must exist, as with the AWS CLI. */
		ret = e->profile_explicit ? -ENOENT : SKIP;
		goto out;
	}
	if (cv.key_id || cv.secret) {
		ret = static_keys(&cv, "credentials", creds_file, e->profile, out, desc, desc_len,
				  why, why_len);
		goto out;
	}
	if (fv.credential_process || cv.credential_process) {
		set_msg(why, why_len,
			"shared files: profile %s uses credential_process, which fallbackfs "
			"does not support; give the keys in the environment or the credentials "
			"file instead",
			e->profile);
		ret = -ENOTSUP;
		goto out;
	}
	if (fv.sso_start_url || fv.sso_session) {
		set_msg(why, why_len,
			"shared files: profile %s uses AWS SSO, which fallbackfs does not support",
			e->profile);
		ret = -ENOTSUP;
		goto out;
	}
	if (fv.role_arn && fv.wi_token_file) {
		ret = fetch_web_identity(p, fv.wi_token_file, fv.role_arn, fv.session_name, out,
					 why, why_len);
		if (ret == 0)
			set_msg(desc, desc_len, "web identity from profile %s (role %s)",
				e->profile, fv.role_arn);
		goto out;
	}
	if (fv.role_arn) {
		set_msg(why, why_len,
			"shared files: profile %s assumes role %s via source_profile or "
			"credential_source, which fallbackfs does not support",
			e->profile, fv.role_arn);
		ret = -ENOTSUP;
		goto out;
	}
	if (fv.key_id || fv.secret) {
		ret = static_keys(&fv, "config", config_file, e->profile, out, desc, desc_len,
				  why, why_len);
		goto out;
	}
	set_msg(why, why_len, "shared files: profile %s has no credentials", e->profile);
	ret = SKIP;
out:
	profile_values_cleanup(&cv);
	profile_values_cleanup(&fv);
	return ret;
}

/* Source 3: web identity token from the environment. */
static int src_web_identity(struct aws_creds *p, struct aws_credentials *out, char *desc,
			    size_t desc_len, char *why, size_t why_len)
{
	const struct chain_env *e = &p->env;
	int ret;

	if (!e->wi_token_file && !e->wi_role_arn) {
		set_msg(why, why_len, "web identity: AWS_WEB_IDENTITY_TOKEN_FILE not set");
		return SKIP;
	}
	if (!e->wi_token_file || !e->wi_role_arn) {
		set_msg(why, why_len, "web identity: %s is set but %s is not",
			e->wi_token_file ? "AWS_WEB_IDENTITY_TOKEN_FILE" : "AWS_ROLE_ARN",
			e->wi_token_file ? "AWS_ROLE_ARN" : "AWS_WEB_IDENTITY_TOKEN_FILE");
		return -EINVAL;
	}
	ret = fetch_web_identity(p, e->wi_token_file, e->wi_role_arn, e->wi_session_name, out,
				 why, why_len);
	if (ret == 0)
		set_msg(desc, desc_len, "web identity (role %s)", e->wi_role_arn);
	return ret;
}

/* True if host is one AWS SDKs accept for a plain-http container endpoint:
 * loopback, or the ECS and EKS agent addresses. */
static bool ecs_host_allowed(const char *host)
{
	static const char *const allowed[] = {
		"localhost", "169.254.170.2", "169.254.170.23", "[fd00:ec2::23]",
		"fd00:ec2::23", "[::1]", "::1",
	};
	size_t i;

	if (strncmp(host, "127.", 4) == 0)
		return true;
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
		if (strcasecmp(host, allowed[i]) == 0)
			return true;
	return false;
}

/* Check a FULL_URI container endpoint; 0 or -EINVAL with a message. */
static int check_ecs_url(const char *url, char *why, size_t why_len)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int ret = 0;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0)) {
		set_msg(why, why_len, "ECS: AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL");
		ret = -EINVAL;
		goto out;
	}
	if (strcmp(scheme, "https") != 0 && !(strcmp(scheme, "http") == 0 && ecs_host_allowed(host))) {
		set_msg(why, why_len,
			"ECS: AWS_CONTAINER_CREDENTIALS_FULL_URI over http must name a loopback "
			"or the container agent address, not %s",
			host);
		ret = -EINVAL;
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ret;
}

/* Source 4: the ECS/EKS container credentials endpoint. */
static int src_ecs(struct aws_creds *p, struct aws_credentials *out, char *desc,
		   size_t desc_len, char *why, size_t why_len)
{
	const struct chain_env *e = &p->env;
	struct http_response resp = { 0 };
	struct http_header auth = { "Authorization", NULL };
	struct http_request req;
	char url[URL_MAX];
	char *file_token = NULL;
	int ret;

	if ((e->ecs_relative && strlen(e->ecs_relative) >= sizeof(url) - sizeof(ECS_HOST_URL)) ||
	    (e->ecs_full && strlen(e->ecs_full) >= sizeof(url))) {
		set_msg(why, why_len, "ECS: container credentials URI is too long");
		return -EINVAL;
	}
	if (e->ecs_relative) {
		snprintf(url, sizeof(url), "%s%s%s", ECS_HOST_URL,
			 e->ecs_relative[0] == '/' ? "" : "/", e->ecs_relative);
	} else if (e->ecs_full) {
		ret = check_ecs_url(e->ecs_full, why, why_len);
		if (ret < 0)
			goto out;
		snprintf(url, sizeof(url), "%s", e->ecs_full);
	} else {
		set_msg(why, why_len, "ECS: AWS_CONTAINER_CREDENTIALS_*_URI not set");
		return SKIP;
	}
	/* The token file wins over the variable and is re-read each time:
	 * EKS Pod Identity rotates it. */
	if (e->ecs_auth_file) {
		ret = read_token_file(e->ecs_auth_file, "ECS", &file_token, why, why_len);
		if (ret < 0)
			goto out;
		auth.value = file_token;
	} else {
		auth.value = e->ecs_auth;
	}

	http_request_init(&req, "GET", url);
	if (auth.value) {
		req.headers = &auth;
		req.header_count = 1;
	}
	req.max_body = META_BODY_MAX;
	req.timeout_ms = 2000;
	req.connect_timeout_ms = 1000;
	req.no_proxy = true;
	ret = http_perform(p->http, &req, &resp);
	if (ret == -EINVAL) {
		set_msg(why, why_len, "ECS: invalid endpoint URL or authorization token");
		goto out;
	}
	if (ret < 0) {
		set_msg(why, why_len, "ECS: %s: %s", url, resp.error);
		goto out;
	}
	if (resp.status != 200) {
		set_msg(why, why_len, "ECS: %s answered HTTP %ld", url, resp.status);
		ret = resp.status == 401 || resp.status == 403 ? -EACCES : -EIO;
		goto out;
	}
	ret = parse_json_creds(resp.body, resp.body_len, "ECS", out, why, why_len);
	if (ret == 0)
		set_msg(desc, desc_len, "ECS container credentials (%s)", url);
out:
	http_response_cleanup(&resp);
	free_secret(file_token);
	return ret;
}

/* One IMDS request with the short timeouts; 0 with resp filled, or an error
 * with a message. The caller cleans up resp. */
static int imds_request(struct aws_creds *p, const char *method, const char *url,
			const struct http_header *hdr, struct http_response *resp, char *why,
			size_t why_len)
{
	struct http_request req;
	int ret;

	http_request_init(&req, method, url);
	req.headers = hdr;
	req.header_count = 1;
	req.max_body = META_BODY_MAX;
	req.timeout_ms = p->imds_timeout_ms;
	req.connect_timeout_ms = p->imds_timeout_ms;
	req.no_proxy = true;
	ret = http_perform(p->http, &req, resp);
	if (ret < 0) {
		set_msg(why, why_len, "EC2 IMDS: %s: %s", url, resp->error);
		return ret;
	}
	if (resp->status != 200) {
		set_msg(why, why_len, "EC2 IMDS: %s %s answered HTTP %ld", method, url,
			resp->status);
		return resp->status == 401 || resp->status == 403 ? -EACCES : -ENOENT;
	}
	return 0;
}

/* Source 5: EC2 instance metadata, IMDSv2 (session token first). */
static int src_imds(struct aws_creds *p, struct aws_credentials *out, char *desc,
		    size_t desc_len, char *why, size_t why_len)
{
	struct http_response resp = { 0 };
	struct http_header hdr = { "X-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL };
	char base[URL_MAX / 2], url[URL_MAX], role[256];
	char *token = NULL;
	size_t n;
	int ret;

	if (p->env.imds_disabled) {
		set_msg(why, why_len, "EC2 IMDS: disabled by AWS_EC2_METADATA_DISABLED");
		return SKIP;
	}
	if ((size_t)snprintf(base, sizeof(base), "%s",
			     p->env.imds_endpoint ? p->env.imds_endpoint : IMDS_DEFAULT_URL) >=
	    sizeof(base)) {
		set_msg(why, why_len, "EC2 IMDS: AWS_EC2_METADATA_SERVICE_ENDPOINT is too long");
		return -EINVAL;
	}
	n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		base[--n] = '\0';

	snprintf(url, sizeof(url), "%s/latest/api/token", base);
	ret = imds_request(p, "PUT", url, &hdr, &resp, why, why_len);
	if (ret < 0)
		goto out;
	n = strcspn(resp.body ? resp.body : "", "\r\n");
	token = strndup(resp.body ? resp.body : "", n);
	http_response_cleanup(&resp);
	if (!token) {
		ret = -ENOMEM;
		goto out;
	}
	hdr.name = "X-aws-ec2-metadata-token";
	hdr.value = token;

	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/", base);
	ret = imds_request(p, "GET", url, &hdr, &resp, why, why_len);
	if (ret == -ENOENT)
		set_msg(why, why_len, "EC2 IMDS: no instance role attached");
	if (ret < 0)
		goto out;
	n = strcspn(resp.body ? resp.body : "", "\r\n");
	if (n == 0 || n >= sizeof(role) || memchr(resp.body, '/', n)) {
		set_msg(why, why_len, "EC2 IMDS: unusable role name");
		ret = -EIO;
		goto out;
	}
	memcpy(role, resp.body, n);
	role[n] = '\0';
	http_response_cleanup(&resp);

	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/%s", base, role);
	ret = imds_request(p, "GET", url, &hdr, &resp, why, why_len);
	if (ret < 0)
		goto out;
	ret = parse_json_creds(resp.body, resp.body_len, "EC2 IMDS", out, why, why_len);
	if (ret == 0)
		set_msg(desc, desc_len, "EC2 IMDSv2 (%s, role %s)", base, role);
out:
	http_response_cleanup(&resp);
	free_secret(token);
	return ret;
}

/* ---- the chain ---- */

/* Run the sources in order; 0 with *out and desc, or an error with err. */
static int resolve_chain(struct aws_creds *p, struct aws_credentials *out, char *desc,
			 size_t desc_len, char *err, size_t err_len)
{
	static const struct {
		const char *name;
		int (*fn)(struct aws_creds *, struct aws_credentials *, char *, size_t, char *,
			  size_t);
	} sources[] = {
		{ "env", src_env },
		{ "shared files", src_profile },
		{ "web identity", src_web_identity },
		{ "ECS", src_ecs },
		{ "EC2 IMDS", src_imds },
	};
	char tried[1024] = "", why[AWS_CREDS_ERROR_MAX];
	size_t i, used = 0;
	int ret = SKIP;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
		why[0] = '\0';
		ret = sources[i].fn(p, out, desc, desc_len, why, sizeof(why));
		if (ret == 0)
			return 0;
		if (ret == -ENOMEM) {
			set_msg(err, err_len, "out of memory while reading AWS credentials");
			return ret;
		}
		/* IMDS is the implicit last resort: its failure is "not found". */
		if (ret < 0 && sources[i].fn != src_imds) {
			set_msg(err, err_len, "%s", why[0] ? why : sources[i].name);
			return ret;
		}
		if (used < sizeof(tried))
			used += (size_t)snprintf(tried + used, sizeof(tried) - used, "%s%s",
						 i ? "; " : "", why[0] ? why : sources[i].name);
	}
	set_msg(err, err_len, "no AWS credentials found: tried %s", tried);
	return -ENOKEY;
}

/* Report a refresh event to the configured sink, else to the daemon's log. */
__attribute__((format(printf, 3, 4))) static void log_event(struct aws_creds *p, int prio,
							     const char *fmt, ...)
{
	char msg[AWS_CREDS_ERROR_MAX + 128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->log)
		p->log(p->log_arg, msg);
	else
		log_msg(prio, "%s", msg);
}

/* True if c may still be handed out at time now. */
static bool creds_valid(const struct aws_credentials *c, int64_t now)
{
	return c->access_key_id &&
	       (c->expiration == 0 || now + AWS_CREDS_EXPIRY_SLACK_S < c->expiration);
}

/* Fetch new credentials and install them; serialised by fetch_lock. With
 * only_if_invalid, does nothing when another thread already refreshed. */
static int fetch_and_install(struct aws_creds *p, bool only_if_invalid, char *err,
			     size_t err_len)
{
	struct aws_credentials fresh = { 0 }, old;
	char desc[DESC_MAX] = "";
	int ret = 0;

	pthread_mutex_lock(&p->fetch_lock);
	if (only_if_invalid) {
		pthread_mutex_lock(&p->lock);
		bool valid = creds_valid(&p->cur, now_unix());
		pthread_mutex_unlock(&p->lock);
		if (valid)
			goto out;
	}
	ret = resolve_chain(p, &fresh, desc, sizeof(desc), err, err_len);
	if (ret < 0)
		goto out;
	pthread_mutex_lock(&p->lock);
	old = p->cur;
	p->cur = fresh;
	memset(&fresh, 0, sizeof(fresh));
	snprintf(p->desc, sizeof(p->desc), "%s", desc);
	p->fetched_at = now_unix();
	p->retry_at = 0;
	pthread_mutex_unlock(&p->lock);
	aws_credentials_cleanup(&old);
out:
	pthread_mutex_unlock(&p->fetch_lock);
	aws_credentials_cleanup(&fresh);
	return ret;
}

/* Free the environment snapshot, wiping secrets. */
static void chain_env_cleanup(struct chain_env *e)
{
	free(e->key_id);
	free_secret(e->secret);
	free_secret(e->token);
	free(e->profile);
	free(e->creds_file);
	free(e->config_file);
	free(e->wi_token_file);
	free(e->wi_role_arn);
	free(e->wi_session_name);
	free(e->sts_endpoint);
	free(e->region);
	free(e->ecs_relative);
	free(e->ecs_full);
	free_secret(e->ecs_auth);
	free(e->ecs_auth_file);
	free(e->imds_endpoint);
	memset(e, 0, sizeof(*e));
}

/* Take the environment snapshot; 0 or -ENOMEM. */
static int chain_env_init(struct chain_env *e, const struct aws_creds_config *cfg)
{
	char region[64];
	int err = 0;

	e->key_id = env_dup("AWS_ACCESS_KEY_ID", &err);
	e->secret = env_dup("AWS_SECRET_ACCESS_KEY", &err);
	e->token = env_dup("AWS_SESSION_TOKEN", &err);
	if (cfg->profile && cfg->profile[0]) {
		e->profile = strdup(cfg->profile);
		e->profile_explicit = true;
	} else if ((e->profile = env_dup("AWS_PROFILE", &err)) != NULL) {
		e->profile_explicit = true;
	} else if (!err) {
		e->profile = strdup("default");
	}
	if (!e->profile)
		err = -ENOMEM;
	e->creds_file = default_aws_path("AWS_SHARED_CREDENTIALS_FILE", "credentials", &err);
	e->config_file = default_aws_path("AWS_CONFIG_FILE", "config", &err);
	e->wi_token_file = env_dup("AWS_WEB_IDENTITY_TOKEN_FILE", &err);
	e->wi_role_arn = env_dup("AWS_ROLE_ARN", &err);
	e->wi_session_name = env_dup("AWS_ROLE_SESSION_NAME", &err);
	e->sts_endpoint = env_dup("AWS_ENDPOINT_URL_STS", &err);
	if (!e->sts_endpoint)
		e->sts_endpoint = env_dup("AWS_ENDPOINT_URL", &err);
	if (cfg->region && cfg->region[0]) {
		e->region = strdup(cfg->region);
		if (!e->region)
			err = -ENOMEM;
	} else if (err == 0 && e->profile &&
		 aws_creds_default_region(e->profile, region, sizeof(region)) == 0)
		e->region = strdup(region);
	e->ecs_relative = env_dup("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", &err);
	e->ecs_full = env_dup("AWS_CONTAINER_CREDENTIALS_FULL_URI", &err);
	e->ecs_auth = env_dup("AWS_CONTAINER_AUTHORIZATION_TOKEN", &err);
	e->ecs_auth_file = env_dup("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &err);
	e->imds_endpoint = env_dup("AWS_EC2_METADATA_SERVICE_ENDPOINT", &err);
	e->imds_disabled = env_true("AWS_EC2_METADATA_DISABLED");
	return err;
}

/* Snapshot the environment, build the HTTP client, resolve the chain once. */
int aws_creds_create(const struct aws_creds_config *cfg, struct aws_creds **out,
		     char *err, size_t err_len)
{
	struct aws_creds_config def = { 0 };
	struct http_client_config hcfg = { 0 };
	pthread_condattr_t attr;
	struct aws_creds *p = NULL;
	int ret;

	*out = NULL;
	if (!cfg)
		cfg = &def;
	p = calloc(1, sizeof(*p));
	if (!p) {
		ret = -ENOMEM;
		goto fail;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->fetch_lock, NULL);
	pthread_condattr_init(&attr);
	/* Waits are measured on the monotonic clock, so a clock step does not
	 * make the refresh thread oversleep. */
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &attr);
	pthread_condattr_destroy(&attr);
	p->refresh_margin_s =
		cfg->refresh_margin_s > 0 ? cfg->refresh_margin_s : AWS_CREDS_DEFAULT_REFRESH_MARGIN_S;
	p->imds_timeout_ms = cfg->imds_timeout_ms > 0 ? cfg->imds_timeout_ms : 1000;
	p->log = cfg->log;
	p->log_arg = cfg->log_arg;

	ret = chain_env_init(&p->env, cfg);
	if (ret < 0) {
		set_msg(err, err_len, "out of memory");
		goto fail;
	}
	hcfg.ca_file = cfg->ca_file;
	hcfg.max_idle = 2;
	p->http = http_client_create(&hcfg);
	if (!p->http) {
		ret = -ENOMEM;
		set_msg(err, err_len, "cannot create the HTTP client");
		goto fail;
	}
	/* Resolve now, so errors reach the user's terminal before daemonizing. */
	ret = fetch_and_install(p, false, err, err_len);
	if (ret < 0)
		goto fail;
	*out = p;
	return 0;

fail:
	aws_creds_destroy(p);
	return ret;
}

/* Stop and join the refresh thread, then free and wipe everything. */
void aws_creds_destroy(struct aws_creds *p)
{
	if (!p)
		return;
	if (p->thread_started) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_signal(&p->cond);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
	}
	http_client_destroy(p->http);
	chain_env_cleanup(&p->env);
	aws_credentials_cleanup(&p->cur);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->fetch_lock);
	free(p);
}

/* When the refresh thread should next fetch (Unix seconds); with lock held. */
static int64_t next_refresh(const struct aws_creds *p)
{
	int64_t life = p->cur.expiration - p->fetched_at;
	int64_t margin = p->refresh_margin_s;

	if (p->retry_at)
		return p->retry_at;
	/* Credentials that live shorter than twice the margin are refreshed at
	 * half-life, so short-lived ones do not cause a fetch loop. */
	if (margin > life / 2)
		margin = life / 2;
	/* Never sooner than REFRESH_MIN_INTERVAL_S after the last fetch, so an
	 * endpoint handing out nearly expired credentials is not hammered. */
	if (p->cur.expiration - margin < p->fetched_at + REFRESH_MIN_INTERVAL_S)
		return p->fetched_at + REFRESH_MIN_INTERVAL_S;
	return p->cur.expiration - margin;
}

/* Background refresh: fetch ahead of expiry, retry with backoff on failure.
 * Logging happens with no lock held, so a slow log never stalls readers. */
static void *refresh_main(void *arg)
{
	struct aws_creds *p = arg;
	char err[AWS_CREDS_ERROR_MAX], desc[DESC_MAX];
	struct timespec ts;
	int64_t now, at, left, wait;
	int ret;

	pthread_mutex_lock(&p->lock);
	while (!p->stop && p->cur.expiration != 0) {
		now = now_unix();
		at = next_refresh(p);
		if (now < at) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += at - now;
			pthread_cond_timedwait(&p->cond, &p->lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&p->lock);
		err[0] = '\0';
		ret = fetch_and_install(p, false, err, sizeof(err));
		if (ret == 0) {
			log_event(p, LOG_INFO, "AWS credentials refreshed from %s",
				  aws_creds_describe(p, desc, sizeof(desc)));
			pthread_mutex_lock(&p->lock);
			continue;
		}
		/* Keep serving the old set; try again within a quarter of what is
		 * left of it (1 to 60 s). */
		pthread_mutex_lock(&p->lock);
		now = now_unix();
		left = p->cur.expiration - now;
		wait = left / 4 > 60 ? 60 : left / 4 < 1 ? 1 : left / 4;
		p->retry_at = now + wait;
		pthread_mutex_unlock(&p->lock);
		log_event(p, LOG_WARNING,
			  "AWS credentials refresh failed (%s); retrying in %lld s, current ones "
			  "expire in %lld s",
			  err, (long long)wait, (long long)left);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Start the refresh thread for expiring credentials (after any fork). */
int aws_creds_start_refresh(struct aws_creds *p)
{
	int rc;

	if (p->thread_started)
		return 0;
	pthread_mutex_lock(&p->lock);
	bool expires = p->cur.expiration != 0;
	pthread_mutex_unlock(&p->lock);
	if (!expires)
		return 0; /* long-term keys: nothing to refresh */
	rc = pthread_create(&p->thread, NULL, refresh_main, p);
	if (rc != 0)
		return -rc;
	p->thread_started = true;
	return 0;
}

/* Copy the current credentials; fetch synchronously only once they expired. */
int aws_creds_get(struct aws_creds *p, struct aws_credentials *out)
{
	int ret = 0;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->lock);
	if (creds_valid(&p->cur, now_unix()))
		ret = copy_creds(out, &p->cur);
	else
		ret = 1;
	pthread_mutex_unlock(&p->lock);
	if (ret <= 0)
		return ret;

	/* Expired: fetch in this thread (once, whoever gets fetch_lock first). */
	ret = fetch_and_install(p, true, NULL, 0);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&p->lock);
	ret = creds_valid(&p->cur, now_unix()) ? copy_creds(out, &p->cur) : -EACCES;
	pthread_mutex_unlock(&p->lock);
	return ret;
}

/* Copy the description of the current source into buf. */
const char *aws_creds_describe(struct aws_creds *p, char *buf, size_t len)
{
	pthread_mutex_lock(&p->lock);
	snprintf(buf, len, "%s", p->desc);
	pthread_mutex_unlock(&p->lock);
	return buf;
}
