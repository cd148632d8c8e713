/* Keys of the [smtpd] section. */
#include "config/config_keys.h"

#define MS_S 1000LL
#define MS_H (3600LL * 1000)

static const struct cfg_key smtpd_keys[] = {
	{"smtp_listen", CFG_LIST, "*:25", 0, 0, NULL, "MX intake listeners (empty: none)"},
	{"submission_listen", CFG_LIST, "*:587", 0, 0, NULL, "submission (STARTTLS) listeners"},
	{"submissions_listen", CFG_LIST, "*:465", 0, 0, NULL,
	 "submission over implicit TLS listeners"},
	{"max_message_size", CFG_SIZE, "50M", 1024, 2147483647LL, NULL,
	 "largest message accepted (advertised in SIZE)"},
	{"lmtp_socket", CFG_STRING, "$run_dir/lmtp", 0, 0, NULL,
	 "deliverd's LMTP socket every message is handed to"},
	{"auth_socket", CFG_STRING, "$run_dir/auth", 0, 0, NULL,
	 "authd's auth-client socket used for AUTH"},
	{"max_line_length", CFG_SIZE, "4K", 512, 65536, NULL,
	 "longest command line (RFC 5321 4.5.3.1.4 minimum is 512)"},
	{"max_recipients", CFG_INT, "1000", 1, 100000, NULL,
	 "recipients per transaction; more get 452 4.5.3"},
	{"max_header_size", CFG_SIZE, "100K", 1024, 16777216, NULL,
	 "largest header section of a message"},
	{"max_errors", CFG_INT, "20", 1, 1000, NULL,
	 "bad commands in a session before 421 and disconnect"},
	{"max_connections", CFG_INT, "500", 0, 1000000, NULL,
	 "simultaneous connections per listener (0: unlimited)"},
	{"max_connections_per_ip", CFG_INT, "20", 0, 1000000, NULL,
	 "simultaneous connections from one client address (0: unlimited)"},
	{"command_timeout", CFG_TIME, "5m", 1, 24 * MS_H, NULL,
	 "idle time allowed while waiting for a command or data (RFC 5321 4.5.3.2.7)"},
	{"session_timeout", CFG_TIME, "1h", 0, 24 * MS_H, NULL,
	 "whole-session cap (0: none)"},
	{"lmtp_timeout", CFG_TIME, "10m", 1 * MS_S, 24 * MS_H, NULL,
	 "how long deliverd may take to answer"},
	{"strict_syntax", CFG_BOOL, "no", 0, 0, NULL,
	 "accept only RFC 5321 MAIL/RCPT syntax (no `mail from: user@example.org`)"},
	{"sender_login_check", CFG_BOOL, "yes", 0, 0, NULL,
	 "authenticated clients may only use their own addresses as envelope sender"},
	{"vrfy", CFG_BOOL, "yes", 0, 0, NULL, "answer VRFY with 252 (no): 502"},
	{"submission_tls_required", CFG_BOOL, "yes", 0, 0, NULL,
	 "submission (587): STARTTLS before AUTH and MAIL"},
	{"loopback_plaintext_auth", CFG_BOOL, "yes", 0, 0, NULL,
	 "allow plaintext AUTH mechanisms without TLS from loopback clients"},
	{"auth_failure_delay", CFG_TIME, "1s", 0, 60 * MS_S, NULL,
	 "delay before a failed AUTH is answered; doubles per failure in a session"},
	{"auth_failure_delay_max", CFG_TIME, "8s", 0, 600 * MS_S, NULL,
	 "cap of the growing AUTH failure delay"},
	{"add_missing_headers", CFG_BOOL, "yes", 0, 0, NULL,
	 "submission: add Message-ID and Date when the message has none"},
};

CFG_SECTION(cfg_section_smtpd, "smtpd", smtpd_keys);
