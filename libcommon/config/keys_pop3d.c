/* Keys of the [pop3d] section. */
#include "config/config_keys.h"

static const struct cfg_key pop3d_keys[] = {
	{"pop3_listen", CFG_LIST, "*:110", 0, 0, NULL, "POP3 (STLS) listeners"},
	{"pop3s_listen", CFG_LIST, "*:995", 0, 0, NULL, "POP3 over implicit TLS listeners"},
};

CFG_SECTION(cfg_section_pop3d, "pop3d", pop3d_keys);
