/**
 * Generator side of the connection phases, on raw node:tls sockets:
 * - handshakes: a new mTLS connection per handshake and no request: handshake, close, wait for
 *   the server to close too; with `resume`, each connection offers a session ticket from an
 *   earlier connection, as a client with a session cache would;
 * - idle: many connections, one signed message each, then left open so the server's resident
 *   memory per idle connection can be read.
 * Connections are spread over several 127.0.0.x source addresses (per-address caps, ports).
 */
import { connect, createSecureContext, type SecureContext, type TLSSocket } from "node:tls";
import { PosternClient } from "../../src/client/index.js";
import { completeResponseStatus, messageBody, rawHttpRequest } from "./messages.js";
import type { ClientMaterial, TargetAddress } from "./protocol.js";
import type { PreparedPhase } from "./load-keep-alive.js";

/** How long a connection that wants a ticket waits for one (a server may send none). */
const TICKET_WAIT_MS = 1000;
const CLOSE_WAIT_MS = 5000;

/** Where and how the connection phases dial: one client TLS context, source addresses in turn. */
export interface Dialer {
  target: TargetAddress;
  context: SecureContext;
  sources: string[];
  dialed: number;
}

function dial(dialer: Dialer, session?: Buffer): TLSSocket {
  const localAddress = dialer.sources.length ? dialer.sources[dialer.dialed++ % dialer.sources.length] : undefined;
  return connect({
    host: dialer.target.host,
    port: dialer.target.port,
    secureContext: dialer.context,
    ALPNProtocols: ["http/1.1"],
    ...(localAddress ? { localAddress } : {}),
    ...(session ? { session } : {}),
  });
}

/**
 * One connection: handshake (offering `session` if given), then close_notify and FIN, resolved
 * once the server has closed its side too. The server reads the client's Finished before that
 * close_notify, so when the connection is closed it has done all of its handshake work
 * (verification, and for Postern admission) even though no request was sent. With `wantTicket`,
 * waits for the server's session ticket first (TLS 1.3 sends it after the handshake).
 */
function handshakeOnce(dialer: Dialer, options: { session?: Buffer; wantTicket?: boolean } = {}): Promise<{ reused: boolean; cipher: string; ticket?: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = dial(dialer, options.session);
    let ticket: Buffer | undefined;
    let secure = false;
    let closing = false;
    const close = () => {
      if (closing) return;
      closing = true;
      clearTimeout(timer);
      const outcome = { reused: socket.isSessionReused(), cipher: `${socket.getProtocol()} ${socket.getCipher().name}`, ...(ticket ? { ticket } : {}) };
      const closeTimer = setTimeout(() => socket.destroy(), CLOSE_WAIT_MS);
      socket.once("close", () => {
        clearTimeout(closeTimer);
        resolve(outcome);
      });
      socket.end();
    };
    const timer = setTimeout(() => socket.destroy(new Error("handshake timed out")), 10_000);
    socket.on("session", (s: Buffer) => {
      ticket = s;
      if (secure) close();
    });
    socket.once("secureConnect", () => {
      secure = true;
      clearTimeout(timer);
      if (!options.wantTicket || ticket) close();
      else setTimeout(close, TICKET_WAIT_MS);
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      if (!closing) reject(error);
      closing = true;
    });
    socket.resume();
  });
}

/** A dialer for `target` with the client's certificate chain, key and CA bundle, rotating over `sources`. */
export function dialerFor(material: ClientMaterial, target: TargetAddress, sources: string[]): Dialer {
  return { target, context: createSecureContext({ cert: material.certPem, key: material.keyPem, ca: material.caPem }), sources, dialed: 0 };
}

/** `concurrency` loops of new connections; with `resume`, each loop first gets a ticket (untimed). */
export async function prepareHandshakes(dialer: Dialer, count: number, concurrency: number, resume: boolean): Promise<PreparedPhase> {
  const tickets: Array<Buffer | undefined> = [];
  for (let loop = 0; loop < concurrency; loop++) tickets.push(resume ? (await handshakeOnce(dialer, { wantTicket: true })).ticket : undefined);
  return {
    close: async () => undefined,
    run: async () => {
      const cpu = process.cpuUsage();
      const started = performance.now();
      let next = 0;
      let completed = 0;
      let failed = 0;
      let resumed = 0;
      let firstFailure: string | undefined;
      let cipher: string | undefined;
      await Promise.all(
        tickets.map(async (ticket) => {
          while (next++ < count) {
            try {
              // Node's server sends no new ticket on a resumed TLS 1.3 connection: the loop's
              // one ticket is offered again, as a client's session cache would.
              const outcome = await handshakeOnce(dialer, ticket ? { session: ticket } : {});
              completed += 1;
              if (outcome.reused) resumed += 1;
              cipher ??= outcome.cipher;
            } catch (error) {
              failed += 1;
              firstFailure ??= (error as Error).message;
            }
          }
        }),
      );
      const used = process.cpuUsage(cpu);
      return {
        completed,
        failed,
        resumed,
        ...(firstFailure ? { firstFailure } : {}),
        ...(cipher ? { cipher } : {}),
        elapsedSeconds: (performance.now() - started) / 1000,
        generatorCpuSeconds: (used.user + used.system) / 1e6,
      };
    },
  };
}

/** Opens a connection, sends one request and resolves once its answer is complete; the socket stays open. */
function openIdle(dialer: Dialer, request: Buffer): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = dial(dialer);
    let seen = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(new Error("no answer within 30 s")), 30_000);
    socket.once("secureConnect", () => socket.write(request));
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const status = completeResponseStatus(seen);
      if (status === undefined) return;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.on("data", () => undefined);
      if (status === 202) resolve(socket);
      else {
        socket.destroy();
        reject(new Error(`status ${status}: ${seen.toString("latin1").slice(0, 300)}`));
      }
    };
    socket.on("data", onData);
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Idle connections held across "idle" phases until the next "release". */
export type IdlePool = Set<TLSSocket>;

/**
 * Opens `count` more idle connections into `pool` when run (its result counts every connection
 * of the pool still open); `close` ends every connection of the pool.
 */
export function prepareIdle(dialer: Dialer, material: ClientMaterial, pool: IdlePool, count: number, concurrency: number, bodyBytes: number): PreparedPhase {
  const signer = new PosternClient({ url: `https://${dialer.target.host}:${dialer.target.port}`, cert: material.certPem, key: material.keyPem, ca: material.caPem });
  const run = `idle-${process.pid}-${Date.now()}`;
  const requests = Array.from({ length: count }, (_, i) => rawHttpRequest(signer.prepare(dialer.target.path, messageBody(run, i, bodyBytes))));
  void signer.close();
  return {
    run: async () => {
      const cpu = process.cpuUsage();
      const started = performance.now();
      let next = 0;
      let failed = 0;
      let firstFailure: string | undefined;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          for (let i = next++; i < count; i = next++) {
            try {
              const socket = await openIdle(dialer, requests[i]!);
              pool.add(socket);
              socket.once("close", () => pool.delete(socket));
            } catch (error) {
              failed += 1;
              firstFailure ??= (error as Error).message;
            }
          }
        }),
      );
      const used = process.cpuUsage(cpu);
      return {
        completed: pool.size,
        failed,
        ...(firstFailure ? { firstFailure } : {}),
        elapsedSeconds: (performance.now() - started) / 1000,
        generatorCpuSeconds: (used.user + used.system) / 1e6,
      };
    },
    close: async () => {
      await Promise.all(
        [...pool].map((socket) => new Promise<void>((resolve) => {
          socket.once("close", () => resolve());
          socket.destroy();
        })),
      );
      pool.clear();
    },
  };
}
