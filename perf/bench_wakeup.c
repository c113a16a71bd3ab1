/* SPDX-License-Identifier: MIT */
/*
 * wgate-bench-wakeup: what one thread waking another costs on this machine.
 * Two processes bounce a byte over a pair of pipes, first both on one CPU,
 * then on two CPUs, and the mean round trip (two wakeups, two blocking
 * reads) is printed for each, and across CPUs also the CPU time both
 * processes spent per wakeup. Then one thread sleeps in ppoll() for the
 * default nap with the nap's timer slack, as a worker does (--nap-us,
 * gateway/busy_poll.h), and the CPU time per sleep is printed. perf/bench.sh
 * prints the line in its header: on a VM, a wakeup across CPUs can cost ten
 * times one on the same CPU, and a timer can cost more than the wakeup it
 * saves; that decides how a benchmark whose four processes share two CPUs
 * comes out.
 *
 * Usage: wgate-bench-wakeup [ROUND_TRIPS] (default 20000)
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gateway/busy_poll.h"

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* CPU seconds (user + system) of this process, or of its waited-for children. */
static double cpu_s(int who)
{
	struct rusage u;

	if (getrusage(who, &u))
		return 0;
	return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
	       (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

static int pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	return sched_setaffinity(0, sizeof(s), &s);
}

static int xfer(int rfd, int wfd, char *c)
{
	if (rfd >= 0 && read(rfd, c, 1) != 1)
		return -1;
	if (wfd >= 0 && write(wfd, c, 1) != 1)
		return -1;
	return 0;
}

/*
 * Mean round trip in microseconds between a parent on cpu_a and a child on
 * cpu_b, or < 0; *cpu_us, unless NULL: the CPU time of both per wakeup (two
 * per round trip).
 */
static double round_trip_us(int cpu_a, int cpu_b, long n, double *cpu_us)
{
	double c0 = cpu_s(RUSAGE_SELF), k0 = cpu_s(RUSAGE_CHILDREN);
	int ping[2], pong[2], status;
	double t0, t1;
	char c = 0;
	pid_t child;

	if (pipe(ping) || pipe(pong))
		return -1;
	child = fork();
	if (child < 0)
		return -1;
	if (child == 0) {
		if (pin(cpu_b))
			_exit(2);
		for (long i = 0; i < n; i++)
			if (xfer(ping[0], pong[1], &c))
				_exit(1);
		_exit(0);
	}
	close(ping[0]);
	close(pong[1]);
	if (pin(cpu_a)) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
		return -1;
	}
	t0 = now_s();
	for (long i = 0; i < n; i++) {
		if (xfer(-1, ping[1], &c) || xfer(pong[0], -1, &c)) {
			kill(child, SIGKILL);
			break;
		}
	}
	t1 = now_s();
	close(ping[1]);
	close(pong[0]);
	if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return -1;
	if (cpu_us)
		*cpu_us = (cpu_s(RUSAGE_SELF) - c0 + cpu_s(RUSAGE_CHILDREN) - k0) /
			  (double)(2 * n) * 1e6;
	return (t1 - t0) / (double)n * 1e6;
}

/* CPU microseconds per timed sleep of the default nap in ppoll(), with the nap's timer slack. */
static double nap_cpu_us(long n)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = WGT_NAP_DEFAULT_US * 1000L };
	double c0;

	if (prctl(PR_SET_TIMERSLACK, WGT_NAP_SLACK_NS))
		return -1;
	c0 = cpu_s(RUSAGE_SELF);
	for (long i = 0; i < n; i++)
		ppoll(NULL, 0, &ts, NULL);
	return (cpu_s(RUSAGE_SELF) - c0) / (double)n * 1e6;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	double same, across = -1, across_cpu = 0, nap;

	if (n <= 0) {
		fprintf(stderr, "usage: %s [ROUND_TRIPS > 0]\n", argv[0]);
		return 2;
	}
	same = round_trip_us(0, 0, n, NULL);
	if (cpus > 1)
		across = round_trip_us(0, 1, n, &across_cpu);
	nap = nap_cpu_us(n / 4 + 1);
	if (same < 0 || (cpus > 1 && across < 0) || nap < 0) {
		fprintf(stderr, "%s: measurement failed: %s\n", argv[0], strerror(errno));
		return 1;
	}
	if (cpus > 1)
		printf("same CPU %.1f us, across CPUs %.1f us (CPU per wakeup %.1f us); "
		       "a %d us nap %.1f us of CPU\n", same, across, across_cpu, WGT_NAP_DEFAULT_US, nap);
	else
		printf("same CPU %.1f us (one CPU online); a %d us nap %.1f us of CPU\n", same,
		       WGT_NAP_DEFAULT_US, nap);
	return 0;
}
