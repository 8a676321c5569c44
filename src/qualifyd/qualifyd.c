/* qualifyd: credentialing bootstrap: nonce, OCSP, HSS, provisioning. */
#include "daemon.h"

static const daemon_def_t qualifyd_def = {
    .name = "qualifyd",
    .role = STB_R_QUALIFYD,
    .listen = "127.0.0.1:7106",
    .http_listen = "127.0.0.1:9106",
    .client_auth = "optional",
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &qualifyd_def);
}
