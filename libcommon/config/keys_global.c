/* Keys of the global section: what every daemon shares. */
#include "config/config_keys.h"

#define MS_DAY (24LL * 3600 * 1000)

static const struct cfg_key global_keys[] = {
    {"config_version", CFG_INT, "1", 1, 1, NULL,
     "pins the defaults of this release across upgrades"},
    {"hostname", CFG_STRING, "", 0, 0, NULL,
     "this host's name in greetings and Received lines (empty: the system's)"},
    {"domains", CFG_LIST, "", 0, 0, NULL, "the local mail domains"},
    {"mynetworks", CFG_LIST, "127.0.0.0/8 ::1/128", 0, 0, NULL,
     "clients allowed to relay without authentication"},
    {"run_dir", CFG_STRING, "/run/tern", 0, 0, NULL, "directory of the internal Unix sockets"},
    {"mail_root", CFG_STRING, "/var/mail/tern", 0, 0, NULL,
     "the Maildir store: <mail_root>/<domain>/<user>/"},
    {"state_dir", CFG_STRING, "/var/lib/tern", 0, 0, NULL,
     "persistent state (queue, indexes that are not in the store)"},
    {"passwd_file", CFG_STRING, "/etc/tern/passwd", 0, 0, NULL,
     "virtual users, Dovecot passwd-file format"},
    {"tls_cert", CFG_STRING, "/etc/tern/tls/tern.pem", 0, 0, NULL,
     "PEM certificate chain for every TLS listener"},
    {"tls_key", CFG_STRING, "/etc/tern/tls/tern.key", 0, 0, NULL, "PEM private key"},
    {"log_target", CFG_ENUM, "syslog", 0, 0, "syslog|stderr", "where log lines go"},
    {"log_debug", CFG_BOOL, "no", 0, 0, NULL, "log debug lines"},
    {"default_user", CFG_STRING, "tern", 0, 0, NULL,
     "unprivileged user smtpd runs as after binding its ports"},
    {"auth_user", CFG_STRING, "tern-auth", 0, 0, NULL, "user authd runs as"},
    {"vmail_user", CFG_STRING, "tern-vmail", 0, 0, NULL,
     "owner of the store; deliverd, imapd and pop3d run as this user"},
    {"shutdown_timeout", CFG_TIME, "10s", 0, MS_DAY, NULL,
     "how long in-flight sessions may finish after SIGTERM"},
};

CFG_SECTION(cfg_section_global, "global", global_keys);
