/* stbcli_qd: stb-client's flow D command (bootstrap). */
#ifndef STB_STBCLI_QD_H
#define STB_STBCLI_QD_H

#include "stb/stbclient.h"

/* stb-client ... bootstrap: argv[0] is "bootstrap"; addr is -a (the
 * registration role), cert/key the device's --cert/--key. */
int stbcli_bootstrap(stb_client_t *c, const char *addr, const char *cert, const char *key, int argc,
                     char **argv);

#endif
