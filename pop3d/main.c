/* tern-pop3d: POP3 on 110 (STLS) and 995. The daemon is in server.c, the protocol in
 * session.c. */
#include "net/daemon.h"
#include "server.h"

int main(int argc, char **argv)
{
	return daemon_main(argc, argv, &pop3_server_hooks);
}
