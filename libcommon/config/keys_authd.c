/* Keys of the [authd] section. */
#include "config/config_keys.h"

#define MS_HOUR (3600LL * 1000)

static const struct cfg_key authd_keys[] = {
    {"auth_socket", CFG_STRING, "$run_dir/auth", 0, 0, NULL,
     "auth-client socket (Dovecot protocol) for smtpd, imapd, pop3d, Postfix"},
    {"auth_socket_mode", CFG_INT, "0666", 0, 0777, NULL, "mode of the auth-client socket"},
    {"auth_socket_group", CFG_STRING, "", 0, 0, NULL,
     "group of the auth and userdb sockets when authd starts as root (empty: root); with "
     "modes 0660 only that group's members (smtpd, imapd, pop3d, deliverd) may connect"},
    {"auth_socket_extra", CFG_LIST, "", 0, 0, NULL,
     "more auth-client sockets, e.g. /var/spool/postfix/private/tern-auth for a chrooted "
     "Postfix"},
    {"auth_socket_extra_user", CFG_STRING, "", 0, 0, NULL,
     "owner (and its group) of the extra sockets when authd starts as root, e.g. postfix"},
    {"auth_socket_extra_mode", CFG_INT, "0660", 0, 0777, NULL, "mode of the extra sockets"},
    {"userdb_socket", CFG_STRING, "$run_dir/auth-userdb", 0, 0, NULL,
     "userdb socket for deliverd and ternctl"},
    {"userdb_socket_mode", CFG_INT, "0666", 0, 0777, NULL,
     "mode of the userdb socket (peers are also checked with SO_PEERCRED)"},
    {"userdb_allowed_users", CFG_LIST, "root $vmail_user $default_user", 0, 0, NULL,
     "users (names or uids) whose processes may query the userdb socket; authd's own "
     "user always may"},
    {"auth_mechanisms", CFG_LIST, "PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256", 0, 0, NULL,
     "SASL mechanisms to offer; CRAM-MD5 and SCRAM-SHA-256 are offered only when every "
     "user's stored credentials allow them"},
    {"auth_default_domain", CFG_STRING, "", 0, 0, NULL,
     "domain appended to user names without '@' (empty: the first of domains)"},
    {"auth_username_lowercase", CFG_BOOL, "yes", 0, 0, NULL,
     "lower-case the whole user name (the domain is always lower-cased)"},
    {"auth_default_scheme", CFG_STRING, "SHA512-CRYPT", 0, 0, NULL,
     "password scheme for new passwords (ternctl user add/passwd, ternctl pw)"},
    {"auth_allow_plaintext_insecure", CFG_BOOL, "no", 0, 0, NULL,
     "allow PLAIN/LOGIN for non-TLS, non-loopback clients"},
    {"auth_failure_delay", CFG_TIME, "2s", 0, 60000, NULL,
     "delay of the first failed authentication from an IP; doubles per failure"},
    {"auth_failure_delay_max", CFG_TIME, "15s", 0, 600000, NULL, "largest failure delay per IP"},
    {"auth_request_timeout", CFG_TIME, "2m", 1000, MS_HOUR, NULL,
     "an unfinished SASL exchange is failed after this long"},
    {"auth_cache_size", CFG_INT, "10000", 0, 1000000, NULL,
     "users whose last successful password check is remembered (0: off); a repeated "
     "login with the same password skips the password hash"},
    {"auth_cache_ttl", CFG_TIME, "1h", 1000, 7 * 24 * MS_HOUR, NULL,
     "how long a remembered password check stays valid"},
    {"auth_max_requests_per_conn", CFG_INT, "256", 1, 100000, NULL,
     "requests in flight on one auth-client connection"},
};

CFG_SECTION(cfg_section_authd, "authd", authd_keys);
