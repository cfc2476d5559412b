# Postern's container image: a build stage (npm ci, then tsc -> dist/), then a slim runtime stage
# with only dist/, production node_modules, package.json and config/.
#
#   docker build -t postern:0.1.0 .
#   docker run --rm --read-only --tmpfs /tmp -p 8443:8443 -p 9464:9464 \
#     -v postern-certs:/app/certs -v postern-data:/app/data postern:0.1.0
#
# It builds with the legacy builder and with BuildKit alike, and fetches no frontend image: no
# `# syntax=` line and no `RUN --mount` (an offline or buildx-less Docker has neither).
#
# Build arguments and optional context files:
#   NODE_IMAGE    the base of both stages: a Debian bookworm image with node 20 and npm on PATH and
#                 groupadd/useradd (default node:20-bookworm-slim). Offline, make one from this
#                 machine's node with deploy/base-image.sh and pass NODE_IMAGE=postern-base:local.
#   build-ca.pem  (a file in the build context, git-ignored, absent by default) the CA bundle of a
#                 TLS-intercepting proxy between the build and the npm registry, for example
#                 `cp "$(npm config get cafile)" build-ca.pem`. Only npm in the build stage uses
#                 it; it never reaches the runtime image. Never put a private key in the context.
#
# Deployment notes (compose, Kubernetes, load balancers, PKI sharing): deploy/README.md.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
ENV npm_config_update_notifier=false

# Dependencies first, in a layer of their own, so a change under src/ reuses them from the cache
# (the legacy builder has no cache mounts). `build-ca.pe[m]` is a pattern, so the COPY succeeds
# without the file; when it is there, a project .npmrc of the build stage points npm at it.
# The production tree is installed on its own (from the lockfile, as `npm prune --omit=dev`
# would leave it, but without deleting 260 packages on an overlay filesystem), then the full
# tree for tsc. Scripts: `prepare` (tsc) needs src/, not here yet, so --ignore-scripts, and
# `npm rebuild` runs the production dependencies' own install scripts; the dev tree needs none
# for tsc (esbuild's, for tsx, only checks its binary).
COPY package.json package-lock.json build-ca.pe[m] ./
RUN if [ -s build-ca.pem ]; then echo "cafile=/src/build-ca.pem" > .npmrc; fi \
 && npm ci --omit=dev --no-audit --no-fund --ignore-scripts \
 && npm rebuild \
 && mkdir /runtime && mv node_modules /runtime/node_modules \
 && npm ci --no-audit --no-fund --ignore-scripts

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && test -f dist/cli/main.js && test -f dist/main.js

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime

# A dedicated unprivileged user with a fixed numeric id, so Kubernetes' runAsNonRoot can check it
# and a volume's ownership can be set to it (deploy/kubernetes uses 10001 too).
RUN groupadd --system --gid 10001 postern \
 && useradd --system --uid 10001 --gid postern --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin postern

WORKDIR /app

# Code and defaults belong to root and are read-only for the runtime user; only the PKI
# directory and the embedded-mode data directory are writable by it.
COPY --from=build /src/package.json ./package.json
COPY --from=build /runtime/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY config ./config
RUN mkdir -p /app/certs /app/data \
 && chown postern:postern /app/certs /app/data \
 && chmod 0700 /app/certs

# Listener addresses. The defaults bind the admin (8444) and public/metrics (9464) listeners to
# 127.0.0.1, which inside a container is reachable only from the container itself: Prometheus
# could not scrape /metrics, a load balancer or kubelet could not probe /readyz, and operators
# could not reach the admin API through a published port. So the image binds all three to
# 0.0.0.0. The admin plane still requires mutual TLS with the `admin` role; do not publish 8444
# (or 9464, which is unauthenticated) on a public load balancer. Override per deployment, e.g.
# POSTERN_ADMIN_HOST=127.0.0.1 to keep the admin API reachable only via `kubectl port-forward`.
ENV NODE_ENV=production \
    POSTERN_DATA_HOST=0.0.0.0 \
    POSTERN_ADMIN_HOST=0.0.0.0 \
    POSTERN_PUBLIC_HOST=0.0.0.0

# data plane (mTLS), admin plane (mTLS, role admin), public + metrics (plain HTTP)
EXPOSE 8443 8444 9464

# certs: PKI material, bootstrapped on first start when it holds no CA; must be the same for every
#        replica (shared volume or a Kubernetes Secret, see deploy/README.md).
# data:  embedded mode's message files (JSON lines, fsynced) and, in both modes, the instance's
#        audit log (data/audit.jsonl).
# These two are all Postern writes, so the root filesystem can be read-only: `docker run
# --read-only --tmpfs /tmp` (the tmpfs only for tools run with `docker exec`), Kubernetes'
# readOnlyRootFilesystem (deploy/kubernetes), compose's read_only.
VOLUME ["/app/certs", "/app/data"]

USER 10001:10001

# No curl in the slim image: Node 20's fetch does the probe. /healthz answers 200 while the
# process runs; readiness (/readyz) is for load balancers and orchestrators, not for restarts.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.POSTERN_PUBLIC_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Postern handles SIGTERM itself (stops accepting, drains in-flight requests for
# shutdown.drainTimeoutSeconds, exits 0), so node can run as PID 1.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["start"]
