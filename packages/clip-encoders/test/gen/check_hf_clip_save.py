"""Check a directory written by saveHFCLIPModel against a reference HF CLIPModel repo, in PyTorch.

Usage: python3 check_hf_clip_save.py SAVED_DIR REFERENCE_DIR

Reads both model.safetensors files with torch (torch.frombuffer over the format's documented header, so
nothing of clip-ts's own reader is involved: the `safetensors` wheel is not installable here), then
checks: same keys, shapes and dtypes; values equal (bit for bit when the dtypes match); the state dict
loads into a PyTorch module tree with CLIPModel's parameter names and shapes built from SAVED_DIR's
config.json; config.json keys of the reference present with equal values. Exit 0 and print "ok", or
exit 1 listing every difference. transformers is not installable here either, so CLIPModel itself is
not instantiated; the module tree below mirrors modeling_clip.py's parameter names.
"""
import json
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    data = bytearray(raw[8 + n :])
    out = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        t = torch.frombuffer(data[begin:end], dtype=DTYPES[info["dtype"]]) if end > begin else torch.empty(0, dtype=DTYPES[info["dtype"]])
        out[name] = (info["dtype"], t.reshape(info["shape"]))
    return out


def lin(i, o, bias=True):
    return torch.nn.Linear(i, o, bias=bias)


def tower(c, vision):
    d, m = c["hidden_size"], torch.nn.Module()
    emb = torch.nn.Module()
    if vision:
        p = c["patch_size"]
        emb.class_embedding = torch.nn.Parameter(torch.zeros(d))
        emb.patch_embedding = torch.nn.Conv2d(c.get("num_channels", 3), d, p, p, bias=False)
        emb.position_embedding = torch.nn.Embedding((c["image_size"] // p) ** 2 + 1, d)
        m.pre_layrnorm = torch.nn.LayerNorm(d)
    else:
        emb.token_embedding = torch.nn.Embedding(c["vocab_size"], d)
        emb.position_embedding = torch.nn.Embedding(c["max_position_embeddings"], d)
    m.embeddings = emb
    layers = torch.nn.ModuleList()
    for _ in range(c["num_hidden_layers"]):
        layer = torch.nn.Module()
        attn = torch.nn.Module()
        for k in ["q_proj", "k_proj", "v_proj", "out_proj"]:
            setattr(attn, k, lin(d, d))
        layer.self_attn = attn
        layer.layer_norm1 = torch.nn.LayerNorm(d)
        mlp = torch.nn.Module()
        mlp.fc1, mlp.fc2 = lin(d, c["intermediate_size"]), lin(c["intermediate_size"], d)
        layer.mlp = mlp
        layer.layer_norm2 = torch.nn.LayerNorm(d)
        layers.append(layer)
    enc = torch.nn.Module()
    enc.layers = layers
    m.encoder = enc
    if vision:
        m.post_layernorm = torch.nn.LayerNorm(d)
    else:
        m.final_layer_norm = torch.nn.LayerNorm(d)
    return m


def clip_tree(cfg):
    m = torch.nn.Module()
    m.vision_model = tower(cfg["vision_config"], True)
    m.text_model = tower(cfg["text_config"], False)
    m.visual_projection = lin(cfg["vision_config"]["hidden_size"], cfg["projection_dim"], bias=False)
    m.text_projection = lin(cfg["text_config"]["hidden_size"], cfg["projection_dim"], bias=False)
    m.logit_scale = torch.nn.Parameter(torch.tensor(cfg["logit_scale_init_value"]))
    return m


def main(saved, ref):
    errors = []
    a = read_safetensors(f"{saved}/model.safetensors")
    b = read_safetensors(f"{ref}/model.safetensors")
    if sorted(a) != sorted(b):
        errors.append(f"keys differ: only saved {sorted(set(a) - set(b))}, only reference {sorted(set(b) - set(a))}")
    for k in sorted(set(a) & set(b)):
        (da, ta), (db, tb) = a[k], b[k]
        if list(ta.shape) != list(tb.shape):
            errors.append(f"{k}: shape {list(ta.shape)} vs {list(tb.shape)}")
        elif da == db and not torch.equal(ta, tb):
            errors.append(f"{k}: values differ (both {da})")
        elif da != db and not torch.equal(ta.float(), tb.float()):
            errors.append(f"{k}: values differ after widening {da} / {db}")
    cfg = json.load(open(f"{saved}/config.json"))
    ref_cfg = json.load(open(f"{ref}/config.json"))
    for k, v in ref_cfg.items():
        if k in ("text_config", "vision_config"):
            for kk, vv in v.items():
                if cfg[k].get(kk) != vv:
                    errors.append(f"config {k}.{kk}: {cfg[k].get(kk)!r} vs {vv!r}")
        elif k != "torch_dtype" and cfg.get(k) != v:
            errors.append(f"config {k}: {cfg.get(k)!r} vs {v!r}")
    tree = clip_tree(cfg)
    state = {k: t.float() for k, (_, t) in a.items()}
    missing, unexpected = tree.load_state_dict(state, strict=False)
    if missing or unexpected:
        errors.append(f"load_state_dict: missing {missing}, unexpected {unexpected}")
    if errors:
        print("\n".join(errors))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
