/**
 * First in, first out, on one array: `shift` is O(1) (a head index, not Array#shift's copy); the
 * taken head is dropped once it holds over compactAt entries and over half of the array.
 */
export class Fifo<T> {
  private items: Array<T | undefined> = []
  private head = 0

  constructor(private readonly compactAt: number) {}

  get size(): number {
    return this.items.length - this.head
  }

  push(item: T): void {
    this.items.push(item)
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]
    this.items[this.head++] = undefined
    if (this.head > this.compactAt && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head)
      this.head = 0
    }
    return item
  }

  /** What is still queued, oldest first. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i]!
  }
}
