/* Keys of the [deliverd] section. */
#include "config/config_keys.h"

static const struct cfg_key deliverd_keys[] = {
	{"lmtp_socket", CFG_STRING, "$run_dir/lmtp", 0, 0, NULL, "LMTP socket"},
	{"max_message_size", CFG_SIZE, "50M", 1024, 2147483647LL, NULL,
	 "largest message accepted"},
};

CFG_SECTION(cfg_section_deliverd, "deliverd", deliverd_keys);
