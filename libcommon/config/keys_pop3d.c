/* Keys of the [pop3d] section. */
#include "config/config_keys.h"

#define MS_MIN (60LL * 1000)
#define MS_DAY (24LL * 3600 * 1000)

static const struct cfg_key pop3d_keys[] = {
    {"pop3_listen", CFG_LIST, "*:110", 0, 0, NULL, "POP3 (STLS) listeners"},
    {"pop3s_listen", CFG_LIST, "*:995", 0, 0, NULL, "POP3 over implicit TLS listeners"},
    {"pop3_max_line", CFG_SIZE, "1024", 255, 65536, NULL,
     "longest command line after login (RFC 2449: at least 255)"},
    {"pop3_max_auth_line", CFG_SIZE, "8K", 1024, 65536, NULL,
     "longest line before login (AUTH with an initial response, SASL responses)"},
    {"pop3_idle_timeout", CFG_TIME, "10m", 10 * MS_MIN, MS_DAY, NULL,
     "idle time before the session is closed (RFC 1939: at least 10 minutes)"},
    {"pop3_auth_failure_delay", CFG_TIME, "2s", 0, 60000, NULL,
     "delay before answering a failed login"},
    {"pop3_max_auth_attempts", CFG_INT, "3", 1, 100, NULL,
     "failed logins on one connection before it is closed"},
    {"pop3_max_bad_commands", CFG_INT, "20", 1, 1000, NULL,
     "unknown or malformed commands before the connection is closed"},
    {"pop3_plaintext_on_loopback", CFG_BOOL, "yes", 0, 0, NULL,
     "allow USER/PASS and plaintext SASL without TLS from 127.0.0.0/8 and ::1"},
    {"pop3_uidl_format", CFG_ENUM, "%08Xu%08Xv", 0, 0, "%08Xu%08Xv|%f",
     "UIDL: %08Xu%08Xv = Dovecot's default (IMAP UID + UIDVALIDITY); %f = Maildir base name"},
    {"pop3_max_connections", CFG_INT, "1000", 0, 1000000, NULL,
     "open POP3 connections in total (0 = unlimited)"},
    {"pop3_max_connections_per_ip", CFG_INT, "20", 0, 100000, NULL,
     "open POP3 connections per client address (0 = unlimited)"},
};

CFG_SECTION(cfg_section_pop3d, "pop3d", pop3d_keys);
