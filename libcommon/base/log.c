/* Postfix/Dovecot-shaped log lines on stderr or syslog (see log.h). */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/time.h>

#include "base/buf.h"

static const char *log_service = "tern";
static char log_ident[64] = "tern";
static enum log_target log_target_now = LOG_TARGET_STDERR;
static bool log_debug_on;

void log_init(const char *service, enum log_target target)
{
	log_service = service;
	snprintf(log_ident, sizeof(log_ident), "tern/%s", service);
	log_target_now = target;
	if (target == LOG_TARGET_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_debug(bool enabled)
{
	log_debug_on = enabled;
}

bool log_debug_enabled(void)
{
	return log_debug_on;
}

/* Set by log_info_as() for one line. */
static const char *log_ident_now = log_ident;

static void log_emit(int priority, const char *prefix, const char *fmt, va_list ap)
{
	struct buf line;
	buf_init(&line, 16384);
	if (prefix != NULL)
		(void)buf_append_str(&line, prefix);
	va_list copy;
	va_copy(copy, ap);
	if (buf_vprintf(&line, fmt, copy) < 0)
		(void)buf_append_str(&line, "(log line too long)");
	va_end(copy);

	if (log_target_now == LOG_TARGET_SYSLOG) {
		syslog(priority, "%s", buf_cstr(&line));
	} else {
		struct timeval tv;
		struct tm tm;
		char stamp[40], host[256];
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		if (gethostname(host, sizeof(host)) != 0)
			strcpy(host, "localhost");
		host[sizeof(host) - 1] = '\0';
		/* One write per line so lines from several processes do not interleave. */
		struct buf out;
		buf_init(&out, 0);
		(void)buf_printf(&out, "%s.%06ld+00:00 %s %s[%ld]: %s\n", stamp, (long)tv.tv_usec,
		                 host, log_ident_now, (long)getpid(), buf_cstr(&line));
		ssize_t ignored = write(STDERR_FILENO, out.data, out.len);
		(void)ignored;
		buf_free(&out);
	}
	buf_free(&line);
}

void log_debug(const char *fmt, ...)
{
	if (!log_debug_on)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_emit(LOG_DEBUG, "debug: ", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit(LOG_INFO, NULL, fmt, ap);
	va_end(ap);
}

void log_info_as(const char *service, const char *fmt, ...)
{
	char ident[64];
	va_list ap;

	snprintf(ident, sizeof(ident), "tern/%s", service);
	log_ident_now = ident;
	if (log_target_now == LOG_TARGET_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	va_start(ap, fmt);
	log_emit(LOG_INFO, NULL, fmt, ap);
	va_end(ap);
	log_ident_now = log_ident;
	if (log_target_now == LOG_TARGET_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit(LOG_WARNING, "warning: ", fmt, ap);
	va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit(LOG_CRIT, "fatal: ", fmt, ap);
	va_end(ap);
	exit(1);
}

void log_panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit(LOG_CRIT, "panic: ", fmt, ap);
	va_end(ap);
	abort();
}

const char *log_sanitize(struct buf *out, const void *src, size_t len, size_t max_out)
{
	const unsigned char *p = src;
	size_t n = len < max_out ? len : max_out;
	for (size_t i = 0; i < n; i++) {
		char c = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
		if (buf_append_char(out, c) < 0)
			return buf_cstr(out);
	}
	if (n < len)
		(void)buf_append_str(out, "...");
	return buf_cstr(out);
}
