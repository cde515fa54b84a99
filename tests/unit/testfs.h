/* File helpers shared by the unit tests (header-only, test code only). */
#ifndef OTACHAIN_TESTS_TESTFS_H
#define OTACHAIN_TESTS_TESTFS_H

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Removes path and, if it is a directory, everything below it (symlinks
 * are removed, never followed). Errors are ignored: used in teardown. */
static inline void rm_rf(const char *path)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char sub[PATH_MAX];
            if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) < sizeof(sub))
                rm_rf(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

#endif
