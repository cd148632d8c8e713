/* The registry of every section's key table (see config_keys.h). */
#include "config/config_keys.h"

extern const struct cfg_section cfg_section_global;
extern const struct cfg_section cfg_section_authd;
extern const struct cfg_section cfg_section_deliverd;
extern const struct cfg_section cfg_section_smtpd;
extern const struct cfg_section cfg_section_imapd;
extern const struct cfg_section cfg_section_pop3d;

const struct cfg_section *const config_sections[] = {
    &cfg_section_global, &cfg_section_authd, &cfg_section_deliverd,
    &cfg_section_smtpd,  &cfg_section_imapd, &cfg_section_pop3d,
};
const size_t config_n_sections = sizeof(config_sections) / sizeof(config_sections[0]);
