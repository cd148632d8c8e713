/* STARTTLS (RFC 3501 6.2.1, RFC 2595). The net layer discards any plaintext the client
 * pipelined after the command (CVE-2011-0411 class), and the reader drops what it holds. */
#include "imap_commands.h"
#include "imap_reader.h"
#include "imap_server.h"
#include "net/conn.h"

enum imap_cmd_result cmd_starttls(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 0) {
		imap_session_tagged(s, "BAD", "STARTTLS takes no arguments.");
		return IMAP_CMD_DONE;
	}
	if (conn_is_tls(s->conn)) {
		imap_session_tagged(s, "BAD", "TLS is already active.");
		return IMAP_CMD_DONE;
	}
	if (imap_server.tls == NULL) {
		imap_session_tagged(s, "NO", "TLS is not configured.");
		return IMAP_CMD_DONE;
	}
	imap_session_tagged(s, "OK", "Begin TLS negotiation now.");
	imap_reader_reset(s->reader);
	if (conn_starttls(s->conn, imap_server.tls) < 0) {
		imap_session_close(s);
		return IMAP_CMD_DONE;
	}
	s->tls_done = true;
	return IMAP_CMD_DONE;
}
