// How the adapter's classes are constructed: like Pikku's own backends, from an address and
// options, or over a client you already have.
import { type TlsOptions, WorkflowStateClient } from "@workflowstate/client";

export interface WorkflowStateConnectOptions {
  /** The bearer token of a server started with --auth-tokens (default: WORKFLOWSTATE_TOKEN). */
  token?: string;
  /** TLS: true for the system's roots, or { ca, cert, key } PEM texts. */
  tls?: TlsOptions;
  /** The deadline of each call in ms (default 30 000). */
  timeoutMs?: number;
}

export function clientOf(target: string | WorkflowStateClient, options: WorkflowStateConnectOptions): WorkflowStateClient {
  return typeof target === "string"
    ? new WorkflowStateClient(target, { token: options.token, tls: options.tls, timeoutMs: options.timeoutMs })
    : target;
}
