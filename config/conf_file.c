/* SPDX-License-Identifier: MIT */
/* The configuration file's I/O: reading it and its key files, with their mode checks. */
#include "config/conf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/compiler.h"
#include "config/conf_pvt.h"

#define KEY_FILE_MAX 256U    /* a key, whitespace and a newline fit many times over */

/* A path fit to quote: printable ASCII (paths are not secrets, but may hold control bytes). */
static const char *shown_path(const char *path)
{
	const char *c;

	for (c = path; *c; c++)
		if (*c < 0x20 || *c > 0x7e)
			return "(not shown: not printable)";
	return path;
}

/*
 * Whether a file's mode lets anyone but the daemon at it: others have any
 * access, or its group does and that group is not one the daemon runs with
 * (its effective group or a supplementary one). A Kubernetes Secret mounted
 * 0440 with fsGroup = the daemon's group is therefore not exposed; wg-quick
 * itself only looks at the others' bits. When the group list cannot be read
 * the file counts as exposed.
 * Threading: any thread; reads the process credentials only.
 */
static bool mode_exposed(const struct stat *st)
{
	gid_t *groups = NULL;
	bool exposed = true;
	int i, n;

	if (st->st_mode & 007)
		return true;
	if (!(st->st_mode & 070) || st->st_gid == getegid())
		return false;
	n = getgroups(0, NULL);
	if (n <= 0)
		goto out;
	groups = calloc((size_t)n, sizeof(*groups));
	if (!groups)
		goto out;
	n = getgroups(n, groups);
	for (i = 0; i < n; i++)
		if (groups[i] == st->st_gid)
			exposed = false;
out:
	free(groups);
	return exposed;
}

static bool is_key_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int wgt_conf_read_key_file(const char *path, bool hide_path, uint8_t key[32], char *why,
			   size_t why_len)
{
	const char *shown = hide_path ? "(path not shown: it looks like a key)" : shown_path(path);
	char buf[KEY_FILE_MAX + 1];
	const char *s, *e;
	char ebuf[64];
	struct stat before, st;
	size_t n = 0;
	int fd, r = 0;

	/*
	 * A device is refused before it is opened (opening some has effects of
	 * its own: a watchdog starts counting); fstat() then makes sure that
	 * what was opened is the file that was checked. O_NONBLOCK: a FIFO
	 * swapped in between must not hang the parse.
	 */
	if (stat(path, &before) == -1) {
		r = -errno;
		snprintf(why, why_len, "cannot open key file %s: %s", shown,
			 strerror_r(-r, ebuf, sizeof(ebuf)));
		return r;
	}
	if (!S_ISREG(before.st_mode)) {
		snprintf(why, why_len, "key file %s is not a regular file", shown);
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		r = -errno;
		snprintf(why, why_len, "cannot open key file %s: %s", shown,
			 strerror_r(-r, ebuf, sizeof(ebuf)));
		return r;
	}
	if (fstat(fd, &st) == -1) {
		r = -errno;
		snprintf(why, why_len, "cannot stat key file %s: %s", shown,
			 strerror_r(-r, ebuf, sizeof(ebuf)));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_dev != before.st_dev || st.st_ino != before.st_ino) {
		r = -EAGAIN;
		snprintf(why, why_len, "key file %s was replaced while being read", shown);
		goto out;
	}
	/* Checked before reading: a key others could read is not read at all. */
	if (mode_exposed(&st)) {
		r = -EACCES;
		snprintf(why, why_len, "key file %s is accessible by group or others (chmod 600)",
			 shown);
		goto out;
	}
	while (n < sizeof(buf)) {
		ssize_t got = read(fd, buf + n, sizeof(buf) - n);

		if (got == -1 && errno == EINTR)
			continue;
		if (got == -1) {
			r = -errno;
			snprintf(why, why_len, "cannot read key file %s: %s", shown,
				 strerror_r(-r, ebuf, sizeof(ebuf)));
			goto out;
		}
		if (!got)
			break;
		n += (size_t)got;
	}
	s = buf;
	e = buf + n;
	while (s < e && is_key_space(*s))
		s++;
	while (e > s && is_key_space(e[-1]))
		e--;
	if (n > KEY_FILE_MAX || !wgt_conf_key_from_base64(key, s, (size_t)(e - s))) {
		r = -EINVAL;
		snprintf(why, why_len, "key file %s does not hold one base64 key of 32 bytes",
			 shown);
	}
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return r;
}

__attribute__((format(printf, 4, 5)))
static void report_file(wgt_conf_report_fn report, void *arg, enum wgt_conf_severity sev,
			const char *fmt, ...)
{
	char msg[WGT_CONF_MSG_LEN];
	va_list ap;

	if (!report)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	report(arg, sev, msg);
}

/*
 * Reads the whole file, at most WGT_CONF_MAX_FILE_BYTES. Growing copies
 * are wiped, since the text may hold keys. Returns 0 or -errno.
 */
static int read_all(int fd, size_t size_hint, char **ret_text, size_t *ret_len)
{
	size_t cap = WGT_MIN(size_hint, (size_t)WGT_CONF_MAX_FILE_BYTES) + 1, len = 0;
	char *text = malloc(cap);

	if (!text)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			size_t ncap = WGT_MIN(2 * cap, (size_t)WGT_CONF_MAX_FILE_BYTES + 1);
			char *bigger;

			if (ncap == cap) {
				explicit_bzero(text, cap);
				free(text);
				return -EFBIG;
			}
			bigger = malloc(ncap);
			if (!bigger) {
				explicit_bzero(text, cap);
				free(text);
				return -ENOMEM;
			}
			memcpy(bigger, text, len);
			explicit_bzero(text, cap);
			free(text);
			text = bigger;
			cap = ncap;
		}
		n = read(fd, text + len, cap - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			int r = -errno;

			explicit_bzero(text, cap);
			free(text);
			return r;
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	*ret_text = text;
	*ret_len = len;
	return 0;
}

int wgt_conf_parse_file(const char *path, wgt_conf_report_fn report, void *arg,
			struct wgt_conf **ret_conf)
{
	char *text = NULL, *dir = NULL, *slash;
	char ebuf[64];
	unsigned secret_line = 0;
	struct stat st;
	size_t len = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		r = -errno;
		report_file(report, arg, WGT_CONF_ERROR, "%s: cannot open: %s", path,
			    strerror_r(-r, ebuf, sizeof(ebuf)));
		return r;
	}
	if (fstat(fd, &st) == -1) {
		r = -errno;
		report_file(report, arg, WGT_CONF_ERROR, "%s: cannot stat: %s", path,
			    strerror_r(-r, ebuf, sizeof(ebuf)));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		report_file(report, arg, WGT_CONF_ERROR, "%s: is a directory", path);
		goto out;
	}
	r = read_all(fd, S_ISREG(st.st_mode) ? (size_t)st.st_size : 4096, &text, &len);
	if (r == -EFBIG)
		report_file(report, arg, WGT_CONF_ERROR, "%s: larger than %u MiB", path,
			    WGT_CONF_MAX_FILE_BYTES >> 20);
	else if (r)
		report_file(report, arg, WGT_CONF_ERROR, "%s: cannot read: %s", path,
			    strerror_r(-r, ebuf, sizeof(ebuf)));
	if (r)
		goto out;
	dir = strdup(path);
	if (!dir) {
		r = -ENOMEM;
		report_file(report, arg, WGT_CONF_ERROR, "%s: out of memory", path);
		goto out;
	}
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else
		slash[slash == dir] = '\0'; /* "/x.conf": the directory is "/" */
	r = wgt_conf_parse(path, dir, text, len, report, arg, ret_conf, &secret_line);
	/* As wg-quick warns; a key file in the same state is refused instead. */
	if (secret_line && S_ISREG(st.st_mode) && mode_exposed(&st))
		report_file(report, arg, WGT_CONF_WARNING,
			    "%s:%u: the file holds a key and is accessible by group or others "
			    "(chmod 600)", path, secret_line);
out:
	if (text) {
		explicit_bzero(text, len);
		free(text);
	}
	free(dir);
	close(fd);
	return r;
}
