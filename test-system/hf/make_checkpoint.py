"""Writes a small random Qwen2.5-VL checkpoint exactly as the Hub stores one (transformers' own
save_pretrained: BF16 shards with model.safetensors.index.json, legacy tensor names), plus the
tokenizer files a snapshot carries, for the real-checkpoint system tests.

usage: make_checkpoint.py --out DIR --variant NAME --tokenizer-from DIR [--seed N]

Variants cover the layouts the issue lists: tied/untied head, GQA ratios 2 and 7, full-attention
blocks, a flat legacy config.json (as on the Hub) or transformers 5.x's nested one, an embedding
larger than the tokenizer (up to the 3B's 151,936 rows, past the engine's shared-table limit), and the three
places a chat template may live.
"""
import argparse
import json
import os
import shutil

import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

# Qwen2.5-VL-Instruct's chat_template.json, as on the Hub.
QWEN25VL_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}"
    "<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

VARIANTS = {
    # GQA ratio 2, tied head, flat legacy config (the Hub's 3B layout in miniature), template in chat_template.json.
    "tied-gqa2-legacy": dict(hidden=64, heads=4, kv=2, layers=2, mlp=96, mrope=[2, 3, 3], tie=True, extra_vocab=0,
                             vdepth=3, vhidden=32, vheads=2, vmlp=48, fullatt=[1], legacy=True, template="json"),
    # GQA ratio 7 (the 7B's 28/4), untied head, transformers 5.x nested config, embedding larger than the
    # tokenizer (as the 7B: 152064 rows for 151665 tokens), template in chat_template.jinja.
    "untied-gqa7-nested": dict(hidden=112, heads=7, kv=1, layers=2, mlp=160, mrope=[2, 3, 3], tie=False, extra_vocab=41,
                               vdepth=4, vhidden=48, vheads=3, vmlp=64, fullatt=[0, 3], legacy=False, template="jinja"),
    # Several full-attention blocks among windowed ones, template inside tokenizer_config.json.
    "untied-gqa2-fullatt": dict(hidden=64, heads=4, kv=2, layers=3, mlp=128, mrope=[2, 3, 3], tie=False, extra_vocab=7,
                                vdepth=4, vhidden=32, vheads=2, vmlp=64, fullatt=[1, 2], legacy=True, template="tokenizer_config"),
    # The 3B's vocabulary (151,936 embedding rows for the tokenizer's few hundred tokens, tied): too large a table for
    # the engine to keep in shared memory, so every decode row is embedded by the embedding graph, as for real checkpoints.
    # Most of its greedy tokens lie past the tokenizer's, so text paths (tool-call parsing, stop strings) see little text.
    "tied-vocab151936": dict(hidden=256, heads=4, kv=2, layers=2, mlp=256, mrope=[8, 12, 12], tie=True, vocab_rows=151936,
                             vdepth=2, vhidden=32, vheads=2, vmlp=48, fullatt=[1], legacy=True, template="json"),
    # The Hub's Qwen2.5-VL-3B-Instruct and 7B-Instruct shapes (benchmarks; --text-layers/--vision-depth shrink them).
    "hub-3b": dict(hidden=2048, heads=16, kv=2, layers=36, mlp=11008, mrope=[16, 24, 24], tie=True, vocab=151936,
                   vdepth=32, vhidden=1280, vheads=16, vmlp=3420, fullatt=[7, 15, 23, 31], legacy=True, template="json"),
    "hub-7b": dict(hidden=3584, heads=28, kv=4, layers=28, mlp=18944, mrope=[16, 24, 24], tie=False, vocab=152064,
                   vdepth=32, vhidden=1280, vheads=16, vmlp=3420, fullatt=[7, 15, 23, 31], legacy=True, template="json"),
}


def special_id(tokenizer_json, content):
    return next(t["id"] for t in tokenizer_json["added_tokens"] if t["content"] == content)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    ap.add_argument("--tokenizer-from", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init-range", type=float, default=0.25)
    ap.add_argument("--shard-size", default="300KB")
    ap.add_argument("--text-layers", type=int)
    ap.add_argument("--vision-depth", type=int)
    a = ap.parse_args()
    v = dict(VARIANTS[a.variant])
    if a.text_layers:
        v["layers"] = a.text_layers
    if a.vision_depth:
        v["vdepth"] = a.vision_depth
        v["fullatt"] = [i for i in v["fullatt"] if i < a.vision_depth] or [a.vision_depth - 1]
    big = "vocab" in v
    tok = json.load(open(os.path.join(a.tokenizer_from, "tokenizer.json")))
    tok_config = json.load(open(os.path.join(a.tokenizer_from, "tokenizer_config.json")))
    n_tokens = len(tok["model"]["vocab"]) + len(tok["added_tokens"])
    ids = {name: special_id(tok, name) for name in ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|im_end|>", "<|endoftext|>"]}
    head_dim = v["hidden"] // v["heads"]
    assert sum(v["mrope"]) * 2 == head_dim, (v["mrope"], head_dim)
    config = Qwen2_5_VLConfig(
        text_config=dict(
            hidden_size=v["hidden"], num_hidden_layers=v["layers"], num_attention_heads=v["heads"], num_key_value_heads=v["kv"],
            intermediate_size=v["mlp"], vocab_size=v.get("vocab") or v.get("vocab_rows") or n_tokens + v["extra_vocab"], rms_norm_eps=1e-6,
            max_position_embeddings=128000 if big else 4096, eos_token_id=ids["<|im_end|>"], bos_token_id=None,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": v["mrope"]},
            tie_word_embeddings=v["tie"], initializer_range=a.init_range,
        ),
        vision_config=dict(
            depth=v["vdepth"], hidden_size=v["vhidden"], num_heads=v["vheads"], intermediate_size=v["vmlp"], out_hidden_size=v["hidden"],
            fullatt_block_indexes=v["fullatt"], window_size=112, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
            tokens_per_second=2, initializer_range=a.init_range,
        ),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=v["tie"],
    )
    torch.manual_seed(a.seed)
    if big:
        torch.set_default_dtype(torch.bfloat16)  # a 7B in fp32 would not fit this machine's memory
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    # A trained model's norms and biases are not 1 and 0: perturb them so a dropped or misplaced one shows.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias") or "norm" in name or "ln_q" in name:
                p.add_(torch.randn_like(p) * 0.1)
            else:
                p.normal_(0.0, 0.02 if big else a.init_range)
    model = model.to(torch.bfloat16)
    model.save_pretrained(a.out, max_shard_size=a.shard_size)
    cfg_path = os.path.join(a.out, "config.json")
    cfg = json.load(open(cfg_path))
    if v["legacy"]:
        # The Hub's flat layout: text fields at the top level, rope_scaling with type mrope, vision_config nested.
        text = cfg.pop("text_config")
        rope = text.pop("rope_parameters", None) or {}
        for k, val in text.items():
            if k not in ("model_type", "architectures", "dtype"):
                cfg.setdefault(k, val)
        cfg["rope_scaling"] = {"type": "mrope", "mrope_section": rope.get("mrope_section", v["mrope"])}
        cfg["rope_theta"] = rope.get("rope_theta", 1000000.0)
        cfg["torch_dtype"] = "bfloat16"
        json.dump(cfg, open(cfg_path, "w"), indent=2)
    json.dump({"eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]], "pad_token_id": ids["<|endoftext|>"], "do_sample": False},
              open(os.path.join(a.out, "generation_config.json"), "w"), indent=2)
    json.dump({"min_pixels": 4 * 28 * 28, "max_pixels": 96 * 28 * 28, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
               "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
               "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor"},
              open(os.path.join(a.out, "preprocessor_config.json"), "w"), indent=2)
    shutil.copy(os.path.join(a.tokenizer_from, "tokenizer.json"), os.path.join(a.out, "tokenizer.json"))
    tok_config.pop("chat_template", None)
    if v["template"] == "json":
        json.dump({"chat_template": QWEN25VL_TEMPLATE}, open(os.path.join(a.out, "chat_template.json"), "w"), indent=2)
    elif v["template"] == "jinja":
        open(os.path.join(a.out, "chat_template.jinja"), "w").write(QWEN25VL_TEMPLATE)
    else:
        tok_config["chat_template"] = QWEN25VL_TEMPLATE
    json.dump(tok_config, open(os.path.join(a.out, "tokenizer_config.json"), "w"), indent=2)
    print(json.dumps({"out": a.out, "variant": a.variant, "files": sorted(os.listdir(a.out))}))


if __name__ == "__main__":
    main()
