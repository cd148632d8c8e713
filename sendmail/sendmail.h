/*
 * The sendmail-compatible command. Modes come from argv[0] (mailq, newaliases) or flags:
 *
 *   sendmail [-t] [-i|-oi] [-f sender] [-F name] [-C config] [recipient...]   submit
 *   sendmail -bs        an SMTP dialogue on stdin/stdout
 *   sendmail -bp        (= mailq) the queue's state
 *   sendmail -bi        (= newaliases) validate the alias files
 *
 * Other historic flags are accepted and ignored. Exit codes follow sysexits.h. The message
 * goes to deliverd's submit socket over LMTP; deliverd checks the envelope sender against
 * the submitting user (SO_PEERCRED), so -f from an untrusted user cannot work around it.
 */
#ifndef TERN_SENDMAIL_SENDMAIL_H
#define TERN_SENDMAIL_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct config;

enum sendmail_mode {
	SENDMAIL_SUBMIT,
	SENDMAIL_SMTP,     /* -bs */
	SENDMAIL_MAILQ,    /* -bp */
	SENDMAIL_NEWALIAS, /* -bi */
	SENDMAIL_FLUSH,    /* -q (relay branch): ask deliverd to retry deferred mail now */
};

struct sendmail_opts {
	enum sendmail_mode mode;
	bool extract;         /* -t */
	bool ignore_dots;     /* -i / -oi */
	const char *from;     /* -f / -r */
	const char *fullname; /* -F */
	const char *config_path;
	char **rcpts; /* command-line recipients */
	size_t n_rcpts;
};

/* Parses argv. Returns 0, or an EX_* code after printing a message on stderr. */
int sendmail_parse_args(int argc, char **argv, struct sendmail_opts *o);

/* Who is submitting: the envelope sender to use and whether -f may override it. */
struct sendmail_identity {
	char *user;    /* login name */
	char *address; /* user@first-local-domain (or hostname) */
	char *hostname;
	bool trusted; /* root, deliverd's user, or in trusted_users */
};
int sendmail_identity(const struct config *cfg, struct sendmail_identity *id);
void sendmail_identity_free(struct sendmail_identity *id);

int sendmail_submit(const struct config *cfg, const struct sendmail_opts *o, FILE *in);
int sendmail_smtp(const struct config *cfg, const struct sendmail_opts *o, FILE *in, FILE *out);
int sendmail_mailq(const struct config *cfg, FILE *out);
int sendmail_flush(const struct config *cfg);
int sendmail_newaliases(const struct config *cfg, FILE *out);

int sendmail_main(int argc, char **argv);

#endif
