/*
 * The session's auth backend on top of libcommon's auth-client (authd's socket). The
 * session owns the policy (which mechanisms, when); this file only adapts the calls.
 */
#include "auth_glue.h"

static size_t glue_mechs(void *ctx, const struct auth_mech **mechs_r)
{
	return auth_client_mechs(ctx, mechs_r);
}

static struct auth_request *glue_begin(void *ctx, const struct auth_request_info *info,
                                       auth_callback_t *callback, void *context)
{
	return auth_client_begin(ctx, info, callback, context);
}

const struct smtp_auth_ops auth_glue_ops = {
    glue_mechs,
    glue_begin,
    auth_request_continue,
    auth_request_abort,
};
