/*
 * file_store.c - the file:// store: a local directory as an object store.
 *
 * Key "a/b/c" is the regular file DIR/a/b/c, so an operator can look at the
 * store with ordinary tools. It is a real store, not a toy:
 *   - a put writes a temporary file under DIR/.fallbackfs/tmp, fsyncs it and
 *     renames it over the key, so readers see the old or the new version,
 *     never a mix, and a failed put leaves the old version alone;
 *   - create-only, if-match, delete and touch decide under an flock on
 *     DIR/.fallbackfs/lock, which serialises every process and mount that
 *     shares the directory (the data copy and fsync happen before the lock);
 *   - the etag is "<mtime ns>-<size>-<inode>" in hex; under the lock each new
 *     version gets an mtime strictly above the previous one, so the etag
 *     changes with every version even within one clock tick.
 * Limits of the medium: a key cannot be both an object and a prefix ("a" and
 * "a/b"), and only "/" works as a list delimiter.
 *
 * Not here: caching, retries (nothing to retry), or any FUSE concerns.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fd_copy.h"
#include "file_store.h"

#define INTERNAL_DIR ".fallbackfs"

struct file_store {
	struct store base;
	char *root;
	int root_fd; /* O_DIRECTORY, read-only */
};

static struct file_store *fs_of(struct store *s)
{
	return (struct file_store *)s;
}

/* The internal directory shares the root, so its name is not a valid key. */
static int key_ok(const char *key)
{
	int ret = store_key_check(key);

	if (ret)
		return ret;
	if (strncmp(key, INTERNAL_DIR, sizeof(INTERNAL_DIR) - 1) == 0 &&
	    (key[sizeof(INTERNAL_DIR) - 1] == '/' || key[sizeof(INTERNAL_DIR) - 1] == '\0'))
		return -EINVAL;
	return 0;
}

static int64_t ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* Fill meta from a stat of the object's file. */
static void meta_from_stat(const struct stat *st, struct store_meta *m)
{
	m->mtime_ns = ts_ns(&st->st_mtim);
	m->size = (uint64_t)st->st_size;
	snprintf(m->etag, sizeof(m->etag), "%llx-%llx-%llx",
		 (unsigned long long)m->mtime_ns, (unsigned long long)st->st_size,
		 (unsigned long long)st->st_ino);
}

/* Stat key as an object: directories and missing paths are "no object". */
static int stat_key(struct file_store *f, const char *key, struct stat *st)
{
	if (fstatat(f->root_fd, key, st, 0) < 0)
		return (errno == ENOTDIR || errno == ENOENT) ? -ENOENT : -errno;
	if (!S_ISREG(st->st_mode))
		return -ENOENT;
	return 0;
}

/* Open (creating on first use) a directory below DIR/.fallbackfs. */
static int open_internal(struct file_store *f, const char *sub)
{
	char path[64];
	int fd;

	if (mkdirat(f->root_fd, INTERNAL_DIR, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), INTERNAL_DIR "%s%s", sub ? "/" : "", sub ? sub : "");
	if (sub && mkdirat(f->root_fd, path, 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(f->root_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Take the store-wide lock; returns the fd that holds it (close releases). */
static int lock_store(struct file_store *f)
{
	int dfd = open_internal(f, NULL);
	int fd;

	if (dfd < 0)
		return dfd;
	fd = openat(dfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		fd = -errno;
		close(dfd);
		return fd;
	}
	close(dfd);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = -errno;

			close(fd);
			return e;
		}
	}
	return fd;
}

/* An mtime strictly after prev, normally "now": makes etags unique. */
static struct timespec next_mtime(int64_t prev_ns)
{
	struct timespec now;
	int64_t n;

	clock_gettime(CLOCK_REALTIME, &now);
	n = ts_ns(&now);
	if (n <= prev_ns)
		n = prev_ns + 1;
	now.tv_sec = n / 1000000000;
	now.tv_nsec = n % 1000000000;
	return now;
}

/* Create the parent directories of key (under the lock). */
static int make_parents(struct file_store *f, const char *key)
{
	char path[STORE_KEY_MAX];

	snprintf(path, sizeof(path), "%s", key);
	for (char *p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdirat(f->root_fd, path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

/* Remove directories left empty by a delete, up to the root (under the
 * lock), so listings never show a prefix without objects. */
static void prune_parents(struct file_store *f, const char *key)
{
	char path[STORE_KEY_MAX];
	char *p;

	snprintf(path, sizeof(path), "%s", key);
	while ((p = strrchr(path, '/')) != NULL) {
		*p = '\0';
		if (unlinkat(f->root_fd, path, AT_REMOVEDIR) < 0)
			break;
	}
}

/* fsync the directory holding key, so a rename or unlink is durable. */
static void sync_parent(struct file_store *f, const char *key)
{
	char path[STORE_KEY_MAX];
	char *p;
	int fd;

	snprintf(path, sizeof(path), "%s", key);
	p = strrchr(path, '/');
	if (p)
		*p = '\0';
	fd = openat(f->root_fd, p ? path : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Check a put/delete condition against the current state of key. */
static int check_cond(int exists_ret, const struct stat *st, enum store_put_mode mode,
		      const char *etag)
{
	struct store_meta cur;

	if (exists_ret && exists_ret != -ENOENT)
		return exists_ret;
	if (mode == STORE_PUT_CREATE)
		return exists_ret == 0 ? -EEXIST : 0;
	if (mode == STORE_PUT_IF_MATCH) {
		if (exists_ret == -ENOENT)
			return -ENOENT;
		meta_from_stat(st, &cur);
		return strcmp(cur.etag, etag ? etag : "") == 0 ? 0 : -ESTALE;
	}
	return 0;
}

/* head: a stat. */
static int file_head(struct store *s, const char *key, struct store_meta *out)
{
	struct stat st;
	int ret = key_ok(key);

	if (ret)
		return ret;
	ret = stat_key(fs_of(s), key, &st);
	if (ret == 0)
		meta_from_stat(&st, out);
	return ret;
}

/* get: open pins one inode, i.e. one version, for the whole copy. */
static int file_get(struct store *s, const char *key, const char *if_none_match,
		    const char *if_match, int fd, off_t fd_offset, struct store_meta *out)
{
	struct file_store *f = fs_of(s);
	struct stat st;
	int in = -1;
	int ret = key_ok(key);

	if (ret)
		return ret;
	in = openat(f->root_fd, key, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (in < 0) {
		ret = (errno == ENOTDIR || errno == ENOENT) ? -ENOENT : -errno;
		goto out;
	}
	if (fstat(in, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -ENOENT;
		goto out;
	}
	meta_from_stat(&st, out);
	if (if_none_match && strcmp(if_none_match, out->etag) == 0) {
		ret = STORE_NOT_MODIFIED;
		goto out;
	}
	if (if_match && strcmp(if_match, out->etag) != 0) {
		ret = -ESTALE;
		goto out;
	}
	ret = fd_copy_range(in, 0, fd, fd_offset, out->size);
out:
	if (in >= 0)
		close(in);
	return ret;
}

/* put: temp file, fsync, then decide and rename under the lock. */
static int file_put(struct store *s, const char *key, int fd, off_t offset, uint64_t size,
		    const struct store_put_cond *cond, struct store_meta *out)
{
	struct file_store *f = fs_of(s);
	enum store_put_mode mode = cond ? cond->mode : STORE_PUT_ANY;
	char tmpname[64];
	struct stat st, cur;
	struct timespec times[2];
	int tmp_dir = -1, tmp = -1, lock = -1;
	bool renamed = false;
	int ret = key_ok(key);

	if (ret)
		return ret;
	tmp_dir = open_internal(f, "tmp");
	if (tmp_dir < 0) {
		ret = tmp_dir;
		goto out;
	}
	for (int tries = 0; tmp < 0; tries++) {
		unsigned long long r = 0;

		if (getrandom(&r, sizeof(r), 0) < 0)
			r = (unsigned long long)time(NULL) ^ (unsigned long long)getpid();
		snprintf(tmpname, sizeof(tmpname), "put.%d.%llx", (int)getpid(), r);
		tmp = openat(tmp_dir, tmpname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (tmp < 0 && (errno != EEXIST || tries > 8)) {
			ret = -errno;
			goto out;
		}
	}
	ret = fd_copy_range(fd, offset, tmp, 0, size);
	if (ret)
		goto out;
	if (fsync(tmp) < 0) {
		ret = -errno;
		goto out;
	}

	lock = lock_store(f);
	if (lock < 0) {
		ret = lock;
		goto out;
	}
	ret = stat_key(f, key, &cur);
	ret = check_cond(ret, &cur, mode, cond ? cond->etag : NULL);
	if (ret)
		goto out;
	times[0].tv_nsec = UTIME_OMIT;
	times[1] = next_mtime(stat_key(f, key, &cur) == 0 ? ts_ns(&cur.st_mtim) : 0);
	if (futimens(tmp, times) < 0) {
		ret = -errno;
		goto out;
	}
	ret = make_parents(f, key);
	if (ret)
		goto out;
	if (renameat(tmp_dir, tmpname, f->root_fd, key) < 0) {
		ret = -errno;
		goto out;
	}
	renamed = true;
	sync_parent(f, key);
	if (out) {
		if (fstat(tmp, &st) < 0) {
			ret = -errno;
			goto out;
		}
		meta_from_stat(&st, out);
	}
out:
	if (lock >= 0)
		close(lock);
	if (tmp >= 0) {
		close(tmp);
		if (!renamed)
			unlinkat(tmp_dir, tmpname, 0);
	}
	if (tmp_dir >= 0)
		close(tmp_dir);
	return ret;
}

/* del: conditional unlink under the lock, then prune empty directories. */
static int file_del(struct store *s, const char *key, const char *if_match)
{
	struct file_store *f = fs_of(s);
	struct stat st;
	int lock, ret = key_ok(key);

	if (ret)
		return ret;
	lock = lock_store(f);
	if (lock < 0)
		return lock;
	ret = stat_key(f, key, &st);
	if (ret == 0 && if_match)
		ret = check_cond(0, &st, STORE_PUT_IF_MATCH, if_match);
	if (ret == 0 && unlinkat(f->root_fd, key, 0) < 0)
		ret = -errno;
	if (ret == 0) {
		prune_parents(f, key);
		sync_parent(f, key);
	}
	close(lock);
	return ret;
}

/* touch: a new mtime (and so a new etag) for the same body. */
static int file_touch(struct store *s, const char *key, struct store_meta *out)
{
	struct file_store *f = fs_of(s);
	struct timespec times[2];
	struct stat st;
	int fd = -1, lock, ret = key_ok(key);

	if (ret)
		return ret;
	lock = lock_store(f);
	if (lock < 0)
		return lock;
	fd = openat(f->root_fd, key, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		ret = (errno == ENOTDIR || errno == ENOENT) ? -ENOENT : -errno;
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ret = -ENOENT;
		goto out;
	}
	times[0].tv_nsec = UTIME_OMIT;
	times[1] = next_mtime(ts_ns(&st.st_mtim));
	if (futimens(fd, times) < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (out)
		meta_from_stat(&st, out);
out:
	if (fd >= 0)
		close(fd);
	close(lock);
	return ret;
}

/* One directory entry while listing. */
struct dent {
	char *sortname; /* name, plus '/' for directories: sorts as full keys do */
	bool is_dir;
	struct stat st;
};

static int dent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->sortname, ((const struct dent *)b)->sortname);
}

static void dents_free(struct dent *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(d[i].sortname);
	free(d);
}

/* Read and sort directory rel ("" for the root); missing means empty. */
static int read_dir_sorted(struct file_store *f, const char *rel, struct dent **out, size_t *n_out)
{
	struct dent *d = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *dir = NULL;
	int dfd, ret = 0;

	*out = NULL;
	*n_out = 0;
	dfd = openat(f->root_fd, rel[0] ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return (errno == ENOENT || errno == ENOTDIR) ? 0 : -errno;
	dir = fdopendir(dfd);
	if (!dir) {
		ret = -errno;
		close(dfd);
		return ret;
	}
	while ((de = readdir(dir)) != NULL) {
		struct stat st;
		bool is_dir;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!rel[0] && strcmp(de->d_name, INTERNAL_DIR) == 0)
			continue;
		if (fstatat(dfd, de->d_name, &st, 0) < 0)
			continue; /* vanished meanwhile */
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			continue;
		is_dir = S_ISDIR(st.st_mode);
		if (n == cap) {
			struct dent *nd;

			cap = cap ? cap * 2 : 32;
			nd = realloc(d, cap * sizeof(*nd));
			if (!nd) {
				ret = -ENOMEM;
				goto out;
			}
			d = nd;
		}
		if (asprintf(&d[n].sortname, "%s%s", de->d_name, is_dir ? "/" : "") < 0) {
			ret = -ENOMEM;
			goto out;
		}
		d[n].is_dir = is_dir;
		d[n].st = st;
		n++;
	}
	if (n > 1)
		qsort(d, n, sizeof(*d), dent_cmp);
out:
	closedir(dir);
	if (ret) {
		dents_free(d, n);
		return ret;
	}
	*out = d;
	*n_out = n;
	return 0;
}

/* True if directory rel holds a regular file somewhere below it. */
static bool dir_has_object(struct file_store *f, const char *rel, int depth)
{
	struct dent *d;
	size_t n;
	bool found = false;

	if (depth > 64 || read_dir_sorted(f, rel, &d, &n) < 0)
		return false;
	for (size_t i = 0; i < n && !found; i++) {
		char *sub;

		if (!d[i].is_dir) {
			found = true;
			break;
		}
		if (asprintf(&sub, "%s%s", rel, d[i].sortname) < 0)
			break;
		found = dir_has_object(f, sub, depth + 1);
		free(sub);
	}
	dents_free(d, n);
	return found;
}

struct list_walk {
	const char *prefix;
	bool delimit;
	const char *after; /* emit only keys strictly greater */
	unsigned max;      /* stop after max + 1 entries (one to detect "more") */
	struct store_list_page *page;
};

/* Depth-first walk of rel in key order, emitting into w->page. */
static int walk(struct file_store *f, struct list_walk *w, const char *rel, int depth)
{
	size_t plen = strlen(w->prefix);
	struct dent *d;
	size_t n;
	int ret;

	if (depth > 64)
		return -ELOOP;
	ret = read_dir_sorted(f, rel, &d, &n);
	if (ret)
		return ret;
	for (size_t i = 0; i < n && w->page->count <= w->max; i++) {
		struct store_meta meta;
		char *full;
		size_t flen;

		if (asprintf(&full, "%s%s", rel, d[i].sortname) < 0) {
			ret = -ENOMEM;
			break;
		}
		flen = strlen(full);
		/* Below the prefix's own directory every name matches; at its
		 * level the name must extend the prefix, or (for a directory)
		 * be on the way to it. */
		if (strncmp(full, w->prefix, flen < plen ? flen : plen) != 0 ||
		    (flen < plen && !d[i].is_dir)) {
			free(full);
			continue;
		}
		if (d[i].is_dir && (flen <= plen || !w->delimit)) {
			if (!w->after || strcmp(full, w->after) > 0 ||
			    strncmp(w->after, full, flen) == 0)
				ret = walk(f, w, full, depth + 1);
		} else if (d[i].is_dir) {
			if ((!w->after || strcmp(full, w->after) > 0) &&
			    dir_has_object(f, full, depth + 1))
				ret = store_list_page_add(w->page, full, true, NULL);
		} else if (!w->after || strcmp(full, w->after) > 0) {
			meta_from_stat(&d[i].st, &meta);
			ret = store_list_page_add(w->page, full, false, &meta);
		}
		free(full);
		if (ret)
			break;
	}
	dents_free(d, n);
	return ret;
}

/* list: the token is the last key (or prefix) of the previous page. */
static int file_list(struct store *s, const char *prefix, const char *delimiter,
		     const char *token, unsigned max_keys, struct store_list_page *out)
{
	struct file_store *f = fs_of(s);
	struct list_walk w = {
		.prefix = prefix ? prefix : "",
		.delimit = delimiter != NULL,
		.after = token,
		.max = max_keys == 0 || max_keys > STORE_LIST_MAX_KEYS ? STORE_LIST_MAX_KEYS
								       : max_keys,
		.page = out,
	};
	char dir[STORE_KEY_MAX];
	const char *slash;
	int ret;

	memset(out, 0, sizeof(*out));
	if (delimiter && strcmp(delimiter, "/") != 0)
		return -EINVAL;
	if (strlen(w.prefix) >= sizeof(dir) || (w.prefix[0] && w.prefix[0] == '/'))
		return -EINVAL;
	/* Start at the deepest directory the prefix names. */
	slash = strrchr(w.prefix, '/');
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - w.prefix + 1) : 0, w.prefix);
	if (strncmp(dir, INTERNAL_DIR "/", sizeof(INTERNAL_DIR)) == 0)
		return 0; /* our own bookkeeping is not part of the namespace */
	ret = walk(f, &w, dir, 0);
	if (ret == 0 && out->count > w.max) {
		free(out->entries[out->count - 1].key);
		out->count--;
		out->next_token = strdup(out->entries[out->count - 1].key);
		if (!out->next_token)
			ret = -ENOMEM;
	}
	if (ret)
		store_list_page_cleanup(out);
	return ret;
}

static void file_destroy(struct store *s)
{
	struct file_store *f = fs_of(s);

	close(f->root_fd);
	free(f->root);
	free(f);
}

static const struct store_ops file_ops = {
	.name = "file",
	.head = file_head,
	.get = file_get,
	.put = file_put,
	.del = file_del,
	.list = file_list,
	.touch = file_touch,
	.destroy = file_destroy,
};

/* Open the directory now so a wrong path fails at mount time. */
int file_store_create(const char *dir, struct store **out, char *err, size_t errlen)
{
	struct file_store *f = calloc(1, sizeof(*f));
	struct stat st;

	if (!f)
		return -ENOMEM;
	f->root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->root_fd < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot open store directory '%s': %s%s", dir, strerror(e),
			 e == ENOENT ? " (create it first)" : "");
		free(f);
		return -e;
	}
	if (fstat(f->root_fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "store path '%s' is not a directory", dir);
		close(f->root_fd);
		free(f);
		return -ENOTDIR;
	}
	f->root = strdup(dir);
	if (!f->root) {
		close(f->root_fd);
		free(f);
		return -ENOMEM;
	}
	f->base.ops = &file_ops;
	f->base.caps = STORE_CAP_CONDITIONAL_PUT | STORE_CAP_TOUCH;
	*out = &f->base;
	return 0;
}
