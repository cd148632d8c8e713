/*
 * Command line and identity: Postfix's sendmail option set (getopt string below), with
 * the historic options that mean nothing here accepted and ignored.
 */
#include "sendmail.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "config/config.h"

int sendmail_parse_args(int argc, char **argv, struct sendmail_opts *o)
{
	memset(o, 0, sizeof(*o));
	const char *prog = strrchr(argv[0], '/');
	prog = prog != NULL ? prog + 1 : argv[0];
	if (strcmp(prog, "mailq") == 0)
		o->mode = SENDMAIL_MAILQ;
	else if (strcmp(prog, "newaliases") == 0)
		o->mode = SENDMAIL_NEWALIAS;
	o->config_path = getenv("TERN_CONF");
	if (o->config_path == NULL || o->config_path[0] == '\0')
		o->config_path = "/etc/tern/tern.conf";
	int c;
	opterr = 0;
	optind = 1;
	/* The same letters as Postfix's sendmail(1). */
	while ((c = getopt(argc, argv, "B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q::tvx")) != -1) {
		switch (c) {
		case 'C':
			o->config_path = optarg;
			break;
		case 'F':
			o->fullname = optarg;
			break;
		case 'f':
		case 'r':
			o->from = optarg;
			break;
		case 't':
			o->extract = true;
			break;
		case 'i':
			o->ignore_dots = true;
			break;
		case 'o':
			/* -oi is -i; -oA, -om, -oem... are sendmail.cf options: ignored. */
			if (strcmp(optarg, "i") == 0)
				o->ignore_dots = true;
			break;
		case 'b':
			if (strcmp(optarg, "s") == 0)
				o->mode = SENDMAIL_SMTP;
			else if (strcmp(optarg, "p") == 0)
				o->mode = SENDMAIL_MAILQ;
			else if (strcmp(optarg, "i") == 0)
				o->mode = SENDMAIL_NEWALIAS;
			else if (strcmp(optarg, "m") != 0) {
				fprintf(stderr, "sendmail: -b%s is not supported\n", optarg);
				return EX_USAGE;
			}
			break;
		case 'q':
			/* -q alone: a queue run now (Postfix: postqueue -f); -qINTERVAL and
			 * -qR/-qS are historic and ignored. */
			if (optarg == NULL)
				o->mode = SENDMAIL_FLUSH;
			break;
		case '?':
			fprintf(stderr, "sendmail: unknown or incomplete option -%c\n", optopt);
			return EX_USAGE;
		default:
			/* -B -G -I -L -N -O -R -U -V -X -c -e -h -m -n -p -v -x: historic. */
			break;
		}
	}
	o->rcpts = argv + optind;
	o->n_rcpts = (size_t)(argc - optind);
	if (o->mode == SENDMAIL_SUBMIT && !o->extract && o->n_rcpts == 0) {
		fprintf(stderr, "sendmail: no recipients specified\n");
		return EX_USAGE;
	}
	return 0;
}

static bool user_in_list(const struct config *cfg, const char *section, const char *key,
                         const char *user)
{
	size_t n = 0;
	const char *const *list = config_list(cfg, section, key, &n);
	char uid[32];
	snprintf(uid, sizeof(uid), "%lu", (unsigned long)getuid());
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], user) == 0 || strcmp(list[i], uid) == 0)
			return true;
	return false;
}

int sendmail_identity(const struct config *cfg, struct sendmail_identity *id)
{
	memset(id, 0, sizeof(*id));
	uid_t uid = getuid();
	struct passwd *pw = getpwuid(uid);
	id->user = pw != NULL ? xstrdup(pw->pw_name) : xasprintf("uid%ld", (long)uid);
	const char *host = config_str(cfg, "global", "hostname");
	if (host[0] == '\0') {
		char name[256] = "";
		if (gethostname(name, sizeof(name) - 1) < 0)
			strcpy(name, "localhost");
		id->hostname = xstrdup(name);
	} else {
		id->hostname = xstrdup(host);
	}
	size_t n = 0;
	const char *const *domains = config_list(cfg, "global", "domains", &n);
	/* The same rule deliverd applies to the submit socket (server.c). */
	id->address = xasprintf("%s@%s", id->user, n > 0 ? domains[0] : id->hostname);
	for (char *p = strchr(id->address, '@'); p != NULL && *p != '\0'; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	id->trusted = uid == 0 || geteuid() == 0 ||
	              strcmp(id->user, config_str(cfg, "global", "vmail_user")) == 0 ||
	              user_in_list(cfg, "deliverd", "trusted_users", id->user);
	return 0;
}

void sendmail_identity_free(struct sendmail_identity *id)
{
	free(id->user);
	free(id->address);
	free(id->hostname);
	memset(id, 0, sizeof(*id));
}

int sendmail_main(int argc, char **argv)
{
	struct sendmail_opts o;
	int r = sendmail_parse_args(argc, argv, &o);
	if (r != 0)
		return r;
	struct config *cfg = NULL;
	char *err = NULL;
	if (config_load(o.config_path, &cfg, &err) < 0) {
		fprintf(stderr, "sendmail: fatal: %s\n", err);
		free(err);
		return EX_CONFIG;
	}
	switch (o.mode) {
	case SENDMAIL_SUBMIT:
		r = sendmail_submit(cfg, &o, stdin);
		break;
	case SENDMAIL_SMTP:
		r = sendmail_smtp(cfg, &o, stdin, stdout);
		break;
	case SENDMAIL_MAILQ:
		r = sendmail_mailq(cfg, stdout);
		break;
	case SENDMAIL_NEWALIAS:
		r = sendmail_newaliases(cfg, stdout);
		break;
	case SENDMAIL_FLUSH:
		r = sendmail_flush(cfg);
		break;
	}
	config_free(&cfg);
	return r;
}
