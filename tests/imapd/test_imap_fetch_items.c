/* FETCH item parsing: macros, simple items, body sections with partials, and refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "imap_args.h"
#include "imap_fetch_items.h"

static const struct imap_args_limits limits = {.max_depth = 8, .max_args = 100};

/* Parses "t FETCH 1 <items>" and renders the plan, or "!" on refusal. */
static char *plan(const char *items_text)
{
	struct buf cmdline, out;
	buf_init(&cmdline, 0);
	buf_init(&out, 0);
	(void)buf_printf(&cmdline, "t FETCH 1 %s\r\n", items_text);
	struct imap_command cmd;
	const char *error;
	char *tag;
	if (imap_args_parse(cmdline.data, cmdline.len, NULL, 0, &limits, &cmd, &error, &tag) < 0) {
		free(tag);
		(void)buf_append_str(&out, "!args");
		goto done;
	}
	struct imap_fetch_items items;
	if (cmd.count != 2 || imap_fetch_items_parse(&cmd.args[1], &items, &error) < 0) {
		(void)buf_append_str(&out, "!");
	} else {
		(void)buf_printf(&out, "%x", items.flags);
		for (size_t i = 0; i < items.n_bodies; i++) {
			const struct imap_fetch_body *b = &items.bodies[i];
			(void)buf_printf(&out, " %s%s k%d t%d p", b->response_name,
			                 b->peek ? "/peek" : "", b->kind, b->text);
			for (size_t j = 0; j < b->n_part; j++)
				(void)buf_printf(&out, "%s%u", j ? "." : "", b->part[j]);
			for (size_t j = 0; j < b->n_fields; j++)
				(void)buf_printf(&out, " f=%s", b->fields[j]);
			if (b->partial)
				(void)buf_printf(&out, " <%u+%u>", b->origin, b->length);
		}
		if (imap_fetch_items_set_seen(&items))
			(void)buf_append_str(&out, " SEEN");
		imap_fetch_items_free(&items);
	}
	imap_command_free(&cmd);
done:
	buf_free(&cmdline);
	return buf_steal(&out);
}

static const struct {
	const char *in;
	const char *expect;
} cases[] = {
    {"ALL", "f"},
    {"fast", "7"},
    {"FULL", "1f"},
    {"(UID FLAGS RFC822.SIZE ENVELOPE)", "4d"},
    {"(BODYSTRUCTURE MODSEQ)", "420"},
    {"RFC822", "80 SEEN"},
    {"BODY[]", "0 BODY[] k0 t0 p SEEN"},
    {"BODY.PEEK[]<0.2048>", "0 BODY[]<0>/peek k0 t0 p <0+2048>"},
    {"BODY.PEEK[HEADER.FIELDS (From To \"Message-ID\")]",
     "0 BODY[HEADER.FIELDS (From To \"Message-ID\")]/peek k0 t2 p f=From f=To f=Message-ID"},
    {"body.peek[header.fields.not (Received)]",
     "0 BODY[header.fields.not (Received)]/peek k0 t3 p f=Received"},
    {"BODY[1.2.MIME]", "0 BODY[1.2.MIME] k0 t5 p1.2 SEEN"},
    {"BODY[2.HEADER]", "0 BODY[2.HEADER] k0 t1 p2 SEEN"},
    {"BODY[3]<10.5>", "0 BODY[3]<10> k0 t0 p3 <10+5> SEEN"},
    {"BODY[TEXT]", "0 BODY[TEXT] k0 t4 p SEEN"},
    {"BINARY.PEEK[1]", "0 BINARY[1]/peek k1 t0 p1"},
    {"BINARY.SIZE[2]", "0 BINARY.SIZE[2]/peek k2 t0 p2"},
    {"(FLAGS BODY.PEEK[1] BODY.PEEK[2])", "1 BODY[1]/peek k0 t0 p1 BODY[2]/peek k0 t0 p2"},
    /* Refusals. */
    {"(ALL)", "!"},
    {"()", "!"},
    {"NOPE", "!"},
    {"BODY[MIME]", "!"},
    {"BODY[0]", "!"},
    {"BODY[1.0]", "!"},
    {"BODY[HEADER.FIELDS ()]", "!"},
    {"BODY[HEADER.FIELDS (a:b)]", "!"},
    {"BODY[HEADER.FIELDS From]", "!"},
    {"BODY[]<0>", "!"},
    {"BODY[]<0.0>", "!"},
    {"BODY[]<x.1>", "!"},
    {"BODY[]<0.4294967296>", "!"},
    {"BINARY[HEADER]", "!"},
    {"BINARY.SIZE[1]<0.10>", "!"},
    {"BODY[4294967296]", "!"},
    {"\"FLAGS\"", "!"},
};

static void test_fetch_items_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = plan(cases[i].in);
		if (strcmp(got, cases[i].expect) != 0) {
			print_error("'%s': expect [%s] got [%s]\n", cases[i].in, cases[i].expect,
			            got);
			fail();
		}
		free(got);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fetch_items_cases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
