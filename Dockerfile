# Sextant server image. Build: `docker build -t sextant .`; docker-compose.yml builds it too.
# Stage 1 builds the web console's bundle (esbuild and the front-end libraries are dev
# dependencies, so they stay in that stage); stage 2 installs production dependencies only
# (nothing at start-up); stage 3 copies both with the sources and runs as the unprivileged
# `node` user.
FROM node:22-bookworm-slim AS console
WORKDIR /app
COPY package.json package-lock.json ./
COPY console ./console
# npm's prepare script (console/build.mjs) builds dist/console.
RUN npm ci --no-audit --no-fund && test -s dist/console/index.html

FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:22-bookworm-slim
ENV NODE_ENV=production GRAPHILE_ENV=production HOST=0.0.0.0 PORT=4000 SEXTANT_DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=console /app/dist/console ./dist/console
COPY package.json .gmrc ./
COPY bin ./bin
COPY src ./src
COPY sql ./sql
COPY migrations ./migrations
COPY data ./data
# The CLI's bundle (dist/cli, esbuild from tsx) is built now: /app is not writable by `node`.
RUN node bin/sextant.mjs --help > /dev/null && test -s dist/cli/sextant.mjs \
  && mkdir -p /data && chown node:node /data
USER node
EXPOSE 4000
# Node's own fetch: the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "bin/sextant.mjs", "serve"]
