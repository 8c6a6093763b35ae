/*
 * log.h - one logging path for the daemon, the tools and the library:
 * stderr while attached to a terminal (or -f), syslog once detached.
 * Callers never log secrets or file contents; object keys go through
 * log_key() so control characters cannot forge log lines.
 */
#ifndef FALLBACKFS_LOG_H
#define FALLBACKFS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

/* Send later messages to syslog (true) or stderr (false). */
void log_use_syslog(bool on);

/* Enable LOG_DEBUG messages. */
void log_set_debug(bool on);

/* Log one line at a syslog priority. */
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Escape key into buf (non-printable bytes as \xNN) for logging; returns buf. */
const char *log_key(const char *key, char *buf, size_t len);

#endif
