// One HTTP/2 connection to a server, speaking gRPC: TLS, the bearer token, and closing.
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import type { SecureClientSessionOptions } from "node:http2";

/** TLS settings: `true` for the system's root certificates, or PEM texts of your own. */
export type TlsOptions =
  | boolean
  | {
      /** Root certificates to trust (PEM), in place of the system's. */
      ca?: string | Buffer;
      /** A client certificate (PEM) for servers that ask for one, with its key. */
      cert?: string | Buffer;
      key?: string | Buffer;
      /** The name to check the server's certificate against, when not the address's host. */
      serverName?: string;
    };

export interface ConnectionOptions {
  /**
   * The bearer token sent with every call and stream (`authorization: Bearer <token>`), for a
   * server started with --auth-tokens. Defaults to the WORKFLOWSTATE_TOKEN environment variable.
   */
  token?: string;
  /** TLS (see TlsOptions); plaintext when false or omitted. */
  tls?: TlsOptions;
}

/** Whether `address` (host:port) stays on this machine: localhost, 127.0.0.0/8 or ::1. */
export function isLoopbackAddress(address: string): boolean {
  let host = address;
  if (address.startsWith("[")) host = address.slice(1, address.indexOf("]"));
  else if (address.split(":").length === 2) host = address.split(":")[0];
  const name = host.toLowerCase();
  if (name === "localhost" || name.endsWith(".localhost") || name === "::1") return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

// Addresses already warned about: the warning is said once per address in a process.
const warnedAddresses = new Set<string>();

/** Warns (process.emitWarning, type InsecureTokenWarning) when a token would go without TLS to another machine. */
function warnIfTokenInClear(address: string, token: string | undefined, tls: TlsOptions | undefined): void {
  if (!token || tls || isLoopbackAddress(address) || warnedAddresses.has(address)) return;
  warnedAddresses.add(address);
  process.emitWarning(
    `the token is sent without TLS to ${address}, which is not this machine: anyone on the network can read it; ` +
      "pass tls (true or certificates), or reach the server over 127.0.0.1",
    { type: "InsecureTokenWarning", code: "WORKFLOWSTATE_INSECURE_TOKEN" },
  );
}

export class Connection {
  readonly transport: Transport;
  private readonly sessions: Http2SessionManager;

  constructor(address: string, options: ConnectionOptions) {
    const url = `${options.tls ? "https" : "http"}://${address}`;
    const nodeOptions: SecureClientSessionOptions = {};
    if (typeof options.tls === "object") {
      if (options.tls.ca !== undefined) nodeOptions.ca = options.tls.ca;
      if (options.tls.cert !== undefined) nodeOptions.cert = options.tls.cert;
      if (options.tls.key !== undefined) nodeOptions.key = options.tls.key;
      if (options.tls.serverName !== undefined) nodeOptions.servername = options.tls.serverName;
    }
    // Pings keep a quiet connection (a worker waiting for tasks) known to be alive.
    this.sessions = new Http2SessionManager(url, { pingIntervalMs: 30_000, pingTimeoutMs: 10_000 }, nodeOptions);
    const token = options.token ?? process.env.WORKFLOWSTATE_TOKEN;
    warnIfTokenInClear(address, token, options.tls);
    const interceptors: Interceptor[] = [];
    if (token) {
      interceptors.push((next) => (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      });
    }
    this.transport = createGrpcTransport({ baseUrl: url, sessionManager: this.sessions, interceptors });
  }

  /** Ends the connection; calls in flight fail. */
  close(): void {
    this.sessions.abort();
  }
}
