/* sendmail(1), mailq(1), newaliases(1) for tern: everything is in the library. */
#include "sendmail.h"

int main(int argc, char **argv)
{
	return sendmail_main(argc, argv);
}
