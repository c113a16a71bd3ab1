/* SPDX-License-Identifier: MIT */
/* Whole-file reads and atomic replacement (temporary file, fsync, rename) for the CLI. */
#include "gateway/cli_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int wgt_cli_file_read(const char *path, size_t max, char **ret_text, size_t *ret_len,
		      uid_t *ret_uid, gid_t *ret_gid)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1)
		return -errno;
	if (fstat(fd, &st) == -1) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	if ((size_t)st.st_size > max) {
		r = -EFBIG;
		goto out;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		r = -ENOMEM;
		goto out;
	}
	/* The size may change under us: read to EOF, up to what was allocated. */
	while (len < (size_t)st.st_size) {
		n = read(fd, text + len, (size_t)st.st_size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	text[len] = '\0';
	*ret_text = text;
	*ret_len = len;
	*ret_uid = st.st_uid;
	*ret_gid = st.st_gid;
	text = NULL;
	r = 0;
out:
	free(text);
	close(fd);
	return r;
}

static int write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The directory part of `path` ("." when it has none) into buf. */
static void dir_of(const char *path, char *buf, size_t size)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(buf, size, ".");
	else if (slash == path)
		snprintf(buf, size, "/");
	else
		snprintf(buf, size, "%.*s", (int)(slash - path), path);
}

int wgt_cli_file_replace(const char *path, const void *data, size_t len, uid_t uid, gid_t gid)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *base = strrchr(path, '/');
	int fd, dfd, r;

	base = base ? base + 1 : path;
	dir_of(path, dir, sizeof(dir));
	/* A dot name: the daemon's directory watch and wg-quick's *.conf globs skip it. */
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, base) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd == -1)
		return -errno;
	if (fchmod(fd, 0600) == -1 ||
	    (uid != (uid_t)-1 && fchown(fd, uid, gid) == -1)) {
		r = -errno;
		goto err_tmp;
	}
	r = write_all(fd, data, len);
	if (r)
		goto err_tmp;
	if (fsync(fd) == -1) {
		r = -errno;
		goto err_tmp;
	}
	if (close(fd) == -1) {
		fd = -1;
		r = -errno;
		goto err_tmp;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		r = -errno;
		goto err_tmp;
	}
	/* The rename itself is durable only once the directory is. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1)
		return -errno;
	r = fsync(dfd) == -1 ? -errno : 0;
	close(dfd);
	return r;
err_tmp:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

int wgt_cli_file_mkdirs(const char *path)
{
	char buf[PATH_MAX];
	size_t i, len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) == -1 && errno != EEXIST)
			return -errno;
		if (i < len)
			buf[i] = '/';
	}
	return 0;
}

int wgt_cli_file_lock(const char *path, int *ret_fd)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);

	if (fd == -1)
		return -errno;
	while (flock(fd, LOCK_EX) == -1) {
		if (errno != EINTR) {
			int r = -errno;

			close(fd);
			return r;
		}
	}
	*ret_fd = fd;
	return 0;
}
