# tapio-agent node image. Not built in this repository's CI (no Docker engine there): see docs/deploy.md.
#
#   docker build -t ghcr.io/tapio/tapio-agent:0.1.0 .
#
# The BPF programs are CO-RE: vmlinux.h is generated from the *build host's* /sys/kernel/btf/vmlinux
# (Docker build containers see the host's sysfs) and the object runs on any kernel with BTF.

FROM node:20-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang llvm libbpf-dev libelf-dev bpftool python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Build the addon against this image's Node headers instead of downloading them.
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json ./
# Scripts off: the package's install hook builds the addon, which needs the sources copied below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY native ./native
# Unlike `npm install`, the image build must fail when the addon cannot be built.
RUN rm -rf native/build native/bpf/.out && FORCE_NATIVE_BUILD=1 bash scripts/build-native.sh --pack
COPY src ./src
COPY machines ./machines
COPY examples ./examples
COPY bench ./bench
COPY test ./test
# effect and xstate are peer dependencies (dev dependencies of this repository): keep the locked
# copies through the prune, which drops everything dev.
RUN npx tsc -p tsconfig.json \
 && mkdir /peers && cp -r node_modules/effect node_modules/xstate /peers/ \
 && npm prune --omit=dev --no-audit --no-fund \
 && cp -r /peers/effect /peers/xstate node_modules/ \
 && node -e "import('/app/dist/src/index.js')"

FROM node:20-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libbpf1 libelf1 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/native/build/Release/tapio_bpf.node /app/native/build/Release/tapio_netlink.node ./native/build/Release/
COPY --from=build /app/src/inspector/static ./src/inspector/static
# Root: the capabilities the DaemonSet adds are only effective for uid 0 without file capabilities.
USER 0
# The same Node.js flags as the CLI's shebang (docs/performance.md, Footprint).
ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/dist/src/agent/cli.js"]
# Without --config the embedded default runs every collector this node supports (enabled: auto);
# the DaemonSet passes --config /etc/tapio/agent.yaml from its ConfigMap.
CMD ["run"]
