# AgentMesh relay: `docker build -t agentmesh .` then
# `docker run -p 7777:7777 -v agentmesh-data:/data agentmesh` (SQLite in /data),
# or with --store/--backplane for a cluster: deploy/compose.yaml.
# Multi-stage: the build stage compiles better-sqlite3 (no prebuilt download) and bundles the CLI;
# the runtime stage has no compiler, runs as the unprivileged `node` user, and says when it is healthy.

FROM node:20.19-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY scripts ./scripts
COPY packages ./packages
COPY bench/package.json ./bench/package.json
# npm ci runs `prepare`: the CLI bundle (packages/cli/dist); then the dev tools go
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf packages/*/test bench

FROM node:20.19-bookworm-slim
ENV NODE_ENV=production \
    AGENTMESH_HOST=0.0.0.0 \
    AGENTMESH_INSECURE=1 \
    AGENTMESH_PORT=7777 \
    AGENTMESH_DATA=/data
WORKDIR /app
COPY --from=build --chown=root:root /app /app
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 7777
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||process.env.AGENTMESH_PORT||7777)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "packages/cli/bin/agentmesh.js"]
CMD ["serve"]
