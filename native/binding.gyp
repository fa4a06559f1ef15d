{
  # tapio_bpf is compiled only when native/bpf/prebuild.sh produced its skeleton (clang, bpftool,
  # libbpf-dev present); otherwise it is an empty target, so the other targets still build and the
  # ebpf collector reports "unavailable: native addon not built" at run time.
  "variables": {
    "have_bpf_skeleton": "<!(test -f bpf/.out/tapio.skel.h && echo 1 || echo 0)"
  },
  "targets": [
    {
      "target_name": "tapio_bpf",
      "conditions": [
        ["have_bpf_skeleton==1", {
          "sources": ["src/bpf_addon.cc", "src/bpf_session.cc", "src/bpf_loader.cc"],
          "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "bpf/.out"],
          "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
          "cflags_cc": ["-std=c++17", "-O2", "-Wall"],
          "libraries": ["-lbpf", "-lelf", "-lz"],
          "defines": ["NAPI_VERSION=8"]
        }, {
          "type": "none"
        }]
      ]
    },
    {
      "target_name": "tapio_netlink",
      "sources": ["src/netlink_addon.cc", "src/netlink_socket.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra"]
    }
  ]
}
