/*
 * store_contract.c - the store contract suite, written once and run against
 * every store: `store_contract file` (a fresh temporary directory) or
 * `store_contract URL` (any storage URL; the store's own environment
 * variables apply). Each test uses its own key prefix, so a shared bucket
 * can be reused. What a store declares it cannot do (STORE_CAP_*) must fail
 * with -ENOTSUP, never succeed silently; the suite reports which it is.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "store.h"
#include "store_open.h"

static struct store *st;
static const char *url;
static char run[32]; /* per-run prefix: "contract-<random>/" */

/* A memory fd holding data, to put from. */
static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("put", MFD_CLOEXEC);

	if (fd < 0 || (len && pwrite(fd, data, len, 0) != (ssize_t)len))
		abort();
	return fd;
}

static int put_str(const char *key, const char *s, const struct store_put_cond *cond,
		   struct store_meta *m)
{
	int fd = memfd_with(s, strlen(s));
	int ret = store_put(st, key, fd, 0, strlen(s), cond, m);

	close(fd);
	return ret;
}

/* Get key into a malloc'd NUL-terminated string (caller frees), or NULL. */
static char *get_str(const char *key, struct store_meta *m, int *ret_out)
{
	int fd = memfd_create("get", MFD_CLOEXEC);
	struct store_meta local;
	char *buf = NULL;
	int ret;

	ret = store_get(st, key, NULL, NULL, fd, 3, m ? m : &local);
	if (ret_out)
		*ret_out = ret;
	if (ret == 0) {
		uint64_t size = (m ? m : &local)->size;

		buf = calloc(1, size + 1);
		if (pread(fd, buf, size, 3) != (ssize_t)size) {
			free(buf);
			buf = NULL;
		}
	}
	close(fd);
	return buf;
}

static void key(char *out, size_t len, const char *test, const char *name)
{
	snprintf(out, len, "%s%s/%s", run, test, name);
}

static bool cond_supported(void)
{
	return st->caps & STORE_CAP_CONDITIONAL_PUT;
}

static void test_roundtrip(void)
{
	struct store_meta m1, m2, h;
	char k[256], *body;
	int ret;

	key(k, sizeof(k), "roundtrip", "config.json");
	CHECK_EQ(store_head(st, k, &h), -ENOENT);
	CHECK(get_str(k, NULL, &ret) == NULL);
	CHECK_EQ(ret, -ENOENT);
	CHECK_EQ(put_str(k, "{\"_format_version\":\"3.0\"}", NULL, &m1), 0);
	CHECK_EQ(m1.size, 25);
	CHECK(m1.etag[0] != '\0');
	CHECK_EQ(store_head(st, k, &h), 0);
	CHECK(strcmp(h.etag, m1.etag) == 0 && h.size == 25);
	body = get_str(k, &m2, &ret);
	CHECK(body && strcmp(body, "{\"_format_version\":\"3.0\"}") == 0);
	CHECK(strcmp(m2.etag, m1.etag) == 0);
	free(body);
	/* an mtime within a minute of now */
	CHECK(llabs(h.mtime_ns / 1000000000 - (long long)time(NULL)) < 60);

	/* empty object */
	key(k, sizeof(k), "roundtrip", "empty");
	CHECK_EQ(put_str(k, "", NULL, &m1), 0);
	CHECK_EQ(m1.size, 0);
	body = get_str(k, &m2, &ret);
	CHECK(body && body[0] == '\0' && m2.size == 0);
	free(body);
}

static void test_etag_changes(void)
{
	char k[256], prev[STORE_ETAG_MAX] = "";
	struct store_meta m;
	int fd, ret;

	/* Same size, same content, back to back: every version is new. */
	key(k, sizeof(k), "etag", "same-size");
	for (int i = 0; i < 20; i++) {
		CHECK_EQ(put_str(k, i % 2 ? "AAAA" : "BBBB", NULL, &m), 0);
		CHECK(strcmp(prev, m.etag) != 0);
		memcpy(prev, m.etag, sizeof(prev));
	}
	/* if-none-match */
	fd = memfd_create("g", MFD_CLOEXEC);
	ret = store_get(st, k, m.etag, NULL, fd, 0, &m);
	CHECK_EQ(ret, STORE_NOT_MODIFIED);
	CHECK_EQ(lseek(fd, 0, SEEK_END), 0);
	ret = store_get(st, k, "\"not-the-etag\"", NULL, fd, 0, &m);
	CHECK_EQ(ret, 0);
	CHECK_EQ(m.size, 4);
	close(fd);
	/* if-match: that version, or nothing */
	fd = memfd_create("g", MFD_CLOEXEC);
	CHECK_EQ(store_get(st, k, NULL, "not-the-etag", fd, 0, &m), -ESTALE);
	CHECK_EQ(lseek(fd, 0, SEEK_END), 0);
	memcpy(prev, m.etag, sizeof(prev));
	CHECK_EQ(store_get(st, k, NULL, prev, fd, 0, &m), 0);
	CHECK(m.size == 4 && strcmp(m.etag, prev) == 0);
	close(fd);
}

static void test_conditional(void)
{
	struct store_put_cond create = { .mode = STORE_PUT_CREATE };
	struct store_put_cond match = { .mode = STORE_PUT_IF_MATCH };
	struct store_meta m1, m2;
	char k[256], *body;

	key(k, sizeof(k), "cond", "leader");
	if (!cond_supported()) {
		CHECK_EQ(put_str(k, "x", &create, &m1), -ENOTSUP);
		printf("note: store does not enforce conditional writes (reported, -ENOTSUP)\n");
		return;
	}
	CHECK_EQ(put_str(k, "one", &create, &m1), 0);
	CHECK_EQ(put_str(k, "two", &create, &m2), -EEXIST);
	body = get_str(k, NULL, NULL);
	CHECK(body && strcmp(body, "one") == 0);
	free(body);

	match.etag = m1.etag;
	CHECK_EQ(put_str(k, "three", &match, &m2), 0);
	CHECK_EQ(put_str(k, "four", &match, NULL), -ESTALE); /* m1 is old now */
	body = get_str(k, NULL, NULL);
	CHECK(body && strcmp(body, "three") == 0);
	free(body);

	key(k, sizeof(k), "cond", "missing");
	CHECK_EQ(put_str(k, "x", &match, NULL), -ENOENT);

	/* conditional delete */
	key(k, sizeof(k), "cond", "leader");
	CHECK_EQ(store_del(st, k, m1.etag), -ESTALE);
	CHECK_EQ(store_del(st, k, m2.etag), 0);
	CHECK_EQ(store_del(st, k, NULL), -ENOENT);
}

/* N processes race a create-only put of one key: exactly one wins. */
static void test_create_race(void)
{
	enum { N = 8 };
	struct store_put_cond create = { .mode = STORE_PUT_CREATE };
	char k[256], *body;
	int wins = 0, losses = 0;
	pid_t pids[N];

	if (!cond_supported())
		return;
	key(k, sizeof(k), "race", "election-lock");
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			char who[16];
			int ret;

			snprintf(who, sizeof(who), "node-%d", i);
			ret = put_str(k, who, &create, NULL);
			_exit(ret == 0 ? 0 : ret == -EEXIST ? 1 : 2);
		}
	}
	for (int i = 0; i < N; i++) {
		int status;

		waitpid(pids[i], &status, 0);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			wins++;
		else if (WIFEXITED(status) && WEXITSTATUS(status) == 1)
			losses++;
	}
	CHECK_EQ(wins, 1);
	CHECK_EQ(losses, N - 1);
	body = get_str(k, NULL, NULL);
	CHECK(body && strncmp(body, "node-", 5) == 0);
	free(body);
}

/* Compare-and-swap increments from several processes lose no update. */
static void test_cas_counter(void)
{
	enum { N = 4, ROUNDS = 10 };
	char k[256], *body;
	pid_t pids[N];

	if (!cond_supported())
		return;
	key(k, sizeof(k), "cas", "counter");
	CHECK_EQ(put_str(k, "0", NULL, NULL), 0);
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			for (int r = 0; r < ROUNDS;) {
				struct store_put_cond match = { .mode = STORE_PUT_IF_MATCH };
				struct store_meta m;
				char next[32];
				int ret;
				char *cur = get_str(k, &m, &ret);

				if (!cur)
					_exit(2);
				snprintf(next, sizeof(next), "%ld", strtol(cur, NULL, 10) + 1);
				free(cur);
				match.etag = m.etag;
				ret = put_str(k, next, &match, NULL);
				if (ret == 0)
					r++;
				else if (ret != -ESTALE)
					_exit(3);
			}
			_exit(0);
		}
	}
	for (int i = 0; i < N; i++) {
		int status;

		waitpid(pids[i], &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	body = get_str(k, NULL, NULL);
	CHECK(body && atoi(body) == N * ROUNDS);
	free(body);
}

/* Paging, ordering, delimiters and prefixes that share a stem. */
static void test_list(void)
{
	struct store_list_page page = { 0 };
	char k[256], prefix[256], *token = NULL, last[256] = "";
	size_t total = 0, pages = 0;
	bool sorted = true;
	int ret;

	for (int i = 0; i < 1205; i++) {
		char name[64];

		snprintf(name, sizeof(name), "election/%010d-node", i);
		key(k, sizeof(k), "list", name);
		CHECK_EQ(put_str(k, "", NULL, NULL), 0);
	}
	key(k, sizeof(k), "list", "config.json");
	put_str(k, "{}", NULL, NULL);
	key(k, sizeof(k), "list", "config.json.bak");
	put_str(k, "{}", NULL, NULL);
	key(k, sizeof(k), "list", "configs/a");
	put_str(k, "{}", NULL, NULL);

	key(prefix, sizeof(prefix), "list", "election/");
	do {
		ret = store_list(st, prefix, NULL, token, 500, &page);
		CHECK_EQ(ret, 0);
		free(token);
		token = page.next_token ? strdup(page.next_token) : NULL;
		CHECK(page.count <= 500);
		for (size_t i = 0; i < page.count; i++) {
			if (strcmp(page.entries[i].key, last) <= 0)
				sorted = false;
			snprintf(last, sizeof(last), "%s", page.entries[i].key);
			CHECK(!page.entries[i].is_prefix);
		}
		total += page.count;
		pages++;
		store_list_page_cleanup(&page);
	} while (token && ret == 0 && pages < 10);
	CHECK_EQ(total, 1205);
	CHECK(pages >= 3);
	CHECK(sorted);

	/* delimiter: the election directory rolls up into one prefix */
	key(prefix, sizeof(prefix), "list", "");
	CHECK_EQ(store_list(st, prefix, "/", NULL, 1000, &page), 0);
	CHECK_EQ(page.count, 4);
	if (page.count == 4) {
		char want[4][256];

		key(want[0], 256, "list", "config.json");
		key(want[1], 256, "list", "config.json.bak");
		key(want[2], 256, "list", "configs/");
		key(want[3], 256, "list", "election/");
		CHECK(strcmp(page.entries[0].key, want[0]) == 0 && !page.entries[0].is_prefix);
		CHECK(strcmp(page.entries[1].key, want[1]) == 0);
		CHECK(strcmp(page.entries[2].key, want[2]) == 0 && page.entries[2].is_prefix);
		CHECK(strcmp(page.entries[3].key, want[3]) == 0 && page.entries[3].is_prefix);
		CHECK(page.entries[0].meta.size == 2 && page.entries[0].meta.etag[0]);
	}
	store_list_page_cleanup(&page);

	/* a prefix that is a stem of several names */
	key(prefix, sizeof(prefix), "list", "config");
	CHECK_EQ(store_list(st, prefix, "/", NULL, 1000, &page), 0);
	CHECK_EQ(page.count, 3);
	store_list_page_cleanup(&page);

	/* a delimited listing paged one entry at a time */
	key(prefix, sizeof(prefix), "list", "");
	total = 0;
	token = NULL;
	do {
		CHECK_EQ(store_list(st, prefix, "/", token, 1, &page), 0);
		free(token);
		token = page.next_token ? strdup(page.next_token) : NULL;
		total += page.count;
		store_list_page_cleanup(&page);
	} while (token && total < 20);
	CHECK_EQ(total, 4);

	/* nothing there */
	key(prefix, sizeof(prefix), "list", "nothing/");
	CHECK_EQ(store_list(st, prefix, "/", NULL, 1000, &page), 0);
	CHECK_EQ(page.count, 0);
	CHECK(page.next_token == NULL);
	store_list_page_cleanup(&page);
}

static void test_touch(void)
{
	struct store_meta m1, m2;
	char k[256], *body;

	key(k, sizeof(k), "touch", "election-entry");
	CHECK_EQ(put_str(k, "same body", NULL, &m1), 0);
	if (!(st->caps & STORE_CAP_TOUCH)) {
		CHECK_EQ(store_touch(st, k, &m2), -ENOTSUP);
		return;
	}
	usleep(20000);
	CHECK_EQ(store_touch(st, k, &m2), 0);
	CHECK(m2.mtime_ns > m1.mtime_ns);
	body = get_str(k, NULL, NULL);
	CHECK(body && strcmp(body, "same body") == 0);
	free(body);
	key(k, sizeof(k), "touch", "missing");
	CHECK_EQ(store_touch(st, k, &m2), -ENOENT);
}

/* A big object, and a put that fails half-way leaves the old version. */
static void test_big_and_failed(void)
{
	size_t len = 8u << 20;
	char *data = malloc(len), k[256];
	struct store_meta m;
	int fd, out, ret;

	for (size_t i = 0; i < len; i++)
		data[i] = (char)(i * 2654435761u >> 13);
	key(k, sizeof(k), "big", "config.json");
	fd = memfd_with(data, len);
	CHECK_EQ(store_put(st, k, fd, 0, len, NULL, &m), 0);
	CHECK_EQ(m.size, len);
	/* a body source that ends early: the put must fail, atomically */
	ret = store_put(st, k, fd, (off_t)len - 10, 1000, NULL, NULL);
	CHECK(ret < 0);
	close(fd);
	out = memfd_create("big", MFD_CLOEXEC);
	CHECK_EQ(store_get(st, k, NULL, NULL, out, 0, &m), 0);
	CHECK_EQ(m.size, len);
	{
		char *back = malloc(len);

		CHECK(pread(out, back, len, 0) == (ssize_t)len && memcmp(back, data, len) == 0);
		free(back);
	}
	close(out);
	free(data);
}

/* Read key whole and compare with data[0..len). */
static void body_equals(const char *k, const char *data, size_t len)
{
	int out = memfd_create("get", MFD_CLOEXEC);
	struct store_meta m;
	char *back = malloc(len ? len : 1);

	CHECK_EQ(store_get(st, k, NULL, NULL, out, 0, &m), 0);
	CHECK_EQ(m.size, len);
	CHECK(pread(out, back, len, 0) == (ssize_t)len && memcmp(back, data, len) == 0);
	free(back);
	close(out);
}

/* Streamed uploads: the body is written to the fd while the store already
 * has the upload; nothing is visible before commit, commit is one atomic
 * put under its condition, abort leaves the previous version. */
static void test_streamed_upload(void)
{
	size_t len = 12u << 20;
	char *data = malloc(len), k[256];
	struct store_upload *u;
	struct store_meta m, old;
	int fd = memfd_create("stream", MFD_CLOEXEC), ret;

	for (size_t i = 0; i < len; i++)
		data[i] = (char)(i * 2246822519u >> 11);
	key(k, sizeof(k), "stream", "config.json");
	ret = store_upload_begin(st, k, fd, 3, &u);
	if (ret == -ENOTSUP) {
		printf("note: store does not stream uploads (puts at commit)\n");
		close(fd);
		free(data);
		return;
	}
	CHECK_EQ(ret, 0);
	/* written in three steps, each made stable as it lands */
	CHECK(pwrite(fd, data, 4u << 20, 3) == 4 << 20);
	store_upload_advance(u, 4u << 20);
	CHECK(pwrite(fd, data + (4u << 20), 7u << 20, 3 + (4 << 20)) == 7 << 20);
	store_upload_advance(u, 11u << 20);
	CHECK_EQ(store_head(st, k, &m), -ENOENT); /* nothing visible yet */
	CHECK(pwrite(fd, data + (11u << 20), len - (11u << 20), 3 + (11 << 20)) ==
	      (ssize_t)(len - (11u << 20)));
	store_upload_advance(u, len);
	CHECK_EQ(store_upload_commit(u, len, NULL, &m), 0);
	CHECK_EQ(m.size, len);
	CHECK_EQ(store_head(st, k, &old), 0);
	CHECK(strcmp(old.etag, m.etag) == 0);
	body_equals(k, data, len);

	/* abort after parts went up: the previous version stays */
	CHECK_EQ(store_upload_begin(st, k, fd, 3, &u), 0);
	store_upload_advance(u, len);
	store_upload_abort(u);
	CHECK_EQ(store_head(st, k, &m), 0);
	CHECK(strcmp(old.etag, m.etag) == 0);

	/* create-only on an existing key: refused, or -ENOTSUP where the
	 * store cannot enforce it; the previous version stays either way */
	{
		struct store_put_cond create = { .mode = STORE_PUT_CREATE };
		struct store_put_cond match = { .mode = STORE_PUT_IF_MATCH, .etag = old.etag };

		CHECK_EQ(store_upload_begin(st, k, fd, 3, &u), 0);
		store_upload_advance(u, len);
		CHECK_EQ(store_upload_commit(u, len, &create, NULL),
			 cond_supported() ? -EEXIST : -ENOTSUP);
		CHECK_EQ(store_head(st, k, &m), 0);
		CHECK(strcmp(old.etag, m.etag) == 0);
		/* compare-and-swap from the version we know: a new version */
		CHECK(pwrite(fd, "X", 1, 3 + 100) == 1);
		data[100] = 'X';
		CHECK_EQ(store_upload_begin(st, k, fd, 3, &u), 0);
		store_upload_advance(u, len);
		ret = store_upload_commit(u, len, &match, &m);
		if (cond_supported()) {
			CHECK_EQ(ret, 0);
			CHECK(strcmp(old.etag, m.etag) != 0);
			body_equals(k, data, len);
		} else {
			CHECK_EQ(ret, -ENOTSUP);
		}
	}

	/* a small body through an upload is a plain put */
	key(k, sizeof(k), "stream", "small.json");
	CHECK(pwrite(fd, "{\"small\":1}", 11, 3) == 11);
	CHECK_EQ(store_upload_begin(st, k, fd, 3, &u), 0);
	store_upload_advance(u, 11);
	CHECK_EQ(store_upload_commit(u, 11, NULL, &m), 0);
	body_equals(k, "{\"small\":1}", 11);
	close(fd);
	free(data);
}

static void test_bad_keys(void)
{
	struct store_meta m;

	CHECK_EQ(store_head(st, "../etc/passwd", &m), -EINVAL);
	CHECK_EQ(store_head(st, "a//b", &m), -EINVAL);
	CHECK_EQ(put_str("/abs", "x", NULL, NULL), -EINVAL);
}

int main(int argc, char **argv)
{
	struct store_config cfg = { .timeout_ms = 30000 };
	char dir[] = "/tmp/fallbackfs-contract-XXXXXX", urlbuf[64], err[512] = "";
	unsigned long long r = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: store_contract file|URL\n");
		return 2;
	}
	if (strcmp(argv[1], "file") == 0) {
		if (!mkdtemp(dir))
			return 2;
		snprintf(urlbuf, sizeof(urlbuf), "file://%s", dir);
		url = urlbuf;
	} else {
		url = argv[1];
	}
	cfg.url = url;
	if (store_open(&cfg, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "store_contract: %s\n", err);
		return 1;
	}
	getrandom(&r, sizeof(r), 0);
	snprintf(run, sizeof(run), "contract-%llx/", r & 0xffffffffffull);

	test_roundtrip();
	test_etag_changes();
	test_conditional();
	test_create_race();
	test_cas_counter();
	test_list();
	test_touch();
	test_big_and_failed();
	test_streamed_upload();
	test_bad_keys();
	store_destroy(st);
	if (strcmp(argv[1], "file") == 0) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return check_exit("store_contract");
}
