/* Keys of the [imapd] section. */
#include "config/config_keys.h"

#define MS_DAY (24LL * 3600 * 1000)

static const struct cfg_key imapd_keys[] = {
    {"imap_listen", CFG_LIST, "*:143", 0, 0, NULL, "IMAP (STARTTLS) listeners"},
    {"imaps_listen", CFG_LIST, "*:993", 0, 0, NULL, "IMAP over implicit TLS listeners"},
    {"max_connections", CFG_INT, "10000", 1, 1000000, NULL,
     "connections the process accepts at once"},
    {"max_connections_per_ip", CFG_INT, "50", 1, 1000000, NULL,
     "connections one client address may hold at once"},
    {"login_timeout", CFG_TIME, "60s", 1000, MS_DAY, NULL,
     "time a client has to log in before it is disconnected"},
    {"idle_timeout", CFG_TIME, "30m", 60000, MS_DAY, NULL,
     "inactivity after login before disconnecting (RFC 3501: at least 30 minutes)"},
    {"max_line_length", CFG_SIZE, "64K", 1024, 16777216, NULL,
     "longest command line, literals excluded"},
    {"max_command_size", CFG_SIZE, "1M", 4096, 268435456, NULL,
     "largest command held in memory, inline literals included"},
    {"max_literal_size", CFG_SIZE, "64M", 1024, 4294967295LL, NULL,
     "largest literal accepted (the largest message APPEND takes)"},
    {"max_bad_commands", CFG_INT, "20", 1, 1000, NULL,
     "invalid commands before the connection is closed"},
    {"imap_literal_plus", CFG_BOOL, "yes", 0, 0, NULL,
     "advertise LITERAL+ (non-synchronising literals of any size); no: LITERAL- "
     "(RFC 7888: at most 4096 bytes each, a larger one is refused)"},
};

CFG_SECTION(cfg_section_imapd, "imapd", imapd_keys);
