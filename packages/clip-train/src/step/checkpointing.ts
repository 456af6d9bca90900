import type { CLIPModel } from '@clip-ts/core';

/** A tower that can recompute its blocks in the backward pass (the ViT and DistilBERT towers of @clip-ts/encoders). */
interface Checkpointable {
  gradientCheckpointing: boolean;
}

function checkpointable(encoder: object): encoder is Checkpointable {
  return typeof (encoder as Partial<Checkpointable>).gradientCheckpointing === 'boolean';
}

/** Whether every listed tower supports gradient checkpointing (towers are named 'vision' / 'text'). */
export function supportsCheckpointing(model: CLIPModel, towers: ReadonlyArray<'vision' | 'text'>): boolean {
  return towers.every((t) => checkpointable(t === 'vision' ? model.imageEncoder : model.textEncoder));
}

/**
 * Switch activation recomputation on or off in the listed towers that support it; returns the towers it
 * was set on. The towers read the flag on every training forward, so it applies from the next step.
 */
export function setGradientCheckpointing(model: CLIPModel, towers: ReadonlyArray<'vision' | 'text'>, on: boolean): Array<'vision' | 'text'> {
  return towers.filter((t) => {
    const encoder = t === 'vision' ? model.imageEncoder : model.textEncoder;
    if (!checkpointable(encoder)) return false;
    encoder.gradientCheckpointing = on;
    return true;
  });
}
