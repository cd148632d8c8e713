/* Keys of the [imapd] section. */
#include "config/config_keys.h"

static const struct cfg_key imapd_keys[] = {
	{"imap_listen", CFG_LIST, "*:143", 0, 0, NULL, "IMAP (STARTTLS) listeners"},
	{"imaps_listen", CFG_LIST, "*:993", 0, 0, NULL, "IMAP over implicit TLS listeners"},
};

CFG_SECTION(cfg_section_imapd, "imapd", imapd_keys);
