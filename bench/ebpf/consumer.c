/* Baseline for bench/ebpf.ts and bench/agent.ts: a plain C libbpf consumer of the same BPF object
 * (the probe program, the same ring size and wakeup threshold, the same timed drain as the addon's
 * thread). With a text path it also writes every record as one JSON line of the agent's shape
 * (type, timestamp as epoch ns, severity, data, id, source) through a buffered FILE, flushed
 * and closed before the clock stops.
 * usage: consumer <events> <ring bytes> <drain ms> <loadgen> [text path]; prints one JSON line. */
#define _GNU_SOURCE
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/types.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tapio.skel.h"
#include "tapio_records.h"

static unsigned long long delivered;
static FILE *text;
static long long boot_to_epoch_ns;

/* The event id: a fixed prefix and the counter in base 36, like the agent's ids. */
static const char *base36(unsigned long long v, char *end)
{
	*--end = 0;
	do {
		*--end = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
		v /= 36;
	} while (v);
	return end;
}

static int on_sample(void *ctx, void *data, size_t len)
{
	const struct tapio_hdr *h = data;
	if (len < sizeof(*h) || h->kind != TAPIO_PROBE)
		return 0;
	delivered++;
	if (text) {
		char comm[TAPIO_COMM_LEN + 1], id[16];
		memcpy(comm, h->comm, TAPIO_COMM_LEN);
		comm[TAPIO_COMM_LEN] = 0;
		fprintf(text,
			"{\"type\":\"kernel.probe.hit\",\"timestamp\":\"%lld\",\"severity\":\"debug\",\"data\":{\"pid\":%u,\"tid\":%u,\"uid\":%u,"
			"\"comm\":\"%s\",\"cgroupId\":\"%llu\"},\"id\":\"c0ffeec0ffee-%s\",\"source\":\"ebpf\"}\n",
			(long long)h->ts_ns + boot_to_epoch_ns, h->tgid, h->pid, h->uid, comm, (unsigned long long)h->cgroup_id,
			base36(delivered, id + sizeof id));
	}
	return 0;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 5000000;
	unsigned ring = argc > 2 ? (unsigned)atol(argv[2]) : 1u << 24;
	int drain_ms = argc > 3 ? atoi(argv[3]) : 5;
	const char *loadgen = argc > 4 ? argv[4] : "./loadgen";
	const char *text_path = argc > 5 ? argv[5] : NULL;
	int to_child[2], from_child[2];
	char arg[32], line[128];

	if (pipe(to_child) || pipe(from_child))
		return 1;
	snprintf(arg, sizeof arg, "%ld", n);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(to_child[0], 0);
		dup2(from_child[1], 1);
		execl(loadgen, loadgen, arg, (char *)NULL);
		_exit(127);
	}
	FILE *out = fdopen(from_child[0], "r");
	if (!fgets(line, sizeof line, out))
		return 1;

	struct tapio_bpf *skel = tapio_bpf__open();
	if (!skel)
		return 1;
	bpf_map__set_max_entries(skel->maps.events, ring);
	skel->rodata->wakeup_bytes = ring / 4;
	skel->rodata->probe_tgid = (unsigned)pid;
	bpf_program__set_autoload(skel->progs.tapio_exec, false);
	bpf_program__set_autoload(skel->progs.tapio_exit, false);
	bpf_program__set_autoload(skel->progs.tapio_tcp, false);
	bpf_program__set_autoload(skel->progs.tapio_oom, false);
	bpf_program__set_autoload(skel->progs.tapio_openat, false);
	if (tapio_bpf__load(skel))
		return 1;
	struct bpf_link *link = bpf_program__attach(skel->progs.tapio_probe);
	if (!link)
		return 1;
	struct ring_buffer *rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_sample, NULL, NULL);
	int epfd = ring_buffer__epoll_fd(rb);

	if (text_path) {
		text = fopen(text_path, "w");
		if (!text)
			return 1;
		setvbuf(text, NULL, _IOFBF, 1 << 20);
		struct timespec rt, bt;
		clock_gettime(CLOCK_REALTIME, &rt);
		clock_gettime(CLOCK_BOOTTIME, &bt);
		boot_to_epoch_ns = (rt.tv_sec - bt.tv_sec) * 1000000000LL + (rt.tv_nsec - bt.tv_nsec);
	}
	double t0 = now_s();
	if (write(to_child[1], "go\n", 3) != 3)
		return 1;
	int status = 0, done = 0;
	while (!done) {
		if (ring_buffer__consume(rb) > 0)
			continue;
		if (waitpid(pid, &status, WNOHANG) == pid)
			done = 1;
		struct epoll_event ev;
		epoll_wait(epfd, &ev, 1, drain_ms);
	}
	bpf_link__destroy(link);
	usleep(10000);
	ring_buffer__consume(rb);
	if (text && fclose(text) != 0)
		return 1;
	double t1 = now_s();
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;

	int ncpu = libbpf_num_possible_cpus();
	struct tapio_counters *per = calloc(ncpu, sizeof(*per));
	unsigned key = 0;
	unsigned long long generated = 0, dropped = 0;
	if (bpf_map__lookup_elem(skel->maps.counters, &key, sizeof key, per, sizeof(*per) * ncpu, 0) == 0)
		for (int i = 0; i < ncpu; i++) {
			generated += per[i].attempted[TAPIO_PROBE];
			dropped += per[i].dropped[TAPIO_PROBE];
		}
	printf("{\"events\":%ld,\"generated\":%llu,\"delivered\":%llu,\"droppedKernel\":%llu,\"seconds\":%.6f,\"eventsPerSec\":%.0f,"
	       "\"cpuSeconds\":%.3f,\"maxRssKb\":%ld}\n",
	       n, generated, delivered, dropped, t1 - t0, delivered / (t1 - t0), cpu, ru.ru_maxrss);
	ring_buffer__free(rb);
	tapio_bpf__destroy(skel);
	free(per);
	return 0;
}
