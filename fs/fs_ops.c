/*
 * fs_ops.c - the FUSE operations: POSIX semantics over an object store.
 *
 * Design: how a mount stays consistent
 * ------------------------------------
 * Objects are immutable versions; a file on the mount is "the current version
 * of a key". Three rules keep every reader on one whole version:
 *
 * 1. Readers read a snapshot file. open() for reading resolves the key to a
 *    version (from the cache if it was confirmed with the store less than
 *    -o freshness ago, else with a conditional GET that transfers no body
 *    when nothing changed) and keeps an fd on that version's cache entry.
 *    A newer version is written to a new file and renamed over the entry, so
 *    the reader's fd keeps its version to the end, whatever other readers,
 *    writers or mounts do. A big version never cached is read while it
 *    downloads into its entry, the download pinned to it by If-Match
 *    (open_live).
 *
 * 2. Writers write a private staging file. open() for writing makes (or
 *    joins) the node's staging file on local disk, seeded with the committed
 *    content unless O_TRUNC. Nothing written is visible to readers until
 *    flush (close) or fsync commits the staging file as one store put; the
 *    put's error is close()'s and fsync()'s error, and a failed put leaves the
 *    stored version untouched. Names matching -o tmpnames (editor and
 *    mkstemp-style temporaries) stay local until renamed onto a real name,
 *    which is then one put: the write-temp-then-rename idiom costs exactly
 *    one upload and the target is never missing. A file written front to
 *    back from empty is offered to the store while it is written (stores
 *    that can stream upload its finished parts before close; the object
 *    still appears only at commit), and a committed staging file becomes
 *    the cache entry of its version as it is, without a copy.
 *
 * 3. The kernel's page cache only ever holds one version per inode. The
 *    high-level API gives one kernel inode per path, shared by every version
 *    of the key, so the kernel's cached size and pages must be managed:
 *    - getattr is answered from memory (attr/entry timeouts are 0, so the
 *      kernel asks on every lookup) and we remember which version's
 *      attributes we told the kernel last (kernel_etag);
 *    - while page-cache readers are open, getattr keeps reporting the
 *      version they read (pinned), so the kernel never shrinks their size;
 *    - a reader uses the page cache only if its version is the one the
 *      kernel believes in and the one already in the page cache or no
 *      page-cache reader is open; keep_cache is set exactly when the page
 *      cache already holds this version, so unchanged content is served by
 *      the kernel and changed content is never served stale;
 *    - every other reader, and every writer, uses direct I/O, which neither
 *      reads nor fills the page cache;
 *    - once a file has been written on this mount, its readers on this mount
 *      use direct I/O for good: writes move the kernel's size under readers
 *      (and make it drop our attribute replies), so what the kernel holds
 *      can no longer be known. Such reads are still local (the snapshot
 *      file), just not kernel-cached. Mounts that only read, as a gateway's
 *      does, keep the page cache. One window remains: a page-cache reader
 *      that opened before the first write of that file on this mount shares
 *      the inode with the writer while it reads;
 *    - O_TRUNC arrives as a setattr (atomic_o_trunc is off) whose reply is
 *      the committed size, so a writer truncating never shrinks the size
 *      that same-mount readers of the committed version depend on.
 *
 * Freshness: metadata (getattr) and content (open) are each trusted for
 * -o freshness after the store confirmed them; a listing confirms the
 * metadata of every entry at once, so `ls -l` costs one list.
 *
 * Not here: store protocols (backends/), the cache file format (cache.c),
 * option parsing and daemon life (main.c, options.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "fd_copy.h"
#include "fs.h"
#include "log.h"
#include "stats_store.h"
#include "status.h"

enum node_type { NODE_UNKNOWN, NODE_FILE, NODE_DIR, NODE_ABSENT };

/* A file's write state, shared by every write handle on this mount. */
struct staging {
	pthread_mutex_t io; /* serialises reads, writes, truncates and commits */
	int fd;             /* body at CACHE_HDR, as in a cache entry; -1 until
	                       first needed after a commit gave it to the cache */
	int base_fd;        /* the version committed from here (now a cache
	                       entry, read-only): the seed of the next fd, or -1 */
	uint64_t size;      /* protected by io */
	bool dirty;         /* protected by io: differs from the committed version */
	bool seeded;        /* protected by io: holds the base content (or was emptied) */
	bool sequential;    /* protected by io: all of it came from appending
	                       writes since it was emptied */
	struct store_upload *up; /* protected by io: that content, going up to
	                       the store while it is written */
	char *up_key;       /* protected by io: the key up is for */
	bool pending;       /* protected by fs->lock: created here, never committed */
	bool local_only;    /* protected by fs->lock: a temporary name, never uploaded */
	bool excl;          /* protected by fs->lock: created with O_EXCL */
	struct handle *last_opened; /* protected by fs->lock: newest writer handle */
	unsigned writers;   /* protected by fs->lock */
};

/* Objects at least this big, read cold, are read while they download. */
#define LIVE_MIN_SIZE (4u << 20)

/* A version being downloaded into its cache entry while readers already read
 * it (see fetch_live). */
struct live {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int fd;              /* the entry as it fills: body at CACHE_HDR */
	uint64_t size;       /* of the version */
	int state;           /* protected by lock: LIVE_RUNNING, 0 (whole), -errno */
	unsigned refs;       /* protected by lock: readers + the downloading thread */
	struct store_meta meta; /* the version: what the lookup saw */
};

#define LIVE_RUNNING 1

struct node {
	struct node *hnext;
	char *key;            /* "" for the root */
	bool detached;        /* replaced by a rename: no longer in the table */
	unsigned handles;     /* open handles pointing here (keeps detached nodes) */
	enum node_type type;
	int64_t meta_at;      /* monotonic ms when type/meta were confirmed */
	struct store_meta meta; /* NODE_FILE: latest committed version known */
	bool local_dir;       /* made by mkdir on this mount */
	char cached_etag[STORE_ETAG_MAX]; /* version in the cache entry */
	int64_t content_at;   /* monotonic ms when cached_etag was confirmed */
	int64_t fetched_at;   /* wall-clock s of that confirmation */
	bool confirmed_once;  /* a lookup just confirmed cached_etag: the next
	                         open may use it even with freshness=0 */
	bool stale_served;    /* last open served the cache without the store */
	char page_etag[STORE_ETAG_MAX];   /* version the page cache may hold */
	char kernel_etag[STORE_ETAG_MAX]; /* version whose attrs the kernel has */
	unsigned pc_readers;  /* open readers using the page cache */
	bool written_here;    /* a writer was attached on this mount, ever */
	struct store_meta pinned; /* what getattr reports while pc_readers */
	struct staging *stg;  /* NULL unless written on this mount */
	struct live *live;    /* a download readers may join, or NULL */
	unsigned commits;     /* versions committed from this mount: a download
	                         that began before one must not record its older
	                         version over it */
};

struct handle {
	struct handle *prev, *next; /* protected by fs->lock: the open handles */
	struct node *node;
	char *vbuf;           /* a .fallbackfs/ file: its content as of open */
	size_t vlen;
	int fd;               /* reader: cache entry (body at CACHE_HDR); -1 else */
	uint64_t size;        /* reader: size of the version */
	bool writer;
	bool modified;        /* writer: changed the staging since its last commit */
	bool failed;          /* writer: its last commit failed and was reported */
	bool wrote;           /* writer: wrote data through this handle */
	bool closed;          /* writer: flushed (closed) since its last write */
	bool append;
	bool live;            /* reads the node's staging file (local-only names) */
	bool page_cache;
	struct live *download; /* reader: fd is an entry still downloading */
};

struct fs {
	struct fs_config cfg;
	char *url;
	char **tmpnames;
	struct store *store;
	struct cache *cache;
	pthread_mutex_t lock; /* protects the node table and node fields */
	struct node **buckets;
	size_t nbuckets, nnodes;
	struct timespec mounted_at; /* the time directories show */
	struct fs_counters ctr;
	struct handle *open_handles; /* protected by lock: released by fs_destroy
	                                if the kernel never sent a release */
	unsigned downloads;   /* protected by lock: live downloads running */
	pthread_cond_t downloads_done;
};

/* The read-only .fallbackfs/ directory at the root. */
enum virt { VIRT_NONE, VIRT_DIR, VIRT_STATUS, VIRT_METRICS };

#define ROOT_KEY ""
#define RESERVED ".fallbackfs"

static struct fs *fs_get(void)
{
	return fuse_get_context()->private_data;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool fresh(const struct fs *fs, int64_t at)
{
	/* freshness=0 means every open asks the store, even within one ms */
	return at != 0 && fs->cfg.freshness_ms > 0 && mono_ms() - at <= fs->cfg.freshness_ms;
}

/* Metadata for getattr. With freshness=0 a short grace still applies: the
 * kernel follows every LOOKUP with a permission GETATTR (default_permissions,
 * zero attribute timeout), and asking the store twice in a row for one
 * open() would buy nothing. Content is still checked on every open. */
static bool meta_fresh(const struct fs *fs, int64_t at)
{
	int64_t ttl = fs->cfg.freshness_ms > 0 ? fs->cfg.freshness_ms : 20;

	return at != 0 && mono_ms() - at <= ttl;
}

/* FUSE paths start with '/'; keys do not. */
static const char *key_of(const char *path)
{
	return path[0] == '/' ? path + 1 : path;
}

/* Keys the filesystem will not map to objects: ours, or invalid. */
static int path_check(const char *key)
{
	size_t n = sizeof(RESERVED) - 1;

	if (key[0] == '\0')
		return 0;
	if (strncmp(key, RESERVED, n) == 0 && (key[n] == '\0' || key[n] == '/'))
		return -EPERM;
	if (strlen(key) >= STORE_KEY_MAX)
		return -ENAMETOOLONG;
	return store_key_check(key);
}

static const char *base_name(const char *key)
{
	const char *s = strrchr(key, '/');

	return s ? s + 1 : key;
}

/* Which part of .fallbackfs/ a key names, if any. */
static enum virt virt_of(const char *key)
{
	if (strcmp(key, RESERVED) == 0)
		return VIRT_DIR;
	if (strcmp(key, RESERVED "/status") == 0)
		return VIRT_STATUS;
	if (strcmp(key, RESERVED "/metrics") == 0)
		return VIRT_METRICS;
	return VIRT_NONE;
}

/* Render a .fallbackfs/ file now (caller frees); NULL on ENOMEM. */
static char *virt_render(struct fs *fs, enum virt v)
{
	struct store_stats st;
	struct status_input in = {
		.url = fs->url,
		.cache_dir = cache_dir(fs->cache),
		.cache_bytes = cache_bytes(fs->cache),
		.freshness_ms = fs->cfg.freshness_ms,
		.fs = &fs->ctr,
	};

	if (stats_store_snapshot(fs->store, &st) == 0)
		in.store = &st;
	return v == VIRT_STATUS ? status_json(&in) : status_metrics(&in);
}

/* Is this a name that editors and mkstemp use for temporaries? */
static bool is_tmpname(const struct fs *fs, const char *key)
{
	for (char **p = fs->tmpnames; p && *p; p++)
		if (fnmatch(*p, base_name(key), 0) == 0)
			return true;
	return false;
}

/* FNV-1a over the key. */
static size_t hash_key(const char *key)
{
	size_t h = 1469598103934665603ull;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return h;
}

/* Find key in the table (fs->lock held). */
static struct node *node_find(struct fs *fs, const char *key)
{
	for (struct node *n = fs->buckets[hash_key(key) & (fs->nbuckets - 1)]; n; n = n->hnext)
		if (strcmp(n->key, key) == 0)
			return n;
	return NULL;
}

/* Double the table when it is as full as it has buckets (fs->lock held). */
static void table_grow(struct fs *fs)
{
	size_t nb = fs->nbuckets * 2;
	struct node **b = calloc(nb, sizeof(*b));

	if (!b)
		return; /* a fuller table is slower, not wrong */
	for (size_t i = 0; i < fs->nbuckets; i++) {
		for (struct node *n = fs->buckets[i], *next; n; n = next) {
			next = n->hnext;
			n->hnext = b[hash_key(n->key) & (nb - 1)];
			b[hash_key(n->key) & (nb - 1)] = n;
		}
	}
	free(fs->buckets);
	fs->buckets = b;
	fs->nbuckets = nb;
}

static void table_insert(struct fs *fs, struct node *n)
{
	size_t i;

	if (fs->nnodes >= fs->nbuckets)
		table_grow(fs);
	i = hash_key(n->key) & (fs->nbuckets - 1);
	n->hnext = fs->buckets[i];
	fs->buckets[i] = n;
	fs->nnodes++;
}

static void table_remove(struct fs *fs, struct node *n)
{
	struct node **pp = &fs->buckets[hash_key(n->key) & (fs->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == n) {
			*pp = n->hnext;
			fs->nnodes--;
			return;
		}
	}
}

/* Find or create the node of key (fs->lock held); NULL on ENOMEM. */
static struct node *node_get(struct fs *fs, const char *key)
{
	struct node *n = node_find(fs, key);

	if (n)
		return n;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->key = strdup(key);
	if (!n->key) {
		free(n);
		return NULL;
	}
	table_insert(fs, n);
	return n;
}

/* Give up a streamed upload, if any (stg->io held, or the last reference). */
static void staging_unstream(struct staging *s)
{
	if (s->up)
		store_upload_abort(s->up);
	s->up = NULL;
	free(s->up_key);
	s->up_key = NULL;
}

static void staging_free(struct staging *s)
{
	if (!s)
		return;
	staging_unstream(s); /* before the fd it reads is closed */
	if (s->fd >= 0)
		close(s->fd);
	if (s->base_fd >= 0)
		close(s->base_fd);
	pthread_mutex_destroy(&s->io);
	free(s);
}

static void node_free(struct node *n)
{
	staging_free(n->stg);
	free(n->key);
	free(n);
}

/* Drop a handle's reference; frees detached nodes nobody uses (fs->lock held). */
static void node_unref(struct node *n)
{
	n->handles--;
	if (n->detached && n->handles == 0)
		node_free(n);
}

/* Take node n out of the namespace (a rename replaced it) (fs->lock held). */
static void node_detach(struct fs *fs, struct node *n)
{
	table_remove(fs, n);
	n->detached = true;
	if (n->handles == 0)
		node_free(n);
}

/* Record a confirmed version of key (fs->lock held). */
static void node_set_file(struct node *n, const struct store_meta *m)
{
	n->type = NODE_FILE;
	n->meta = *m;
	n->meta_at = mono_ms();
}

/* The store just confirmed version m, and the cache holds it (fs->lock held). */
static void node_confirm(struct node *n, const struct store_meta *m)
{
	node_set_file(n, m);
	memcpy(n->cached_etag, m->etag, sizeof(n->cached_etag));
	n->content_at = n->meta_at;
	n->fetched_at = time(NULL);
	n->stale_served = false;
}

/* Does the node exist on this mount, whatever the store says? */
static bool node_local(const struct node *n)
{
	return n->local_dir || (n->stg && (n->stg->pending || n->stg->local_only));
}

/* Fill a stat for a node (fs->lock held); also records what the kernel was
 * told, which decides page-cache use at open. */
static void fill_stat(struct fs *fs, struct node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_uid = fs->cfg.uid;
	st->st_gid = fs->cfg.gid;
	st->st_blksize = 128 * 1024;
	if (n->type == NODE_DIR || n->local_dir || n->key[0] == '\0') {
		st->st_mode = S_IFDIR | (0777 & ~fs->cfg.umask);
		st->st_nlink = 2;
		st->st_mtim = st->st_ctim = st->st_atim = fs->mounted_at;
		return;
	}
	st->st_mode = S_IFREG | (0666 & ~fs->cfg.umask);
	st->st_nlink = 1;
	if (n->stg && (n->stg->pending || n->stg->local_only) && n->type != NODE_FILE) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		st->st_size = (off_t)n->stg->size;
		st->st_mtim = st->st_ctim = st->st_atim = now;
		n->kernel_etag[0] = '\0';
	} else {
		const struct store_meta *m = n->pc_readers ? &n->pinned : &n->meta;

		st->st_size = (off_t)m->size;
		st->st_mtim.tv_sec = m->mtime_ns / 1000000000;
		st->st_mtim.tv_nsec = m->mtime_ns % 1000000000;
		st->st_ctim = st->st_atim = st->st_mtim;
		memcpy(n->kernel_etag, m->etag, sizeof(n->kernel_etag));
	}
	st->st_blocks = (st->st_size + 511) / 512;
}

/* Ask the store what key is now: an object, a prefix, or nothing. */
static int resolve(struct fs *fs, const char *key)
{
	struct store_list_page page = { 0 };
	struct store_meta m;
	struct node *n;
	char *prefix = NULL;
	int ret;

	ret = store_head(fs->store, key, &m);
	if (ret == 0) {
		pthread_mutex_lock(&fs->lock);
		n = node_get(fs, key);
		if (n) {
			/* A HEAD that finds the cached version confirms it too. */
			if (strcmp(n->cached_etag, m.etag) != 0) {
				node_set_file(n, &m);
			} else {
				node_confirm(n, &m);
				n->confirmed_once = true;
				atomic_fetch_add(&fs->ctr.revalidations, 1);
			}
		}
		pthread_mutex_unlock(&fs->lock);
		return n ? 0 : -ENOMEM;
	}
	if (ret != -ENOENT)
		return ret;
	if (asprintf(&prefix, "%s/", key) < 0)
		return -ENOMEM;
	ret = store_list(fs->store, prefix, "/", NULL, 1, &page);
	free(prefix);
	if (ret)
		return ret;
	pthread_mutex_lock(&fs->lock);
	n = node_get(fs, key);
	if (n) {
		n->type = page.count > 0 ? NODE_DIR : NODE_ABSENT;
		n->meta_at = mono_ms();
	}
	pthread_mutex_unlock(&fs->lock);
	store_list_page_cleanup(&page);
	return n ? 0 : -ENOMEM;
}

/* getattr: from memory while fresh or open, else one HEAD (and a one-key
 * list for directories). */
static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	const char *key = path ? key_of(path) : NULL;
	struct node *n;
	int ret;

	if (fi && fi->fh) {
		struct handle *h = (struct handle *)(uintptr_t)fi->fh;

		pthread_mutex_lock(&fs->lock);
		fill_stat(fs, h->node, st);
		pthread_mutex_unlock(&fs->lock);
		return 0;
	}
	if (!key)
		return -ENOENT;
	if (virt_of(key) != VIRT_NONE) {
		enum virt v = virt_of(key);
		char *text = v == VIRT_DIR ? NULL : virt_render(fs, v);

		if (v != VIRT_DIR && !text)
			return -ENOMEM;
		memset(st, 0, sizeof(*st));
		st->st_uid = fs->cfg.uid;
		st->st_gid = fs->cfg.gid;
		st->st_mtim = st->st_ctim = st->st_atim = fs->mounted_at;
		if (v == VIRT_DIR) {
			st->st_mode = S_IFDIR | (0555 & ~fs->cfg.umask);
			st->st_nlink = 2;
		} else {
			clock_gettime(CLOCK_REALTIME, &st->st_mtim);
			st->st_mode = S_IFREG | (0444 & ~fs->cfg.umask);
			st->st_nlink = 1;
			st->st_size = (off_t)strlen(text);
			free(text);
		}
		return 0;
	}
	if (key[0] == '\0') {
		pthread_mutex_lock(&fs->lock);
		n = node_get(fs, ROOT_KEY);
		if (n)
			fill_stat(fs, n, st);
		pthread_mutex_unlock(&fs->lock);
		return n ? 0 : -ENOMEM;
	}
	ret = path_check(key);
	if (ret)
		return ret == -EPERM ? -ENOENT : ret;

	pthread_mutex_lock(&fs->lock);
	n = node_find(fs, key);
	/* From memory: what exists only here, or what is open or fresh. */
	if (n && (node_local(n) ||
		  ((n->handles || meta_fresh(fs, n->meta_at)) && n->type != NODE_UNKNOWN)))
		goto answer;
	pthread_mutex_unlock(&fs->lock);

	ret = resolve(fs, key);

	pthread_mutex_lock(&fs->lock);
	n = node_find(fs, key);
	if (ret && !(n && n->type != NODE_UNKNOWN && n->type != NODE_ABSENT)) {
		pthread_mutex_unlock(&fs->lock);
		return ret;
	}
	if (ret) {
		char kb[256];

		log_msg(LOG_WARNING, "stat %s: %s; answering from what is known",
			log_key(key, kb, sizeof(kb)), store_strerror(ret));
	}
answer:
	if (!n || (n->type == NODE_ABSENT && !node_local(n))) {
		pthread_mutex_unlock(&fs->lock);
		return -ENOENT;
	}
	fill_stat(fs, n, st);
	pthread_mutex_unlock(&fs->lock);
	return 0;
}

/* The names readdir collects: from the listing, then local-only ones. */
struct names {
	char **v;
	size_t n, cap;
};

/* Append a copy of name; 0 or -ENOMEM. */
static int names_add(struct names *ns, const char *name)
{
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 64;
		char **v = realloc(ns->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ns->v = v;
		ns->cap = cap;
	}
	ns->v[ns->n] = strdup(name);
	if (!ns->v[ns->n])
		return -ENOMEM;
	ns->n++;
	return 0;
}

/* Sort helper for readdir names. */
static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* opendir: keep the key, since readdir gets no path (nullpath_ok). */
static int fs_opendir(const char *path, struct fuse_file_info *fi)
{
	const char *key = key_of(path);
	char *copy;
	int ret = key[0] && virt_of(key) != VIRT_DIR ? path_check(key) : 0;

	if (ret)
		return ret == -EPERM ? -ENOENT : ret;
	copy = strdup(key);
	if (!copy)
		return -ENOMEM;
	fi->fh = (uintptr_t)copy;
	return 0;
}

static int fs_releasedir(const char *path, struct fuse_file_info *fi)
{
	free((char *)(uintptr_t)fi->fh);
	return 0;
}

/* readdir: one paged listing of the prefix, plus what exists only here. */
static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct fs *fs = fs_get();
	const char *key = (const char *)(uintptr_t)fi->fh;
	struct store_list_page page = { 0 };

	if (virt_of(key) == VIRT_DIR) {
		filler(buf, ".", NULL, 0, 0);
		filler(buf, "..", NULL, 0, 0);
		filler(buf, "metrics", NULL, 0, 0);
		filler(buf, "status", NULL, 0, 0);
		return 0;
	}
	struct names names = { 0 };
	char *prefix = NULL, *token = NULL;
	size_t plen;
	bool found_any = false;
	int ret = 0;

	if (asprintf(&prefix, "%s%s", key, key[0] ? "/" : "") < 0)
		return -ENOMEM;
	plen = strlen(prefix);
	do {
		int64_t now;

		ret = store_list(fs->store, prefix, "/", token, STORE_LIST_MAX_KEYS, &page);
		free(token);
		token = NULL;
		if (ret)
			goto out;
		now = mono_ms();
		pthread_mutex_lock(&fs->lock);
		for (size_t i = 0; i < page.count; i++) {
			struct store_list_entry *e = &page.entries[i];
			char *name = e->key + plen;
			size_t nlen = strlen(name);
			struct node *n;

			if (e->is_prefix && nlen > 0 && name[nlen - 1] == '/')
				name[--nlen] = '\0';
			if (nlen == 0 || strchr(name, '/') || path_check(e->key) != 0)
				continue; /* "dir/" markers and names POSIX cannot show */
			found_any = true;
			n = node_get(fs, e->key);
			if (!n) {
				ret = -ENOMEM;
				break;
			}
			if (e->is_prefix) {
				n->type = NODE_DIR;
				n->meta_at = now;
			} else {
				if (strcmp(n->cached_etag, e->meta.etag) == 0)
					node_confirm(n, &e->meta);
				else
					node_set_file(n, &e->meta);
			}
			ret = names_add(&names, name);
			if (ret)
				break;
		}
		pthread_mutex_unlock(&fs->lock);
		token = page.next_token;
		page.next_token = NULL;
		store_list_page_cleanup(&page);
		if (ret)
			goto out;
	} while (token);

	/* What exists only on this mount: mkdir'd directories, new files. */
	pthread_mutex_lock(&fs->lock);
	for (size_t b = 0; b < fs->nbuckets && ret == 0; b++) {
		for (struct node *n = fs->buckets[b]; n; n = n->hnext) {
			const char *name = n->key + plen;

			if (!node_local(n) || strncmp(n->key, prefix, plen) != 0 ||
			    name[0] == '\0' || strchr(name, '/'))
				continue;
			ret = names_add(&names, name);
			if (ret)
				break;
			found_any = true;
		}
	}
	if (ret == 0 && key[0] && !found_any) {
		struct node *n = node_find(fs, key);

		if (!n || !node_local(n))
			ret = -ENOENT; /* the prefix has no objects left */
	}
	pthread_mutex_unlock(&fs->lock);
	if (ret)
		goto out;

	if (names.n > 1)
		qsort(names.v, names.n, sizeof(*names.v), str_cmp);
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	if (key[0] == '\0')
		filler(buf, RESERVED, NULL, 0, 0);
	for (size_t i = 0; i < names.n; i++) {
		if (i > 0 && strcmp(names.v[i], names.v[i - 1]) == 0)
			continue;
		if (filler(buf, names.v[i], NULL, 0, 0))
			break;
	}
out:
	for (size_t i = 0; i < names.n; i++)
		free(names.v[i]);
	free(names.v);
	free(prefix);
	free(token);
	store_list_page_cleanup(&page);
	return ret;
}

/* Find the committed version to read: the cache if confirmed recently, else
 * a conditional GET; the cache again if the store cannot be reached. On
 * success *fd holds the version's cache entry and *meta describes it. */
static int fetch_version(struct fs *fs, struct node *n, int *fd, struct store_meta *meta)
{
	char etag[STORE_ETAG_MAX], kb[256];
	unsigned commits;
	bool confirmed;
	int ret;

	pthread_mutex_lock(&fs->lock);
	memcpy(etag, n->cached_etag, sizeof(etag));
	/* The lookup that precedes every open may have just asked the store
	 * (getattr past freshness): that answer serves this open once, so
	 * freshness=0 costs one request per open, not two. */
	confirmed = etag[0] && (fresh(fs, n->content_at) || n->confirmed_once);
	n->confirmed_once = false;
	commits = n->commits;
	pthread_mutex_unlock(&fs->lock);

	if (confirmed) {
		ret = cache_open(fs->cache, n->key, fd, meta);
		if (ret == 0 && strcmp(meta->etag, etag) == 0) {
			atomic_fetch_add(&fs->ctr.cache_hits, 1);
			return 0;
		}
		if (ret == 0)
			close(*fd);
		etag[0] = '\0';
	}
	ret = cache_fetch(fs->cache, fs->store, n->key, etag[0] ? etag : NULL, fd, meta);
	if (ret == 0)
		atomic_fetch_add(&fs->ctr.fetches, 1);
	if (ret == STORE_NOT_MODIFIED) {
		atomic_fetch_add(&fs->ctr.revalidations, 1);
		ret = cache_open(fs->cache, n->key, fd, meta);
		if (ret == 0 && strcmp(meta->etag, etag) != 0) {
			close(*fd);
			ret = -ENOENT;
		}
		if (ret == -ENOENT) { /* the entry vanished under us: fetch whole */
			ret = cache_fetch(fs->cache, fs->store, n->key, NULL, fd, meta);
			if (ret == 0)
				atomic_fetch_add(&fs->ctr.fetches, 1);
		}
	}
	if (ret == 0) {
		pthread_mutex_lock(&fs->lock);
		if (n->commits == commits)
			node_confirm(n, meta);
		pthread_mutex_unlock(&fs->lock);
		return 0;
	}
	if (ret == -ENOENT) {
		pthread_mutex_lock(&fs->lock);
		n->type = NODE_ABSENT;
		n->meta_at = mono_ms();
		n->cached_etag[0] = '\0';
		pthread_mutex_unlock(&fs->lock);
		cache_evict(fs->cache, n->key);
		return -ENOENT;
	}
	/* The store failed: the last version we had is better than nothing. */
	if (ret != -EACCES && cache_open(fs->cache, n->key, fd, meta) == 0) {
		log_msg(LOG_WARNING, "open %s: %s; serving the cached version %s",
			log_key(n->key, kb, sizeof(kb)), store_strerror(ret), meta->etag);
		atomic_fetch_add(&fs->ctr.stale_served, 1);
		pthread_mutex_lock(&fs->lock);
		n->stale_served = true;
		pthread_mutex_unlock(&fs->lock);
		return 0;
	}
	log_msg(LOG_ERR, "open %s: %s", log_key(n->key, kb, sizeof(kb)), store_strerror(ret));
	return ret;
}

static void live_unref(struct live *l)
{
	bool last;

	pthread_mutex_lock(&l->lock);
	last = --l->refs == 0;
	pthread_mutex_unlock(&l->lock);
	if (!last)
		return;
	close(l->fd);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* Wait until bytes [0, end) of the body are there: 0, or the download's
 * error if it ended without them. A download writes the body in order, so
 * the entry's size says how far it got (a retry rewrites the same version:
 * the download is If-Match). Polled, as the store reports no progress. */
static int live_wait(struct live *l, uint64_t end)
{
	long pause_ns = 100000; /* short while bytes flow, up to 4 ms while they do not */
	off_t seen = -1;
	int ret = 0;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		struct timespec ts;
		struct stat st;

		if (fstat(l->fd, &st) == 0 && (uint64_t)st.st_size >= CACHE_HDR + end)
			break;
		if (l->state != LIVE_RUNNING) {
			ret = l->state < 0 ? l->state : -EIO;
			break;
		}
		if (st.st_size > seen)
			pause_ns = 100000;
		else if (pause_ns < 4000000)
			pause_ns *= 2;
		seen = st.st_size;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += pause_ns;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&l->cv, &l->lock, &ts);
	}
	pthread_mutex_unlock(&l->lock);
	return ret;
}

struct live_job {
	struct fs *fs;
	struct node *n;
	struct live *l;
	struct cache_download *d;
	unsigned commits;     /* n->commits when it began */
	char key[STORE_KEY_MAX];
};

/* Thread: download the version into its entry, publish it, tell readers. */
static void *live_run(void *arg)
{
	struct live_job *j = arg;
	struct fs *fs = j->fs;
	struct store_meta m;
	char kb[256];
	int ret = cache_download_finish(j->d, fs->store, j->key, NULL, j->l->meta.etag, &m);

	if (ret > 0)
		ret = -EIO; /* not-modified cannot answer an unconditional GET */
	if (ret)
		log_msg(LOG_ERR, "read %s: download failed (%s); reads past what arrived fail",
			log_key(j->key, kb, sizeof(kb)), store_strerror(ret));
	pthread_mutex_lock(&fs->lock);
	if (j->n->live == j->l)
		j->n->live = NULL;
	if (ret == 0) {
		if (j->n->commits == j->commits)
			node_confirm(j->n, &m);
		atomic_fetch_add(&fs->ctr.fetches, 1);
	}
	node_unref(j->n);
	pthread_mutex_lock(&j->l->lock);
	j->l->state = ret;
	pthread_cond_broadcast(&j->l->cv);
	pthread_mutex_unlock(&j->l->lock);
	live_unref(j->l);
	free(j);
	if (--fs->downloads == 0)
		pthread_cond_broadcast(&fs->downloads_done);
	pthread_mutex_unlock(&fs->lock);
	return NULL;
}

/* Start downloading the version the lookup saw (fs->lock not held); the
 * caller holds one reference. NULL when it cannot, or another opener did. */
static struct live *live_start(struct fs *fs, struct node *n, const struct store_meta *m)
{
	struct live_job *j = calloc(1, sizeof(*j));
	struct live *l = calloc(1, sizeof(*l));
	pthread_t tid;

	if (!j || !l || cache_download_start(fs->cache, &j->d, &l->fd) != 0) {
		free(j);
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cv, NULL);
	l->state = LIVE_RUNNING;
	l->refs = 2;
	l->meta = *m;
	j->fs = fs;
	j->n = n;
	j->l = l;
	snprintf(j->key, sizeof(j->key), "%s", n->key);
	pthread_mutex_lock(&fs->lock);
	j->commits = n->commits;
	if (n->live || n->cached_etag[0] ||
	    pthread_create(&tid, NULL, live_run, j) != 0) {
		pthread_mutex_unlock(&fs->lock);
		cache_download_cancel(j->d);
		l->refs = 1;
		live_unref(l);
		free(j);
		return NULL;
	}
	pthread_detach(tid);
	n->live = l;
	n->handles++; /* the thread's */
	fs->downloads++;
	pthread_mutex_unlock(&fs->lock);
	return l;
}

/*
 * Cold reads of big objects do not wait for the whole body: the version the
 * lookup just saw is downloaded (If-Match: that version or nothing) into its
 * cache entry by a thread, and readers read the entry as it fills, waiting
 * only for the bytes they ask for; later readers join the same download.
 * open() returns once the first bytes arrived, so a store that is down or
 * has moved on is still open()'s error, handled as for any open. Only when
 * nothing of the key is cached: with an older version on disk, the body is
 * fetched whole first, so that a store failing mid-body can still be
 * answered with that version. 0 (h reads the download, *m its version), 1
 * (not for this open: fetch the usual way), or -errno.
 */
static int open_live(struct fs *fs, struct node *n, struct handle *h, struct store_meta *m)
{
	struct store_meta cm;
	struct live *l;
	bool cold;
	int fd;

	pthread_mutex_lock(&fs->lock);
	l = n->live;
	/* Join only a download of the version this open would read: since it
	 * began, this mount may have committed another one, or the lookup may
	 * have found a newer one in the store. */
	if (l && (n->type != NODE_FILE || strcmp(l->meta.etag, n->meta.etag) != 0))
		l = NULL;
	if (l) {
		bool running;

		pthread_mutex_lock(&l->lock);
		running = l->state == LIVE_RUNNING;
		if (running)
			l->refs++;
		pthread_mutex_unlock(&l->lock);
		if (!running)
			l = NULL;
	}
	/* The lookup's answer need not be fresh: the download's If-Match is
	 * the revalidation (a version gone by then fails it, before any body,
	 * and the usual way takes over). */
	cold = !l && n->type == NODE_FILE && !n->cached_etag[0] &&
	       n->meta.size >= LIVE_MIN_SIZE;
	cm = n->meta;
	pthread_mutex_unlock(&fs->lock);
	if (!l) {
		if (!cold)
			return 1;
		if (cache_open(fs->cache, n->key, &fd, m) == 0) {
			close(fd);
			return 1; /* an older version to fall back on */
		}
		l = live_start(fs, n, &cm);
		if (!l)
			return 1;
	}
	if (live_wait(l, 1) != 0) {
		live_unref(l);
		return 1; /* failed before the body: the usual way reports it */
	}
	h->fd = dup(l->fd);
	if (h->fd < 0) {
		live_unref(l);
		return -errno;
	}
	h->download = l;
	*m = l->meta;
	return 0;
}

/* Decide page cache or direct I/O for a reader of version m (rule 3). */
static void choose_caching(struct node *n, struct handle *h, const struct store_meta *m,
			   struct fuse_file_info *fi)
{
	if (n->written_here || strcmp(n->kernel_etag, m->etag) != 0 ||
	    (n->pc_readers > 0 && strcmp(n->page_etag, m->etag) != 0)) {
		fi->direct_io = 1;
		return;
	}
	fi->keep_cache = strcmp(n->page_etag, m->etag) == 0;
	memcpy(n->page_etag, m->etag, sizeof(n->page_etag));
	if (n->pc_readers++ == 0)
		n->pinned = *m;
	h->page_cache = true;
}

/* Create a staging file for node n. It is seeded with the committed content
 * lazily (staging_seed_locked), so a writer that truncates first, as O_TRUNC
 * does, never downloads the version it replaces. */
static int staging_new(struct fs *fs, bool seeded, struct staging **out)
{
	struct staging *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->io, NULL);
	s->base_fd = -1;
	s->fd = cache_staging_create(fs->cache);
	if (s->fd < 0) {
		int ret = s->fd;

		s->fd = -1;
		staging_free(s);
		return ret;
	}
	s->seeded = seeded;
	*out = s;
	return 0;
}

/* Make sure the staging has a file, after a commit gave the last one to the
 * cache (stg->io held). */
static int staging_file_locked(struct fs *fs, struct staging *s)
{
	if (s->fd >= 0)
		return 0;
	s->fd = cache_staging_create(fs->cache);
	return s->fd < 0 ? s->fd : 0;
}

/* Copy the committed version into the staging file before its first use
 * (stg->io held): the version this staging last committed, as the writer
 * left it, else the store's current one. */
static int staging_seed_locked(struct fs *fs, struct node *n)
{
	struct staging *s = n->stg;
	struct store_meta m;
	int src = -1, ret;

	ret = staging_file_locked(fs, s);
	if (ret || s->seeded)
		return ret;
	if (s->base_fd >= 0) {
		ret = fd_copy_range(s->base_fd, CACHE_HDR, s->fd, CACHE_HDR, s->size);
		if (ret)
			return ret;
		close(s->base_fd);
		s->base_fd = -1;
		s->seeded = true;
		return 0;
	}
	ret = fetch_version(fs, n, &src, &m);
	if (ret == -ENOENT) {
		/* deleted meanwhile: writing recreates it, as on a disk */
		ret = 0;
		m.size = 0;
	} else if (ret == 0) {
		ret = fd_copy_range(src, CACHE_HDR, s->fd, CACHE_HDR, m.size);
		close(src);
	}
	if (ret)
		return ret;
	s->size = m.size;
	s->seeded = true;
	return 0;
}

/* Set the staged size (stg->io held); truncating to zero needs no seed. */
static int staging_truncate_locked(struct fs *fs, struct node *n, uint64_t size)
{
	struct staging *s = n->stg;
	int ret = 0;

	staging_unstream(s);
	s->sequential = size == 0;
	if (size == 0) {
		ret = staging_file_locked(fs, s);
		s->seeded = true;
		if (s->base_fd >= 0)
			close(s->base_fd);
		s->base_fd = -1;
	} else {
		ret = staging_seed_locked(fs, n);
	}
	if (ret == 0 && ftruncate(s->fd, CACHE_HDR + (off_t)size) < 0)
		ret = -errno;
	if (ret == 0) {
		s->size = size;
		s->dirty = true;
	}
	return ret;
}

static struct handle *handle_of(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

/* Give handle h to the kernel, and remember it until its release. */
static void handle_publish(struct fs *fs, struct handle *h, struct fuse_file_info *fi)
{
	pthread_mutex_lock(&fs->lock);
	h->prev = NULL;
	h->next = fs->open_handles;
	if (h->next)
		h->next->prev = h;
	fs->open_handles = h;
	pthread_mutex_unlock(&fs->lock);
	fi->fh = (uintptr_t)h;
}

/* Attach a write handle to n's staging, creating it (fs->lock not held). */
static int writer_attach(struct fs *fs, struct node *n)
{
	struct staging *s = NULL;
	int ret;

	pthread_mutex_lock(&fs->lock);
	if (!n->stg) {
		pthread_mutex_unlock(&fs->lock);
		ret = staging_new(fs, false, &s);
		if (ret)
			return ret;
		pthread_mutex_lock(&fs->lock);
		if (n->stg) /* another opener won the race: join theirs */
			staging_free(s);
		else
			n->stg = s;
	}
	n->stg->writers++;
	n->written_here = true;
	pthread_mutex_unlock(&fs->lock);
	return 0;
}

/* Upload the staging file as the new version of the node's key (stg->io
 * held by the caller). Local-only names are only made durable locally. */
static int commit_locked(struct fs *fs, struct node *n)
{
	struct staging *s = n->stg;
	struct store_put_cond cond = { .mode = STORE_PUT_ANY };
	struct store_meta m;
	char key[STORE_KEY_MAX], kb[256];
	bool local;
	int ret;

	if (!s->dirty)
		return 0;
	pthread_mutex_lock(&fs->lock);
	local = s->local_only;
	if (s->pending && s->excl)
		cond.mode = STORE_PUT_CREATE;
	snprintf(key, sizeof(key), "%s", n->key);
	pthread_mutex_unlock(&fs->lock);
	/* A streamed upload is only good for the key it was started for. */
	if (local || n->detached || (s->up && strcmp(s->up_key, key) != 0))
		staging_unstream(s);
	if (local)
		return fsync(s->fd) < 0 ? -errno : 0;
	if (n->detached)
		return 0; /* unlinked or replaced while open: nowhere to commit */

	if (cond.mode == STORE_PUT_CREATE && !(fs->store->caps & STORE_CAP_CONDITIONAL_PUT)) {
		log_msg(LOG_ERR, "create %s: O_EXCL asked for, but this store cannot enforce "
			"create-only writes; refusing rather than pretending",
			log_key(key, kb, sizeof(kb)));
		staging_unstream(s);
		return -EOPNOTSUPP;
	}
	if (s->up) {
		ret = store_upload_commit(s->up, s->size, &cond, &m);
		s->up = NULL; /* the commit consumed it */
		staging_unstream(s);
	} else {
		ret = store_put(fs->store, key, s->fd, CACHE_HDR, s->size, &cond, &m);
	}
	if (ret) {
		atomic_fetch_add(&fs->ctr.commit_errors, 1);
		/* A refused create-only put is the application's answer (close()
		 * returns EEXIST), not a fault of the mount. */
		log_msg(ret == -EEXIST ? LOG_DEBUG : LOG_ERR, "upload %s: %s",
			log_key(key, kb, sizeof(kb)), store_strerror(ret));
		return ret;
	}
	atomic_fetch_add(&fs->ctr.commits, 1);
	s->dirty = false;
	/* The upload becomes the cached version, so the next open needs no
	 * GET; the staging file itself is that entry now, so further writes
	 * go to a fresh file seeded from it when first needed. */
	if (cache_adopt(fs->cache, key, s->fd, &m) == 0) {
		if (s->base_fd >= 0)
			close(s->base_fd);
		s->base_fd = s->fd;
		s->fd = -1;
		s->seeded = false;
		s->sequential = false;
	} else {
		cache_evict(fs->cache, key);
	}
	pthread_mutex_lock(&fs->lock);
	s->pending = false;
	n->commits++;
	node_confirm(n, &m);
	pthread_mutex_unlock(&fs->lock);
	return 0;
}

/* Leave the writer role; the last writer drops a clean staging file. */
static void writer_detach(struct fs *fs, struct node *n)
{
	struct staging *s;

	pthread_mutex_lock(&fs->lock);
	s = n->stg;
	s->writers--;
	if (s->writers == 0 && !s->local_only) {
		/* A failed commit is reported by close(); the data goes with the
		 * last writer, and the store keeps the previous version. */
		n->stg = NULL;
		pthread_mutex_unlock(&fs->lock);
		staging_free(s);
		return;
	}
	pthread_mutex_unlock(&fs->lock);
}

/* Pin node n and its staging file, if any, for an operation that works
 * unlocked: the staging counts as written to until staging_unpin(), so a
 * release cannot free it meanwhile. Returns the staging or NULL. */
static struct staging *staging_pin(struct fs *fs, struct node *n)
{
	struct staging *s;

	pthread_mutex_lock(&fs->lock);
	n->handles++;
	s = n->stg;
	if (s)
		s->writers++;
	pthread_mutex_unlock(&fs->lock);
	return s;
}

/* Undo staging_pin(). */
static void staging_unpin(struct fs *fs, struct node *n, struct staging *s)
{
	if (s)
		writer_detach(fs, n);
	pthread_mutex_lock(&fs->lock);
	node_unref(n);
	pthread_mutex_unlock(&fs->lock);
}

/* open: readers get a version snapshot, writers the node's staging file. */
static int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	const char *key = key_of(path);
	int acc = fi->flags & O_ACCMODE;
	struct handle *h;
	struct node *n;
	int ret;

	if (virt_of(key) == VIRT_STATUS || virt_of(key) == VIRT_METRICS) {
		if (acc != O_RDONLY)
			return -EACCES;
		h = calloc(1, sizeof(*h));
		if (!h)
			return -ENOMEM;
		h->fd = -1;
		h->vbuf = virt_render(fs, virt_of(key));
		if (!h->vbuf) {
			free(h);
			return -ENOMEM;
		}
		h->vlen = strlen(h->vbuf);
		fi->direct_io = 1; /* its size changes with every open */
		handle_publish(fs, h, fi);
		return 0;
	}
	ret = path_check(key);
	if (ret)
		return ret;
	if (acc != O_RDONLY && fs->cfg.read_only)
		return -EROFS;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->fd = -1;
	pthread_mutex_lock(&fs->lock);
	n = node_get(fs, key);
	if (n)
		n->handles++;
	pthread_mutex_unlock(&fs->lock);
	if (!n) {
		free(h);
		return -ENOMEM;
	}
	h->node = n;

	if (acc != O_RDONLY) {
		/* O_TRUNC arrives later as a setattr (atomic_o_trunc is off). */
		ret = writer_attach(fs, n);
		if (ret)
			goto fail;
		h->writer = true;
		h->append = (fi->flags & O_APPEND) != 0;
		pthread_mutex_lock(&fs->lock);
		n->stg->last_opened = h;
		pthread_mutex_unlock(&fs->lock);
		fi->direct_io = 1;
		handle_publish(fs, h, fi);
		return 0;
	}

	pthread_mutex_lock(&fs->lock);
	if (n->stg && (n->stg->local_only || n->stg->pending)) {
		/* Not in the store: local-only names read live, new files
		 * read empty until their first commit. */
		h->live = n->stg->local_only;
		fi->direct_io = 1;
		pthread_mutex_unlock(&fs->lock);
		handle_publish(fs, h, fi);
		return 0;
	}
	pthread_mutex_unlock(&fs->lock);
	atomic_fetch_add(&fs->ctr.opens, 1);
	{
		struct store_meta m;

		ret = open_live(fs, n, h, &m);
		if (ret == 1)
			ret = fetch_version(fs, n, &h->fd, &m);
		if (ret)
			goto fail;
		h->size = m.size;
		pthread_mutex_lock(&fs->lock);
		choose_caching(n, h, &m, fi);
		pthread_mutex_unlock(&fs->lock);
	}
	handle_publish(fs, h, fi);
	return 0;
fail:
	pthread_mutex_lock(&fs->lock);
	node_unref(n);
	pthread_mutex_unlock(&fs->lock);
	free(h);
	return ret;
}

/* create: a new file exists only on this mount until its first commit. */
static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	const char *key = key_of(path);
	struct staging *s;
	struct handle *h;
	struct node *n;
	int ret = path_check(key);

	if (ret)
		return ret;
	if (fs->cfg.read_only)
		return -EROFS;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	ret = staging_new(fs, true, &s);
	if (ret) {
		free(h);
		return ret;
	}
	s->dirty = true; /* an empty new file is still a new object */
	s->sequential = true;
	s->writers = 1;
	h->fd = -1;
	h->writer = true;
	h->append = (fi->flags & O_APPEND) != 0;

	pthread_mutex_lock(&fs->lock);
	n = node_get(fs, key);
	if (!n || n->stg) {
		/* Somebody on this mount is already writing it: O_EXCL fails,
		 * otherwise join them as open() would. */
		pthread_mutex_unlock(&fs->lock);
		staging_free(s);
		free(h);
		if (!n)
			return -ENOMEM;
		if (fi->flags & O_EXCL)
			return -EEXIST;
		return fs_open(path, fi);
	}
	s->local_only = is_tmpname(fs, key);
	s->pending = true;
	s->excl = (fi->flags & O_EXCL) != 0;
	n->stg = s;
	s->last_opened = h;
	h->modified = true; /* a new file is a new object, even empty */
	n->written_here = true;
	n->handles++;
	h->node = n;
	pthread_mutex_unlock(&fs->lock);
	fi->direct_io = 1;
	handle_publish(fs, h, fi);
	return 0;
}

/* read: from the version snapshot, or the staging file for writers. */
static int fs_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	ssize_t n;

	if (h->vbuf) {
		if ((size_t)off >= h->vlen)
			return 0;
		if (size > h->vlen - (size_t)off)
			size = h->vlen - (size_t)off;
		memcpy(buf, h->vbuf + off, size);
		return (int)size;
	}
	if (h->writer || h->live) {
		struct staging *s = h->node->stg;
		int ret;

		/* Under the lock: a commit may hand the file to the cache. Right
		 * after a commit the version it made is read where it is. */
		pthread_mutex_lock(&s->io);
		ret = s->seeded || s->base_fd < 0 ? staging_seed_locked(fs_get(), h->node) : 0;
		n = ret ? ret : pread(s->seeded ? s->fd : s->base_fd, buf, size, CACHE_HDR + off);
		if (n < 0 && !ret)
			n = -errno;
		pthread_mutex_unlock(&s->io);
		return (int)n;
	}
	if (h->fd < 0 || (uint64_t)off >= h->size)
		return 0;
	if ((uint64_t)off + size > h->size)
		size = (size_t)(h->size - (uint64_t)off);
	if (h->download && live_wait(h->download, (uint64_t)off + size) != 0)
		return -EIO;
	n = pread(h->fd, buf, size, CACHE_HDR + off);
	return n < 0 ? -errno : (int)n;
}

/* read_buf: version snapshots are spliced from their cache file, with no
 * copy through this process; everything else goes through fs_read. */
static int fs_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	struct fuse_bufvec *bv = malloc(sizeof(*bv));
	int n;

	if (!bv)
		return -ENOMEM;
	if (!h->writer && !h->live && !h->vbuf && h->fd >= 0) {
		if ((uint64_t)off >= h->size)
			size = 0;
		else if ((uint64_t)off + size > h->size)
			size = (size_t)(h->size - (uint64_t)off);
		if (size && h->download && live_wait(h->download, (uint64_t)off + size) != 0) {
			free(bv);
			return -EIO;
		}
		*bv = FUSE_BUFVEC_INIT(size);
		bv->buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv->buf[0].fd = h->fd;
		bv->buf[0].pos = CACHE_HDR + off;
		atomic_fetch_add(&fs_get()->ctr.read_bytes, (uint64_t)size);
		*bufp = bv;
		return 0;
	}
	*bv = FUSE_BUFVEC_INIT(size);
	bv->buf[0].mem = malloc(size ? size : 1);
	if (!bv->buf[0].mem) {
		free(bv);
		return -ENOMEM;
	}
	n = fs_read(path, bv->buf[0].mem, size, off, fi);
	if (n < 0) {
		free(bv->buf[0].mem);
		free(bv);
		return n;
	}
	bv->buf[0].size = (size_t)n;
	*bufp = bv;
	return 0;
}

/* After a write to n's staging (stg->io held): while a file is written
 * front to back from empty, what is written is final unless the writer
 * goes back, so it is offered to the store as it arrives (stores that
 * can stream start uploading big bodies before close); the first write
 * that goes back cancels that, and the commit puts the file whole. */
static void stream_after_write(struct fs *fs, struct node *n, bool appended)
{
	struct staging *s = n->stg;
	bool local;

	if (!appended) {
		s->sequential = false;
		staging_unstream(s);
		return;
	}
	if (!s->sequential)
		return;
	if (!s->up) {
		pthread_mutex_lock(&fs->lock);
		local = s->local_only || n->detached;
		s->up_key = local ? NULL : strdup(n->key);
		pthread_mutex_unlock(&fs->lock);
		/* one try per file: stores that cannot stream say so once */
		s->sequential = false;
		if (!s->up_key ||
		    store_upload_begin(fs->store, s->up_key, s->fd, CACHE_HDR, &s->up) != 0) {
			staging_unstream(s);
			return;
		}
		s->sequential = true;
	}
	store_upload_advance(s->up, s->size);
}

/* write: into the staging file; O_APPEND appends at the staged end, whatever
 * offset the kernel computed from the committed size. */
static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);
	struct staging *s = h->node->stg;
	ssize_t n;

	if (!h->writer)
		return -EBADF;
	pthread_mutex_lock(&s->io);
	n = staging_seed_locked(fs_get(), h->node);
	if (n < 0) {
		pthread_mutex_unlock(&s->io);
		return (int)n;
	}
	if (h->append)
		off = (off_t)s->size;
	n = pwrite(s->fd, buf, size, CACHE_HDR + off);
	if (n > 0) {
		bool appended = (uint64_t)off == s->size;

		s->dirty = true;
		h->modified = true;
		h->wrote = true;
		h->closed = false;
		h->failed = false;
		if ((uint64_t)off + (uint64_t)n > s->size)
			s->size = (uint64_t)off + (uint64_t)n;
		stream_after_write(fs_get(), h->node, appended);
	}
	pthread_mutex_unlock(&s->io);
	return n < 0 ? -errno : (int)n;
}

/* Commit what handle h changed since its last commit. Only the handle's own
 * changes count: a release arrives after close() returned, possibly after
 * the next writer has opened and truncated the shared staging file, and
 * committing then would publish that writer's half-made version. A failed
 * commit stays pending, so the next fsync or close tries again; release
 * (releasing true) never retries what close() already reported as failed,
 * or the application would be told "failed" about data that then lands. */
static int commit_for(struct fs *fs, struct handle *h, bool releasing)
{
	struct node *n = h->node;
	int ret = 0;

	pthread_mutex_lock(&n->stg->io);
	if (h->modified && !(releasing && h->failed)) {
		ret = commit_locked(fs, n);
		h->modified = ret != 0;
		h->failed = ret != 0;
	}
	pthread_mutex_unlock(&n->stg->io);
	return ret;
}

/* flush (every close of a descriptor): commit what this handle wrote. A
 * handle that wrote nothing yet waits for release: a shell's `> file` opens,
 * dup2()s and closes the first descriptor before writing, and committing
 * then would publish an empty file for a moment. */
static int fs_flush(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);

	if (!h->writer)
		return 0;
	h->closed = true;
	if (!h->wrote)
		return 0;
	return commit_for(fs_get(), h, false);
}

/* fsync: commit now, written or not; the store's put is durable when it
 * returns. */
static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct handle *h = handle_of(fi);

	return h->writer ? commit_for(fs_get(), h, false) : 0;
}

/* Commit what h still owes, drop its references and free it. */
static void handle_close(struct fs *fs, struct handle *h)
{
	struct node *n = h->node;

	pthread_mutex_lock(&fs->lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		fs->open_handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&fs->lock);
	if (h->vbuf) {
		free(h->vbuf);
		free(h);
		return;
	}
	if (h->writer) {
		int ret = commit_for(fs, h, true);

		if (ret)
			log_msg(LOG_DEBUG, "release: commit failed (%d), reported at close", ret);
		pthread_mutex_lock(&fs->lock);
		if (n->stg->last_opened == h)
			n->stg->last_opened = NULL;
		pthread_mutex_unlock(&fs->lock);
		writer_detach(fs, n);
	}
	if (h->fd >= 0)
		close(h->fd);
	if (h->download)
		live_unref(h->download);
	pthread_mutex_lock(&fs->lock);
	if (h->page_cache)
		n->pc_readers--;
	node_unref(n);
	pthread_mutex_unlock(&fs->lock);
	free(h);
}

/* release: the last reference of a handle. */
static int fs_release(const char *path, struct fuse_file_info *fi)
{
	handle_close(fs_get(), handle_of(fi));
	return 0;
}

/* truncate: with open writers on this mount (ftruncate, or O_TRUNC, which
 * the kernel sends without a handle), their staging file; otherwise a whole
 * read-modify-write committed at once. The reply carries the committed size
 * (rule 3), so readers on this mount keep theirs. */
static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	struct node *n;
	bool others;
	int ret;

	if (size < 0)
		return -EINVAL;
	if (fs->cfg.read_only)
		return -EROFS;
	if (fi && fi->fh) {
		n = handle_of(fi)->node;
		if (!handle_of(fi)->writer)
			return -EBADF;
		handle_of(fi)->modified = true;
		handle_of(fi)->wrote = true;
	} else {
		ret = path_check(key_of(path));
		if (ret)
			return ret;
		pthread_mutex_lock(&fs->lock);
		n = node_get(fs, key_of(path));
		pthread_mutex_unlock(&fs->lock);
		if (!n)
			return -ENOMEM;
	}
	pthread_mutex_lock(&fs->lock);
	n->handles++;
	pthread_mutex_unlock(&fs->lock);
	ret = writer_attach(fs, n);
	if (ret == 0) {
		pthread_mutex_lock(&fs->lock);
		others = n->stg->writers > 1;
		/* O_TRUNC reaches us as a truncate without a handle right after
		 * the open: it belongs to the newest writer, whose close commits. */
		if (others && !(fi && fi->fh) && n->stg->last_opened)
			n->stg->last_opened->modified = true;
		pthread_mutex_unlock(&fs->lock);
		pthread_mutex_lock(&n->stg->io);
		ret = staging_truncate_locked(fs, n, (uint64_t)size);
		/* With writers open, their close commits; alone, commit now. */
		if (ret == 0 && !others)
			ret = commit_locked(fs, n);
		pthread_mutex_unlock(&n->stg->io);
		writer_detach(fs, n);
	}
	pthread_mutex_lock(&fs->lock);
	node_unref(n);
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

/* unlink: delete the object; a file still being written is forgotten. The
 * staging lock is held while deciding, so a commit in flight (a release
 * arrives asynchronously) either finished, and the object is deleted, or
 * will find the node detached and upload nothing. */
static int fs_unlink(const char *path)
{
	struct fs *fs = fs_get();
	const char *key = key_of(path);
	struct staging *s = NULL;
	struct node *n;
	bool staged = false;
	int ret = path_check(key);

	if (ret)
		return ret;
	if (fs->cfg.read_only)
		return -EROFS;
	pthread_mutex_lock(&fs->lock);
	n = node_find(fs, key);
	pthread_mutex_unlock(&fs->lock);
	if (n)
		s = staging_pin(fs, n);
	if (s)
		pthread_mutex_lock(&s->io);
	pthread_mutex_lock(&fs->lock);
	if (n && n->stg && (n->stg->pending || n->stg->local_only)) {
		staged = true;
		node_detach(fs, n);
	}
	pthread_mutex_unlock(&fs->lock);
	if (s)
		pthread_mutex_unlock(&s->io);

	if (!staged) {
		ret = store_del(fs->store, key, NULL);
		if (ret == 0 || ret == -ENOENT) {
			cache_evict(fs->cache, key);
			pthread_mutex_lock(&fs->lock);
			if (n && !n->detached) {
				if (n->stg) {
					node_detach(fs, n); /* open writers must not resurrect it */
				} else {
					n->type = NODE_ABSENT;
					n->meta_at = mono_ms();
					n->cached_etag[0] = '\0';
				}
			}
			pthread_mutex_unlock(&fs->lock);
		}
	}
	if (s) {
		bool gone;

		/* an upload still streaming to the name is of no use now */
		pthread_mutex_lock(&s->io);
		pthread_mutex_lock(&fs->lock);
		gone = n->detached;
		pthread_mutex_unlock(&fs->lock);
		if (gone)
			staging_unstream(s);
		pthread_mutex_unlock(&s->io);
	}
	if (n)
		staging_unpin(fs, n, s);
	return ret;
}

/* Is there anything under prefix key/ in the store or on this mount? */
static int dir_nonempty(struct fs *fs, const char *key)
{
	struct store_list_page page = { 0 };
	char *prefix;
	size_t plen;
	int ret;

	if (asprintf(&prefix, "%s/", key) < 0)
		return -ENOMEM;
	plen = strlen(prefix);
	ret = store_list(fs->store, prefix, "/", NULL, 1, &page);
	if (ret == 0)
		ret = page.count > 0;
	store_list_page_cleanup(&page);
	pthread_mutex_lock(&fs->lock);
	for (size_t b = 0; b < fs->nbuckets && ret == 0; b++)
		for (struct node *n = fs->buckets[b]; n && ret == 0; n = n->hnext)
			if (node_local(n) && strncmp(n->key, prefix, plen) == 0 &&
			    n->key[plen] != '\0')
				ret = 1;
	pthread_mutex_unlock(&fs->lock);
	free(prefix);
	return ret;
}

/* mkdir: stores have no directories; this one lives on this mount until
 * objects below it make it a prefix in the store. */
static int fs_mkdir(const char *path, mode_t mode)
{
	struct fs *fs = fs_get();
	const char *key = key_of(path);
	struct node *n;
	int ret = path_check(key);

	if (ret)
		return ret;
	if (fs->cfg.read_only)
		return -EROFS;
	pthread_mutex_lock(&fs->lock);
	n = node_get(fs, key);
	if (n) {
		if (n->type == NODE_FILE && fresh(fs, n->meta_at)) {
			pthread_mutex_unlock(&fs->lock);
			return -EEXIST;
		}
		n->local_dir = true;
		if (n->type != NODE_DIR) {
			n->type = NODE_DIR;
			n->meta_at = mono_ms();
		}
	}
	pthread_mutex_unlock(&fs->lock);
	return n ? 0 : -ENOMEM;
}

/* rmdir: only empty directories, as on a disk. */
static int fs_rmdir(const char *path)
{
	struct fs *fs = fs_get();
	const char *key = key_of(path);
	struct node *n;
	int ret = path_check(key);

	if (ret)
		return ret;
	if (fs->cfg.read_only)
		return -EROFS;
	ret = dir_nonempty(fs, key);
	if (ret < 0)
		return ret;
	if (ret > 0)
		return -ENOTEMPTY;
	pthread_mutex_lock(&fs->lock);
	n = node_find(fs, key);
	if (n) {
		n->local_dir = false;
		n->type = NODE_ABSENT;
		n->meta_at = mono_ms();
	}
	pthread_mutex_unlock(&fs->lock);
	return 0;
}

/* Move node n (fs->lock held) to key to, detaching whatever was there. */
static int node_rekey(struct fs *fs, struct node *n, const char *to)
{
	struct node *old = node_find(fs, to);
	char *k = strdup(to);

	if (!k)
		return -ENOMEM;
	if (old)
		node_detach(fs, old);
	table_remove(fs, n);
	free(n->key);
	n->key = k;
	table_insert(fs, n);
	return 0;
}

/* rename: a staged (new or temporary) file becomes one put of the target; a
 * committed object is copied then deleted; directories move only while they
 * exist on this mount alone (otherwise EXDEV, so mv copies). */
static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	struct fs *fs = fs_get();
	const char *fk = key_of(from), *tk = key_of(to);
	struct store_put_cond cond = { .mode = STORE_PUT_ANY };
	struct staging *s = NULL;
	struct store_meta m;
	struct node *n, *tn;
	bool staged, to_tmp = false;
	int fd = -1, ret;

	if ((ret = path_check(fk)) != 0 || (ret = path_check(tk)) != 0)
		return ret;
	if (fs->cfg.read_only)
		return -EROFS;
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	if (flags & RENAME_NOREPLACE)
		cond.mode = STORE_PUT_CREATE;

	pthread_mutex_lock(&fs->lock);
	n = node_find(fs, fk);
	tn = node_find(fs, tk);
	if (n && (n->type == NODE_DIR || n->local_dir)) {
		pthread_mutex_unlock(&fs->lock);
		if (dir_nonempty(fs, fk) != 0)
			return -EXDEV;
		pthread_mutex_lock(&fs->lock);
		n = node_find(fs, fk);
		if (n) {
			ret = node_rekey(fs, n, tk);
			n->local_dir = true;
		}
		pthread_mutex_unlock(&fs->lock);
		return ret;
	}
	if (tn && (tn->type == NODE_DIR || tn->local_dir)) {
		pthread_mutex_unlock(&fs->lock);
		return -EISDIR;
	}
	staged = n && n->stg && (n->stg->pending || n->stg->local_only);
	if (staged) {
		/* pinned as staging_pin() does, under the same lock hold */
		s = n->stg;
		s->writers++;
		n->handles++;
		to_tmp = is_tmpname(fs, tk);
	}
	pthread_mutex_unlock(&fs->lock);

	if (staged) {
		bool was_local;

		pthread_mutex_lock(&s->io);
		pthread_mutex_lock(&fs->lock);
		was_local = s->local_only;
		ret = node_rekey(fs, n, tk);
		s->local_only = to_tmp;
		s->dirty = s->dirty || (was_local && !to_tmp);
		/* The target is create-only if rename says so; an O_EXCL on the
		 * temporary (mkstemp) was about the temporary's name. */
		s->excl = cond.mode == STORE_PUT_CREATE;
		pthread_mutex_unlock(&fs->lock);
		if (ret == 0 && !to_tmp)
			ret = commit_locked(fs, n);
		if (ret && ret != -ENOMEM) {
			/* Undo, so the source is still there to retry with. */
			pthread_mutex_lock(&fs->lock);
			node_rekey(fs, n, fk);
			s->local_only = was_local;
			pthread_mutex_unlock(&fs->lock);
		}
		pthread_mutex_unlock(&s->io);
		staging_unpin(fs, n, s);
		return ret;
	}

	/* A committed object: copy, then delete the source. */
	pthread_mutex_lock(&fs->lock);
	n = node_get(fs, fk);
	if (n)
		n->handles++;
	pthread_mutex_unlock(&fs->lock);
	if (!n)
		return -ENOMEM;
	ret = fetch_version(fs, n, &fd, &m);
	if (ret == 0)
		ret = store_put(fs->store, tk, fd, CACHE_HDR, m.size, &cond, &m);
	if (ret == 0) {
		ret = store_del(fs->store, fk, NULL);
		if (ret == -ENOENT)
			ret = 0;
	}
	if (ret == 0) {
		cache_install(fs->cache, tk, fd, CACHE_HDR, &m);
		cache_evict(fs->cache, fk);
		pthread_mutex_lock(&fs->lock);
		tn = node_get(fs, tk);
		if (tn) {
			node_confirm(tn, &m);
		}
		n->type = NODE_ABSENT;
		n->meta_at = mono_ms();
		n->cached_etag[0] = '\0';
		pthread_mutex_unlock(&fs->lock);
	}
	if (fd >= 0)
		close(fd);
	pthread_mutex_lock(&fs->lock);
	node_unref(n);
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

/* Is this time "now", as touch without -d asks? */
static bool is_now(const struct timespec *t)
{
	struct timespec now;

	if (t->tv_nsec == UTIME_NOW)
		return true;
	clock_gettime(CLOCK_REALTIME, &now);
	return t->tv_nsec != UTIME_OMIT && llabs((long long)(t->tv_sec - now.tv_sec)) <= 2;
}

/* utimens: refreshing the time of an object refreshes it in the store (how a
 * shell exporter renews its election entry). Stores set modification times
 * themselves, so only "now" can be honoured; another time is refused rather
 * than silently replaced. A file with uncommitted changes gets the time of
 * its commit anyway. */
static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();
	const char *key;
	struct store_meta m;
	struct staging *s = NULL;
	struct node *n;
	bool pending_change = false;
	int ret;

	if (fs->cfg.read_only)
		return -EROFS;
	if (fi && fi->fh)
		key = handle_of(fi)->node->key;
	else if (path)
		key = key_of(path);
	else
		return -ENOENT;
	if ((ret = path_check(key)) != 0)
		return ret;
	if (tv && tv[1].tv_nsec == UTIME_OMIT)
		return 0; /* atime only: stores keep none */
	if (tv && !is_now(&tv[1]))
		return -EPERM;
	pthread_mutex_lock(&fs->lock);
	n = node_find(fs, key);
	if (n && (n->type == NODE_DIR || n->local_dir)) {
		pthread_mutex_unlock(&fs->lock);
		return 0; /* directories have no time of their own in a store */
	}
	pthread_mutex_unlock(&fs->lock);
	if (n)
		s = staging_pin(fs, n);
	if (s) {
		pthread_mutex_lock(&s->io);
		pending_change = s->dirty || s->pending || s->local_only;
		pthread_mutex_unlock(&s->io);
	}
	if (!pending_change) {
		ret = store_touch(fs->store, key, &m);
		if (ret == 0 && n) {
			pthread_mutex_lock(&fs->lock);
			if (strcmp(n->cached_etag, m.etag) == 0 || n->type != NODE_FILE ||
			    strcmp(n->meta.etag, n->cached_etag) == 0) {
				if (strcmp(n->meta.etag, n->cached_etag) == 0)
					memcpy(n->cached_etag, m.etag, sizeof(n->cached_etag));
				n->content_at = mono_ms();
			}
			node_set_file(n, &m);
			pthread_mutex_unlock(&fs->lock);
		}
	}
	if (n)
		staging_unpin(fs, n, s);
	return ret;
}

/* chmod/chown: modes and owners come from mount options; accept only what
 * would change nothing, so tools that re-apply them keep working. */
static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct stat st;
	int ret = fs_getattr(path, &st, fi);

	if (ret)
		return ret;
	return (st.st_mode & 07777) == (mode & 07777) ? 0 : -EPERM;
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct fs *fs = fs_get();

	if ((uid != (uid_t)-1 && uid != fs->cfg.uid) || (gid != (gid_t)-1 && gid != fs->cfg.gid))
		return -EPERM;
	return 0;
}

/* statfs: stores have no fixed size; report a large, honest "unknown". */
static int fs_statfs(const char *path, struct statvfs *st)
{
	memset(st, 0, sizeof(*st));
	st->f_bsize = 4096;
	st->f_frsize = 4096;
	st->f_blocks = st->f_bfree = st->f_bavail = 1ull << 32;
	st->f_files = st->f_ffree = st->f_favail = 1ull << 32;
	st->f_namemax = 255;
	return 0;
}

#define XATTR_ETAG "user.fallbackfs.etag"
#define XATTR_FETCHED "user.fallbackfs.fetched_at"
#define XATTR_SOURCE "user.fallbackfs.source"

/* Copy a value out as getxattr does: size 0 asks for the length. */
static int xattr_reply(const char *v, char *value, size_t size)
{
	size_t len = strlen(v);

	if (size == 0)
		return (int)len;
	if (size < len)
		return -ERANGE;
	memcpy(value, v, len);
	return (int)len;
}

/* getxattr: what this mount knows of a file's version (see README). */
static int fs_getxattr(const char *path, const char *name, char *value, size_t size)
{
	struct fs *fs = fs_get();
	const char *key = key_of(path);
	char out[STORE_ETAG_MAX + 64] = "";
	struct stat st;
	struct node *n;
	int ret;

	if (virt_of(key) != VIRT_NONE || key[0] == '\0')
		return -ENODATA;
	ret = fs_getattr(path, &st, NULL);
	if (ret)
		return ret;
	if (!S_ISREG(st.st_mode))
		return -ENODATA;
	pthread_mutex_lock(&fs->lock);
	n = node_find(fs, key);
	if (!n) {
		ret = -ENOENT;
	} else if (strcmp(name, XATTR_ETAG) == 0) {
		if (n->type == NODE_FILE)
			snprintf(out, sizeof(out), "%s", n->meta.etag);
		else
			ret = -ENODATA; /* not in the store yet */
	} else if (strcmp(name, XATTR_FETCHED) == 0) {
		time_t t = (time_t)n->fetched_at;
		struct tm tm;

		if (t > 0 && gmtime_r(&t, &tm))
			strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &tm);
		else
			ret = -ENODATA; /* content never confirmed by this mount */
	} else if (strcmp(name, XATTR_SOURCE) == 0) {
		snprintf(out, sizeof(out), "%s", node_local(n) && n->type != NODE_FILE ? "local"
						  : n->stale_served ? "cache" : "store");
	} else {
		ret = -ENODATA;
	}
	pthread_mutex_unlock(&fs->lock);
	return ret ? ret : xattr_reply(out, value, size);
}

/* listxattr: the three names, on files. */
static int fs_listxattr(const char *path, char *list, size_t size)
{
	static const char names[] = XATTR_ETAG "\0" XATTR_FETCHED "\0" XATTR_SOURCE;
	const char *key = key_of(path);
	struct stat st;
	int ret;

	if (virt_of(key) != VIRT_NONE || key[0] == '\0')
		return 0;
	ret = fs_getattr(path, &st, NULL);
	if (ret)
		return ret;
	if (!S_ISREG(st.st_mode))
		return 0;
	if (size == 0)
		return (int)sizeof(names);
	if (size < sizeof(names))
		return -ERANGE;
	memcpy(list, names, sizeof(names));
	return (int)sizeof(names);
}

/* Our attributes describe the store; nobody sets them. */
static int fs_setxattr(const char *path, const char *name, const char *value, size_t size,
		       int flags)
{
	return -ENOTSUP;
}

static int fs_removexattr(const char *path, const char *name)
{
	return -ENOTSUP;
}

/* init: the kernel caching decisions, each with its reason. */
static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* Every lookup and stat asks us: answers come from memory, and we
	 * must know which version's size the kernel holds (rule 3). */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	/* Page-cache use is decided per open (keep_cache / direct_io). */
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	/* Unlinked open files must not be renamed to .fuse_hidden objects. */
	cfg->hard_remove = 1;
	/* Handle-based calls work on files whose path has gone. */
	cfg->nullpath_ok = 1;
	cfg->use_ino = 0;
	/* O_TRUNC must reach us as a setattr that we answer with the
	 * committed size, not zero the inode for same-mount readers. */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	/* We invalidate exactly at open when versions change; the kernel's
	 * mtime heuristics would only add GETATTRs and false invalidations. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* No writeback cache: writes must reach the staging file in order. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want |= FUSE_CAP_SPLICE_READ;
	/* Reads are answered from cache entries, which are never written once
	 * readers can see them (a download only writes past what it has
	 * served): splicing them to the kernel saves a copy and a buffer of
	 * the read's size per request (the memory target). */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	conn->max_write = 1024 * 1024;
	conn->max_readahead = 1024 * 1024;
	return fuse_get_context()->private_data;
}

static const struct fuse_operations ops = {
	.init = fs_init,
	.getattr = fs_getattr,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.open = fs_open,
	.create = op_create,
	.read = fs_read,
	.read_buf = fs_read_buf,
	.write = fs_write,
	.flush = fs_flush,
	.fsync = fs_fsync,
	.release = fs_release,
	.truncate = fs_truncate,
	.unlink = fs_unlink,
	.mkdir = fs_mkdir,
	.rmdir = fs_rmdir,
	.rename = fs_rename,
	.utimens = fs_utimens,
	.chmod = fs_chmod,
	.chown = fs_chown,
	.statfs = fs_statfs,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.setxattr = fs_setxattr,
	.removexattr = fs_removexattr,
};

const struct fuse_operations *fs_operations(void)
{
	return &ops;
}

/* Split the ':'-separated glob list. */
static char **split_globs(const char *list)
{
	size_t n = 1;
	char **v, *copy, *save = NULL;
	size_t i = 0;

	for (const char *p = list; *p; p++)
		n += *p == ':';
	v = calloc(n + 1, sizeof(*v));
	copy = strdup(list);
	if (!v || !copy) {
		free(v);
		free(copy);
		return NULL;
	}
	for (char *t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save))
		if ((v[i] = strdup(t)) != NULL)
			i++;
	free(copy);
	return v;
}

int fs_create(const struct fs_config *cfg, struct store *store, struct cache *cache,
	      struct fs **out)
{
	struct fs *fs = calloc(1, sizeof(*fs));

	if (!fs) {
		store_destroy(store);
		cache_destroy(cache);
		return -ENOMEM;
	}
	fs->store = store;
	fs->cache = cache;
	fs->cfg = *cfg;
	clock_gettime(CLOCK_REALTIME, &fs->mounted_at);
	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->downloads_done, NULL);
	fs->nbuckets = 256;
	fs->buckets = calloc(fs->nbuckets, sizeof(*fs->buckets));
	fs->url = strdup(cfg->url ? cfg->url : "");
	fs->tmpnames = split_globs(cfg->tmpnames ? cfg->tmpnames : "");
	if (!fs->buckets || !fs->url || !fs->tmpnames) {
		fs_destroy(fs);
		return -ENOMEM;
	}
	fs->cfg.url = fs->url;
	fs->cfg.tmpnames = NULL;
	*out = fs;
	return 0;
}

void fs_destroy(struct fs *fs)
{
	if (!fs)
		return;
	/* Downloads still running use the store and the cache. */
	pthread_mutex_lock(&fs->lock);
	while (fs->downloads)
		pthread_cond_wait(&fs->downloads_done, &fs->lock);
	pthread_mutex_unlock(&fs->lock);
	/* Handles the kernel never released (the loop ended first). One that
	 * was closed commits what it owes, as its release would have; one
	 * still open mid-write must not publish a partial file. */
	while (fs->open_handles) {
		struct handle *h = fs->open_handles;

		if (h->writer && !h->closed && h->modified) {
			char kb[256];

			log_msg(LOG_WARNING, "unmounting: %s is still open for writing; its "
				"uncommitted changes are dropped", log_key(h->node->key, kb, sizeof(kb)));
			h->modified = false;
		}
		handle_close(fs, h);
	}
	for (size_t b = 0; fs->buckets && b < fs->nbuckets; b++) {
		for (struct node *n = fs->buckets[b], *next; n; n = next) {
			next = n->hnext;
			if (n->stg && n->stg->local_only) {
				char kb[256];

				log_msg(LOG_WARNING, "unmounting: temporary file %s was never "
					"renamed and is not in the store",
					log_key(n->key, kb, sizeof(kb)));
			}
			node_free(n);
		}
	}
	free(fs->buckets);
	for (char **p = fs->tmpnames; p && *p; p++)
		free(*p);
	free(fs->tmpnames);
	free(fs->url);
	store_destroy(fs->store);
	cache_destroy(fs->cache);
	pthread_mutex_destroy(&fs->lock);
	pthread_cond_destroy(&fs->downloads_done);
	free(fs);
}
