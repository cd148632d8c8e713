/*
 * COMPRESS (RFC 4978): after the tagged OK, both directions are raw DEFLATE, above TLS.
 * Allowed once logged in (RFC 4978 3), so no credentials ever go through the compressor.
 */
#include <strings.h>

#include "base/log.h"
#include "imap_commands.h"
#include "net/conn.h"

enum imap_cmd_result cmd_compress(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 1 || cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_session_tagged(s, "BAD", "COMPRESS takes one argument: DEFLATE.");
		return IMAP_CMD_DONE;
	}
	if (!imap_arg_atom_is(&cmd->args[0], "DEFLATE")) {
		imap_session_tagged(s, "BAD", "Unknown compression algorithm.");
		return IMAP_CMD_DONE;
	}
	/* RFC 4978 3: the same layer twice is refused with COMPRESSIONACTIVE. */
	if (conn_is_compressed(s->conn)) {
		imap_session_tagged(s, "NO", "[COMPRESSIONACTIVE] DEFLATE is already active.");
		return IMAP_CMD_DONE;
	}
	/* The OK goes out uncompressed; everything after it, both ways, is DEFLATE. */
	imap_session_tagged(s, "OK", "DEFLATE active.");
	if (conn_start_compress(s->conn) < 0) {
		imap_session_send(s, "* BYE Cannot start compression.");
		imap_session_close(s);
		return IMAP_CMD_DONE;
	}
	log_info("imap(%s): COMPRESS=DEFLATE started, rip=%s", s->user != NULL ? s->user : "",
	         conn_peer_ip(s->conn));
	return IMAP_CMD_DONE;
}
