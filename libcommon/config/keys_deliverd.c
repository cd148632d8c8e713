/* Keys of the [deliverd] section. */
#include "config/config_keys.h"

#define MS_DAY (24LL * 3600 * 1000)

static const struct cfg_key deliverd_keys[] = {
    {"lmtp_socket", CFG_STRING, "$run_dir/lmtp", 0, 0, NULL, "LMTP socket"},
    {"max_message_size", CFG_SIZE, "50M", 1024, 2147483647LL, NULL, "largest message accepted"},
    {"lmtp_allowed_users", CFG_LIST, "", 0, 0, NULL,
     "Unix users (names or uids) allowed on the LMTP socket besides root, deliverd's own user and "
     "default_user (SO_PEERCRED)"},
    {"submit_socket", CFG_STRING, "$run_dir/submit", 0, 0, NULL,
     "socket the sendmail command submits to (any local user; the sender is bound to the "
     "user unless trusted)"},
    {"trusted_users", CFG_LIST, "root", 0, 0, NULL,
     "Unix users (names or uids) that may set any envelope sender (sendmail -f); deliverd's own "
     "user is "
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
    /* --- relay: outbound queue, SMTP client, retries, bounces (relay branch) --- */
    {"queue_dir", CFG_STRING, "$state_dir/queue", 0, 0, NULL,
     "the outbound queue (message files, recipient states, hold markers)"},
    {"maildrop_dir", CFG_STRING, "$state_dir/maildrop", 0, 0, NULL,
     "where sendmail leaves mail while deliverd is down (mode 1733); picked up at start and "
     "on each queue run"},
    {"relayhost", CFG_STRING, "", 0, 0, NULL,
     "send all remote mail through this host: [host]:port (no MX lookup) or host:port "
     "(empty: deliver to each domain's MX hosts)"},
    {"relayhost_user", CFG_STRING, "", 0, 0, NULL,
     "SASL user for AUTH PLAIN at the relayhost (empty: no AUTH)"},
    {"relayhost_password_file", CFG_STRING, "", 0, 0, NULL,
     "file whose first line is the relayhost password (read at start)"},
    {"relayhost_tls", CFG_ENUM, "encrypt", 0, 0, "none|may|encrypt",
     "TLS towards the relayhost (encrypt: defer rather than send in clear text)"},
    {"smtp_tls", CFG_ENUM, "may", 0, 0, "none|may|encrypt",
     "TLS towards MX hosts (may: STARTTLS when offered, unverified)"},
    {"smtp_tls_ca_file", CFG_STRING, "", 0, 0, NULL,
     "CA file to verify the relayhost's certificate (empty: no verification)"},
    {"smtp_port", CFG_INT, "25", 1, 65535, NULL, "TCP port of remote MX hosts"},
    {"smtp_helo_name", CFG_STRING, "", 0, 0, NULL, "EHLO name (empty: the host name)"},
    {"dns_servers", CFG_STRING, "", 0, 0, NULL,
     "DNS servers for MX lookups, e.g. 127.0.0.1:53 (empty: /etc/resolv.conf)"},
    {"relay_max_connections", CFG_INT, "20", 1, 10000, NULL, "outgoing SMTP connections in total"},
    {"relay_destination_concurrency", CFG_INT, "5", 1, 1000, NULL,
     "outgoing SMTP connections per destination domain"},
    {"relay_max_recipients", CFG_INT, "50", 1, 1000, NULL, "recipients per SMTP transaction"},
    {"relay_messages_per_connection", CFG_INT, "100", 1, 100000, NULL,
     "transactions on one connection before it is closed"},
    {"relay_reuse_time", CFG_TIME, "5s", 0, 3600000, NULL,
     "an idle outgoing connection is kept this long for more mail to its destination"},
    {"relay_connect_timeout", CFG_TIME, "30s", 100, 3600000, NULL, "TCP connect timeout"},
    {"relay_command_timeout", CFG_TIME, "5m", 100, 3600000, NULL,
     "wait for a reply this long (RFC 5321 4.5.3.2)"},
    {"relay_dns_timeout", CFG_TIME, "5s", 100, 600000, NULL, "one DNS query's timeout"},
    {"queue_run_interval", CFG_TIME, "1m", 100, MS_DAY, NULL,
     "how often the queue directory is scanned for due messages"},
    {"retry_min_backoff", CFG_TIME, "5m", 100, MS_DAY, NULL,
     "delay after the first failed try; doubled each try"},
    {"retry_max_backoff", CFG_TIME, "1h", 100, 7 * MS_DAY, NULL, "largest delay between tries"},
    {"queue_lifetime", CFG_TIME, "5d", 0, 100 * MS_DAY, NULL,
     "deferred mail bounces after this long (0: at the first temporary failure)"},
    {"delay_warning_time", CFG_TIME, "4h", 0, 100 * MS_DAY, NULL,
     "warn the sender once when mail is still queued after this long (0: never)"},
};

CFG_SECTION(cfg_section_deliverd, "deliverd", deliverd_keys);
