/*
 * options.h - the daemon's command line: fallbackfs URL MOUNTPOINT [-f] [-d]
 * [-o opt,...]. Parsing and defaults only; nothing is opened here.
 */
#ifndef FALLBACKFS_OPTIONS_H
#define FALLBACKFS_OPTIONS_H

#include <fuse.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define DEFAULT_TMPNAMES "*.tmp:*.temp:*.swp:*.swx:*~:.#*:#*#:tmp*:sed??????:.*.??????:*.part"

struct options {
	char *url;
	char *mountpoint;
	char *cache_dir;
	char *endpoint;
	char *region;
	char *addressing;
	char *ca_file;
	char *tmpnames;
	char *freshness; /* seconds, decimal */
	unsigned timeout; /* seconds */
	unsigned uid, gid, umask;
	int uid_set, gid_set, umask_set;
	int ro;
	int foreground;
	int debug;
	int help;
	int version;
	int64_t freshness_ms; /* parsed from freshness */
};

/* Parse argv into *o and the FUSE arguments left in *args (the caller frees
 * both with options_cleanup / fuse_opt_free_args). Returns 0, or -1 with the
 * message already printed to stderr. */
int options_parse(int argc, char **argv, struct options *o, struct fuse_args *args);

/* Print the usage text. */
void options_usage(const char *prog);

/* Free the strings in *o. */
void options_cleanup(struct options *o);

#endif
