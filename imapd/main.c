/* tern-imapd: IMAP4rev1 on the Maildir store. Everything happens in imap_*.c and cmd_*.c. */
#include "auth/auth_client.h"
#include "imap_server.h"
#include "net/daemon.h"

/* Ready once authd's mechanisms are known, so the greeting's CAPABILITY lists AUTH=. */
static bool imapd_ready(void)
{
	return imap_server.auth != NULL && auth_client_is_ready(imap_server.auth);
}

int main(int argc, char **argv)
{
	static const struct daemon_hooks hooks = {
	    .service = "imapd",
	    .user_key = "vmail_user",
	    .setup = imap_server_setup,
	    .reload = imap_server_reload,
	    .shutdown = imap_server_shutdown,
	    .ready = imapd_ready,
	};
	return daemon_main(argc, argv, &hooks);
}
