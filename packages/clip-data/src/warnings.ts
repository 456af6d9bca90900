import type { WarningSink } from './types.js';

/** Where warnings go when the caller gives no sink: Node's warning channel, filterable by type. */
export const defaultWarn: WarningSink = (message) => process.emitWarning(message, { type: 'ClipDataWarning' });
