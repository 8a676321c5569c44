/* appvetd: app IDs, vetting, QR security flags, download checks. */
#include "daemon.h"

static const daemon_def_t appvetd_def = {
    .name = "appvetd",
    .role = STB_R_APPVETD,
    .listen = "127.0.0.1:7107",
    .http_listen = "127.0.0.1:9107",
    .client_auth = "optional",
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &appvetd_def);
}
