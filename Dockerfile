# syntax=docker/dockerfile:1
#
# Postern's container image: a build stage (npm ci compiles TypeScript through `prepare`), then a
# slim runtime stage with only dist/, production node_modules, package.json and config/.
#
#   docker build -t postern:0.1.0 .
#   docker run --rm -p 8443:8443 -p 9464:9464 -v postern-certs:/app/certs postern:0.1.0
#
# Deployment notes (compose, Kubernetes, load balancers, PKI sharing): deploy/README.md.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src

# `npm ci` runs the `prepare` script (tsc -p tsconfig.build.json -> dist/), so the sources and
# both tsconfig files must be in place before it.
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && test -f dist/cli/main.js && test -f dist/main.js

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
COPY --from=build /src/node_modules ./node_modules
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
# data:  embedded mode's message files (JSON lines, fsynced); unused in Redis mode.
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
