/* tern-imapd: IMAP4rev1 on the Maildir store. Everything happens in imap_*.c and cmd_*.c. */
#include "imap_server.h"
#include "net/daemon.h"

int main(int argc, char **argv)
{
	static const struct daemon_hooks hooks = {
	    .service = "imapd",
	    .user_key = "vmail_user",
	    .setup = imap_server_setup,
	    .reload = imap_server_reload,
	    .shutdown = imap_server_shutdown,
	};
	return daemon_main(argc, argv, &hooks);
}
