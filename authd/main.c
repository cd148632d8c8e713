/* tern-authd: passwords, SASL and user lookups (see authd_server.h). */
#include "authd_server.h"
#include "net/daemon.h"

int main(int argc, char **argv)
{
	static const struct daemon_hooks hooks = {
	    .service = "authd",
	    .user_key = "auth_user",
	    .setup = authd_server_setup,
	    .reload = authd_server_reload,
	    .shutdown = authd_server_shutdown,
	};

	return daemon_main(argc, argv, &hooks);
}
