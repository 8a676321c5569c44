/* keymgmtd: key management platform: import, register, bind, push to app platforms. */
#include "daemon.h"

static const daemon_def_t keymgmtd_def = {
    .name = "keymgmtd",
    .role = STB_R_KEYMGMTD,
    .listen = "127.0.0.1:7105",
    .http_listen = "127.0.0.1:9105",
    .client_auth = "optional",
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &keymgmtd_def);
}
