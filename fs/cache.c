/*
 * cache.c - the local object cache (see cache.h for the entry format).
 *
 * Not here: deciding when to revalidate (the filesystem does that), or any
 * eviction policy beyond "one entry per key, replaced by its next version".
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "fd_copy.h"

#define MAGIC "FALLBACKFS-CACHE-1\n"

struct cache {
	char *dir;
	int objects_fd; /* dir/objects */
	int tmp_fd;     /* dir/tmp: entries being written, then renamed */
};

/* Entry file name: hex SHA-256 of the key, so any key maps to a safe name. */
static void entry_name(const char *key, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;

	EVP_Digest(key, strlen(key), md, &len, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* mkdir -p for the cache root (one level of parents is typical). */
static int mkdirs(const char *path)
{
	char buf[4096];

	if (strlen(path) >= sizeof(buf))
		return -ENAMETOOLONG;
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = strchr(buf + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Open (creating) a subdirectory of the cache root. */
static int open_sub(int root, const char *name)
{
	int fd;

	if (mkdirat(root, name, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(root, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Create the directory tree and check that it is a writable directory. */
int cache_create(const char *dir, struct cache **out, char *err, size_t errlen)
{
	struct cache *c = calloc(1, sizeof(*c));
	int root = -1, ret;

	if (!c)
		return -ENOMEM;
	c->objects_fd = c->tmp_fd = -1;
	ret = mkdirs(dir);
	if (ret)
		goto fail;
	root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		ret = -errno;
		goto fail;
	}
	if (faccessat(root, ".", W_OK, AT_EACCESS) < 0) {
		ret = -errno;
		goto fail;
	}
	c->objects_fd = open_sub(root, "objects");
	if (c->objects_fd < 0) {
		ret = c->objects_fd;
		goto fail;
	}
	c->tmp_fd = open_sub(root, "tmp");
	if (c->tmp_fd < 0) {
		ret = c->tmp_fd;
		goto fail;
	}
	c->dir = strdup(dir);
	if (!c->dir) {
		ret = -ENOMEM;
		goto fail;
	}
	close(root);
	*out = c;
	return 0;
fail:
	snprintf(err, errlen, "cannot use cache directory '%s': %s", dir, strerror(-ret));
	if (root >= 0)
		close(root);
	cache_destroy(c);
	return ret;
}

/* Close the directory fds. */
void cache_destroy(struct cache *c)
{
	if (!c)
		return;
	if (c->objects_fd >= 0)
		close(c->objects_fd);
	if (c->tmp_fd >= 0)
		close(c->tmp_fd);
	free(c->dir);
	free(c);
}

const char *cache_dir(const struct cache *c)
{
	return c->dir;
}

/* Serialise the header for key/meta into hdr (CACHE_HDR bytes). */
static int header_build(const char *key, const struct store_meta *meta, char *hdr)
{
	cJSON *j = cJSON_CreateObject();
	char *text = NULL;
	int ret = -ENOMEM;

	if (!j || !cJSON_AddStringToObject(j, "key", key) ||
	    !cJSON_AddStringToObject(j, "etag", meta->etag) ||
	    !cJSON_AddNumberToObject(j, "mtime_ns", (double)meta->mtime_ns) ||
	    !cJSON_AddNumberToObject(j, "size", (double)meta->size))
		goto out;
	text = cJSON_PrintUnformatted(j);
	if (!text)
		goto out;
	if (strlen(MAGIC) + strlen(text) + 2 > CACHE_HDR) {
		ret = -ENAMETOOLONG;
		goto out;
	}
	memset(hdr, 0, CACHE_HDR);
	snprintf(hdr, CACHE_HDR, "%s%s\n", MAGIC, text);
	ret = 0;
out:
	free(text);
	cJSON_Delete(j);
	return ret;
}

/* Parse and check a header read from an entry of key. */
static int header_parse(const char *hdr, const char *key, struct store_meta *meta)
{
	cJSON *j = NULL, *k, *e, *m, *s;
	int ret = -ENOENT;

	if (memcmp(hdr, MAGIC, strlen(MAGIC)) != 0 || !memchr(hdr, '\0', CACHE_HDR))
		return -ENOENT;
	j = cJSON_Parse(hdr + strlen(MAGIC));
	if (!j)
		return -ENOENT;
	k = cJSON_GetObjectItemCaseSensitive(j, "key");
	e = cJSON_GetObjectItemCaseSensitive(j, "etag");
	m = cJSON_GetObjectItemCaseSensitive(j, "mtime_ns");
	s = cJSON_GetObjectItemCaseSensitive(j, "size");
	if (!cJSON_IsString(k) || strcmp(k->valuestring, key) != 0 || !cJSON_IsString(e) ||
	    strlen(e->valuestring) >= sizeof(meta->etag) || !cJSON_IsNumber(m) ||
	    !cJSON_IsNumber(s) || s->valuedouble < 0)
		goto out;
	snprintf(meta->etag, sizeof(meta->etag), "%s", e->valuestring);
	meta->mtime_ns = (int64_t)m->valuedouble;
	meta->size = (uint64_t)s->valuedouble;
	ret = 0;
out:
	cJSON_Delete(j);
	return ret;
}

/* Open the entry, check its header and that the body is all there. */
int cache_open(struct cache *c, const char *key, int *fd_out, struct store_meta *meta)
{
	char name[65];
	char *hdr = NULL;
	struct stat st;
	int fd, ret;

	entry_name(key, name);
	fd = openat(c->objects_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	hdr = malloc(CACHE_HDR);
	if (!hdr) {
		ret = -ENOMEM;
		goto out;
	}
	if (pread(fd, hdr, CACHE_HDR, 0) != CACHE_HDR || fstat(fd, &st) < 0) {
		ret = -ENOENT;
		goto out;
	}
	ret = header_parse(hdr, key, meta);
	if (ret == 0 && (uint64_t)st.st_size != CACHE_HDR + meta->size)
		ret = -ENOENT; /* truncated by a crash or by hand */
out:
	free(hdr);
	if (ret) {
		close(fd);
		return ret;
	}
	*fd_out = fd;
	return 0;
}

/* A random name for a file in tmp/. */
static void tmp_name(char name[64], int tries)
{
	unsigned long long r = 0;

	if (getrandom(&r, sizeof(r), 0) < 0)
		r = (unsigned long long)getpid() * 2654435761u + (unsigned)tries;
	snprintf(name, 64, "e.%llx", r);
}

/* A new named temporary file in tmp/ (named, so it can be renamed in). */
static int tmp_create(struct cache *c, char name[64])
{
	for (int tries = 0; tries < 16; tries++) {
		int fd;

		tmp_name(name, tries);
		fd = openat(c->tmp_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd < 0 ? -errno : fd;
	}
	return -EEXIST;
}

/* Write the header into tmp file fd and rename it into place as key. */
static int publish(struct cache *c, const char *key, int fd, const char *tmpname,
		   const struct store_meta *meta)
{
	char name[65];
	char *hdr = malloc(CACHE_HDR);
	int ret;

	if (!hdr)
		return -ENOMEM;
	ret = header_build(key, meta, hdr);
	if (ret == 0 && pwrite(fd, hdr, CACHE_HDR, 0) != CACHE_HDR)
		ret = -EIO;
	free(hdr);
	if (ret)
		return ret;
	entry_name(key, name);
	if (renameat(c->tmp_fd, tmpname, c->objects_fd, name) < 0)
		return -errno;
	return 0;
}

struct cache_download {
	struct cache *c;
	int fd;
	char tmpname[64];
};

int cache_download_start(struct cache *c, struct cache_download **out, int *fd_out)
{
	struct cache_download *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->c = c;
	d->fd = tmp_create(c, d->tmpname);
	if (d->fd < 0) {
		int ret = d->fd;

		free(d);
		return ret;
	}
	*fd_out = dup(d->fd);
	if (*fd_out < 0) {
		int ret = -errno;

		unlinkat(c->tmp_fd, d->tmpname, 0);
		close(d->fd);
		free(d);
		return ret;
	}
	*out = d;
	return 0;
}

int cache_download_finish(struct cache_download *d, struct store *s, const char *key,
			  const char *if_none_match, const char *if_match,
			  struct store_meta *meta)
{
	bool published = false;
	int ret = store_get(s, key, if_none_match, if_match, d->fd, CACHE_HDR, meta);

	if (ret == 0) {
		struct stat st;

		/* A store that sends fewer bytes than it announced is lying. */
		if (fstat(d->fd, &st) < 0 || (uint64_t)st.st_size != CACHE_HDR + meta->size)
			ret = -EIO;
	}
	if (ret == 0) {
		ret = publish(d->c, key, d->fd, d->tmpname, meta);
		published = ret == 0;
	}
	if (!published)
		unlinkat(d->c->tmp_fd, d->tmpname, 0);
	close(d->fd);
	free(d);
	return ret;
}

void cache_download_cancel(struct cache_download *d)
{
	unlinkat(d->c->tmp_fd, d->tmpname, 0);
	close(d->fd);
	free(d);
}

/* Conditional download into a fresh entry. */
int cache_fetch(struct cache *c, struct store *s, const char *key, const char *if_none_match,
		int *fd_out, struct store_meta *meta)
{
	struct cache_download *d;
	int fd, ret = cache_download_start(c, &d, &fd);

	if (ret)
		return ret;
	ret = cache_download_finish(d, s, key, if_none_match, NULL, meta);
	if (ret == 0)
		*fd_out = fd;
	else
		close(fd);
	return ret;
}

/* Copy a committed body into a new entry. */
int cache_install(struct cache *c, const char *key, int src, off_t src_off,
		  const struct store_meta *meta)
{
	char tmpname[64];
	int fd, ret;

	fd = tmp_create(c, tmpname);
	if (fd < 0)
		return fd;
	ret = fd_copy_range(src, src_off, fd, CACHE_HDR, meta->size);
	if (ret == 0)
		ret = publish(c, key, fd, tmpname, meta);
	if (ret)
		unlinkat(c->tmp_fd, tmpname, 0);
	close(fd);
	return ret;
}

/* Unlink the entry; readers holding it open are unaffected. */
void cache_evict(struct cache *c, const char *key)
{
	char name[65];

	entry_name(key, name);
	unlinkat(c->objects_fd, name, 0);
}

/*
 * Link a staging file in as key's entry, header written first. Linking an
 * O_TMPFILE is the cheap way: a commit publishes tens of megabytes that are
 * already on disk, and copying them again would cost as much as the upload's
 * own hashing. A staging file that cannot be linked (no O_TMPFILE support)
 * is copied instead.
 */
int cache_adopt(struct cache *c, const char *key, int fd, const struct store_meta *meta)
{
	char tmpname[64], proc[64];
	int ret = 0;

	if (ftruncate(fd, CACHE_HDR + (off_t)meta->size) < 0)
		return -errno;
	for (int tries = 0; tries < 16; tries++) {
		tmp_name(tmpname, tries);
		/* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd does not */
		if (linkat(fd, "", c->tmp_fd, tmpname, AT_EMPTY_PATH) == 0)
			break;
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (linkat(AT_FDCWD, proc, c->tmp_fd, tmpname, AT_SYMLINK_FOLLOW) == 0)
			break;
		ret = -errno;
		if (ret != -EEXIST)
			break;
	}
	if (ret)
		return cache_install(c, key, fd, CACHE_HDR, meta);
	ret = publish(c, key, fd, tmpname, meta);
	if (ret)
		unlinkat(c->tmp_fd, tmpname, 0);
	return ret;
}

/* O_TMPFILE where supported, else a named file unlinked at once. */
int cache_staging_create(struct cache *c)
{
	char name[64];
	int fd = openat(c->tmp_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0)
		return fd;
	fd = tmp_create(c, name);
	if (fd >= 0)
		unlinkat(c->tmp_fd, name, 0);
	return fd;
}

/* Sum of entry sizes on disk. */
uint64_t cache_bytes(struct cache *c)
{
	uint64_t total = 0;
	struct dirent *de;
	DIR *d;
	int fd = openat(c->objects_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] != '.' && fstatat(c->objects_fd, de->d_name, &st, 0) == 0)
			total += (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}
