import { NextCallBatcher } from '../../concurrency/next-call-batcher.js';

export interface StreamBounds {
  firstSeq: number;
  lastSeq: number;
}

/**
 * Stream bounds for many concurrent resumes from few server calls, each
 * answer read after it was asked for (a resume's seam needs bounds read
 * after it registered its live buffers).
 */
export class CoalescedBounds {
  private readonly batcher: NextCallBatcher<'bounds', StreamBounds>;

  constructor(fetch: () => Promise<StreamBounds>) {
    this.batcher = new NextCallBatcher(
      async () => new Map([['bounds', await fetch()]]),
      () => {
        throw new Error('stream bounds missing from the answer');
      },
    );
  }

  /** Bounds from a server call issued after this method was called. */
  read(): Promise<StreamBounds> {
    return this.batcher.load('bounds');
  }
}
