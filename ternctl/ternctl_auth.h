/*
 * Helpers shared by ternctl's user, pw and auth commands: reading a password without
 * echo, and editing the passwd-file atomically.
 */
#ifndef TERN_TERNCTL_AUTH_H
#define TERN_TERNCTL_AUTH_H

#include <stdio.h>

struct authd_settings;
struct ternctl;

/*
 * Reads a new password: from the terminal without echo, asking twice when confirm is set
 * (they must match), or one line from stdin when stdin is not a terminal. Returns a
 * string the caller wipes and frees, or NULL after printing why to err.
 */
char *ternctl_read_password(FILE *err, const char *prompt, int confirm);

/* Loads [authd] settings for a command (config via ternctl_config). Returns 0 or -1 after
 * printing the problem; the settings are freed with authd_settings_free(). */
int ternctl_auth_settings(struct ternctl *ctl, struct authd_settings *set);

enum passwd_edit_op {
	PASSWD_ADD,    /* fails when the user exists */
	PASSWD_SET,    /* fails when the user does not exist */
	PASSWD_DELETE, /* fails when the user does not exist */
};

/*
 * Rewrites the passwd-file with one user added, changed or removed, keeping every other
 * line (comments included) and the file's owner and mode; the new file is written to a
 * temporary name, fsynced and renamed over the old one under an exclusive lock, so authd
 * sees either the old or the new file. canonical_user must be canonical. password is
 * the stored value ("{SCHEME}...") for ADD/SET. Returns 0, or -1 with *error_r (caller
 * frees); 1 when the user exists (ADD) or does not (SET/DELETE).
 */
int passwd_file_edit(const struct authd_settings *set, const char *path, enum passwd_edit_op op,
                     const char *canonical_user, const char *password, char **error_r);

#endif
