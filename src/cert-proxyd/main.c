/* cert-proxyd: certificate proxy: holds STB certificates and keys, serves login key info. */
#include "daemon.h"

static const daemon_def_t cert_proxyd_def = {
    .name = "cert-proxyd",
    .role = STB_R_CERT_PROXYD,
    .listen = "127.0.0.1:7102",
    .http_listen = "127.0.0.1:9102",
    .client_auth = "optional",
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &cert_proxyd_def);
}
