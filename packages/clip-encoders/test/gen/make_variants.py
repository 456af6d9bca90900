#!/usr/bin/python3
"""Extra tiny HF-layout checkpoints for the tower parity tests: shapes the shared fixtures don't show.

Usage: /usr/bin/python3 make_variants.py OUT_DIR   (needs torch + numpy; transformers is not needed)

The reference forwards follow transformers' ViTModel / DistilBertModel (eager attention, eval mode) in
float64 with torch.nn.functional ops (F.conv2d, F.layer_norm, F.gelu), independently of the TypeScript code.
- vit-variant: qkv_bias false, layer_norm_eps 1e-6, 3 heads of 8, patch 4 on 12x12 images, 3 layers,
  pooler, 1 channel, relu MLP, saved as 2 shards + model.safetensors.index.json with an F16 shard.
- distilbert-variant: 2 heads of 8, hidden_dim 24, 3 layers, vocab 50, 12 positions, relu, 'text_model.'
  prefix, padding (one row fully real, one with a single real token), F32.
"""
import json, math, os, struct, sys
import numpy as np
import torch
import torch.nn.functional as F

DT = {np.dtype('float32'): 'F32', np.dtype('float16'): 'F16', np.dtype('int64'): 'I64'}


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name]); raw = a.tobytes()
        header[name] = {'dtype': DT[a.dtype], 'shape': list(a.shape), 'data_offsets': [off, off + len(raw)]}
        blobs.append(raw); off += len(raw)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h))); f.write(h)
        for b in blobs: f.write(b)


def act(name, x):
    return F.gelu(x) if name == 'gelu' else F.relu(x)


def linear(x, W, p):
    return F.linear(x, W[p + '.weight'], W.get(p + '.bias'))


def vit(rng, cfg):
    D, I, C, P, L = cfg['hidden_size'], cfg['intermediate_size'], cfg['num_channels'], cfg['patch_size'], cfg['num_hidden_layers']
    n = (cfg['image_size'] // P) ** 2
    g = lambda *s, sd=0.3: rng.normal(0, sd, s)
    W = {'embeddings.cls_token': g(1, 1, D, sd=1), 'embeddings.position_embeddings': g(1, n + 1, D, sd=0.5),
         'embeddings.patch_embeddings.projection.weight': g(D, C, P, P, sd=1 / math.sqrt(C * P * P)),
         'embeddings.patch_embeddings.projection.bias': g(D, sd=0.1),
         'layernorm.weight': 1 + g(D, sd=0.2), 'layernorm.bias': g(D, sd=0.1),
         'pooler.dense.weight': g(D, D, sd=1 / math.sqrt(D)), 'pooler.dense.bias': g(D, sd=0.1)}
    for i in range(L):
        p = f'encoder.layer.{i}.'
        for nm in ('query', 'key', 'value'):
            W[p + f'attention.attention.{nm}.weight'] = g(D, D, sd=1 / math.sqrt(D))
        for nm, o, k in (('attention.output.dense', D, D), ('intermediate.dense', I, D), ('output.dense', D, I)):
            W[p + nm + '.weight'] = g(o, k, sd=1 / math.sqrt(k)); W[p + nm + '.bias'] = g(o, sd=0.1)
        for nm in ('layernorm_before', 'layernorm_after'):
            W[p + nm + '.weight'] = 1 + g(D, sd=0.2); W[p + nm + '.bias'] = g(D, sd=0.1)
    W = {k: v.astype(np.float32) for k, v in W.items()}
    # Layer 1 and the head go to an F16 shard: the reference uses the fp16-rounded values.
    shard2 = {k for k in W if k.startswith('encoder.layer.1.') or k.startswith('layernorm.')}
    for k in shard2: W[k] = W[k].astype(np.float16)
    px = rng.normal(0, 1, (2, C, cfg['image_size'], cfg['image_size'])).astype(np.float32)

    T = {k: torch.tensor(v.astype(np.float64)) for k, v in W.items()}
    x = torch.tensor(px, dtype=torch.float64)
    B, H, eps = x.shape[0], cfg['num_attention_heads'], cfg['layer_norm_eps']
    dh = D // H
    e = F.conv2d(x, T['embeddings.patch_embeddings.projection.weight'], T['embeddings.patch_embeddings.projection.bias'], stride=P)
    h = torch.cat([T['embeddings.cls_token'].expand(B, -1, -1), e.flatten(2).transpose(1, 2)], 1) + T['embeddings.position_embeddings']
    ln = lambda z, p: F.layer_norm(z, (D,), T[p + '.weight'], T[p + '.bias'], eps)
    for i in range(L):
        p = f'encoder.layer.{i}.'
        t = ln(h, p + 'layernorm_before')
        sp = lambda z: z.view(B, -1, H, dh).permute(0, 2, 1, 3)
        q, k, v = (sp(linear(t, T, p + f'attention.attention.{nm}')) for nm in ('query', 'key', 'value'))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh), -1)
        h = linear((a @ v).transpose(1, 2).reshape(B, -1, D), T, p + 'attention.output.dense') + h
        h = linear(act(cfg['hidden_act'], linear(ln(h, p + 'layernorm_after'), T, p + 'intermediate.dense')), T, p + 'output.dense') + h
    h = ln(h, 'layernorm')
    pooled = torch.tanh(linear(h[:, 0], T, 'pooler.dense'))
    shards = {'model-00001-of-00002.safetensors': {k: v for k, v in W.items() if k not in shard2},
              'model-00002-of-00002.safetensors': {k: v for k, v in W.items() if k in shard2}}
    io = {'pixel_values': px, 'last_hidden_state': h.numpy().astype(np.float32), 'pooler_output': pooled.numpy().astype(np.float32)}
    return shards, io


def distilbert(rng, cfg):
    D, Hd, V, Pm, L, H = cfg['dim'], cfg['hidden_dim'], cfg['vocab_size'], cfg['max_position_embeddings'], cfg['n_layers'], cfg['n_heads']
    g = lambda *s, sd=0.3: rng.normal(0, sd, s)
    W = {'embeddings.word_embeddings.weight': g(V, D, sd=1), 'embeddings.position_embeddings.weight': g(Pm, D, sd=0.5),
         'embeddings.LayerNorm.weight': 1 + g(D, sd=0.2), 'embeddings.LayerNorm.bias': g(D, sd=0.1)}
    for i in range(L):
        p = f'transformer.layer.{i}.'
        for nm, o, k in (('attention.q_lin', D, D), ('attention.k_lin', D, D), ('attention.v_lin', D, D),
                         ('attention.out_lin', D, D), ('ffn.lin1', Hd, D), ('ffn.lin2', D, Hd)):
            W[p + nm + '.weight'] = g(o, k, sd=1 / math.sqrt(k)); W[p + nm + '.bias'] = g(o, sd=0.1)
        for nm in ('sa_layer_norm', 'output_layer_norm'):
            W[p + nm + '.weight'] = 1 + g(D, sd=0.2); W[p + nm + '.bias'] = g(D, sd=0.1)
    W = {k: v.astype(np.float32) for k, v in W.items()}
    Tlen = 10
    ids = rng.integers(1, V, (3, Tlen)); mask = np.ones((3, Tlen), np.int64)
    mask[1, 6:] = 0; mask[2, 1:] = 0; ids[mask == 0] = 0

    T = {k: torch.tensor(v.astype(np.float64)) for k, v in W.items()}
    it = torch.tensor(ids); m = torch.tensor(mask)
    B, dh = ids.shape[0], D // H
    h = T['embeddings.word_embeddings.weight'][it] + T['embeddings.position_embeddings.weight'][:Tlen][None]
    ln = lambda z, p: F.layer_norm(z, (D,), T[p + '.weight'], T[p + '.bias'], 1e-12)
    h = ln(h, 'embeddings.LayerNorm')
    for i in range(L):
        p = f'transformer.layer.{i}.'
        sp = lambda z: z.view(B, -1, H, dh).transpose(1, 2)
        q = sp(linear(h, T, p + 'attention.q_lin')) / math.sqrt(dh)
        k, v = sp(linear(h, T, p + 'attention.k_lin')), sp(linear(h, T, p + 'attention.v_lin'))
        s = (q @ k.transpose(2, 3)).masked_fill((m == 0).view(B, 1, 1, Tlen), torch.finfo(torch.float64).min)
        ctx = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, -1, D)
        sa = ln(linear(ctx, T, p + 'attention.out_lin') + h, p + 'sa_layer_norm')
        h = ln(linear(act(cfg['activation'], linear(sa, T, p + 'ffn.lin1')), T, p + 'ffn.lin2') + sa, p + 'output_layer_norm')
    weights = {'text_model.' + k: v for k, v in W.items()}
    io = {'input_ids': ids.astype(np.int64), 'attention_mask': mask, 'last_hidden_state': h.numpy().astype(np.float32)}
    return weights, io


def main():
    out = sys.argv[1]
    rng = np.random.default_rng(20261128)
    vcfg = dict(model_type='vit', hidden_size=24, num_hidden_layers=3, num_attention_heads=3, intermediate_size=40,
                image_size=12, patch_size=4, num_channels=1, qkv_bias=False, layer_norm_eps=1e-6, hidden_act='relu',
                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.02, architectures=['ViTModel'])
    shards, io = vit(rng, vcfg)
    d = os.path.join(out, 'vit-variant'); os.makedirs(d, exist_ok=True)
    json.dump(vcfg, open(os.path.join(d, 'config.json'), 'w'), indent=2)
    for name, t in shards.items(): write_safetensors(os.path.join(d, name), t)
    index = {'metadata': {'total_size': sum(a.nbytes for t in shards.values() for a in t.values())},
             'weight_map': {k: name for name, t in shards.items() for k in sorted(t)}}
    json.dump(index, open(os.path.join(d, 'model.safetensors.index.json'), 'w'), indent=2)
    write_safetensors(os.path.join(d, 'io.safetensors'), io)

    dcfg = dict(model_type='distilbert', vocab_size=50, dim=16, n_layers=3, n_heads=2, hidden_dim=24,
                max_position_embeddings=12, activation='relu', dropout=0.1, attention_dropout=0.1,
                sinusoidal_pos_embds=False, pad_token_id=0, initializer_range=0.02, architectures=['CLIPTextModel-like'])
    weights, io = distilbert(rng, dcfg)
    d = os.path.join(out, 'distilbert-variant'); os.makedirs(d, exist_ok=True)
    json.dump(dcfg, open(os.path.join(d, 'config.json'), 'w'), indent=2)
    write_safetensors(os.path.join(d, 'model.safetensors'), weights)
    write_safetensors(os.path.join(d, 'io.safetensors'), io)


if __name__ == '__main__':
    main()
