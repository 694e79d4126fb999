/*
 * The test image's only program: a tiny static server for tests/docker.rs and bench/compose-race.
 * A FROM scratch image has no shell and no curl, so the same binary is its own healthcheck.
 *
 *   server            serve: print START_MESSAGE, wait READY_AFTER_MS, then answer every TCP
 *                     connection on LISTEN_PORT (default 8080) with "HTTP/1.0 200 OK ... ok".
 *                     With EXIT_AFTER_MS set: print EXIT_MESSAGE and exit with EXIT_CODE
 *                     (default 0) that long after start, before or after listening.
 *                     With NEEDS=host:port,… set: first connect to each (1 s each), and
 *                     exit 1 naming the first that does not answer, as an application whose
 *                     database is not up yet crashes (bench/swarm-race.sh).
 *   server check      exit 0 if 127.0.0.1:LISTEN_PORT accepts a connection, else 1
 *                     (the healthcheck: `test: ["CMD", "/server", "check"]`).
 *
 * SIGTERM and SIGINT end it at once with status 0: as PID 1 in a container the default
 * action of SIGTERM is ignored, and `docker stop` would wait its whole grace period.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long env_long(const char *name, long fallback) {
    const char *v = getenv(name);
    return (v && *v) ? strtol(v, NULL, 10) : fallback;
}

static void say(const char *text) {
    if (text && *text) {
        printf("%s\n", text);
        fflush(stdout);
    }
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms) {
    if (ms <= 0) return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {}
}

static void on_signal(int sig) {
    (void)sig;
    _exit(0);
}

static void exit_now(void) {
    say(getenv("EXIT_MESSAGE"));
    exit((int)env_long("EXIT_CODE", 0));
}

static int check(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 ? 0 : 1;
    close(fd);
    return rc;
}

/* 0 when host:port accepts a TCP connection within a second. */
static int reachable(const char *host, const char *port) {
    struct addrinfo hints, *found = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &found) != 0 || !found) return 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int rc = (fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) == 0) ? 0 : 1;
    if (fd >= 0) close(fd);
    freeaddrinfo(found);
    return rc;
}

/* NEEDS=host:port,host:port: exit 1 at the first one that does not answer. */
static void check_needs(void) {
    const char *needs = getenv("NEEDS");
    if (!needs || !*needs) return;
    char list[1024];
    snprintf(list, sizeof list, "%s", needs);
    for (char *item = strtok(list, ","); item; item = strtok(NULL, ",")) {
        char *colon = strrchr(item, ':');
        if (!colon) continue;
        *colon = 0;
        if (reachable(item, colon + 1) != 0) {
            printf("dependency %s:%s is not reachable\n", item, colon + 1);
            fflush(stdout);
            exit(1);
        }
    }
}

int main(int argc, char **argv) {
    int port = (int)env_long("LISTEN_PORT", 8080);
    if (argc > 1 && strcmp(argv[1], "check") == 0) return check(port);
    if (argc > 1) {
        fprintf(stderr, "usage: server [check]\n");
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    long started = now_ms();
    long ready_after = env_long("READY_AFTER_MS", 0);
    long exit_after = env_long("EXIT_AFTER_MS", -1);
    say(getenv("START_MESSAGE"));
    check_needs();
    if (exit_after >= 0 && exit_after <= ready_after) {
        sleep_ms(exit_after);
        exit_now();
    }
    sleep_ms(ready_after);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 64) != 0) {
        perror("server: listen");
        return 3;
    }
    printf("listening on %d\n", port);
    fflush(stdout);
    if (exit_after >= 0) {
        /* Exit on time even while blocked in accept(). */
        signal(SIGALRM, on_signal);
        long left = exit_after - (now_ms() - started);
        if (left <= 0) exit_now();
        struct timeval tv = {left / 1000, (left % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    static const char reply[] = "HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
    for (;;) {
        int client = accept(fd, NULL, NULL);
        if (exit_after >= 0 && now_ms() - started >= exit_after) exit_now();
        if (client < 0) continue;
        ssize_t ignored = write(client, reply, sizeof reply - 1);
        (void)ignored;
        close(client);
    }
}
