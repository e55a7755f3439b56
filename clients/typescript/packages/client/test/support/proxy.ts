// A TCP relay between a client and the real server, whose cut() drops every connection at
// once: a network failure in the middle of a stream, without touching the server.
import { createServer, connect, type Server, type Socket } from "node:net";

export class Proxy {
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  /** How many connections clients opened through it. */
  connections = 0;

  constructor(private readonly target: string) {}

  async start(): Promise<string> {
    const [host, port] = splitAddress(this.target);
    this.server = createServer((client) => {
      this.connections += 1;
      const upstream = connect(port, host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => socket.destroy());
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    if (address === null || typeof address === "string") throw new Error("the proxy has no port");
    return `127.0.0.1:${address.port}`;
  }

  /** Drops every open connection (new ones still go through). */
  cut(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(":");
  return [address.slice(0, colon), Number(address.slice(colon + 1))];
}
