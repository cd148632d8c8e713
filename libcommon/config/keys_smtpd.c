/* Keys of the [smtpd] section. */
#include "config/config_keys.h"

static const struct cfg_key smtpd_keys[] = {
	{"smtp_listen", CFG_LIST, "*:25", 0, 0, NULL, "MX intake listeners (empty: none)"},
	{"submission_listen", CFG_LIST, "*:587", 0, 0, NULL, "submission (STARTTLS) listeners"},
	{"submissions_listen", CFG_LIST, "*:465", 0, 0, NULL,
	 "submission over implicit TLS listeners"},
	{"max_message_size", CFG_SIZE, "50M", 1024, 2147483647LL, NULL,
	 "largest message accepted (advertised in SIZE)"},
};

CFG_SECTION(cfg_section_smtpd, "smtpd", smtpd_keys);
