# syntax=docker/dockerfile:1
#
# The transcription gateway image: one image for every role (APP_ROLE=api|worker|all) and for
# the migration one-shot. Built from the repository root:
#
#   docker build -t transcription-gateway .
#
# The GPU engines are separate images (engines/whisper-rocm, engines/whisperx, the Riva NIM);
# only the embedded CPU engine (pocketsphinx) and ffmpeg live in this one.

# ---- build: compile TypeScript, then keep production dependencies only ----------------------
FROM node:20.19-bookworm-slim AS build
WORKDIR /app
# @scarf/scarf (pulled in by swagger-ui-dist) reports installs over the network unless told not to.
# onnxruntime-node (Silero VAD, docs/vad.md) bundles its CPU binaries, but its postinstall also
# downloads the CUDA provider (hundreds of MB, never used here) from api.nuget.org, and fails the
# install where that host is unreachable: ONNXRUNTIME_NODE_INSTALL=skip.
ENV SCARF_ANALYTICS=false \
    npm_config_update_notifier=false \
    ONNXRUNTIME_NODE_INSTALL=skip

COPY package.json package-lock.json ./
# `npm install` with the committed lock rather than `npm ci`: npm ci rejects the lock as out of
# sync on registries and mirrors that lack some other-platform optional builds (for example
# msgpackr-extract for darwin), while npm install resolves the same locked versions for this
# platform and leaves the lock alone. onnxruntime-node carries the binaries of every OS and CPU
# (≈250 MB): only this platform's stay (what its binding.js loads: bin/napi-v6/<platform>/<arch>).
RUN npm install --no-audit --no-fund \
 && node -e "const fs = require('fs'), dir = 'node_modules/onnxruntime-node/bin/napi-v6'; for (const os of fs.readdirSync(dir)) for (const arch of fs.readdirSync(dir + '/' + os)) if (os !== process.platform || arch !== process.arch) fs.rmSync(dir + '/' + os + '/' + arch, { recursive: true })"

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
# Migrations are compiled into dist/migrations next to dist/src (data-source.ts lists them).
RUN npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime ---------------------------------------------------------------------------------
FROM node:20.19-bookworm-slim AS runtime

# ffmpeg/ffprobe decode every upload to 16 kHz mono PCM; pocketsphinx (+ its US English model)
# is the embedded CPU engine. Debian's packages, as on the development machines.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg pocketsphinx pocketsphinx-en-us ca-certificates \
 && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production \
    PORT=8000 \
    HOST=0.0.0.0 \
    DATA_DIR=/data/storage \
    TEMP_DIR=/tmp/transcription-gateway

WORKDIR /app
# package.json carries "type": "module", which Node needs to load dist/ as ES modules.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The Riva adapter loads its .proto files at run time (found by walking up from dist/).
COPY proto ./proto
# The web page served at / by the api role.
COPY public ./public

# The code stays root-owned and read-only to the service; only the data and scratch
# directories belong to the unprivileged `node` user (uid 1000) of the base image.
RUN mkdir -p /data/storage /tmp/transcription-gateway \
 && chown -R node:node /data /tmp/transcription-gateway
USER node

EXPOSE 8000

# GET /health checks Postgres and Redis. A worker (APP_ROLE=worker) serves no HTTP: compose
# gives it its own check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# Migrations run once per deployment, before api and workers (the compose `migrate` service):
#   node node_modules/typeorm/cli.js migration:run -d dist/src/database/data-source.js
CMD ["node", "dist/src/main.js"]
