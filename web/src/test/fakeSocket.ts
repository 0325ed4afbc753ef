// A stand-in for the browser WebSocket, driven by the test.

export class FakeSocket {
  static instances: FakeSocket[] = [];
  readyState = 0;
  sent: unknown[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;

  constructor(readonly url: string) {
    FakeSocket.instances.push(this);
  }

  static reset(): void {
    FakeSocket.instances = [];
  }

  static last(): FakeSocket {
    const s = FakeSocket.instances[FakeSocket.instances.length - 1];
    if (!s) throw new Error("no socket created");
    return s;
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }

  close(): void {
    this.readyState = 3;
  }

  // ---- driven by tests ----

  open(): void {
    this.readyState = 1;
    this.onopen?.();
  }

  receive(msg: unknown): void {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }

  /** The hub went away. */
  drop(): void {
    this.readyState = 3;
    this.onclose?.();
  }
}

export function fakeSocketFactory(url: string): WebSocket {
  return new FakeSocket(url) as unknown as WebSocket;
}

/** A frame scheduler the test runs by hand. */
export function manualScheduler() {
  let next = 1;
  const pending = new Map<number, () => void>();
  return {
    frame: (cb: () => void) => {
      const h = next++;
      pending.set(h, cb);
      return h;
    },
    cancelFrame: (h: number) => void pending.delete(h),
    now: () => Date.now(),
    runFrame: () => {
      const cbs = [...pending.values()];
      pending.clear();
      for (const cb of cbs) cb();
    },
    get pendingFrames() {
      return pending.size;
    },
  };
}
