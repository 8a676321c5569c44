/* ca-authd: certificate authority: issue, validate, revoke, CRL, OCSP. */
#include "daemon.h"

static const daemon_def_t ca_authd_def = {
    .name = "ca-authd",
    .role = STB_R_CA_AUTHD,
    .listen = "127.0.0.1:7101",
    .http_listen = "127.0.0.1:9101",
    .client_auth = "require",
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &ca_authd_def);
}
