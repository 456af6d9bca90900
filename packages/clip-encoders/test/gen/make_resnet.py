#!/usr/bin/python3
"""Tiny HF-layout ResNet checkpoints (transformers' ResNetModel) and their reference outputs.

Usage: /usr/bin/python3 make_resnet.py OUT_DIR   (needs torch + numpy; transformers is not needed)

The reference forward follows modeling_resnet.py op by op in float64 with torch.nn.functional
(F.conv2d with padding kernel//2, F.batch_norm, F.max_pool2d(3, 2, 1), mean over H, W), independently of
the TypeScript code, and is cross-checked against the same network assembled from torch.nn modules
(Conv2d, BatchNorm2d, MaxPool2d, AdaptiveAvgPool2d) with HF's module names, whose state_dict keys must be
exactly the checkpoint's. Train mode (batch statistics, running-stat update with momentum 0.1 and the
unbiased variance, num_batches_tracked + 1) is taken from the nn.Module network in float64.

- resnet-tiny-bottleneck: layer_type bottleneck, embedding 8, hidden_sizes [16, 32], depths [2, 1],
  no downsampling in the first stage; 2 images of 29x29 (odd: the stride-2 convs and pool round down).
- resnet-tiny-basic: layer_type basic, embedding 6, hidden_sizes [6, 12, 16], depths [1, 2, 1],
  downsample_in_first_stage; saved like ResNetForImageClassification ('resnet.' prefix, classifier.1.*).
- resnet-tiny-gelu: bottleneck with downsample_in_bottleneck (stride on the first 1x1 conv),
  downsample_in_first_stage and hidden_act gelu (HF applies it in the stem and after each residual add
  only; the convs inside a layer keep ResNetConvLayer's default relu); 2 images of 20x24.

io.safetensors: pixel_values, last_hidden_state [B, C, h, w], pooler_output [B, C] (HF's is [B, C, 1, 1]),
and for train mode: train_last_hidden_state, train_pooler_output and train_state.<buffer> (every BN's
running_mean / running_var / num_batches_tracked after one training-mode forward).
"""
import json, math, os, struct, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DT = {np.dtype('float32'): 'F32', np.dtype('int64'): 'I64'}


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        # ascontiguousarray makes 0-d arrays 1-d; num_batches_tracked is 0-d in PyTorch.
        a = np.ascontiguousarray(tensors[name]).reshape(np.shape(tensors[name])); raw = a.tobytes()
        header[name] = {'dtype': DT[a.dtype], 'shape': list(a.shape), 'data_offsets': [off, off + len(raw)]}
        blobs.append(raw); off += len(raw)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h))); f.write(h)
        for b in blobs: f.write(b)


def act(name, x):
    return F.gelu(x) if name == 'gelu' else F.relu(x)


# ---- the layer plan, as ResNetEncoder / ResNetStage / Res*Layer build it ----------------------------

def plan(cfg):
    """[(prefix, in, out, stride, first_of_stage)] for every residual layer."""
    out = []
    ins = [cfg['embedding_size']] + cfg['hidden_sizes'][:-1]
    for s, (cin, cout, depth) in enumerate(zip(ins, cfg['hidden_sizes'], cfg['depths'])):
        stride = (2 if cfg['downsample_in_first_stage'] else 1) if s == 0 else 2
        for j in range(depth):
            out.append((f'encoder.stages.{s}.layers.{j}.', cin if j == 0 else cout, cout, stride if j == 0 else 1, j == 0))
    return out


def conv_specs(cfg, cin, cout, stride, first):
    """(name, in, out, kernel, stride, activation) of the ResNetConvLayers inside one residual layer."""
    if cfg['layer_type'] == 'basic':
        return [('layer.0', cin, cout, 3, stride, 'relu'), ('layer.1', cout, cout, 3, 1, None)]
    r = cout // 4
    dib = cfg.get('downsample_in_bottleneck', False) and first
    return [('layer.0', cin, r, 1, stride if dib else 1, 'relu'), ('layer.1', r, r, 3, 1 if dib else stride, 'relu'),
            ('layer.2', r, cout, 1, 1, None)]


def random_weights(rng, cfg):
    W = {}

    def conv_bn(p, cin, cout, k):
        W[p + 'convolution.weight'] = rng.normal(0, math.sqrt(2 / (cin * k * k)), (cout, cin, k, k))
        W[p + 'normalization.weight'] = 1 + rng.normal(0, 0.3, cout)
        W[p + 'normalization.bias'] = rng.normal(0, 0.1, cout)
        W[p + 'normalization.running_mean'] = rng.normal(0, 0.2, cout)
        W[p + 'normalization.running_var'] = rng.uniform(0.5, 1.5, cout)
        W[p + 'normalization.num_batches_tracked'] = np.array(int(rng.integers(1, 1000)), dtype=np.int64)

    conv_bn('embedder.embedder.', cfg['num_channels'], cfg['embedding_size'], 7)
    for p, cin, cout, stride, first in plan(cfg):
        if cin != cout or stride != 1:
            conv_bn(p + 'shortcut.', cin, cout, 1)
        for name, i, o, k, _, _ in conv_specs(cfg, cin, cout, stride, first):
            conv_bn(f'{p}{name}.', i, o, k)
    return {k: (v if v.dtype == np.int64 else v.astype(np.float32)) for k, v in W.items()}


# ---- reference forward (eval mode), float64, functional ---------------------------------------------

def forward(W, cfg, x):
    T = {k: torch.from_numpy(v).double() for k, v in W.items() if not k.endswith('num_batches_tracked')}

    def conv_bn(p, h, stride, activation):
        w = T[p + 'convolution.weight']
        h = F.conv2d(h, w, stride=stride, padding=w.shape[-1] // 2)
        h = F.batch_norm(h, T[p + 'normalization.running_mean'], T[p + 'normalization.running_var'],
                         T[p + 'normalization.weight'], T[p + 'normalization.bias'], training=False, eps=1e-5)
        return act(activation, h) if activation else h

    h = conv_bn('embedder.embedder.', x, 2, cfg['hidden_act'])
    h = F.max_pool2d(h, kernel_size=3, stride=2, padding=1)
    for p, cin, cout, stride, first in plan(cfg):
        res = conv_bn(p + 'shortcut.', h, stride, None) if (cin != cout or stride != 1) else h
        for name, _, _, k, s, a in conv_specs(cfg, cin, cout, stride, first):
            h = conv_bn(f'{p}{name}.', h, s, a)
        h = act(cfg['hidden_act'], h + res)
    return h, h.mean(dim=(2, 3))


# ---- the same network from torch.nn modules (HF's module tree and names) ----------------------------

class ConvLayer(nn.Module):
    def __init__(self, cin, cout, k=3, stride=1, activation='relu'):
        super().__init__()
        self.convolution = nn.Conv2d(cin, cout, kernel_size=k, stride=stride, padding=k // 2, bias=False)
        self.normalization = nn.BatchNorm2d(cout)
        self.activation = (nn.GELU() if activation == 'gelu' else nn.ReLU()) if activation else nn.Identity()

    def forward(self, x):
        return self.activation(self.normalization(self.convolution(x)))


class ShortCut(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.convolution = nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)
        self.normalization = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.normalization(self.convolution(x))


class Layer(nn.Module):
    def __init__(self, cfg, cin, cout, stride, first):
        super().__init__()
        self.shortcut = ShortCut(cin, cout, stride) if (cin != cout or stride != 1) else nn.Identity()
        self.layer = nn.Sequential(*[ConvLayer(i, o, k, s, a) for _, i, o, k, s, a in conv_specs(cfg, cin, cout, stride, first)])
        self.activation = nn.GELU() if cfg['hidden_act'] == 'gelu' else nn.ReLU()

    def forward(self, x):
        return self.activation(self.layer(x) + self.shortcut(x))


class Stage(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.Sequential(*layers)


class Embeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embedder = ConvLayer(cfg['num_channels'], cfg['embedding_size'], 7, 2, cfg['hidden_act'])
        self.pooler = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        stages = {}
        for p, cin, cout, stride, first in plan(cfg):
            s = int(p.split('.')[2])
            stages.setdefault(s, []).append(Layer(cfg, cin, cout, stride, first))
        self.stages = nn.ModuleList([Stage(stages[s]) for s in sorted(stages)])


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embedder = Embeddings(cfg)
        self.encoder = Encoder(cfg)
        self.pooler = nn.AdaptiveAvgPool2d((1, 1))

    def forward(self, x):
        h = self.embedder.pooler(self.embedder.embedder(x))
        for stage in self.encoder.stages:
            for layer in stage.layers:
                h = layer(h)
        return h, self.pooler(h)


def make(out_dir, name, cfg, shape, seed, prefix=''):
    rng = np.random.default_rng(seed)
    W = random_weights(rng, cfg)
    x = rng.normal(0, 1, shape).astype(np.float32)
    xt = torch.from_numpy(x).double()
    last, pooled = forward(W, cfg, xt)

    model = Model(cfg).double()
    sd = model.state_dict()
    assert sorted(sd) == sorted(W), set(sd) ^ set(W)
    model.load_state_dict({k: torch.from_numpy(v) if v.dtype == np.int64 else torch.from_numpy(v).double() for k, v in W.items()})
    model.eval()
    with torch.no_grad():
        ml, mp = model(xt)
    err = max((ml - last).abs().max().item(), (mp[:, :, 0, 0] - pooled).abs().max().item())
    assert err < 1e-10, err
    model.train()
    with torch.no_grad():
        tl, tp = model(xt)
    state = model.state_dict()

    d = os.path.join(out_dir, name); os.makedirs(d, exist_ok=True)
    full = {'model_type': 'resnet', 'num_channels': cfg['num_channels'], 'embedding_size': cfg['embedding_size'],
            'hidden_sizes': cfg['hidden_sizes'], 'depths': cfg['depths'], 'layer_type': cfg['layer_type'],
            'hidden_act': cfg['hidden_act'], 'downsample_in_first_stage': cfg['downsample_in_first_stage'],
            'architectures': ['ResNetForImageClassification' if prefix else 'ResNetModel']}
    if 'downsample_in_bottleneck' in cfg: full['downsample_in_bottleneck'] = cfg['downsample_in_bottleneck']
    with open(os.path.join(d, 'config.json'), 'w') as f: json.dump(full, f, indent=2); f.write('\n')
    weights = {prefix + k: v for k, v in W.items()}
    if prefix:
        weights['classifier.1.weight'] = rng.normal(0, 0.1, (5, cfg['hidden_sizes'][-1])).astype(np.float32)
        weights['classifier.1.bias'] = np.zeros(5, np.float32)
    write_safetensors(os.path.join(d, 'model.safetensors'), weights)
    f32 = lambda t: t.detach().numpy().astype(np.float32)
    io = {'pixel_values': x, 'last_hidden_state': f32(last), 'pooler_output': f32(pooled),
          'train_last_hidden_state': f32(tl), 'train_pooler_output': f32(tp[:, :, 0, 0])}
    for k, v in state.items():
        if 'running_' in k: io['train_state.' + k] = f32(v)
        elif k.endswith('num_batches_tracked'): io['train_state.' + k] = v.numpy().astype(np.int64)
    write_safetensors(os.path.join(d, 'io.safetensors'), io)
    print(name, 'nn.Module vs functional max abs', err)


if __name__ == '__main__':
    out = sys.argv[1]
    torch.manual_seed(0)
    make(out, 'resnet-tiny-bottleneck', dict(num_channels=3, embedding_size=8, hidden_sizes=[16, 32], depths=[2, 1],
         layer_type='bottleneck', hidden_act='relu', downsample_in_first_stage=False), (2, 3, 29, 29), 1301)
    make(out, 'resnet-tiny-basic', dict(num_channels=3, embedding_size=6, hidden_sizes=[6, 12, 16], depths=[1, 2, 1],
         layer_type='basic', hidden_act='relu', downsample_in_first_stage=True), (2, 3, 23, 23), 1302, prefix='resnet.')
    make(out, 'resnet-tiny-gelu', dict(num_channels=3, embedding_size=8, hidden_sizes=[16, 24], depths=[1, 2],
         layer_type='bottleneck', hidden_act='gelu', downsample_in_first_stage=True, downsample_in_bottleneck=True),
         (2, 3, 20, 24), 1303)
