#!/usr/bin/env python3
"""PyTorch CPU reference for `npm run bench` (bench/run.mjs runs it in the same run as the tfjs rows).

Builds the bench's `small` CLIP by hand (transformers is not needed): a ViT image tower (HF ViTModel
semantics: conv patch embedding, [CLS] + position embeddings, pre-LN layers, exact GELU, final LayerNorm,
[CLS] feature) and a DistilBERT text tower (post-LN, key-padding mask, [CLS] feature), each followed by
Linear(hidden -> 256) + LayerNorm; symmetric CLIP loss; Adam. Dropout is 0 on both sides of the comparison.

Modes (each prints one JSON object on stdout):
  train     samples/s of a full training step (forward, backward, Adam) at batch 32
  infer     images/s and texts/s through the towers + heads (no grad, eval mode)
  pipeline  DIR  images/s of PIL open + Resize((224,224)) + ToTensor + Normalize into a [32,3,224,224] batch
  pipeline-loader  DIR  the same transform in a torch.utils.data.DataLoader with --workers N processes

Options: --threads N (default 2), --reps N (timed repetitions, default 5), --warmup N (default 2),
--batch N (default 32), --workers N (pipeline-loader, default 2).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SMALL = dict(image=224, patch=16, hidden=192, layers=4, heads=3, mlp=768, vocab=30522, seq=40, pad=10, proj=256)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, bias=None):
        b, s, d = x.shape
        h = self.heads
        split = lambda t: t.view(b, s, h, d // h).transpose(1, 2)
        q = split(self.q(x)) / math.sqrt(d // h)
        scores = q @ split(self.k(x)).transpose(-1, -2)
        if bias is not None:
            scores = scores + bias
        ctx = scores.softmax(-1) @ split(self.v(x))
        return self.out(ctx.transpose(1, 2).reshape(b, s, d))


class ViTLayer(nn.Module):  # pre-LN, as HF ViTLayer
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(dim, eps=1e-12)
        self.attention = Attention(dim, heads)
        self.layernorm_after = nn.LayerNorm(dim, eps=1e-12)
        self.intermediate = nn.Linear(dim, mlp)
        self.output = nn.Linear(mlp, dim)

    def forward(self, x):
        x = x + self.attention(self.layernorm_before(x))
        return x + self.output(F.gelu(self.intermediate(self.layernorm_after(x))))


class ViT(nn.Module):
    def __init__(self, c):
        super().__init__()
        n = (c["image"] // c["patch"]) ** 2
        self.patch = nn.Conv2d(3, c["hidden"], c["patch"], c["patch"])
        self.cls = nn.Parameter(torch.zeros(1, 1, c["hidden"]))
        self.pos = nn.Parameter(torch.randn(1, n + 1, c["hidden"]) * 0.02)
        self.layers = nn.ModuleList([ViTLayer(c["hidden"], c["heads"], c["mlp"]) for _ in range(c["layers"])])
        self.layernorm = nn.LayerNorm(c["hidden"], eps=1e-12)

    def forward(self, pixels):
        x = self.patch(pixels).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        for layer in self.layers:
            x = layer(x)
        return self.layernorm(x)[:, 0]


class BertLayer(nn.Module):  # post-LN, as HF DistilBERT TransformerBlock
    def __init__(self, dim, heads, ffn):
        super().__init__()
        self.attention = Attention(dim, heads)
        self.sa_layer_norm = nn.LayerNorm(dim, eps=1e-12)
        self.lin1 = nn.Linear(dim, ffn)
        self.lin2 = nn.Linear(ffn, dim)
        self.output_layer_norm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, x, bias):
        sa = self.sa_layer_norm(self.attention(x, bias) + x)
        return self.output_layer_norm(self.lin2(F.gelu(self.lin1(sa))) + sa)


class DistilBert(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word = nn.Embedding(c["vocab"], c["hidden"])
        self.pos = nn.Embedding(512, c["hidden"])
        self.norm = nn.LayerNorm(c["hidden"], eps=1e-12)
        self.layers = nn.ModuleList([BertLayer(c["hidden"], c["heads"], c["mlp"]) for _ in range(c["layers"])])

    def forward(self, ids, mask):
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.norm(self.word(ids) + self.pos(pos))
        bias = ((1 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min)
        for layer in self.layers:
            x = layer(x, bias)
        return x[:, 0]


class Head(nn.Module):
    def __init__(self, dim, proj):
        super().__init__()
        self.linear = nn.Linear(dim, proj)
        self.layer_norm = nn.LayerNorm(proj)

    def forward(self, x):
        return self.layer_norm(self.linear(x))


class CLIP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.vision = ViT(c)
        self.text = DistilBert(c)
        self.visual_projection = Head(c["hidden"], c["proj"])
        self.text_projection = Head(c["hidden"], c["proj"])
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def embed_images(self, pixels):
        return F.normalize(self.visual_projection(self.vision(pixels)), dim=-1)

    def embed_texts(self, ids, mask):
        return F.normalize(self.text_projection(self.text(ids, mask)), dim=-1)

    def loss(self, pixels, ids, mask):
        img, txt = self.embed_images(pixels), self.embed_texts(ids, mask)
        logits = self.logit_scale.exp().clamp(max=100) * img @ txt.t()
        target = torch.arange(logits.shape[0])
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def batch(c, n, gen):
    pixels = torch.randn(n, 3, c["image"], c["image"], generator=gen)
    ids = torch.randint(1000, c["vocab"], (n, c["seq"]), generator=gen)
    mask = torch.ones(n, c["seq"], dtype=torch.long)
    mask[:, c["seq"] - c["pad"]:] = 0
    ids[:, c["seq"] - c["pad"]:] = 0
    ids[:, 0] = 101
    return pixels, ids, mask


def timed(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    timed.cpu_ms = statistics.median(cpu) * 1000
    return statistics.median(times), times


def mode_train(args):
    gen = torch.Generator().manual_seed(0)
    model = CLIP(SMALL)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    pixels, ids, mask = batch(SMALL, args.batch, gen)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model.loss(pixels, ids, mask)
        loss.backward()
        opt.step()

    med, times = timed(step, args.warmup, args.reps)
    return {"samples_per_s": args.batch / med, "step_ms": med * 1000, "cpu_ms": timed.cpu_ms,
            "times_ms": [round(t * 1000) for t in times],
            "batch": args.batch, "params": sum(p.numel() for p in model.parameters())}


def mode_infer(args):
    gen = torch.Generator().manual_seed(0)
    model = CLIP(SMALL).eval()
    pixels, ids, mask = batch(SMALL, args.batch, gen)
    with torch.no_grad():
        img, img_t = timed(lambda: model.embed_images(pixels), args.warmup, args.reps)
        txt, txt_t = timed(lambda: model.embed_texts(ids, mask), args.warmup, args.reps)
    return {"images_per_s": args.batch / img, "texts_per_s": args.batch / txt, "batch": args.batch}


class _Images:
    """The files as a map-style dataset (what a torch DataLoader's workers index into)."""

    def __init__(self, files, transform):
        self.files, self.transform = files, transform

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.open(self.files[i]).convert("RGB"))


def _pipeline_setup(args):
    from torchvision import transforms

    files = sorted(os.path.join(args.dir, f) for f in os.listdir(args.dir) if f.lower().endswith(".jpg"))
    transform = transforms.Compose([
        transforms.Resize((224, 224)),
        transforms.ToTensor(),
        transforms.Normalize(CLIP_MEAN, CLIP_STD),
    ])
    return files, transform


def mode_pipeline(args):
    from PIL import Image

    files, transform = _pipeline_setup(args)
    state = {"i": 0}

    def one_batch():
        chosen = [files[(state["i"] + j) % len(files)] for j in range(args.batch)]
        state["i"] += args.batch
        out = torch.stack([transform(Image.open(f).convert("RGB")) for f in chosen])
        assert out.shape == (args.batch, 3, 224, 224) and out.dtype == torch.float32

    med, times = timed(one_batch, args.warmup, args.reps)
    # Median CPU time per image: a load-robust comparison next to wall time on a shared machine.
    return {"images_per_s": args.batch / med, "batch_ms": med * 1000, "files": len(files), "batch": args.batch,
            "cpu_ms_per_image": timed.cpu_ms / args.batch}


def mode_pipeline_loader(args):
    """torch.utils.data.DataLoader with args.workers worker processes; a timed rep = one batch out of it.

    The files are cycled so the loader never runs dry; workers start (fork) before the warm-up batches,
    and each worker keeps prefetch_factor batches in flight, as a training loop sees it.
    """
    files, transform = _pipeline_setup(args)
    total = args.batch * (args.warmup + args.reps + 2 * args.workers + 2)
    cycled = [files[i % len(files)] for i in range(total)]
    loader = torch.utils.data.DataLoader(
        _Images(cycled, transform), batch_size=args.batch, num_workers=args.workers, shuffle=False
    )
    it = iter(loader)

    def one_batch():
        out = next(it)
        assert out.shape == (args.batch, 3, 224, 224) and out.dtype == torch.float32

    med, times = timed(one_batch, args.warmup, args.reps)
    return {
        "images_per_s": args.batch / med, "batch_ms": med * 1000, "files": len(files), "batch": args.batch,
        "workers": args.workers,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["train", "infer", "pipeline", "pipeline-loader"])
    p.add_argument("dir", nargs="?")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (pipeline-loader)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result = {
        "train": mode_train, "infer": mode_infer, "pipeline": mode_pipeline, "pipeline-loader": mode_pipeline_loader,
    }[args.mode](args)
    result.update({"torch": torch.__version__, "threads": torch.get_num_threads(), "python": sys.version.split()[0]})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
