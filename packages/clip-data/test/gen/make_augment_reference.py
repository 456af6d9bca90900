"""Reference outputs of torchvision's augmentation ops for packages/clip-data/test/augment.test.ts.

Run with Debian's python (torch + torchvision):
    /usr/bin/python3 packages/clip-data/test/gen/make_augment_reference.py
Writes packages/clip-data/test/fixtures/augment/torchvision-reference.json.

- crop boxes: RandomResizedCrop.get_params on several sizes/scales/ratios, with every random draw it made
  recorded (torch.Tensor.uniform_ and torch.randint are wrapped), so the TypeScript port can replay the
  same draws and must arrive at the same (top, left, height, width) — fallbacks included.
- resized_crop: F.resized_crop(bilinear, antialias=True) of a generated float image, shrinking and enlarging.
- jitter: F.adjust_brightness / adjust_contrast / adjust_saturation and F.hflip of a generated float image.
"""
import json
import os

import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F

OUT = os.path.join(os.path.dirname(__file__), '..', 'fixtures', 'augment', 'torchvision-reference.json')


def record_draws(fn):
    draws = []
    real_uniform = torch.Tensor.uniform_
    real_randint = torch.randint

    def uniform_(self, a=0.0, b=1.0, *args, **kwargs):
        out = real_uniform(self, a, b, *args, **kwargs)
        draws.append({'kind': 'uniform', 'lo': float(a), 'hi': float(b), 'value': float(out.item())})
        return out

    def randint(low, high, size, *args, **kwargs):
        out = real_randint(low, high, size, *args, **kwargs)
        draws.append({'kind': 'int', 'lo': int(low), 'hi': int(high), 'value': int(out.item())})
        return out

    torch.Tensor.uniform_ = uniform_
    torch.randint = randint
    try:
        result = fn()
    finally:
        torch.Tensor.uniform_ = real_uniform
        torch.randint = real_randint
    return result, draws


def crop_cases():
    cases = []
    specs = [
        # (width, height, scale, ratio, seeds)
        (224, 224, (0.9, 1.0), (3 / 4, 4 / 3), range(20)),
        (500, 375, (0.08, 1.0), (3 / 4, 4 / 3), range(20)),
        (375, 500, (0.9, 1.0), (3 / 4, 4 / 3), range(10)),
        (32, 32, (0.5, 1.0), (0.5, 2.0), range(10)),
        (7, 5, (0.9, 1.0), (3 / 4, 4 / 3), range(10)),
        # Wide and tall strips: the 10 attempts fail, the fallback crops to the nearest allowed ratio.
        (100, 10, (0.9, 1.0), (3 / 4, 4 / 3), range(3)),
        (10, 100, (0.9, 1.0), (3 / 4, 4 / 3), range(3)),
        # Attempts fail, in_ratio within the range: the whole image.
        (3, 3, (0.99, 1.0), (0.25, 4.0), range(10)),
    ]
    for w, h, scale, ratio, seeds in specs:
        for seed in seeds:
            torch.manual_seed(seed)
            img = torch.zeros(3, h, w)
            (i, j, ch, cw), draws = record_draws(lambda: T.RandomResizedCrop.get_params(img, list(scale), list(ratio)))
            cases.append({'width': w, 'height': h, 'scale': list(scale), 'ratio': list(ratio), 'draws': draws,
                          'box': {'top': int(i), 'left': int(j), 'height': int(ch), 'width': int(cw)}})
    return cases


def main():
    torch.manual_seed(1234)
    H, W = 37, 29
    img = torch.rand(3, H, W, dtype=torch.float32)
    resized = []
    for top, left, h, w, oh, ow in [(0, 0, 37, 29, 16, 16), (3, 5, 30, 20, 12, 9), (2, 1, 11, 7, 24, 20), (0, 0, 37, 29, 37, 29), (10, 4, 25, 25, 50, 13)]:
        out = F.resized_crop(img, top, left, h, w, [oh, ow], T.InterpolationMode.BILINEAR, antialias=True)
        resized.append({'top': top, 'left': left, 'height': h, 'width': w, 'outHeight': oh, 'outWidth': ow,
                        'output': out.flatten().tolist()})
    small = img[:, :7, :5].contiguous()
    jitter = []
    for op in ['brightness', 'contrast', 'saturation']:
        for f in [0.0, 0.6, 1.0, 1.4, 2.5]:
            fn = {'brightness': F.adjust_brightness, 'contrast': F.adjust_contrast, 'saturation': F.adjust_saturation}[op]
            jitter.append({'op': op, 'factor': f, 'output': fn(small, f).flatten().tolist()})
    out = {
        'generator': f'make_augment_reference.py, torch {torch.__version__}, torchvision {torchvision.__version__}',
        'image': {'height': H, 'width': W, 'chw': img.flatten().tolist()},
        'small': {'height': 7, 'width': 5, 'chw': small.flatten().tolist(), 'hflip': F.hflip(small).flatten().tolist()},
        'cropBoxes': crop_cases(),
        'resizedCrop': resized,
        'jitter': jitter,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, 'w') as f:
        json.dump(out, f)
        f.write('\n')


if __name__ == '__main__':
    main()
