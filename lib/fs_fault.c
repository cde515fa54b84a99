/* The fault hook of the test hooks (include/otachain/test_hooks.h):
 * tracing, a crash (SIGKILL) before step N, and a power cut before step N.
 * Compiled to a no-op without -Dtest_hooks.
 *
 * Power-cut model (strict POSIX, docs/internals/test-hooks.md): data not
 * made durable by an fsync of its file is lost or torn at sector
 * granularity, and a create, rename, unlink or mkdir not made durable by
 * an fsync of its directory is lost. Realised as a journal of this
 * process's un-synced changes, kept by the hook itself (every state write
 * goes through the file-system layer, so the hook sees every change before
 * it happens):
 *
 *   bindings  per (directory, name) touched since that directory's last
 *             fsync: what the name durably held before the first touch
 *             (absent, a file's bytes and mode, an empty directory, or a
 *             directory moved elsewhere); a DIRSYNC drops the bindings
 *             of its directory (they are durable now)
 *   inodes    files written and not fsynced since (a skipped fsync, a
 *             test knob, leaves its file here)
 *
 * At the cut the hook restores every binding, newest first, tears every
 * inode still not durable (odd 512-byte sectors zeroed; a file of one
 * sector or less is emptied), then kills the process with SIGKILL. What
 * the rewind leaves is what a machine would find after the power came
 * back. SQLite is not modelled through a test VFS: its commits are trusted
 * (WAL, synchronous=FULL), and the log store announces each commit as a
 * COMMIT step, so cuts fall between its transactions, never inside one.
 */
#include "otachain/test_hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if OTA_TEST_HOOKS

#include <dirent.h>

#define JOURNAL_FILE_MAX ((size_t)256 << 20) /* biggest file the journal snapshots */
#define SECTOR           512

enum saved_kind {
    SAVED_ABSENT, /* the name did not exist */
    SAVED_FILE,   /* a regular file: data, mode, inode */
    SAVED_DIR,    /* an empty directory */
    SAVED_MOVED,  /* a directory renamed to moved_to */
};

struct binding {
    char *dir;
    char *name;
    enum saved_kind kind;
    uint8_t *data;
    size_t len;
    mode_t mode;
    dev_t dev;
    ino_t ino;
    char *moved_to;
};

struct inode_rec {
    dev_t dev;
    ino_t ino;
    char *path; /* where it was last seen */
    bool durable;
};

struct ota_fs_journal {
    struct binding *b;
    size_t nb, capb;
    struct inode_rec *in;
    size_t nin, capin;
};

/* The journal cannot model something: a test-setup error, not a result. */
static void fatal(const char *what, const char *path)
{
    fprintf(stderr, "otachain: power-cut journal: %s: %s\n", what, path);
    fflush(stderr);
    abort();
}

static char *dup_or_die(const char *s)
{
    char *d = strdup(s);

    if (d == NULL)
        fatal("out of memory", s);
    return d;
}

/* Collapses "//" and drops a trailing '/' (but keeps "/"). */
static void normalize(char *s)
{
    char *w = s;

    for (char *r = s; *r != '\0'; r++) {
        if (*r == '/' && r[1] == '/')
            continue;
        *w++ = *r;
    }
    *w = '\0';
    while (w - s > 1 && w[-1] == '/')
        *--w = '\0';
}

/* dir and name of path (dir PATH_MAX bytes, normalized). */
static const char *split(char dir[PATH_MAX], const char *path)
{
    const char *slash = strrchr(path, '/');

    if (ota_fs_dir_of(dir, path) != 0)
        fatal("path too long", path);
    normalize(dir);
    return slash != NULL ? slash + 1 : path;
}

static struct ota_fs_journal *journal_of(struct ota_fs_fault *f)
{
    if (f->journal == NULL) {
        f->journal = calloc(1, sizeof(*f->journal));
        if (f->journal == NULL)
            fatal("out of memory", "journal");
    }
    return f->journal;
}

static struct inode_rec *inode_find(struct ota_fs_journal *j, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < j->nin; i++) {
        if (j->in[i].dev == dev && j->in[i].ino == ino)
            return &j->in[i];
    }
    return NULL;
}

/* The record of the file at path (added when new); NULL if path is gone. */
static struct inode_rec *inode_at(struct ota_fs_journal *j, const char *path)
{
    struct inode_rec *r;
    struct stat st;

    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return NULL;
    r = inode_find(j, st.st_dev, st.st_ino);
    if (r != NULL)
        return r;
    if (j->nin == j->capin) {
        size_t cap = j->capin ? 2 * j->capin : 16;
        struct inode_rec *n = realloc(j->in, cap * sizeof(*n));

        if (n == NULL)
            fatal("out of memory", path);
        j->in = n;
        j->capin = cap;
    }
    r = &j->in[j->nin++];
    r->dev = st.st_dev;
    r->ino = st.st_ino;
    r->path = dup_or_die(path);
    r->durable = true;
    return r;
}

static void inode_move(struct inode_rec *r, const char *path)
{
    free(r->path);
    r->path = dup_or_die(path);
}

static struct binding *binding_find(struct ota_fs_journal *j, const char *dir, const char *name)
{
    for (size_t i = 0; i < j->nb; i++) {
        if (strcmp(j->b[i].dir, dir) == 0 && strcmp(j->b[i].name, name) == 0)
            return &j->b[i];
    }
    return NULL;
}

static bool dir_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    bool empty = true;

    if (d == NULL)
        return false;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

/* Records what path durably holds, unless its name is already bound (the
 * first touch since the last fsync of its directory decides). moved_to:
 * where a directory at path is about to be renamed. */
static void touch(struct ota_fs_journal *j, const char *path, const char *moved_to)
{
    char dir[PATH_MAX];
    const char *name = split(dir, path);
    struct binding *b;
    struct stat st;

    if (binding_find(j, dir, name) != NULL)
        return;
    if (j->nb == j->capb) {
        size_t cap = j->capb ? 2 * j->capb : 16;
        struct binding *n = realloc(j->b, cap * sizeof(*n));

        if (n == NULL)
            fatal("out of memory", path);
        j->b = n;
        j->capb = cap;
    }
    b = &j->b[j->nb];
    memset(b, 0, sizeof(*b));
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            fatal("cannot stat", path);
        b->kind = SAVED_ABSENT;
    } else if (S_ISREG(st.st_mode)) {
        size_t len = 0;

        if ((uint64_t)st.st_size > JOURNAL_FILE_MAX)
            fatal("file too large to snapshot", path);
        b->kind = SAVED_FILE;
        b->mode = st.st_mode & 07777;
        b->dev = st.st_dev;
        b->ino = st.st_ino;
        if (ota_fs_read_nofollow(&b->data, &len, path, JOURNAL_FILE_MAX) != 0)
            fatal("cannot read", path);
        b->len = len;
    } else if (S_ISDIR(st.st_mode) && moved_to != NULL) {
        b->kind = SAVED_MOVED;
        b->dev = st.st_dev;
        b->ino = st.st_ino;
        b->moved_to = dup_or_die(moved_to);
    } else if (S_ISDIR(st.st_mode) && dir_empty(path)) {
        b->kind = SAVED_DIR;
        b->mode = st.st_mode & 07777;
    } else {
        fatal("cannot model a change to", path);
    }
    b->dir = dup_or_die(dir);
    b->name = dup_or_die(name);
    j->nb++;
}

static void binding_free(struct binding *b)
{
    free(b->dir);
    free(b->name);
    free(b->data);
    free(b->moved_to);
    memset(b, 0, sizeof(*b));
}

/* fsync of dir: its names are durable now. */
static void dir_synced(struct ota_fs_journal *j, const char *dir)
{
    size_t w = 0;

    for (size_t i = 0; i < j->nb; i++) {
        if (strcmp(j->b[i].dir, dir) == 0)
            binding_free(&j->b[i]);
        else
            j->b[w++] = j->b[i];
    }
    j->nb = w;
}

/* ---------------------------------------------------------------- the cut */

static void rm_rf(const char *path, int depth)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode) && depth < 32) {
        DIR *d = opendir(path);
        struct dirent *e;

        while (d != NULL && (e = readdir(d)) != NULL) {
            char sub[PATH_MAX];

            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) < (int)sizeof(sub))
                rm_rf(sub, depth + 1);
        }
        if (d != NULL)
            closedir(d);
        rmdir(path);
        return;
    }
    unlink(path);
}

/* Loses or tears what was not fsynced: odd sectors zeroed; one sector or
 * less: nothing survives. */
static void tear(const char *path)
{
    static const uint8_t zeros[SECTOR];
    struct stat st;
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        return;
    if (fstat(fd, &st) == 0) {
        if (st.st_size <= SECTOR) {
            if (ftruncate(fd, 0) != 0)
                fatal("cannot truncate", path);
        } else {
            for (off_t off = SECTOR; off < st.st_size; off += 2 * SECTOR) {
                size_t n = (size_t)(st.st_size - off < SECTOR ? st.st_size - off : SECTOR);

                if (ota_fs_pwrite_all(fd, zeros, n, (uint64_t)off) != 0)
                    fatal("cannot tear", path);
            }
        }
    }
    close(fd);
}

static bool ino_durable(struct ota_fs_journal *j, dev_t dev, ino_t ino)
{
    const struct inode_rec *r = inode_find(j, dev, ino);

    return r == NULL || r->durable;
}

static void restore(struct ota_fs_journal *j, const struct binding *b)
{
    char full[PATH_MAX];
    struct stat st;
    int fd;

    if (snprintf(full, sizeof(full), "%s/%s", b->dir, b->name) >= (int)sizeof(full))
        fatal("path too long", b->name);
    switch (b->kind) {
    case SAVED_ABSENT:
        rm_rf(full, 0);
        return;
    case SAVED_DIR:
        if (lstat(full, &st) == 0 && !S_ISDIR(st.st_mode))
            rm_rf(full, 0);
        if (lstat(full, &st) != 0 && mkdir(full, b->mode) != 0 && errno != ENOENT)
            fatal("cannot restore directory", full);
        return;
    case SAVED_MOVED:
        if (lstat(b->moved_to, &st) == 0 && st.st_dev == b->dev && st.st_ino == b->ino) {
            rm_rf(full, 0);
            if (rename(b->moved_to, full) != 0)
                fatal("cannot move back", full);
        }
        return;
    case SAVED_FILE:
        rm_rf(full, 0);
        fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
            if (errno == ENOENT)
                return; /* its directory is gone too: an older binding brings it back */
            fatal("cannot restore", full);
        }
        if (fchmod(fd, b->mode) != 0 || ota_fs_write_all(fd, b->data, b->len) != 0)
            fatal("cannot restore", full);
        close(fd);
        if (!ino_durable(j, b->dev, b->ino))
            tear(full);
        return;
    }
}

static void cut(struct ota_fs_fault *f)
{
    struct ota_fs_journal *j = f->journal;

    if (j != NULL) {
        for (size_t i = j->nb; i-- > 0;)
            restore(j, &j->b[i]);
        for (size_t i = 0; i < j->nin; i++) {
            struct stat st;

            if (!j->in[i].durable && lstat(j->in[i].path, &st) == 0 && st.st_dev == j->in[i].dev &&
                st.st_ino == j->in[i].ino)
                tear(j->in[i].path);
        }
    }
    fflush(stdout);
    fflush(stderr);
    raise(SIGKILL);
}

static bool skip_fsync(const struct ota_fs_fault *f, const char *path)
{
    size_t n = strlen(f->skip_fsync);
    size_t p = strlen(path);

    return n > 0 && p >= n && strcmp(path + p - n, f->skip_fsync) == 0;
}

/* Records ev in the journal (power-cut mode); returns the hook's answer. */
static int journal_event(struct ota_fs_fault *f, const struct ota_fs_event *ev)
{
    struct ota_fs_journal *j = journal_of(f);
    struct inode_rec *r;
    char dir[PATH_MAX];
    struct stat st;

    switch (ev->step) {
    case OTA_FS_STEP_CREATE:
        if (ev->tmp != NULL)
            touch(j, ev->tmp, NULL);
        break;
    case OTA_FS_STEP_WRITE:
        r = ev->tmp != NULL ? inode_at(j, ev->tmp) : NULL;
        if (r != NULL)
            r->durable = false;
        break;
    case OTA_FS_STEP_FSYNC:
        if (skip_fsync(f, ev->path))
            return OTA_FS_HOOK_SKIP;
        r = ev->tmp != NULL ? inode_at(j, ev->tmp) : NULL;
        if (r != NULL)
            r->durable = true;
        break;
    case OTA_FS_STEP_RENAME:
        if (ev->tmp == NULL)
            break;
        touch(j, ev->path, NULL);
        if (lstat(ev->tmp, &st) == 0 && S_ISDIR(st.st_mode)) {
            touch(j, ev->tmp, ev->path);
        } else {
            touch(j, ev->tmp, NULL);
            r = inode_at(j, ev->tmp);
            if (r != NULL)
                inode_move(r, ev->path);
        }
        break;
    case OTA_FS_STEP_UNLINK:
    case OTA_FS_STEP_MKDIR:
        touch(j, ev->path, NULL);
        break;
    case OTA_FS_STEP_DIRSYNC:
        split(dir, ev->path);
        dir_synced(j, dir);
        break;
    case OTA_FS_STEP_COMMIT:
        break;
    }
    return 0;
}

int ota_fs_fault_hook(void *ctx, const struct ota_fs_event *ev)
{
    struct ota_fs_fault *f = ctx;
    unsigned long n = ++f->steps;

    if (f->trace) {
        fprintf(stderr, "fs-step %lu %s %s\n", n, ota_fs_step_name(ev->step), ev->path);
        fflush(stderr);
    }
    if (f->crash_at != 0 && n == f->crash_at) {
        fflush(stdout);
        fflush(stderr);
        raise(SIGKILL);
    }
    if (f->cut_at != 0 && n == f->cut_at)
        cut(f);
    if (f->cut_at != 0 || f->skip_fsync[0] != '\0')
        return journal_event(f, ev);
    return 0;
}

void ota_fs_fault_free(struct ota_fs_fault *f)
{
    struct ota_fs_journal *j = f != NULL ? f->journal : NULL;

    if (j == NULL)
        return;
    for (size_t i = 0; i < j->nb; i++)
        binding_free(&j->b[i]);
    for (size_t i = 0; i < j->nin; i++)
        free(j->in[i].path);
    free(j->b);
    free(j->in);
    free(j);
    f->journal = NULL;
}

#else /* !OTA_TEST_HOOKS: a release build injects nothing. */

int ota_fs_fault_hook(void *ctx, const struct ota_fs_event *ev)
{
    (void)ctx;
    (void)ev;
    return 0;
}

void ota_fs_fault_free(struct ota_fs_fault *f)
{
    (void)f;
}

#endif
