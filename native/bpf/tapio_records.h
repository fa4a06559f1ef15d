/* Record layout shared by the BPF programs, the addon and the TypeScript decoder
 * (src/native/bpf-records.ts mirrors every offset here; change both together). */
#ifndef TAPIO_RECORDS_H
#define TAPIO_RECORDS_H

#define TAPIO_COMM_LEN 16
#define TAPIO_PATH_LEN 256
#define TAPIO_MAX_PREFIXES 8
#define TAPIO_PREFIX_LEN 64
#define TAPIO_CGROUP_PATH_LEN 512

enum tapio_kind {
	TAPIO_EXEC = 1,
	TAPIO_EXIT = 2,
	TAPIO_TCP = 3,
	TAPIO_OOM = 4,
	TAPIO_OPEN = 5,
	TAPIO_PROBE = 6,
	TAPIO_CGROUP = 7, /* not an event: a new cgroup2 directory, so identity survives its processes */
	TAPIO_KIND_COUNT = 8, /* index 0 unused */
};

/* 48 bytes, first in every record. ts_ns is CLOCK_BOOTTIME (bpf_ktime_get_boot_ns). */
struct tapio_hdr {
	__u16 kind;
	__u16 size; /* sizeof the whole record of this kind */
	__u32 tgid;
	__u32 pid; /* thread id */
	__u32 uid;
	__u64 ts_ns;
	__u64 cgroup_id; /* cgroup v2 id (inode of the cgroup directory) */
	char comm[TAPIO_COMM_LEN];
};

struct tapio_exec { /* 312 */
	struct tapio_hdr h;
	__u32 ppid;
	__u32 old_pid;
	char filename[TAPIO_PATH_LEN];
};

struct tapio_exit { /* 64 */
	struct tapio_hdr h;
	__u32 ppid;
	__u32 exit_code; /* wait status: (code << 8) | signal */
	__u64 duration_ns;
};

struct tapio_tcp { /* 104 */
	struct tapio_hdr h;
	__u8 oldstate;
	__u8 newstate;
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
	__u64 duration_ns; /* since the socket was first seen, 0 when unknown */
	__u32 owner_known; /* 1 when pid/comm are the socket owner's, not the current task's */
	__u32 _pad;
};

struct tapio_oom { /* 104 */
	struct tapio_hdr h;
	__u32 victim_pid;
	__s32 oom_score_adj;
	__u64 total_vm_kb;
	__u64 anon_rss_kb;
	__u64 file_rss_kb;
	__u64 shmem_rss_kb;
	char victim_comm[TAPIO_COMM_LEN];
};

struct tapio_open { /* 312 */
	struct tapio_hdr h;
	__s32 flags;
	__u32 mode;
	char path[TAPIO_PATH_LEN];
};

/* A cgroup2 directory was created (tracepoint cgroup/cgroup_mkdir). The header is the creating
 * task's; id/path are the new cgroup's. path is relative to the cgroup2 root, as in
 * /proc/<pid>/cgroup; path_len is the string's length without NUL (TAPIO_CGROUP_PATH_LEN - 1 means
 * it may be cut short). */
struct tapio_cgroup { /* 576 */
	struct tapio_hdr h;
	__u64 id;
	__u32 level;
	__u32 path_len;
	char path[TAPIO_CGROUP_PATH_LEN];
};

/* Kernel-side counters, one slot per CPU (BPF_MAP_TYPE_PERCPU_ARRAY, key 0). */
struct tapio_counters {
	__u64 attempted[TAPIO_KIND_COUNT]; /* records the programs tried to emit */
	__u64 dropped[TAPIO_KIND_COUNT];   /* bpf_ringbuf_reserve failed: ring full */
};

#endif
