/* rendezvousd: device registry, per-session random codes and peer addresses. */
#include "daemon.h"

static const daemon_def_t rendezvousd_def = {
    .name = "rendezvousd",
    .role = STB_R_RENDEZVOUSD,
    .listen = "127.0.0.1:7104",
    .http_listen = "127.0.0.1:9104",
    .client_auth = "optional",
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &rendezvousd_def);
}
