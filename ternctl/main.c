/* ternctl: the tern admin tool. Everything but the process setup is in ternctl.c. */
#include <stdio.h>

#include "base/log.h"
#include "commands.h"

int main(int argc, char **argv)
{
	log_init("ternctl", LOG_TARGET_STDERR);
	return ternctl_main(argc, argv, stdout, stderr);
}
