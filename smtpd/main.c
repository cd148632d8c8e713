/* tern-smtpd: ESMTP intake (25), submission (587) and submissions (465). See server.c. */
#include "server.h"

int main(int argc, char **argv)
{
	return daemon_main(argc, argv, &smtpd_hooks);
}
