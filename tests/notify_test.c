/*
 * notify_test.c: fuseboxd as a systemd Type=notify service, without
 * systemd: the test plays the service manager on a datagram socket
 * (NOTIFY_SOCKET) and checks READY=1 after recovery, STATUS= lines,
 * WATCHDOG=1 at WATCHDOG_USEC/4 while turns complete, none while the
 * loop is frozen (SIGSTOP), RELOADING=1/READY=1 around a SIGHUP reload,
 * STOPPING=1 on SIGTERM, exit 0, and the ipc socket files removed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static int ns = -1;

/* collect - read notifications for ms; count lines that start with what
 * (NULL: none), append everything to log. */
static int
collect(int ms, const char *what, char *log, size_t ll)
{
	struct timespec t0, t;
	int n = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		char buf[1024];
		ssize_t r;
		long left;
		struct timeval tv;

		clock_gettime(CLOCK_MONOTONIC, &t);
		left = ms - ((t.tv_sec - t0.tv_sec) * 1000 +
		    (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			break;
		tv.tv_sec = left / 1000;
		tv.tv_usec = (left % 1000) * 1000;
		setsockopt(ns, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		r = recv(ns, buf, sizeof(buf) - 1, 0);
		if (r < 0)
			continue;
		buf[r] = '\0';
		if (strlen(log) + (size_t)r + 2 < ll) {
			strcat(log, buf);
			strcat(log, "\n");
		}
		for (char *line = strtok(buf, "\n"); line != NULL;
		     line = strtok(NULL, "\n"))
			if (what != NULL &&
			    strncmp(line, what, strlen(what)) == 0)
				n++;
	}
	return n;
}

/* wait_for - collect until a line starting with what arrives, at most
 * ms (a loaded machine starts the daemon slowly). @return 1 if it did. */
static int
wait_for(const char *what, int ms, char *log, size_t ll)
{
	for (int waited = 0; waited < ms; waited += 100)
		if (collect(100, what, log, ll) > 0)
			return 1;
	return 0;
}

int
main(void)
{
	struct fbxt_env t;
	struct sockaddr_un sun;
	char sockpath[300], ini[300], bin[512];
	const char *csock, *gsock;
	char log[16384] = "";
	const char *bindir = getenv("FBX_BIN_DIR");
	struct stat st;
	pid_t pid;
	int status, n;
	FILE *f;

	if (fbxt_setup(&t, "notify") != 0)
		return 1;
	snprintf(sockpath, sizeof(sockpath), "%s/notify.sock", t.dir);
	snprintf(ini, sizeof(ini), "%s/fuseboxd.ini", t.dir);
	snprintf(bin, sizeof(bin), "%s/fuseboxd", bindir ? bindir : ".");
	csock = t.console + 6; /* ipc:// paths */
	gsock = t.gateway + 6;
	f = fopen(ini, "w");
	fprintf(f, "[fuseboxd]\nretention = 3600\n");
	fclose(f);

	ns = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	FBXT_CHECK(strlen(sockpath) < sizeof(sun.sun_path), "short path");
	memcpy(sun.sun_path, sockpath, strlen(sockpath) % sizeof(sun.sun_path));
	FBXT_CHECK(bind(ns, (struct sockaddr *)&sun, sizeof(sun)) == 0,
	    "bind %s: %s", sockpath, strerror(errno));

	pid = fork();
	if (pid == 0) {
		char pidbuf[32];
		snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
		setenv("NOTIFY_SOCKET", sockpath, 1);
		setenv("WATCHDOG_USEC", "800000", 1); /* ping every 200 ms */
		setenv("WATCHDOG_PID", pidbuf, 1);
		execl(bin, "fuseboxd", "--data", t.db, "--console", t.console,
		    "--gateway", t.gateway, "-c", ini, (char *)NULL);
		_exit(127);
	}
	FBXT_CHECK(wait_for("READY=1", 10000, log, sizeof(log)),
	    "READY=1 at start:\n%s", log);
	collect(200, NULL, log, sizeof(log));
	FBXT_CHECK(strstr(log, "STATUS=0 gateways") != NULL, "a STATUS line:\n%s",
	    log);
	n = collect(1000, "WATCHDOG=1", log, sizeof(log));
	FBXT_CHECK(n >= 3 && n <= 8, "WATCHDOG=1 about every 200 ms: %d", n);

	/* a frozen loop sends no watchdog pings */
	kill(pid, SIGSTOP);
	collect(100, NULL, log, sizeof(log)); /* what was already sent */
	n = collect(700, "WATCHDOG=1", log, sizeof(log));
	FBXT_CHECK(n == 0, "no WATCHDOG=1 while stopped: %d", n);
	kill(pid, SIGCONT);

	/* SIGHUP reloads and keeps running */
	f = fopen(ini, "w");
	fprintf(f, "[fuseboxd]\nretention = 7200\nlog_level = warn\n");
	fclose(f);
	collect(300, NULL, log, sizeof(log));
	log[0] = '\0';
	kill(pid, SIGHUP);
	n = collect(800, "RELOADING=1", log, sizeof(log));
	FBXT_CHECK(n == 1, "RELOADING=1 on SIGHUP: %d\n%s", n, log);
	FBXT_CHECK(strstr(log, "RELOADING=1\nREADY=1") != NULL ||
	        strstr(log, "READY=1") != NULL,
	    "READY=1 after the reload:\n%s", log);
	FBXT_CHECK(waitpid(pid, &status, WNOHANG) == 0, "alive after SIGHUP");

	log[0] = '\0';
	kill(pid, SIGTERM);
	FBXT_CHECK(wait_for("STOPPING=1", 5000, log, sizeof(log)),
	    "STOPPING=1 on SIGTERM:\n%s", log);
	FBXT_CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	        WEXITSTATUS(status) == 0,
	    "exit 0 after SIGTERM (status %#x)", status);
	FBXT_CHECK(stat(csock, &st) != 0 && errno == ENOENT,
	    "console socket %s removed", csock);
	FBXT_CHECK(stat(gsock, &st) != 0 && errno == ENOENT,
	    "gateway socket %s removed", gsock);
	close(ns);
	fbxt_teardown(&t);
	return fbxt_done();
}
