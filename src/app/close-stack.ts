/** Something the app opened: it is closed (or stopped) once, in reverse order of opening. */
export type Closable = { close(): Promise<unknown> } | { stop(): Promise<unknown> };

/**
 * What the composition root has opened so far. A start that fails part-way closes what it had
 * opened, or the process would hang on open handles; a stop closes all of it, newest first.
 */
export class CloseStack {
  private readonly items: Closable[] = [];

  push<T extends Closable>(item: T): T {
    this.items.push(item);
    return item;
  }

  /** Closes everything, newest first; one that fails does not keep the others open. */
  async closeAll(): Promise<void> {
    for (const item of this.items.splice(0).reverse()) {
      await ("close" in item ? item.close() : item.stop()).catch(() => undefined);
    }
  }

  /** Runs `build`; when it throws, closes what was opened and rethrows. */
  async unwindOnError<T>(build: () => Promise<T>): Promise<T> {
    try {
      return await build();
    } catch (error) {
      await this.closeAll();
      throw error;
    }
  }
}
