/* Hooks and commands with a deadline (hooks.h). */
#include "otachain/hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ota_hook_run(const char *const *argv, const struct ota_hook_env *env, unsigned nenv,
                 uint32_t timeout_ms, struct ota_detail *det)
{
    int64_t end;
    pid_t pid;
    int status = 0, fds[2];
    char errbuf[8];

    if (nenv > OTA_HOOK_MAX_ENV || argv == NULL || argv[0] == NULL) {
        ota_detail_set(det, "hook: bad arguments");
        return OTA_ERR_INVALID_ARG;
    }
    /* A pipe closed by exec tells the parent whether exec worked. */
    if (pipe(fds) != 0)
        return OTA_ERR_IO;
    (void)fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        ota_detail_set(det, "%s: fork: %s", argv[0], strerror(errno));
        return OTA_ERR_HOOK_FAILED;
    }
    if (pid == 0) {
        int e;

        close(fds[0]);
        (void)setpgid(0, 0);
        for (unsigned i = 0; i < nenv; i++)
            if (setenv(env[i].name, env[i].value, 1) != 0)
                _exit(126);
        execv(argv[0], (char *const *)argv);
        e = errno;
        (void)!write(fds[1], &e, sizeof(e));
        _exit(127);
    }
    close(fds[1]);
    (void)setpgid(pid, pid);
    end = mono_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            close(fds[0]);
            ota_detail_set(det, "%s: waitpid: %s", argv[0], strerror(errno));
            return OTA_ERR_HOOK_FAILED;
        }
        if (mono_ms() >= end) {
            (void)kill(-pid, SIGKILL);
            (void)kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            close(fds[0]);
            ota_detail_set(det, "%s: still running after %u ms: killed", argv[0], timeout_ms);
            return OTA_ERR_HOOK_TIMEOUT;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    (void)kill(-pid, SIGKILL); /* what the hook left running in its group */
    if (read(fds[0], errbuf, sizeof(int)) == (ssize_t)sizeof(int)) {
        int e;

        memcpy(&e, errbuf, sizeof(e));
        close(fds[0]);
        ota_detail_set(det, "%s: cannot run it: %s", argv[0], strerror(e));
        return OTA_ERR_HOOK_FAILED;
    }
    close(fds[0]);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        ota_detail_set(det, "%s exited with status %d", argv[0], WEXITSTATUS(status));
    else
        ota_detail_set(det, "%s was killed by signal %d", argv[0],
                       WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return OTA_ERR_HOOK_FAILED;
}

int ota_hook_run_shell(const char *command, const struct ota_hook_env *env, unsigned nenv,
                       uint32_t timeout_ms, struct ota_detail *det)
{
    const char *argv[] = {"/bin/sh", "-c", command, NULL};
    int rc = ota_hook_run(argv, env, nenv, timeout_ms, det);

    if (rc != 0)
        ota_detail_prefix(det, command);
    return rc;
}
