/* Known-count load for the ebpf benchmark and loss tests: prints its pid, waits for a line on
 * stdin (so the tracer can be attached to that pid first), then calls getppid() N times (each
 * one a traced event) and prints "done <N> <elapsed ns>". */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	char line[64];
	struct timespec a, b;

	printf("%d\n", getpid());
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin))
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid); /* not the libc wrapper: never cached */
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("done %ld %lld\n", n, (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec));
	fflush(stdout);
	return 0;
}
