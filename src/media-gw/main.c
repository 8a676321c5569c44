/* media-gw: media system front door: gates STB logins through ca-authd. */
#include "daemon.h"

static const daemon_def_t media_gw_def = {
    .name = "media-gw",
    .role = STB_R_MEDIA_GW,
    .listen = "127.0.0.1:7103",
    .http_listen = "127.0.0.1:9103",
    .client_auth = "optional",
};

int
main(int argc, char **argv)
{
	return daemon_main(argc, argv, &media_gw_def);
}
