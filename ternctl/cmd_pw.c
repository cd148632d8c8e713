/*
 * `ternctl pw [-s SCHEME] [-p PASSWORD] [-t HASH]`: prints a password hash in the
 * passwd-file's "{SCHEME}..." form, like `doveadm pw` (Roundcube's dovecot_passwdfile
 * driver and scripts call it that way). -t checks PASSWORD against HASH instead.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "authd_settings.h"
#include "base/xalloc.h"
#include "commands.h"
#include "password_scheme.h"
#include "ternctl_auth.h"

int cmd_pw(struct ternctl *ctl, int argc, char **argv)
{
	const char *scheme = NULL, *test_hash = NULL;
	char *password = NULL;
	int c;

	optind = 0;
	while ((c = getopt(argc, argv, "+s:p:t:")) != -1) {
		switch (c) {
		case 's':
			scheme = optarg;
			break;
		case 'p':
			free(password);
			password = xstrdup(optarg);
			break;
		case 't':
			test_hash = optarg;
			break;
		default:
			ternctl_print_usage(ctl->err, ternctl_find_command("pw"));
			free(password);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		ternctl_print_usage(ctl->err, ternctl_find_command("pw"));
		free(password);
		return EX_USAGE;
	}
	char *default_scheme = NULL;
	if (scheme == NULL && test_hash == NULL) {
		/* The configured default when there is a config; SHA512-CRYPT otherwise. */
		struct authd_settings set;
		if (access(ctl->config_path, R_OK) == 0) {
			if (ternctl_auth_settings(ctl, &set) < 0) {
				free(password);
				return EX_CONFIG;
			}
			default_scheme = xstrdup(set.default_scheme);
			authd_settings_free(&set);
		}
		scheme = default_scheme != NULL ? default_scheme : "SHA512-CRYPT";
	}
	if (scheme != NULL && !password_scheme_is_known(scheme)) {
		fprintf(ctl->err, "ternctl: unknown scheme %s\n", scheme);
		free(password);
		free(default_scheme);
		return EX_USAGE;
	}
	if (password == NULL)
		password =
		    ternctl_read_password(ctl->err, "Enter new password: ", test_hash == NULL);
	if (password == NULL) {
		free(default_scheme);
		return EX_DATAERR;
	}
	int ret = EX_OK;
	const char *error = NULL;
	if (test_hash != NULL) {
		enum password_verify_result r =
		    password_verify(test_hash, password, strlen(password), &error);
		if (r == PASSWORD_MATCH) {
			fprintf(ctl->out, "%s (verified)\n", test_hash);
		} else {
			fprintf(ctl->err, "ternctl: %s\n",
			        r == PASSWORD_INVALID ? error : "password does not match");
			ret = r == PASSWORD_INVALID ? EX_DATAERR : EX_NOPERM;
		}
	} else {
		char *hash = password_generate(scheme, password, &error);
		if (hash == NULL) {
			fprintf(ctl->err, "ternctl: %s\n", error);
			ret = EX_SOFTWARE;
		} else {
			fprintf(ctl->out, "%s\n", hash);
			free(hash);
		}
	}
	secure_zero(password, strlen(password));
	free(password);
	free(default_scheme);
	return ret;
}
