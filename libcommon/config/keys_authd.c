/* Keys of the [authd] section. */
#include "config/config_keys.h"

static const struct cfg_key authd_keys[] = {
	{"auth_socket", CFG_STRING, "$run_dir/auth", 0, 0, NULL,
	 "auth-client socket (Dovecot protocol) for smtpd, imapd, pop3d, Postfix"},
	{"auth_socket_mode", CFG_INT, "0666", 0, 0777, NULL, "mode of the auth-client socket"},
	{"userdb_socket", CFG_STRING, "$run_dir/auth-userdb", 0, 0, NULL,
	 "userdb socket for deliverd and ternctl"},
};

CFG_SECTION(cfg_section_authd, "authd", authd_keys);
