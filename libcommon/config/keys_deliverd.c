/* Keys of the [deliverd] section. */
#include "config/config_keys.h"

#define MS_DAY (24LL * 3600 * 1000)

static const struct cfg_key deliverd_keys[] = {
    {"lmtp_socket", CFG_STRING, "$run_dir/lmtp", 0, 0, NULL, "LMTP socket"},
    {"max_message_size", CFG_SIZE, "50M", 1024, 2147483647LL, NULL, "largest message accepted"},
    {"lmtp_allowed_users", CFG_LIST, "", 0, 0, NULL,
     "Unix users allowed on the LMTP socket besides root, deliverd's own user and "
     "default_user (SO_PEERCRED)"},
    {"submit_socket", CFG_STRING, "$run_dir/submit", 0, 0, NULL,
     "socket the sendmail command submits to (any local user; the sender is bound to the "
     "user unless trusted)"},
    {"trusted_users", CFG_LIST, "root", 0, 0, NULL,
     "Unix users that may set any envelope sender (sendmail -f); deliverd's own user is "
     "always trusted"},
    {"spool_dir", CFG_STRING, "$state_dir/spool", 0, 0, NULL,
     "where message bodies are spooled (unlinked files) while they arrive"},
    {"virtual_alias_file", CFG_STRING, "", 0, 0, NULL,
     "virtual alias map: alias@domain: target, ... and @domain catch-alls (empty: none)"},
    {"alias_file", CFG_STRING, "/etc/aliases", 0, 0, NULL,
     "/etc/aliases-style map for local names in the local domains (missing: none)"},
    {"recipient_delimiter", CFG_STRING, "+", 0, 0, NULL,
     "separates user and detail in user+detail@domain (empty: no details)"},
    {"max_recipients", CFG_INT, "1000", 1, 100000, NULL, "recipients per transaction"},
    {"max_line_length", CFG_INT, "2048", 512, 65536, NULL,
     "longest LMTP command line, without CRLF"},
    {"max_errors", CFG_INT, "20", 1, 1000, NULL, "protocol errors before a session is closed"},
    {"max_connections", CFG_INT, "200", 1, 100000, NULL, "concurrent LMTP sessions"},
    {"idle_timeout", CFG_TIME, "5m", 1000, MS_DAY, NULL, "idle LMTP sessions are closed"},
    {"delivery_threads", CFG_INT, "16", 1, 128, NULL,
     "threads writing and fsyncing Maildir copies (libuv thread pool size)"},
};

CFG_SECTION(cfg_section_deliverd, "deliverd", deliverd_keys);
