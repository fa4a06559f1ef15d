// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Kernel half of the ebpf collector: tracepoint programs writing fixed-size records into one
 * ring buffer. Each program is loaded only when the collector's config enables it (userspace
 * turns autoload off for the others), so a missing tracepoint costs only its own program. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tapio_records.h"

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_FIN_WAIT1 4
#define TCP_CLOSE 7
#define TCP_LAST_ACK 9
#define TCP_LISTEN 10
#define IPPROTO_TCP 6

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by userspace before load. */
const volatile __u64 wakeup_bytes = 0;     /* wake the consumer only past this fill level */
const volatile __u32 probe_tgid = 0;       /* the load probe only counts this process */
const volatile __u32 open_prefix_count = 0;
const volatile __u32 open_prefix_lens[TAPIO_MAX_PREFIXES] = {};
const volatile char open_prefixes[TAPIO_MAX_PREFIXES][TAPIO_PREFIX_LEN] = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* resized by userspace */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tapio_counters);
} counters SEC(".maps");

struct sock_owner {
	__u64 birth_ns;
	__u64 cgroup_id;
	__u32 tgid;
	__u32 pid;
	__u32 uid;
	__u32 known;
	char comm[TAPIO_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct sock_owner);
} sock_owners SEC(".maps");

/* Every emit goes through here so that attempted == delivered-to-ring + dropped, per kind. */
static __always_inline void *reserve(__u32 kind, __u64 size)
{
	__u32 zero = 0;
	struct tapio_counters *c = bpf_map_lookup_elem(&counters, &zero);
	void *rec;

	if (c && kind < TAPIO_KIND_COUNT)
		c->attempted[kind]++;
	rec = bpf_ringbuf_reserve(&events, size, 0);
	if (!rec && c && kind < TAPIO_KIND_COUNT)
		c->dropped[kind]++;
	return rec;
}

/* A wakeup per record costs more than the rest of the path (throughput.md): stay silent and let
 * the consumer's timed drain pick records up, unless the ring is filling. */
static __always_inline void submit(void *rec)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(rec, flags);
}

static __always_inline void fill_hdr(struct tapio_hdr *h, __u16 kind, __u16 size)
{
	__u64 id = bpf_get_current_pid_tgid();

	h->kind = kind;
	h->size = size;
	h->tgid = id >> 32;
	h->pid = (__u32)id;
	h->uid = (__u32)bpf_get_current_uid_gid();
	h->ts_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

SEC("tracepoint/sched/sched_process_exec")
int tapio_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct tapio_exec *e = reserve(TAPIO_EXEC, sizeof(*e));
	unsigned int off;

	if (!e)
		return 0;
	fill_hdr(&e->h, TAPIO_EXEC, sizeof(*e));
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->old_pid = ctx->old_pid;
	off = ctx->__data_loc_filename & 0xFFFF;
	if (bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + off) < 0)
		e->filename[0] = 0;
	submit(e);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int tapio_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct task_struct *task;
	struct tapio_exit *e;

	/* Threads exit too; only the thread-group leader's exit is the process's. */
	if ((__u32)id != (__u32)(id >> 32))
		return 0;
	e = reserve(TAPIO_EXIT, sizeof(*e));
	if (!e)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	fill_hdr(&e->h, TAPIO_EXIT, sizeof(*e));
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->exit_code = BPF_CORE_READ(task, exit_code);
	e->duration_ns = bpf_ktime_get_ns() - BPF_CORE_READ(task, start_time);
	submit(e);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int tapio_tcp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	int oldstate = ctx->oldstate, newstate = ctx->newstate;
	__u64 sk = (__u64)ctx->skaddr;
	struct sock_owner *owner, fresh = {};
	struct tapio_tcp *e;
	__u64 now = bpf_ktime_get_boot_ns();

	if (ctx->protocol != IPPROTO_TCP || oldstate == TCP_LISTEN || newstate == TCP_LISTEN)
		return 0;

	/* connect() and close() run in the owning process; the other transitions often run in
	 * softirq context on behalf of whoever is current, so remember the owner when we can. */
	if (newstate == TCP_SYN_SENT || newstate == TCP_SYN_RECV) {
		fresh.birth_ns = now;
		if (newstate == TCP_SYN_SENT) {
			__u64 id = bpf_get_current_pid_tgid();
			fresh.known = 1;
			fresh.tgid = id >> 32;
			fresh.pid = (__u32)id;
			fresh.uid = (__u32)bpf_get_current_uid_gid();
			fresh.cgroup_id = bpf_get_current_cgroup_id();
			bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
		}
		bpf_map_update_elem(&sock_owners, &sk, &fresh, BPF_ANY);
		return 0;
	}
	owner = bpf_map_lookup_elem(&sock_owners, &sk);
	if (newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK) {
		if (owner && !owner->known) {
			__u64 id = bpf_get_current_pid_tgid();
			owner->known = 1;
			owner->tgid = id >> 32;
			owner->pid = (__u32)id;
			owner->uid = (__u32)bpf_get_current_uid_gid();
			owner->cgroup_id = bpf_get_current_cgroup_id();
			bpf_get_current_comm(owner->comm, sizeof(owner->comm));
		}
		return 0;
	}
	if (newstate != TCP_ESTABLISHED && newstate != TCP_CLOSE)
		return 0;

	e = reserve(TAPIO_TCP, sizeof(*e));
	if (!e)
		goto out;
	fill_hdr(&e->h, TAPIO_TCP, sizeof(*e));
	e->owner_known = 0;
	e->duration_ns = 0;
	if (owner) {
		e->duration_ns = now - owner->birth_ns;
		if (owner->known) {
			e->owner_known = 1;
			e->h.tgid = owner->tgid;
			e->h.pid = owner->pid;
			e->h.uid = owner->uid;
			e->h.cgroup_id = owner->cgroup_id;
			__builtin_memcpy(e->h.comm, owner->comm, sizeof(e->h.comm));
		}
	}
	e->_pad = 0;
	e->oldstate = oldstate;
	e->newstate = newstate;
	e->family = ctx->family;
	e->sport = ctx->sport;
	e->dport = ctx->dport;
	if (ctx->family == 10 /* AF_INET6 */) {
		/* The verifier refuses loads through a moved ctx pointer; copy with a helper. */
		bpf_probe_read_kernel(e->saddr, 16, &ctx->saddr_v6);
		bpf_probe_read_kernel(e->daddr, 16, &ctx->daddr_v6);
	} else {
		__builtin_memset(e->saddr, 0, 16);
		__builtin_memset(e->daddr, 0, 16);
		bpf_probe_read_kernel(e->saddr, 4, &ctx->saddr);
		bpf_probe_read_kernel(e->daddr, 4, &ctx->daddr);
	}
	submit(e);
out:
	if (newstate == TCP_CLOSE)
		bpf_map_delete_elem(&sock_owners, &sk);
	return 0;
}

SEC("tracepoint/oom/mark_victim")
int tapio_oom(struct trace_event_raw_mark_victim *ctx)
{
	struct tapio_oom *e = reserve(TAPIO_OOM, sizeof(*e));

	if (!e)
		return 0;
	fill_hdr(&e->h, TAPIO_OOM, sizeof(*e));
	e->victim_pid = ctx->pid;
	e->oom_score_adj = 0;
	e->total_vm_kb = e->anon_rss_kb = e->file_rss_kb = e->shmem_rss_kb = 0;
	e->victim_comm[0] = 0;
	/* Older kernels only carry the pid. */
	if (bpf_core_field_exists(ctx->total_vm)) {
		e->total_vm_kb = BPF_CORE_READ(ctx, total_vm);
		e->anon_rss_kb = BPF_CORE_READ(ctx, anon_rss);
		e->file_rss_kb = BPF_CORE_READ(ctx, file_rss);
		e->shmem_rss_kb = BPF_CORE_READ(ctx, shmem_rss);
	}
	if (bpf_core_field_exists(ctx->oom_score_adj))
		e->oom_score_adj = BPF_CORE_READ(ctx, oom_score_adj);
	if (bpf_core_field_exists(ctx->__data_loc_comm)) {
		unsigned int off = BPF_CORE_READ(ctx, __data_loc_comm) & 0xFFFF;
		if (bpf_probe_read_kernel_str(e->victim_comm, sizeof(e->victim_comm), (void *)ctx + off) < 0)
			e->victim_comm[0] = 0;
	}
	submit(e);
	return 0;
}

static __always_inline int prefix_match(const char *head)
{
	for (int i = 0; i < TAPIO_MAX_PREFIXES; i++) {
		int ok = 1;

		if (i >= open_prefix_count)
			break;
		for (int j = 0; j < TAPIO_PREFIX_LEN; j++) {
			if (j >= open_prefix_lens[i])
				break;
			if (head[j] != open_prefixes[i][j]) {
				ok = 0;
				break;
			}
		}
		if (ok)
			return 1;
	}
	return 0;
}

/* Off by default: opens are the busiest syscall on a node, so only paths under the configured
 * prefixes reach the ring (absolute paths only; a dirfd-relative path cannot be resolved here). */
SEC("tracepoint/syscalls/sys_enter_openat")
int tapio_openat(struct trace_event_raw_sys_enter *ctx)
{
	const char *upath = (const char *)ctx->args[1];
	char head[TAPIO_PREFIX_LEN];
	struct tapio_open *e;

	if (bpf_probe_read_user_str(head, sizeof(head), upath) <= 0)
		return 0;
	if (!prefix_match(head))
		return 0;
	e = reserve(TAPIO_OPEN, sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->h, TAPIO_OPEN, sizeof(*e));
	e->flags = (__s32)ctx->args[2];
	e->mode = (__u32)ctx->args[3];
	if (bpf_probe_read_user_str(e->path, sizeof(e->path), upath) < 0)
		e->path[0] = 0;
	submit(e);
	return 0;
}

/* A cheap traced operation for the benchmark and the loss tests: getppid() of one process. */
SEC("tracepoint/syscalls/sys_enter_getppid")
int tapio_probe(void *ctx)
{
	struct tapio_hdr *e;

	if ((bpf_get_current_pid_tgid() >> 32) != probe_tgid)
		return 0;
	e = reserve(TAPIO_PROBE, sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(e, TAPIO_PROBE, sizeof(*e));
	submit(e);
	return 0;
}

/* Identity for processes that are gone before userspace decodes their records: every cgroup2
 * directory announces itself when it is made. The tracepoint fires before the directory becomes
 * visible (kernfs_activate comes after it), so no process can run in the cgroup before this record
 * is reserved, and the ring hands records over in reservation order: the path always arrives
 * ahead of the first event that needs it. Only the default (v2) hierarchy, id 0: the ids of v1
 * hierarchies are inode numbers of other filesystems and would collide. */
SEC("tracepoint/cgroup/cgroup_mkdir")
int tapio_cgroup(struct trace_event_raw_cgroup *ctx)
{
	struct tapio_cgroup *e;
	unsigned int off;
	long n;

	if (ctx->root != 0)
		return 0;
	e = reserve(TAPIO_CGROUP, sizeof(*e));
	if (!e)
		return 0;
	fill_hdr(&e->h, TAPIO_CGROUP, sizeof(*e));
	e->id = ctx->id;
	e->level = ctx->level;
	off = ctx->__data_loc_path & 0xFFFF;
	n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), (void *)ctx + off);
	e->path_len = n > 0 ? n - 1 : 0;
	if (n <= 0)
		e->path[0] = 0;
	submit(e);
	return 0;
}
