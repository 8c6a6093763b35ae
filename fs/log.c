/*
 * log.c - the logging sink (stderr or syslog). It formats and routes; it
 * does not decide what is worth logging.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static bool use_syslog;
static bool debug_on;

/* Route later lines to syslog; opened once with our identity. */
void log_use_syslog(bool on)
{
	if (on && !use_syslog)
		openlog("fallbackfs", LOG_PID, LOG_DAEMON);
	use_syslog = on;
}

/* Debug lines are off unless -d asked for them. */
void log_set_debug(bool on)
{
	debug_on = on;
}

/* One line per call, so concurrent threads never interleave mid-line. */
void log_msg(int prio, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (prio == LOG_DEBUG && !debug_on)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (use_syslog) {
		syslog(prio, "%s", line);
		return;
	}
	fprintf(stderr, "fallbackfs: %s\n", line);
}

/* Escape key so a hostile object name cannot forge log lines. */
const char *log_key(const char *key, char *buf, size_t len)
{
	size_t o = 0;

	if (!key)
		key = "(null)";
	for (const unsigned char *p = (const unsigned char *)key; *p && o + 5 < len; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
		else
			buf[o++] = (char)*p;
	}
	buf[o < len ? o : len - 1] = '\0';
	return buf;
}
