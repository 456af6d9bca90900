import type { Scene, ShapeInstance } from './scene.js';

const an = (word: string) => (/^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`);

/** The five captions of a scene: they name colour and shape, and say so when it is blurry. */
export function captionsFor(item: Scene): string[] {
  const [a, b] = item.shapes as [ShapeInstance, ShapeInstance | undefined];
  const bg = item.bg.name;
  if (b) {
    const one = a.combo.name;
    const two = b.combo.name;
    const pre = item.blurry ? 'a blurry photo of' : 'a photo of';
    return [
      `${an(one)} and ${an(two)}`,
      `${pre} ${an(one)} and ${an(two)}`,
      `${an(two)} and ${an(one)}`,
      `${an(one)} on the left and ${an(two)} on the right`,
      `${item.blurry ? 'blurry ' : ''}two shapes, ${an(one)} and ${an(two)}, on ${an(bg)} background`,
    ];
  }
  const name = a.combo.name;
  const size = item.big ? 'large' : 'small';
  if (item.blurry) {
    return [
      `a blurry ${name}`,
      `a blurry photo of ${an(name)}`,
      `a fuzzy photo of a ${size} ${name} on ${an(bg)} background`,
      `a low resolution picture of a ${size} ${name}`,
      `there is a blurry ${name} in the image`,
    ];
  }
  return [
    an(name),
    `a photo of ${an(name)}`,
    `a ${size} ${name} on ${an(bg)} background`,
    `a picture of a ${size} ${name}`,
    `there is ${an(name)} in the image`,
  ];
}
