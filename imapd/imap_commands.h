/*
 * The command table: each row names a command, the states it is allowed in and its
 * handler. Handlers live in cmd_*.c, one file per group, and get the parsed command.
 */
#ifndef TERN_IMAPD_IMAP_COMMANDS_H
#define TERN_IMAPD_IMAP_COMMANDS_H

#include "imap_session.h"

typedef enum imap_cmd_result imap_cmd_handler_t(struct imap_session *s,
                                                const struct imap_command *cmd);

struct imap_command_def {
	const char *name;
	unsigned states; /* enum imap_state bits */
	imap_cmd_handler_t *handler;
};

/* The row for name (upper case), or NULL. */
const struct imap_command_def *imap_command_find(const char *name);

imap_cmd_handler_t cmd_capability, cmd_noop, cmd_logout, cmd_id, cmd_enable, cmd_namespace;
imap_cmd_handler_t cmd_starttls, cmd_login, cmd_authenticate, cmd_compress;
imap_cmd_handler_t cmd_create, cmd_delete, cmd_rename, cmd_subscribe, cmd_unsubscribe;
imap_cmd_handler_t cmd_list, cmd_lsub, cmd_status, cmd_append, cmd_idle;
imap_cmd_handler_t cmd_select, cmd_examine, cmd_close, cmd_unselect, cmd_check;
imap_cmd_handler_t cmd_fetch, cmd_store, cmd_copy, cmd_move, cmd_search, cmd_expunge, cmd_uid;
imap_cmd_handler_t cmd_sort, cmd_thread;
imap_cmd_handler_t cmd_getquotaroot, cmd_getquota, cmd_setquota;
imap_cmd_handler_t cmd_myrights, cmd_getacl, cmd_listrights, cmd_setacl;

/* The shared bodies of the plain and UID forms (args after the command name / UID verb). */
enum imap_cmd_result imap_fetch_run(struct imap_session *s, const struct imap_command *cmd,
                                    const struct imap_arg *args, size_t count, bool uid);
enum imap_cmd_result imap_store_run(struct imap_session *s, const struct imap_arg *args,
                                    size_t count, bool uid);
enum imap_cmd_result imap_copy_run(struct imap_session *s, const struct imap_arg *args,
                                   size_t count, bool uid, bool move);
enum imap_cmd_result imap_search_run(struct imap_session *s, const struct imap_arg *args,
                                     size_t count, bool uid);
enum imap_cmd_result imap_sort_run(struct imap_session *s, const struct imap_arg *args,
                                   size_t count, bool uid);
enum imap_cmd_result imap_thread_run(struct imap_session *s, const struct imap_arg *args,
                                     size_t count, bool uid);
enum imap_cmd_result imap_expunge_run(struct imap_session *s, const struct imap_arg *args,
                                      size_t count, bool uid);

#endif
