/**
 * A TCP proxy in front of one NATS server, to cut one client (a Parley node) off NATS while
 * the rest of the cluster runs on: `cut()` closes its connections and refuses new ones until
 * `heal()`. The server's first INFO loses its `connect_urls`, so that the client does not learn
 * the cluster's other servers and go round the cut.
 */

const CRLF = new TextEncoder().encode("\r\n");

export class NatsProxy {
  readonly #conns = new Set<Deno.Conn>();
  #open = true;

  private constructor(readonly listener: Deno.TcpListener, readonly target: URL) {
    void this.#accept();
  }

  /** A proxy to the NATS server at `url` (nats://host:port) on a free loopback port. */
  static start(url: string): NatsProxy {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return new NatsProxy(listener, new URL(url.replace(/^nats:/, "http:")));
  }

  get url(): string {
    return `nats://127.0.0.1:${(this.listener.addr as Deno.NetAddr).port}`;
  }

  /** Closes every connection through the proxy and refuses new ones. */
  cut(): void {
    this.#open = false;
    for (const c of this.#conns) close(c);
    this.#conns.clear();
  }

  heal(): void {
    this.#open = true;
  }

  close(): void {
    this.cut();
    this.listener.close();
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.listener) {
        if (!this.#open) {
          close(client);
          continue;
        }
        void this.#pair(client);
      }
    } catch { /* the listener closed */ }
  }

  async #pair(client: Deno.Conn): Promise<void> {
    let server: Deno.Conn;
    try {
      server = await Deno.connect({
        hostname: this.target.hostname,
        port: Number(this.target.port),
      });
    } catch {
      close(client);
      return;
    }
    this.#conns.add(client);
    this.#conns.add(server);
    const done = () => {
      close(client);
      close(server);
      this.#conns.delete(client);
      this.#conns.delete(server);
    };
    void copy(client, server).finally(done);
    void copyWithoutUrls(server, client).finally(done);
  }
}

function close(c: Deno.Conn): void {
  try {
    c.close();
  } catch { /* closed already */ }
}

async function copy(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  try {
    await from.readable.pipeTo(to.writable, { preventClose: true });
  } catch { /* either side closed */ }
}

/** Copies the server's bytes, the first line (its INFO) without `connect_urls`. */
async function copyWithoutUrls(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const writer = to.writable.getWriter();
  let head: Uint8Array | null = new Uint8Array(0);
  try {
    for await (const chunk of from.readable) {
      if (head === null) {
        await writer.write(chunk);
        continue;
      }
      const joined: Uint8Array = new Uint8Array(head.length + chunk.length);
      joined.set(head);
      joined.set(chunk, head.length);
      const end = indexOf(joined, CRLF);
      if (end < 0) {
        head = joined;
        continue;
      }
      const line = new TextDecoder().decode(joined.subarray(0, end));
      const info = JSON.parse(line.slice("INFO ".length));
      delete info.connect_urls;
      await writer.write(new TextEncoder().encode(`INFO ${JSON.stringify(info)}`));
      await writer.write(joined.subarray(end));
      head = null;
    }
  } catch { /* either side closed */ }
}

function indexOf(bytes: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
