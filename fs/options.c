/*
 * options.c - the fuse_opt table for the daemon. mount(8) and /etc/fstab
 * options that mean nothing to a FUSE daemon are accepted and dropped, so
 * the same line works from the shell and from fstab.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

enum {
	KEY_HELP,
	KEY_VERSION,
	KEY_FOREGROUND,
	KEY_DEBUG,
	KEY_RO,
	KEY_DISCARD,
};

#define OPT(t, p) { t, offsetof(struct options, p), 1 }

static const struct fuse_opt opt_table[] = {
	{ "cache_dir=%s", offsetof(struct options, cache_dir), 0 },
	{ "endpoint=%s", offsetof(struct options, endpoint), 0 },
	{ "region=%s", offsetof(struct options, region), 0 },
	{ "addressing=%s", offsetof(struct options, addressing), 0 },
	{ "ca_file=%s", offsetof(struct options, ca_file), 0 },
	{ "tmpnames=%s", offsetof(struct options, tmpnames), 0 },
	{ "freshness=%s", offsetof(struct options, freshness), 0 },
	{ "timeout=%u", offsetof(struct options, timeout), 0 },
	{ "uid=%u", offsetof(struct options, uid), 0 },
	OPT("uid=", uid_set),
	{ "gid=%u", offsetof(struct options, gid), 0 },
	OPT("gid=", gid_set),
	{ "umask=%o", offsetof(struct options, umask), 0 },
	OPT("umask=", umask_set),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	/* mount(8) / fstab noise: meaningful to mount, not to us */
	FUSE_OPT_KEY("_netdev", KEY_DISCARD),
	FUSE_OPT_KEY("auto", KEY_DISCARD),
	FUSE_OPT_KEY("noauto", KEY_DISCARD),
	FUSE_OPT_KEY("user", KEY_DISCARD),
	FUSE_OPT_KEY("nouser", KEY_DISCARD),
	FUSE_OPT_KEY("users", KEY_DISCARD),
	FUSE_OPT_KEY("owner", KEY_DISCARD),
	FUSE_OPT_KEY("group", KEY_DISCARD),
	FUSE_OPT_KEY("nofail", KEY_DISCARD),
	FUSE_OPT_KEY("defaults", KEY_DISCARD),
	FUSE_OPT_KEY("rw", KEY_DISCARD),
	FUSE_OPT_KEY("nobootwait", KEY_DISCARD),
	FUSE_OPT_KEY("comment=%s", KEY_DISCARD),
	FUSE_OPT_END
};

/* Handle keys and the two positional arguments. */
static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct options *o = data;

	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (!o->url)
			return (o->url = strdup(arg)) ? 0 : -1;
		if (!o->mountpoint)
			return (o->mountpoint = strdup(arg)) ? 0 : -1;
		fprintf(stderr, "fallbackfs: unexpected argument '%s'\n", arg);
		return -1;
	case KEY_HELP:
		o->help = 1;
		return 0;
	case KEY_VERSION:
		o->version = 1;
		return 0;
	case KEY_FOREGROUND:
		o->foreground = 1;
		return 0;
	case KEY_DEBUG:
		o->debug = 1;
		o->foreground = 1;
		return 0;
	case KEY_RO:
		o->ro = 1;
		return 1; /* the kernel mount is read-only too */
	case KEY_DISCARD:
		return 0;
	default:
		/* x-systemd.*, x-gvfs-* and friends: fuse_opt can only match a
		 * prefix up to '=', so they are recognised here. */
		if (key == FUSE_OPT_KEY_OPT && strncmp(arg, "x-", 2) == 0)
			return 0;
		return 1; /* FUSE's own options (allow_other, ...) */
	}
}

void options_usage(const char *prog)
{
	printf("usage: %s STORAGE_URL MOUNTPOINT [-f] [-d] [-o opt[,opt...]]\n"
	       "\n"
	       "Mount an object-store prefix (Kong's fallback config store) as files.\n"
	       "\n"
	       "STORAGE_URL:\n"
	       "    s3://bucket/prefix     Amazon S3 or S3-compatible (AWS_* environment)\n"
	       "    gcs://bucket/prefix    Google Cloud Storage (also gs://)\n"
	       "    file:///absolute/dir   a local directory as the store\n"
	       "\n"
	       "options:\n"
	       "    -f                     stay in the foreground, log to stderr\n"
	       "    -d                     debug log (implies -f)\n"
	       "    -h, --help             this text\n"
	       "    -V, --version          the version\n"
	       "    -o ro                  read-only (for read-only credentials)\n"
	       "    -o freshness=SECONDS   max age of what open() returns (default 1; 0 = always ask)\n"
	       "    -o cache_dir=DIR       local cache (default /var/cache/fallbackfs/ID for root,\n"
	       "                           ~/.cache/fallbackfs/ID otherwise)\n"
	       "    -o timeout=SECONDS     deadline of one store operation (default 30)\n"
	       "    -o uid=N,gid=N         owner of every file (default: the mounting user)\n"
	       "    -o umask=NNN           file mode 0666 & ~umask, dirs 0777 & ~umask (default 027)\n"
	       "    -o tmpnames=GLOB:GLOB  names kept local until renamed (default\n"
	       "                           " DEFAULT_TMPNAMES ")\n"
	       "    -o endpoint=URL        S3-compatible endpoint (or AWS_CONFIG_STORAGE_ENDPOINT)\n"
	       "    -o region=REGION       S3 region (or AWS_REGION / AWS_DEFAULT_REGION)\n"
	       "    -o addressing=path|virtual  S3 URL style\n"
	       "    -o ca_file=FILE        private CA bundle for HTTPS\n"
	       "    -o allow_other         let other users in (modes are enforced)\n"
	       "\n"
	       "mount(8) options such as _netdev, auto, noauto, user, nofail are accepted\n"
	       "and ignored, so an /etc/fstab line works:\n"
	       "    s3://bucket/kong /kong/fallback fuse.fallbackfs _netdev,ro 0 0\n",
	       prog);
}

/* Parse "1", "0.25", "10" seconds into milliseconds. */
static int parse_seconds(const char *s, int64_t *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < 0 || v > 86400.0 * 365)
		return -1;
	*ms = (int64_t)(v * 1000.0 + 0.5);
	return 0;
}

int options_parse(int argc, char **argv, struct options *o, struct fuse_args *args)
{
	memset(o, 0, sizeof(*o));
	o->timeout = 30;
	o->umask = 027;
	args->argc = argc;
	args->argv = argv;
	args->allocated = 0;
	if (fuse_opt_parse(args, o, opt_table, opt_proc) < 0)
		return -1;
	if (o->help || o->version)
		return 0;
	if (!o->url || !o->mountpoint) {
		fprintf(stderr, "fallbackfs: need STORAGE_URL and MOUNTPOINT (see --help)\n");
		return -1;
	}
	o->freshness_ms = 1000;
	if (o->freshness && parse_seconds(o->freshness, &o->freshness_ms) < 0) {
		fprintf(stderr, "fallbackfs: freshness=%s is not a number of seconds\n",
			o->freshness);
		return -1;
	}
	if (o->timeout == 0 || o->timeout > 3600) {
		fprintf(stderr, "fallbackfs: timeout must be 1 to 3600 seconds\n");
		return -1;
	}
	if (o->umask & ~0777u) {
		fprintf(stderr, "fallbackfs: umask=%o is not a permission mask\n", o->umask);
		return -1;
	}
	if (o->addressing && strcmp(o->addressing, "path") && strcmp(o->addressing, "virtual")) {
		fprintf(stderr, "fallbackfs: addressing must be 'path' or 'virtual'\n");
		return -1;
	}
	return 0;
}

void options_cleanup(struct options *o)
{
	free(o->url);
	free(o->mountpoint);
	free(o->cache_dir);
	free(o->endpoint);
	free(o->region);
	free(o->addressing);
	free(o->ca_file);
	free(o->tmpnames);
	free(o->freshness);
	memset(o, 0, sizeof(*o));
}
