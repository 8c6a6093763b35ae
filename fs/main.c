/*
 * main.c - the fallbackfs daemon: parse options, build and probe the store,
 * prepare the cache, mount, then daemonize, so every mistake a user can fix
 * is reported on their terminal with a non-zero exit. Threads start only
 * after the fork (fuse_loop_mt).
 */
#include <errno.h>
#include <fuse.h>
#include <limits.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "fs.h"
#include "log.h"
#include "options.h"
#include "store_open.h"

/* Default cache directory: one per (store URL, mountpoint), stable across
 * restarts so the last-known-good copies survive them. */
static int default_cache_dir(const char *url, const char *mnt, char *out, size_t len)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char id[17], buf[PATH_MAX * 2];
	const char *base;

	snprintf(buf, sizeof(buf), "%s\n%s", url, mnt);
	EVP_Digest(buf, strlen(buf), md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 8; i++)
		snprintf(id + 2 * i, 3, "%02x", md[i]);
	if (geteuid() == 0) {
		snprintf(out, len, "/var/cache/fallbackfs/%s", id);
		return 0;
	}
	base = getenv("XDG_CACHE_HOME");
	if (base && base[0] == '/') {
		snprintf(out, len, "%s/fallbackfs/%s", base, id);
		return 0;
	}
	base = getenv("HOME");
	if (!base || base[0] != '/')
		return -1;
	snprintf(out, len, "%s/.cache/fallbackfs/%s", base, id);
	return 0;
}

/* Ask the store one cheap question so bad credentials or a dead endpoint are
 * reported now, not at the first ls. */
static int probe(struct store *s, char *err, size_t errlen)
{
	struct store_list_page page = { 0 };
	int ret = store_list(s, "", "/", NULL, 1, &page);

	store_list_page_cleanup(&page);
	if (ret)
		snprintf(err, errlen, "store check failed: %s", store_strerror(ret));
	return ret;
}

/* Escape ',' and '\' for an -o value. */
static void opt_escape(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in && o + 3 < len; in++) {
		if (*in == ',' || *in == '\\')
			out[o++] = '\\';
		out[o++] = *in;
	}
	out[o] = '\0';
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *loop = NULL;
	struct store_config scfg = { 0 };
	struct fs_config fcfg = { 0 };
	struct options o;
	struct store *store = NULL;
	struct cache *cache = NULL;
	struct fs *fs = NULL;
	struct fuse *fuse = NULL;
	char err[512] = "", cdir[PATH_MAX], mnt[PATH_MAX], opt[PATH_MAX + 64], esc[PATH_MAX];
	struct stat st;
	bool mounted = false;
	int ret = 1;

	/* Transfers use buffers of a few hundred KiB on short-lived threads.
	 * glibc would otherwise raise its mmap threshold after the first such
	 * free and keep later ones in one arena per thread, so the daemon's
	 * resident size would grow with the threads that ever ran (measured:
	 * 16 MB with these settings, up to 39 MB without). */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_ARENA_MAX, 2);

	if (options_parse(argc, argv, &o, &args) < 0)
		goto out;
	if (o.help) {
		options_usage(argv[0]);
		ret = 0;
		goto out;
	}
	if (o.version) {
		printf("fallbackfs %s (libfuse %d)\n", FALLBACKFS_VERSION, fuse_version());
		ret = 0;
		goto out;
	}
	log_set_debug(o.debug);

	if (!realpath(o.mountpoint, mnt) || stat(mnt, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "fallbackfs: mountpoint '%s' is not an existing directory\n",
			o.mountpoint);
		goto out;
	}

	scfg.url = o.url;
	scfg.endpoint = o.endpoint;
	scfg.region = o.region;
	scfg.addressing = o.addressing;
	scfg.ca_file = o.ca_file;
	scfg.timeout_ms = o.timeout * 1000;
	scfg.read_only = o.ro; /* no write probe: read-only credentials must do */
	if (store_open(&scfg, &store, err, sizeof(err)) < 0 || probe(store, err, sizeof(err)) < 0) {
		fprintf(stderr, "fallbackfs: %s\n", err);
		goto out;
	}

	if (o.cache_dir)
		snprintf(cdir, sizeof(cdir), "%s", o.cache_dir);
	else if (default_cache_dir(o.url, mnt, cdir, sizeof(cdir)) < 0) {
		fprintf(stderr, "fallbackfs: no HOME to put the cache in; use -o cache_dir=DIR\n");
		goto out;
	}
	if (cache_create(cdir, &cache, err, sizeof(err)) < 0) {
		fprintf(stderr, "fallbackfs: %s\n", err);
		goto out;
	}

	fcfg.freshness_ms = o.freshness_ms;
	fcfg.read_only = o.ro;
	fcfg.uid = o.uid_set ? o.uid : getuid();
	fcfg.gid = o.gid_set ? o.gid : getgid();
	fcfg.umask = o.umask;
	fcfg.tmpnames = o.tmpnames ? o.tmpnames : DEFAULT_TMPNAMES;
	fcfg.url = o.url;
	ret = fs_create(&fcfg, store, cache, &fs);
	store = NULL;
	cache = NULL;
	if (ret < 0) {
		fprintf(stderr, "fallbackfs: %s\n", strerror(-ret));
		ret = 1;
		goto out;
	}
	ret = 1;

	/* The kernel enforces the modes we report (config.json is a secret). */
	opt_escape(o.url, esc, sizeof(esc));
	snprintf(opt, sizeof(opt), "-ofsname=%.*s,subtype=fallbackfs,default_permissions",
		 (int)(sizeof(opt) - 64), esc);
	if (fuse_opt_add_arg(&args, opt) < 0 || (o.debug && fuse_opt_add_arg(&args, "-odebug") < 0))
		goto out;

	fuse = fuse_new(&args, fs_operations(), sizeof(struct fuse_operations), fs);
	if (!fuse)
		goto out; /* libfuse printed why (an unknown option, usually) */
	if (fuse_mount(fuse, mnt) != 0)
		goto out;
	mounted = true;
	if (fuse_daemonize(o.foreground) != 0)
		goto out;
	if (!o.foreground)
		log_use_syslog(true);
	if (fuse_set_signal_handlers(fuse_get_session(fuse)) != 0)
		goto out;
	log_msg(LOG_INFO, "mounted %s on %s (cache %s)", o.url, mnt, cdir);

	loop = fuse_loop_cfg_create();
	if (!loop)
		goto out;
	fuse_loop_cfg_set_max_threads(loop, 16);
	/* The loop returns the signal that ended it: SIGTERM, SIGINT and
	 * SIGHUP are the ordinary ways to stop a daemon. */
	ret = fuse_loop_mt(fuse, loop);
	ret = (ret == 0 || ret == SIGTERM || ret == SIGINT || ret == SIGHUP) ? 0 : 1;
	fuse_remove_signal_handlers(fuse_get_session(fuse));
	log_msg(LOG_INFO, "unmounted %s", mnt);
out:
	if (loop)
		fuse_loop_cfg_destroy(loop);
	if (mounted)
		fuse_unmount(fuse);
	if (fuse)
		fuse_destroy(fuse);
	fs_destroy(fs);
	cache_destroy(cache);
	store_destroy(store);
	fuse_opt_free_args(&args);
	options_cleanup(&o);
	return ret;
}
