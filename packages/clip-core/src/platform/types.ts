/** What initBackend needs from the platform it runs on (resolved through package.json `imports` #platform). */
export interface Platform {
  readonly name: 'node' | 'browser';
  /** Names a user may ask for here, `auto` first (parseBackendName's list). */
  readonly names: readonly string[];
  /** `auto`'s order of preference. */
  readonly autoOrder: readonly string[];
  /** The backend named by the environment (Node: $CLIP_BACKEND), if any. */
  envBackend(): { value: string; source: string } | undefined;
  /** Load and set a platform-specific backend; undefined when `name` is not one of this platform's own. */
  activator(name: string): (() => Promise<void>) | undefined;
}
