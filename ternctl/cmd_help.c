/* `ternctl help [COMMAND]`: the command list, or one command's usage and help line. */
#include "commands.h"

#include <sysexits.h>

int cmd_help(struct ternctl *ctl, int argc, char **argv)
{
	if (argc > 2) {
		ternctl_print_usage(ctl->err, ternctl_find_command("help"));
		return EX_USAGE;
	}
	if (argc == 2) {
		const struct ternctl_command *cmd = ternctl_find_command(argv[1]);
		if (cmd == NULL) {
			fprintf(ctl->err, "ternctl: unknown command '%s' (see 'ternctl help')\n",
			        argv[1]);
			return EX_USAGE;
		}
		ternctl_print_usage(ctl->out, cmd);
		fprintf(ctl->out, "%s\n", cmd->help);
		return EX_OK;
	}
	fprintf(ctl->out,
	        "usage: ternctl [-c FILE] COMMAND [ARGS...]\n\n"
	        "  -c FILE   config file (default: $TERN_CONF, else %s)\n\n"
	        "commands:\n",
	        TERNCTL_DEFAULT_CONFIG);
	for (size_t i = 0; i < ternctl_n_commands; i++) {
		const struct ternctl_command *cmd = &ternctl_commands[i];
		fprintf(ctl->out, "  %-8s %s\n  %-8s   %s\n", cmd->name, cmd->usage, "", cmd->help);
	}
	return EX_OK;
}
