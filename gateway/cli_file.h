/* SPDX-License-Identifier: MIT */
/* Whole-file reads and atomic replacement (temporary file, fsync, rename) for the CLI. */
#ifndef WGT_GATEWAY_CLI_FILE_H
#define WGT_GATEWAY_CLI_FILE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Reads the regular file `path` whole and NUL-terminated, with its owner and
 * group. Returns 0 or -errno (-EFBIG above `max` bytes, -EINVAL when it is
 * not a regular file).
 */
int wgt_cli_file_read(const char *path, size_t max, char **ret_text, size_t *ret_len,
		      uid_t *ret_uid, gid_t *ret_gid);

/*
 * Replaces `path` with `data`: a temporary file in the same directory (mode
 * 0600, owner uid:gid unless uid is (uid_t)-1), fsync, rename over `path`,
 * fsync of the directory. Readers see the old file or the new one, never a
 * mix. Returns 0 or -errno; the temporary file never stays behind.
 */
int wgt_cli_file_replace(const char *path, const void *data, size_t len, uid_t uid, gid_t gid);

/* mkdir -p with mode 0700 for every directory it creates. Returns 0 or -errno. */
int wgt_cli_file_mkdirs(const char *path);

/* An exclusive flock(2) on `path` (created 0600), held until the returned fd is closed. */
int wgt_cli_file_lock(const char *path, int *ret_fd);

#endif
