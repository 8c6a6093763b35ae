/* test_cache.c - cache entries: fetch, not-modified, install, adopt, damaged entries. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "check.h"
#include "file_store.h"

static struct store *st;

static void put(const char *key, const char *body, struct store_meta *m)
{
	int fd = memfd_create("p", 0);

	CHECK(pwrite(fd, body, strlen(body), 0) == (ssize_t)strlen(body));
	CHECK_EQ(store_put(st, key, fd, 0, strlen(body), NULL, m), 0);
	close(fd);
}

static void body_is(int fd, const char *want)
{
	char buf[256] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, CACHE_HDR);

	CHECK(n == (ssize_t)strlen(want) && strcmp(buf, want) == 0);
}

int main(void)
{
	char sdir[] = "/tmp/fbfs-cache-store-XXXXXX", cdir[] = "/tmp/fbfs-cache-XXXXXX";
	char sub[256], err[512], cmd[256];
	struct store_meta m1, m2, got;
	struct cache *c = NULL;
	int fd = -1, old = -1;

	if (!mkdtemp(sdir) || !mkdtemp(cdir))
		return 2;
	CHECK_EQ(file_store_create(sdir, &st, err, sizeof(err)), 0);
	snprintf(sub, sizeof(sub), "%s/nested/dir", cdir);
	CHECK_EQ(cache_create(sub, &c, err, sizeof(err)), 0);
	{
		struct cache *nope = NULL;

		CHECK(cache_create("/proc/no/such", &nope, err, sizeof(err)) < 0 && !nope);
	}
	CHECK(strstr(err, "cache directory") != NULL);

	CHECK_EQ(cache_open(c, "v/config.json", &fd, &got), -ENOENT);
	CHECK_EQ(cache_fetch(c, st, "v/config.json", NULL, &fd, &got), -ENOENT);

	put("v/config.json", "version one", &m1);
	CHECK_EQ(cache_fetch(c, st, "v/config.json", NULL, &old, &got), 0);
	CHECK(strcmp(got.etag, m1.etag) == 0 && got.size == 11);
	body_is(old, "version one");
	CHECK_EQ(cache_fetch(c, st, "v/config.json", m1.etag, &fd, &got), STORE_NOT_MODIFIED);

	/* a new version replaces the entry; the old fd keeps the old version */
	put("v/config.json", "version two!", &m2);
	CHECK_EQ(cache_fetch(c, st, "v/config.json", m1.etag, &fd, &got), 0);
	CHECK(strcmp(got.etag, m2.etag) == 0);
	body_is(fd, "version two!");
	body_is(old, "version one");
	close(fd);
	close(old);
	CHECK_EQ(cache_open(c, "v/config.json", &fd, &got), 0);
	CHECK(strcmp(got.etag, m2.etag) == 0 && got.size == 12);
	body_is(fd, "version two!");

	/* install from a staging file, at an offset */
	{
		int src = cache_staging_create(c);
		struct store_meta m3 = { .etag = "etag-3", .mtime_ns = 42, .size = 5 };

		CHECK(src >= 0);
		CHECK(pwrite(src, "xxhello", 7, 0) == 7);
		CHECK_EQ(cache_install(c, "other", src, 2, &m3), 0);
		close(src);
		close(fd);
		CHECK_EQ(cache_open(c, "other", &fd, &got), 0);
		CHECK(strcmp(got.etag, "etag-3") == 0 && got.mtime_ns == 42);
		body_is(fd, "hello");
		close(fd);
	}
	CHECK(cache_bytes(c) == 2 * CACHE_HDR + 12 + 5);

	/* adopt a staging file: linked in (same inode), the writer's extra
	 * bytes past the size cut off, readers of the old entry unaffected */
	{
		int src = cache_staging_create(c), prev;
		struct store_meta m4 = { .etag = "etag-4", .mtime_ns = 7, .size = 6 };
		struct stat a, b;

		CHECK(src >= 0);
		CHECK_EQ(cache_open(c, "other", &prev, &got), 0);
		CHECK(pwrite(src, "adopted!!", 9, CACHE_HDR) == 9);
		CHECK_EQ(cache_adopt(c, "other", src, &m4), 0);
		CHECK_EQ(cache_open(c, "other", &fd, &got), 0);
		CHECK(strcmp(got.etag, "etag-4") == 0 && got.size == 6);
		body_is(fd, "adopte");
		CHECK(fstat(fd, &a) == 0 && fstat(src, &b) == 0 && a.st_ino == b.st_ino);
		body_is(prev, "hello");
		close(prev);
		close(src);
		close(fd);
	}
	CHECK(cache_bytes(c) == 2 * CACHE_HDR + 12 + 6);
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A %s/nested/dir/tmp)\"", cdir);
	CHECK_EQ(system(cmd), 0);

	/* a truncated entry (crash, or a hand edit) is not an entry */
	snprintf(cmd, sizeof(cmd), "for f in %s/nested/dir/objects/*; do truncate -s -1 $f; done",
		 cdir);
	CHECK_EQ(system(cmd), 0);
	CHECK_EQ(cache_open(c, "other", &fd, &got), -ENOENT);
	cache_evict(c, "v/config.json");
	CHECK_EQ(cache_open(c, "v/config.json", &fd, &got), -ENOENT);

	cache_destroy(c);
	store_destroy(st);
	cache_destroy(NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", sdir, cdir);
	CHECK_EQ(system(cmd), 0);
	return check_exit("test_cache");
}
