/**
 * Where tests and .ci/run keep what is slow to fetch or make and safe to reuse (promtool from
 * Debian's prometheus package, deploy/base-image.sh's root filesystem tarball):
 * $POSTERN_CACHE_DIR, default /var/cache/postern-test, the same default as deploy/base-image.sh.
 */
export const CACHE_DIR = process.env.POSTERN_CACHE_DIR || "/var/cache/postern-test";
