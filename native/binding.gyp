{
  # tapio_bpf is built only when native/bpf/prebuild.sh produced its skeleton (clang, bpftool,
  # libbpf-dev present); other targets of the addon do not depend on it.
  "variables": {
    "have_bpf_skeleton": "<!(test -f bpf/.out/tapio.skel.h && echo 1 || echo 0)"
  },
  "conditions": [
    ["have_bpf_skeleton==1", {
      "targets": [
        {
          "target_name": "tapio_bpf",
          "sources": ["src/bpf_addon.cc", "src/bpf_session.cc", "src/bpf_loader.cc"],
          "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "bpf/.out"],
          "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
          "cflags_cc": ["-std=c++17", "-O2", "-Wall"],
          "libraries": ["-lbpf", "-lelf", "-lz"],
          "defines": ["NAPI_VERSION=8"]
        }
      ]
    }]
  ]
}
