import type { ImageProcessor } from '@clip-ts/core';
import type { CheckpointFiles, CLIPLoadOptions } from '../clip-checkpoint.js';
import type { ClipPixelProcessor, ImageProcessorOptions } from '../image-processor.js';

/** An image processor that also takes files and encoded bytes (decoding is platform work). */
export type CLIPImageProcessor = ClipPixelProcessor & ImageProcessor;

/** What CLIP needs from the platform it runs on (resolved through package.json `imports` #clip-platform). */
export interface ClipPlatform {
  /** Where `CLIP.fromPretrained(source)` reads the checkpoint's files from. */
  open(source: string, options: CLIPLoadOptions): Promise<CheckpointFiles>;
  /** The image processor for these options; its processFile / processBuffer decode for this platform. */
  imageProcessor(options: ImageProcessorOptions): CLIPImageProcessor;
}
