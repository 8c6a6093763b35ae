/*
 * sigv4_cli.c - sign one request read from stdin and print the result.
 *
 * A test helper for sigv4_botocore_check.py, which compares its output with
 * botocore's. It is not a user tool: it trusts its input, reads credentials
 * from stdin only so they never appear in a process list, and prints the
 * values the HTTP layer would send.
 *
 * Input, one item per line; every string is hex-encoded bytes (empty allowed)
 * so that any key, value or token survives the trip unchanged:
 *     method HEX | path HEX | payload HEX | region HEX | service HEX
 *     access-key HEX | secret-key HEX | token HEX
 *     time SECONDS                     (decimal, UTC)
 *     query HEXNAME HEXVALUE           (repeatable)
 *     header HEXNAME HEXVALUE          (repeatable)
 * Output:
 *     authorization VALUE
 *     x-amz-date VALUE
 *     x-amz-content-sha256 VALUE
 *     x-amz-security-token VALUE       (only with a token)
 *     target VALUE
 * Exit status: 0 signed, 1 the signer refused (the errno is printed), 2 bad input.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sigv4.h"

#define MAX_PARAMS 256
#define MAX_LINE (64 * 1024)

/* Everything read from stdin; every string is owned here. */
struct cli_input {
	char *method, *path, *payload, *region, *service, *access_key, *secret_key, *token;
	long long time;
	struct sigv4_param query[MAX_PARAMS];
	size_t query_count;
	struct sigv4_param headers[MAX_PARAMS];
	size_t header_count;
};

/* Decode len hex digits into a new NUL-terminated string; NULL if malformed or holding a NUL. */
static char *unhex(const char *s, size_t len)
{
	char *out;
	size_t i;

	if (len % 2)
		return NULL;
	out = malloc(len / 2 + 1);
	if (!out)
		return NULL;
	for (i = 0; i < len / 2; i++) {
		int hi = OPENSSL_hexchar2int((unsigned char)s[2 * i]);
		int lo = OPENSSL_hexchar2int((unsigned char)s[2 * i + 1]);

		if (hi < 0 || lo < 0 || (hi | lo) == 0) {
			free(out);
			return NULL;
		}
		out[i] = (char)(hi << 4 | lo);
	}
	out[len / 2] = '\0';
	return out;
}

/* Parse "HEXNAME HEXVALUE" into a pair list; -1 on bad input. */
static int add_pair(struct sigv4_param *list, size_t *count, const char *rest)
{
	const char *sp = strchr(rest, ' ');
	char *name, *value;

	if (!sp || *count >= MAX_PARAMS)
		return -1;
	name = unhex(rest, (size_t)(sp - rest));
	value = unhex(sp + 1, strlen(sp + 1));
	if (!name || !value) {
		free(name);
		free(value);
		return -1;
	}
	list[*count].name = name;
	list[*count].value = value;
	(*count)++;
	return 0;
}

/* Apply one input line; -1 on bad input. */
static int parse_line(struct cli_input *in, char *line)
{
	static const char *const names[] = { "method", "path", "payload", "region",
					     "service", "access-key", "secret-key", "token" };
	char **fields[] = { &in->method, &in->path, &in->payload, &in->region,
			    &in->service, &in->access_key, &in->secret_key, &in->token };
	char *rest = strchr(line, ' ');
	size_t i;

	if (!rest)
		return -1;
	*rest++ = '\0';
	if (!strcmp(line, "query"))
		return add_pair(in->query, &in->query_count, rest);
	if (!strcmp(line, "header"))
		return add_pair(in->headers, &in->header_count, rest);
	if (!strcmp(line, "time")) {
		char *end;

		errno = 0;
		in->time = strtoll(rest, &end, 10);
		return errno || *end || end == rest ? -1 : 0;
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(line, names[i]) != 0)
			continue;
		if (*fields[i])
			return -1;
		*fields[i] = unhex(rest, strlen(rest));
		return *fields[i] ? 0 : -1;
	}
	return -1;
}

/* Free what parse_line() allocated, wiping the secrets first. */
static void input_cleanup(struct cli_input *in)
{
	char **fields[] = { &in->method, &in->path, &in->payload, &in->region,
			    &in->service, &in->access_key, &in->secret_key, &in->token };
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (*fields[i])
			memset(*fields[i], 0, strlen(*fields[i]));
		free(*fields[i]);
	}
	for (i = 0; i < in->query_count; i++) {
		free((char *)in->query[i].name);
		free((char *)in->query[i].value);
	}
	for (i = 0; i < in->header_count; i++) {
		free((char *)in->headers[i].name);
		free((char *)in->headers[i].value);
	}
}

/* Read everything, sign once, print; the exit status says which step failed. */
int main(void)
{
	static struct cli_input in;
	static char line[MAX_LINE];
	struct sigv4_credentials creds;
	struct sigv4_request req;
	struct sigv4_auth auth;
	char *target = NULL;
	int ret, status = 2;

	memset(&auth, 0, sizeof(auth));
	while (fgets(line, sizeof(line), stdin)) {
		size_t len = strlen(line);

		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		if (!len)
			continue;
		if (parse_line(&in, line)) {
			fprintf(stderr, "sigv4_cli: bad input line: %.40s\n", line);
			goto out;
		}
	}
	req = (struct sigv4_request){ in.method, in.path, in.query, in.query_count,
				      in.headers, in.header_count, in.payload };
	creds = (struct sigv4_credentials){ in.access_key, in.secret_key, in.token };
	ret = sigv4_sign(&req, &creds, in.region, in.service ? in.service : "s3",
			 (time_t)in.time, &auth);
	if (!ret)
		ret = sigv4_target(&req, &target);
	if (ret) {
		printf("error %d\n", ret);
		status = 1;
		goto out;
	}
	printf("authorization %s\n", auth.authorization);
	printf("x-amz-date %s\n", auth.amz_date);
	printf("x-amz-content-sha256 %s\n", auth.content_sha256);
	if (auth.security_token)
		printf("x-amz-security-token %s\n", auth.security_token);
	printf("target %s\n", target);
	status = 0;
out:
	free(target);
	sigv4_auth_cleanup(&auth);
	input_cleanup(&in);
	return status;
}
