// Requests run one at a time, in the order they arrived (the worker runs one generation at a
// time). A request is known by its id together with the window that sent it.
import type { RequestId } from './protocol';

export interface QueuedJob {
  id: RequestId;
  /** The window that sent the request (event.source): two hosts may use the same ids. */
  source: unknown;
}

export type InterruptOutcome<J> = { was: 'running'; job: J } | { was: 'queued'; job: J } | { was: 'unknown' };

export class SerialQueue<J extends QueuedJob> {
  private readonly waiting: J[] = [];
  private running: J | undefined;

  /** `run` never rejects on purpose; a rejection is logged and the queue moves on. */
  constructor(
    private readonly run: (job: J) => Promise<void>,
    private readonly onChange: () => void = () => {},
  ) {}

  get size(): number {
    return this.waiting.length;
  }

  get current(): J | undefined {
    return this.running;
  }

  has(source: unknown, id: RequestId): boolean {
    return [this.running, ...this.waiting].some((job) => job !== undefined && job.source === source && job.id === id);
  }

  add(job: J): void {
    this.waiting.push(job);
    this.onChange();
    void this.pump();
  }

  /** A queued job is dropped (the caller tells its host); a running one is the caller's to stop. */
  interrupt(source: unknown, id: RequestId): InterruptOutcome<J> {
    if (this.running && this.running.source === source && this.running.id === id) return { was: 'running', job: this.running };
    const index = this.waiting.findIndex((job) => job.source === source && job.id === id);
    if (index < 0) return { was: 'unknown' };
    const [job] = this.waiting.splice(index, 1);
    this.onChange();
    return { was: 'queued', job };
  }

  /** Empties the queue (the page is going away); returns what was waiting. */
  drain(): J[] {
    const dropped = this.waiting.splice(0);
    this.onChange();
    return dropped;
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    while (this.waiting.length > 0) {
      this.running = this.waiting.shift()!;
      this.onChange();
      try {
        await this.run(this.running);
      } catch (error) {
        console.error('flamingo-web embed: a request failed unexpectedly', error);
      }
      this.running = undefined;
      this.onChange();
    }
  }
}
