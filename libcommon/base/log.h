/*
 * Logging in the shape Postfix and Dovecot use, so pflogsumm and fail2ban work unchanged.
 *
 * Each line is "<RFC 3339 time> <host> tern/<service>[<pid>]: <text>" on stderr, or
 * "tern/<service>[<pid>]: <text>" through syslog(3) (mail facility). Levels have fixed
 * meanings, as in Postfix:
 *   info  - normal events (deliveries, connections);
 *   warn  - something is wrong but the daemon goes on ("warning: " prefix);
 *   fatal - the environment is broken (bad config, cannot bind): log and exit(1);
 *   panic - tern has a bug: log and abort().
 * Never log client-supplied text without log_sanitize(), and never log a credential.
 */
#ifndef TERN_BASE_LOG_H
#define TERN_BASE_LOG_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

enum log_target {
	LOG_TARGET_STDERR,
	LOG_TARGET_SYSLOG,
};

/* service is e.g. "smtpd"; the program name logged is "tern/<service>".
 * The string must stay valid for the life of the process. */
void log_init(const char *service, enum log_target target);
void log_set_debug(bool enabled);
bool log_debug_enabled(void);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An info line under another program name, "tern/<service>": smtpd logs the hand-off
 * to deliverd as tern/qmgr (from=, size=) and tern/lmtp (to=, status=) lines, the
 * programs Postfix logs them from, so pflogsumm counts them. Not thread-safe. */
void log_info_as(const char *service, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * Appends src to out with everything but printable ASCII replaced by '?', stopping after
 * max_out bytes of src (then "..." is appended). Returns out's text.
 */
const char *log_sanitize(struct buf *out, const void *src, size_t len, size_t max_out);

#endif
