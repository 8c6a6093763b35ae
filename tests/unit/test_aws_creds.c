/*
 * test_aws_creds.c - unit tests of the AWS credential chain (backends/aws_creds.c).
 *
 * What it is: every source (env, shared files, web identity, ECS, IMDSv2)
 * against tests/servers/fake_aws_meta.py on 127.0.0.1, their precedence, the
 * background refresh before expiry, the synchronous fetch after expiry, and
 * the error messages a user sees.
 * What it is not: a test against real AWS. Skips (77) without /usr/bin/python3
 * or the fake server script (set FAKE_AWS_META to its path if it is not found).
 */
#include "aws_creds.h"
#include "check.h"
#include "loopback.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define PYTHON "/usr/bin/python3"
#define ROLE_ARN "arn:aws:iam::123456789012:role/fake"
#define ECS_AUTH "ecs-secret-auth"
#define WI_TOKEN "eyJhbGciOi.fake-web-identity-token.sig"

static char dir[64];
static char script[1024];
static char err[AWS_CREDS_ERROR_MAX];

struct fake_server {
	pid_t pid;
	int port;
	char url[64];
};

/* Find the fake server script: $FAKE_AWS_META, or beside this source file,
 * or relative to the usual working directories; false if not found. */
static bool find_script(void)
{
	char src[1024];
	const char *candidates[4];
	const char *env = getenv("FAKE_AWS_META");
	size_t i;

	snprintf(src, sizeof(src), "%s", __FILE__);
	candidates[0] = env;
	candidates[1] = NULL;
	candidates[2] = "tests/servers/fake_aws_meta.py";
	candidates[3] = "../tests/servers/fake_aws_meta.py";
	for (i = 0; i < 4; i++) {
		if (i == 1) {
			snprintf(script, sizeof(script), "%s/../servers/fake_aws_meta.py",
				 dirname(src));
		} else if (candidates[i]) {
			snprintf(script, sizeof(script), "%s", candidates[i]);
		} else {
			continue;
		}
		if (access(script, R_OK) == 0)
			return true;
	}
	return false;
}

/* Start fake_aws_meta.py with the given expiry and read its port. */
static void server_start(struct fake_server *s, int expiry)
{
	char expiry_arg[16], token_file[128], line[32];
	struct pollfd pfd;
	int pipefd[2];
	ssize_t n;
	size_t got = 0;

	snprintf(expiry_arg, sizeof(expiry_arg), "%d", expiry);
	snprintf(token_file, sizeof(token_file), "%s/wi_token", dir);
	REQUIRE(pipe(pipefd) == 0);
	s->pid = fork();
	REQUIRE(s->pid >= 0);
	if (s->pid == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		execl(PYTHON, "python3", script, "--lifetime", "90", "--expiry", expiry_arg,
		      "--ecs-auth", ECS_AUTH, "--role-arn", ROLE_ARN, "--sts-token-file",
		      token_file, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	pfd.fd = pipefd[0];
	pfd.events = POLLIN;
	while (got < sizeof(line) - 1 && !memchr(line, '\n', got)) {
		REQUIRE(poll(&pfd, 1, 10000) == 1);
		n = read(pipefd[0], line + got, sizeof(line) - 1 - got);
		REQUIRE(n > 0);
		got += (size_t)n;
		line[got] = '\0';
	}
	close(pipefd[0]);
	s->port = atoi(line);
	REQUIRE(s->port > 0);
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
}

/* Stop our own fake server by its pid. */
static void server_stop(struct fake_server *s)
{
	kill(s->pid, SIGTERM);
	waitpid(s->pid, NULL, 0);
}

/* A port where nothing listens. */
static int closed_port(void)
{
	int port, fd = listen_loopback(&port);

	close(fd);
	return port;
}

/* Unset every variable the chain reads, and point HOME at the temp dir. */
static void clear_env(void)
{
	static const char *const vars[] = {
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
		"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_DISABLED",
	};
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	setenv("HOME", dir, 1);
	/* Never reach a real metadata service from a test. */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

/* Write a file under the temp dir; returns its path in a static slot. */
static const char *write_file(const char *name, const char *content, mode_t mode)
{
	static char paths[8][128];
	static int next;
	char *path = paths[next++ % 8];
	FILE *f;

	snprintf(path, 128, "%s/%s", dir, name);
	unlink(path);
	f = fopen(path, "w");
	REQUIRE(f);
	fputs(content, f);
	REQUIRE(fclose(f) == 0);
	REQUIRE(chmod(path, mode) == 0);
	return path;
}

/* Create a provider and return its key id's source tag, checking success. */
static struct aws_creds *create_ok(const struct aws_creds_config *cfg)
{
	struct aws_creds *p = NULL;
	int rc = aws_creds_create(cfg, &p, err, sizeof(err));

	if (rc != 0)
		fprintf(stderr, "aws_creds_create: %d: %s\n", rc, err);
	REQUIRE(rc == 0 && p);
	return p;
}

/* Expect creation to fail with want and a message containing needle. */
static void create_fails(int want, const char *needle)
{
	struct aws_creds *p = NULL;
	int rc = aws_creds_create(NULL, &p, err, sizeof(err));

	if (rc != want || !strstr(err, needle))
		fprintf(stderr, "want %d \"%s\", got %d \"%s\"\n", want, needle, rc, err);
	REQUIRE(rc == want && p == NULL);
	REQUIRE(strstr(err, needle) != NULL);
}

/* The key id currently served by p (caller frees). */
static char *key_of(struct aws_creds *p)
{
	struct aws_credentials c = { 0 };
	char *id;

	REQUIRE(aws_creds_get(p, &c) == 0);
	id = strdup(c.access_key_id);
	aws_credentials_cleanup(&c);
	return id;
}

/* Assert that a fresh provider serves a key starting with prefix. */
static void expect_source(const char *prefix, const char *desc_part)
{
	struct aws_creds *p = create_ok(NULL);
	char desc[256], *id = key_of(p);

	if (strncmp(id, prefix, strlen(prefix)) != 0)
		fprintf(stderr, "want key %s*, got %s (%s)\n", prefix, id,
			aws_creds_describe(p, desc, sizeof(desc)));
	REQUIRE(strncmp(id, prefix, strlen(prefix)) == 0);
	REQUIRE(strstr(aws_creds_describe(p, desc, sizeof(desc)), desc_part) != NULL);
	/* No secret ever shows in the description. */
	REQUIRE(strstr(desc, "secret") == NULL && strstr(desc, "token-") == NULL);
	free(id);
	aws_creds_destroy(p);
}

/* Environment keys are served as is, and half a pair is a clear error. */
static void test_env(void)
{
	struct aws_credentials c = { 0 };
	struct aws_creds *p;

	clear_env();
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
	setenv("AWS_SESSION_TOKEN", "env-token", 1);
	p = create_ok(NULL);
	REQUIRE(aws_creds_get(p, &c) == 0);
	REQUIRE(strcmp(c.access_key_id, "AKIAENV") == 0);
	REQUIRE(strcmp(c.secret_access_key, "env-secret") == 0);
	REQUIRE(strcmp(c.session_token, "env-token") == 0);
	REQUIRE(c.expiration == 0);
	aws_credentials_cleanup(&c);
	REQUIRE(c.access_key_id == NULL);
	REQUIRE(aws_creds_start_refresh(p) == 0); /* nothing to refresh */
	aws_creds_destroy(p);
	aws_creds_destroy(NULL);

	unsetenv("AWS_SECRET_ACCESS_KEY");
	create_fails(-EINVAL, "AWS_SECRET_ACCESS_KEY");
}

/* Shared files: profiles, long lines, region fallback and every refusal. */
static void test_profiles(void)
{
	char creds[4096], token[1601], region[64];
	const char *cf, *conf;

	clear_env();
	/* A session token far longer than inih's 200-byte line buffer. */
	memset(token, 'T', 1600);
	token[1600] = '\0';
	token[0] = 'A';
	token[1599] = 'Z';
	snprintf(creds, sizeof(creds),
		 "# comment\n[default]\naws_access_key_id = AKIADEFAULT\n"
		 "aws_secret_access_key = default-secret\n\n"
		 "[other]\r\naws_access_key_id=AKIAOTHER\r\naws_secret_access_key=other-secret\r\n"
		 "aws_session_token = %s\r\n",
		 token);
	cf = write_file("credentials", creds, 0600);
	conf = write_file("config",
			  "[default]\nregion = us-east-2\n"
			  "[profile   other]\nregion = eu-west-3\n"
			  "[profile cfgonly]\naws_access_key_id = AKIACFG\n"
			  "aws_secret_access_key = cfg-secret\n"
			  "[profile proc]\ncredential_process = /bin/echo hi\n"
			  "[profile assume]\nrole_arn = arn:aws:iam::1:role/x\nsource_profile = default\n"
			  "[profile regiononly]\nregion = ap-south-1\n",
			  0600);
	setenv("AWS_SHARED_CREDENTIALS_FILE", cf, 1);
	setenv("AWS_CONFIG_FILE", conf, 1);

	expect_source("AKIADEFAULT", "shared credentials file");
	REQUIRE(aws_creds_default_region(NULL, region, sizeof(region)) == 0);
	REQUIRE(strcmp(region, "us-east-2") == 0);

	setenv("AWS_PROFILE", "other", 1);
	{
		struct aws_creds *p = create_ok(NULL);
		struct aws_credentials c = { 0 };

		REQUIRE(aws_creds_get(p, &c) == 0);
		REQUIRE(strcmp(c.access_key_id, "AKIAOTHER") == 0);
		REQUIRE(strcmp(c.secret_access_key, "other-secret") == 0);
		REQUIRE(c.session_token && strcmp(c.session_token, token) == 0);
		aws_credentials_cleanup(&c);
		aws_creds_destroy(p);
	}
	REQUIRE(aws_creds_default_region(NULL, region, sizeof(region)) == 0);
	REQUIRE(strcmp(region, "eu-west-3") == 0);
	setenv("AWS_REGION", "sa-east-1", 1);
	REQUIRE(aws_creds_default_region(NULL, region, sizeof(region)) == 0);
	REQUIRE(strcmp(region, "sa-east-1") == 0);
	unsetenv("AWS_REGION");

	setenv("AWS_PROFILE", "cfgonly", 1);
	expect_source("AKIACFG", "shared config file");

	setenv("AWS_PROFILE", "nope", 1);
	create_fails(-ENOENT, "profile nope not found");

	setenv("AWS_PROFILE", "proc", 1);
	create_fails(-ENOTSUP, "credential_process");

	setenv("AWS_PROFILE", "assume", 1);
	create_fails(-ENOTSUP, "source_profile");

	/* A profile with only a region: the chain goes on (to IMDS, disabled). */
	setenv("AWS_PROFILE", "regiononly", 1);
	create_fails(-ENOKEY, "profile regiononly has no credentials");

	/* Unreadable credentials file: a clear error, not a silent skip. */
	unsetenv("AWS_PROFILE");
	if (geteuid() != 0) {
		REQUIRE(chmod(cf, 0) == 0);
		create_fails(-EACCES, "cannot read");
		REQUIRE(chmod(cf, 0600) == 0);
	}
	/* A credentials "file" that cannot be read (a directory): an error too. */
	setenv("AWS_SHARED_CREDENTIALS_FILE", dir, 1);
	create_fails(-EIO, "error reading");
	setenv("AWS_SHARED_CREDENTIALS_FILE", cf, 1);
	/* A repeated key is refused rather than guessed. */
	cf = write_file("credentials",
			"[default]\naws_access_key_id = A\naws_access_key_id = B\n"
			"aws_secret_access_key = s\n",
			0600);
	create_fails(-EINVAL, "repeated");
	/* No files at all and the default profile: just "not found". */
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_CONFIG_FILE");
	create_fails(-ENOKEY, "no AWS credentials found: tried env");
}

/* STS web identity from env and from a profile, with its errors. */
static void test_web_identity(const struct fake_server *s)
{
	char url[128];

	clear_env();
	write_file("wi_token", WI_TOKEN "\n", 0600);
	snprintf(url, sizeof(url), "%s/", s->url);
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", write_file("wi_token", WI_TOKEN "\n", 0600), 1);
	setenv("AWS_ROLE_ARN", ROLE_ARN, 1);
	setenv("AWS_ENDPOINT_URL_STS", url, 1);
	expect_source("ASIASTS", "web identity (role " ROLE_ARN);

	/* The general endpoint override works too. */
	unsetenv("AWS_ENDPOINT_URL_STS");
	setenv("AWS_ENDPOINT_URL", url, 1);
	setenv("AWS_ROLE_SESSION_NAME", "sess", 1);
	expect_source("ASIASTS", "web identity");

	setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/other", 1);
	create_fails(-EACCES, "AccessDenied");
	setenv("AWS_ROLE_ARN", ROLE_ARN, 1);

	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token", 1);
	create_fails(-ENOENT, "cannot read token file /nonexistent/token");

	/* The same through a profile's web_identity_token_file. */
	clear_env();
	setenv("AWS_ENDPOINT_URL_STS", url, 1);
	setenv("AWS_CONFIG_FILE",
	       write_file("config_wi",
			  "[profile wi]\nrole_arn = " ROLE_ARN "\n"
			  "web_identity_token_file = " "/dev/null" "\n",
			  0600),
	       1);
	setenv("AWS_PROFILE", "wi", 1);
	create_fails(-EINVAL, "token file /dev/null is empty");
	{
		char conf[512];

		snprintf(conf, sizeof(conf),
			 "[profile wi]\nrole_arn = %s\nweb_identity_token_file = %s/wi_token\n",
			 ROLE_ARN, dir);
		setenv("AWS_CONFIG_FILE", write_file("config_wi", conf, 0600), 1);
	}
	expect_source("ASIASTS", "web identity from profile wi");
}

/* Container credentials with the token variable or file, and their checks. */
static void test_ecs(const struct fake_server *s)
{
	char url[128];

	clear_env();
	snprintf(url, sizeof(url), "%s/ecs/creds", s->url);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", ECS_AUTH, 1);
	expect_source("ASIAECS", "ECS container credentials");

	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong", 1);
	create_fails(-EACCES, "answered HTTP 403");

	/* The token file wins over the variable. */
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	       write_file("ecs_token", ECS_AUTH "\n", 0600), 1);
	expect_source("ASIAECS", "ECS");
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");

	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds", 1);
	create_fails(-EINVAL, "loopback");
}

/* IMDSv2 works, and a down or silent IMDS ends the chain quickly and clearly. */
static void test_imds(const struct fake_server *s)
{
	struct timespec t0, t1;
	char url[128];
	int port, fd;
	double dt;

	clear_env();
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", s->url, 1);
	expect_source("ASIAIMDS", "EC2 IMDSv2");

	/* IMDS refusing connections: the chain ends with a full account. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", closed_port());
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	create_fails(-ENOKEY, "no AWS credentials found: tried env: AWS_ACCESS_KEY_ID not set");
	REQUIRE(strstr(err, "shared files: profile default not found"));
	REQUIRE(strstr(err, "web identity: AWS_WEB_IDENTITY_TOKEN_FILE not set"));
	REQUIRE(strstr(err, "ECS: AWS_CONTAINER_CREDENTIALS_*_URI not set"));
	REQUIRE(strstr(err, "EC2 IMDS"));

	/* IMDS that accepts but never answers: bounded by the 1 s timeout. */
	fd = listen_loopback(&port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	create_fails(-ENOKEY, "timed out");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	REQUIRE(dt < 3.0);
	close(fd);

	setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
	create_fails(-ENOKEY, "disabled by AWS_EC2_METADATA_DISABLED");
}

/* Every source configured at once: each removal exposes the next one. */
static void test_precedence(const struct fake_server *s)
{
	char url[128], conf[256];

	clear_env();
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", s->url, 1);
	snprintf(url, sizeof(url), "%s/ecs/creds", s->url);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", ECS_AUTH, 1);
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", write_file("wi_token", WI_TOKEN "\n", 0600), 1);
	setenv("AWS_ROLE_ARN", ROLE_ARN, 1);
	snprintf(url, sizeof(url), "%s/", s->url);
	setenv("AWS_ENDPOINT_URL_STS", url, 1);
	snprintf(conf, sizeof(conf),
		 "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = s\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", write_file("credentials", conf, 0600), 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);

	expect_source("AKIAENV", "environment");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	expect_source("AKIAFILE", "shared credentials file");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	expect_source("ASIASTS", "web identity");
	unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
	unsetenv("AWS_ROLE_ARN");
	expect_source("ASIAECS", "ECS");
	unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	expect_source("ASIAIMDS", "IMDS");
}

static atomic_int refresh_logs;
static atomic_int refresh_failures;

/* Log sink for the refresh tests: counts events, checks for secrets. */
static void count_log(void *arg, const char *msg)
{
	(void)arg;
	REQUIRE(strstr(msg, "secret-") == NULL && strstr(msg, "token-") == NULL);
	if (strstr(msg, "refreshed"))
		atomic_fetch_add(&refresh_logs, 1);
	if (strstr(msg, "refresh failed"))
		atomic_fetch_add(&refresh_failures, 1);
}

struct reader {
	struct aws_creds *p;
	atomic_bool stop;
	int failures;
	double worst_s;
	long gets;
};

/* Reader thread: aws_creds_get in a loop; it must never fail or stall. */
static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct aws_credentials c;
	struct timespec t0, t1;
	double dt;

	while (!atomic_load(&r->stop)) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (aws_creds_get(r->p, &c) != 0 || !c.access_key_id)
			r->failures++;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		aws_credentials_cleanup(&c);
		dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (dt > r->worst_s)
			r->worst_s = dt;
		r->gets++;
		usleep(2000);
	}
	return NULL;
}

/* Credentials expiring in 15 s are refreshed in the background at half-life
 * (margin 10 s > 15/2), while readers keep getting valid ones at once. */
static void test_refresh(const struct fake_server *s)
{
	struct aws_creds_config cfg = { .refresh_margin_s = 10, .log = count_log };
	struct reader r[4];
	pthread_t th[4];
	struct aws_credentials c = { 0 };
	struct aws_creds *p;
	char *first, *later;
	int64_t exp1;
	int i, waited;

	clear_env();
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", s->url, 1);
	p = create_ok(&cfg);
	REQUIRE(aws_creds_get(p, &c) == 0);
	first = strdup(c.access_key_id);
	exp1 = c.expiration;
	REQUIRE(exp1 > time(NULL) + 10 && exp1 <= time(NULL) + 16);
	aws_credentials_cleanup(&c);

	REQUIRE(aws_creds_start_refresh(p) == 0);
	REQUIRE(aws_creds_start_refresh(p) == 0); /* idempotent */
	for (i = 0; i < 4; i++) {
		r[i] = (struct reader){ .p = p };
		REQUIRE(pthread_create(&th[i], NULL, reader_main, &r[i]) == 0);
	}
	/* Refresh is due ~7.5 s after the fetch; allow up to 12 s. */
	for (waited = 0; waited < 120; waited++) {
		later = key_of(p);
		if (strcmp(first, later) != 0)
			break;
		free(later);
		later = NULL;
		usleep(100000);
	}
	REQUIRE(later != NULL);
	REQUIRE(waited >= 50); /* not before ~5 s: it waited for the margin */
	REQUIRE(aws_creds_get(p, &c) == 0);
	REQUIRE(c.expiration > exp1);
	aws_credentials_cleanup(&c);
	for (i = 0; i < 4; i++) {
		atomic_store(&r[i].stop, true);
		pthread_join(th[i], NULL);
		REQUIRE(r[i].failures == 0);
		REQUIRE(r[i].gets > 100);
		REQUIRE(r[i].worst_s < 0.5); /* never waited for the network */
	}
	REQUIRE(atomic_load(&refresh_logs) >= 1);
	free(first);
	free(later);
	aws_creds_destroy(p); /* joins the refresh thread */
}

/* Without the refresh thread, expired credentials are fetched again by the
 * reader that needs them. */
static void test_expired_sync(void)
{
	struct fake_server s7;
	struct aws_creds *p;
	char *first, *second;

	server_start(&s7, 7); /* valid for 7 - 5 (slack) = 2 s */
	clear_env();
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", s7.url, 1);
	p = create_ok(NULL);
	first = key_of(p);
	sleep(3);
	second = key_of(p);
	REQUIRE(strcmp(first, second) != 0);
	free(first);
	free(second);
	aws_creds_destroy(p);
	server_stop(&s7);
}

/* A failing background refresh keeps serving the old, still valid set. */
static void test_refresh_failure(void)
{
	struct aws_creds_config cfg = { .refresh_margin_s = 10, .log = count_log };
	struct fake_server s15;
	struct aws_creds *p;
	char *first, *now;
	int i;

	server_start(&s15, 15);
	clear_env();
	unsetenv("AWS_EC2_METADATA_DISABLED");
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", s15.url, 1);
	p = create_ok(&cfg);
	first = key_of(p);
	REQUIRE(aws_creds_start_refresh(p) == 0);
	server_stop(&s15); /* the refresh due at ~7.5 s will fail */
	for (i = 0; i < 95 && atomic_load(&refresh_failures) == 0; i++) {
		now = key_of(p); /* CHECKs that get() succeeds */
		REQUIRE(strcmp(now, first) == 0);
		free(now);
		usleep(100000);
	}
	REQUIRE(atomic_load(&refresh_failures) >= 1);
	now = key_of(p);
	REQUIRE(strcmp(now, first) == 0);
	free(now);
	free(first);
	aws_creds_destroy(p);
}

/* Start the server(s), run every test, clean up. */
int main(void)
{
	struct fake_server s;
	char cmd[128];

	signal(SIGPIPE, SIG_IGN);
	if (access(PYTHON, X_OK) != 0 || !find_script()) {
		fprintf(stderr, "skip: need %s and tests/servers/fake_aws_meta.py\n", PYTHON);
		return 77;
	}
	snprintf(dir, sizeof(dir), "/tmp/test_aws_creds_XXXXXX");
	REQUIRE(mkdtemp(dir));
	write_file("wi_token", WI_TOKEN "\n", 0600);
	server_start(&s, 15);

	test_env();
	test_profiles();
	test_web_identity(&s);
	test_ecs(&s);
	test_imds(&s);
	test_precedence(&s);
	test_expired_sync();
	test_refresh(&s);
	test_refresh_failure();

	server_stop(&s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	REQUIRE(system(cmd) == 0);
	printf("test_aws_creds: ok\n");
	return 0;
}
