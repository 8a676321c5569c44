#!/usr/bin/env bash
# docker-base.sh: make the local Debian 12 base image the Dockerfile starts
# FROM (no registry is reachable here).  debootstrap a minbase bookworm from
# the first Debian mirror in this machine's apt sources, copy those sources
# (bookworm, -updates, -security) into it, `docker import` it as the tag and
# remove the chroot.  Skips when the tag exists.  Run as root.
#
#   docker-base.sh [TAG]      TAG defaults to stbcred/debian:12
set -euo pipefail
tag=${1:-stbcred/debian:12}
if docker image inspect "$tag" >/dev/null 2>&1; then
	echo "docker-base: $tag exists"
	exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "docker-base: run as root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "docker-base: debootstrap is not installed" >&2; exit 1; }

# the machine's own sources: deb822 (*.sources) or one-line (*.list)
srcfiles=$(ls /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
	/etc/apt/sources.list.d/*.list 2>/dev/null || true)
mirror=
for f in $srcfiles; do
	m=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }
		/^deb / { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' "$f")
	[ -n "$m" ] && { mirror=$m; break; }
done
[ -n "$mirror" ] || { echo "docker-base: no Debian mirror in /etc/apt/sources*" >&2; exit 1; }

root=$(mktemp -d /var/tmp/stbcred-debootstrap.XXXXXX)
cleanup() { rm -rf --one-file-system "$root"; }
trap cleanup EXIT INT TERM
echo "docker-base: debootstrap bookworm from $mirror (a few minutes)"
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" \
	>"$root.log" 2>&1 || { tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
# the same suites the host uses, Debian's only (other vendors' lists stay out)
rm -f "$root/etc/apt/sources.list"
for f in $srcfiles; do
	grep -q 'debian' "$f" && grep -qv 'disabled' <<<"$f" && cp "$f" "$root/etc/apt/sources.list.d/"
done
# as the Debian images do: no docs or man pages, no recommends, a clean cache
cat >"$root/etc/dpkg/dpkg.cfg.d/docker-nodoc" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/90docker-norecommends"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/tmp/*
tar -C "$root" --numeric-owner -c . | docker import \
	-c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "docker-base: imported $tag"
