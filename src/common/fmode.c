/* fmode: private files and directories (see fmode.h). */
#include "fmode.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define FMODE_OTHERS (S_IRWXG | S_IRWXO)

int
fmode_private(const struct stat *st, const char *path, const char *what, err_t *err)
{
	if ((st->st_mode & FMODE_OTHERS) == 0)
		return 0;
	return err_set(err, STB_FORBIDDEN, "%s: %s must be mode %04o (is %04o)", path, what,
	               S_ISDIR(st->st_mode) ? 0700u : 0600u, (unsigned)(st->st_mode & 07777));
}

int
fmode_private_path(const char *path, const char *what, err_t *err)
{
	struct stat st;

	if (stat(path, &st) == -1)
		return err_set(err, STB_NOT_FOUND, "%s: %s: %s", path, what, strerror(errno));
	return fmode_private(&st, path, what, err);
}

int
fmode_private_dir(const char *path, const char *what, err_t *err)
{
	struct stat st;

	/* the umask can only take bits from 0700 */
	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return err_set(err, STB_INTERNAL, "%s %s: %s", what, path, strerror(errno));
	if (stat(path, &st) == -1)
		return err_set(err, STB_INTERNAL, "%s %s: %s", what, path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return err_set(err, STB_BAD_REQUEST, "%s %s is not a directory", what, path);
	return fmode_private(&st, path, what, err);
}

int
fmode_private_file(const char *path, int create, err_t *err)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0), 0600);

	if (fd == -1 && !create && errno == ENOENT)
		return 0;
	if (fd == -1)
		return err_set(err, STB_INTERNAL, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) == -1 ||
	    ((st.st_mode & FMODE_OTHERS) != 0 && fchmod(fd, st.st_mode & 0700) == -1)) {
		err_set(err, STB_INTERNAL, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}
