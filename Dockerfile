# syntax=docker/dockerfile:1
# pond-backend for Fly.io. Three stages: dependencies (cached on the lockfile), build (tsc, then esbuild bundles),
# runtime (the bundles only: no node_modules, no pnpm, no compiler, not root).
# test/image.test.ts rehearses this file without Docker: it runs these pnpm RUN lines and this CMD.

# One pin for both the build and the runtime, so native modules are built for the Node that runs them.
ARG NODE_VERSION=26.10.0

FROM node:${NODE_VERSION}-slim AS base
# Corepack is not usable here (and leaves the images from Node 25 on): pin pnpm with npm.
RUN npm i -g pnpm@12.21.0
WORKDIR /app

FROM base AS dependencies
# The lockfile alone decides what is fetched, so this layer survives every source change. pnpm-workspace.yaml holds
# allowBuilds and the kysely override, which the lockfile was resolved with.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch
COPY package.json ./
# Dev dependencies too: the build needs typescript.
RUN pnpm install --offline --frozen-lockfile

FROM dependencies AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts ./scripts
# Emits dist/server.mjs (the server, bundled into one file), dist/scripts/{migrate,doctor,user-admin}.js (bundled
# too; migrate.js is fly.toml's release_command) and dist/swagger-ui (the API reference page's files).
RUN pnpm build

FROM node:${NODE_VERSION}-slim AS runtime
# production turns on the required-variable checks (DATABASE_URL, BETTER_AUTH_SECRET, BETTER_AUTH_URL) and JSON logs.
ENV NODE_ENV=production
# fly.toml's internal_port; Fly's [env] sets it too, this keeps `docker run -p 8080:8080` working.
ENV PORT=8080
WORKDIR /app
# Owned by root and read-only to the app: a compromised process cannot rewrite its own code. package.json makes
# dist/*.js ES modules ("type": "module") and marks the project root. Every dependency is inside the bundles.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/dist/server.mjs ./dist/
COPY --from=build /app/dist/scripts ./dist/scripts
COPY --from=build /app/dist/swagger-ui ./dist/swagger-ui
# The node image's unprivileged user.
USER node
EXPOSE 8080
# Exec form, node itself as the process: SIGTERM from Fly reaches the server's graceful shutdown (no shell, no pnpm
# in between). Fly runs its own init as PID 1, so no tini.
CMD ["node", "dist/server.mjs"]
