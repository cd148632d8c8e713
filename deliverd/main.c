/* tern-deliverd: LMTP delivery into Maildir. Everything is in the library; see server.c. */
#include "deliverd.h"

int main(int argc, char **argv)
{
	return deliverd_main(argc, argv);
}
