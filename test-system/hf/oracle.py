"""The outside oracle for real checkpoints: Hugging Face transformers (fp32, CPU) on the same snapshot.

Reads one JSON request on stdin, prints one JSON result on stdout. Requests:
  {"op": "generate", "model": DIR, "messages": [...], "max_new_tokens": N, "video_pixels": {"min": .., "max": ..}}
      messages are HF chat messages whose content parts are {"type": "text", "text"},
      {"type": "image", "path"} or {"type": "video", "frames": [paths], "fps": F}; rendered with the
      snapshot's own chat template (transformers' apply_chat_template), tokenized by its tokenizer.json.
      With "reference_tools": true, the last message's parts are put in the Pixel-Reasoner reference's
      prompt (its system turn with the tools, media first, the question and its guideline after).
      An optional "assistant_prefix" string is appended after the generation prompt (a message being
      continued), and "tail" (a list of parts, as in a message) after that: text verbatim, images
      in place as <|vision_start|><|image_pad|><|vision_end|>, so a whole tool-call sequence can be fed.
      Returns prompt_ids, greedy tokens and the log-probability of each generated token.
  {"op": "pixels", "model": DIR, "image": PATH, "out": FILE}
      writes Qwen2VLImageProcessor's pixel_values (float32, row-major) to FILE, returns the grid.
  {"op": "loss", "model": DIR, "ids": [...], "weights": [...], "images": [PATH...], "params": [NAME...]}
      the SFT loss -sum_t w_t log p(ids[t] | ids[<t]) / sum_t w_t (w_t the weight of token t as a label)
      on the whole sequence with its images, and torch autograd's gradients of the named parameters
      (checkpoint names), as {"loss", "grads": {name: {"shape", "data"}}}.
  {"op": "pg_loss", "model": DIR, "reference": DIR, "rollouts": [{"ids", "sampled", "advantage", "images"}], "sampled_tokens": T, "kl_coef": B, "params": [...]}
      the RL policy-gradient loss with the KL term (DESIGN.md section 5), and its gradients.
  {"op": "crop", "model": DIR, "image": PATH, "bbox": [x1, y1, x2, y2], "out": PATH}
      the Pixel-Reasoner reference crop (pad 0.1, clamp, PIL crop of the full image), saved as PNG,
      and the size the image processor resizes it to (the "Image Size" of the result turn).
"""
import json
import sys

import numpy as np
import torch
from PIL import Image
from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil, smart_resize

torch.set_num_threads(2)


def image_processor(model_dir, min_pixels=None, max_pixels=None):
    pre = json.load(open(f"{model_dir}/preprocessor_config.json"))
    return Qwen2VLImageProcessorPil(
        min_pixels=min_pixels or pre["min_pixels"], max_pixels=max_pixels or pre["max_pixels"],
        patch_size=pre["patch_size"], temporal_patch_size=pre["temporal_patch_size"], merge_size=pre["merge_size"],
        image_mean=pre["image_mean"], image_std=pre["image_std"],
    )


def video_pixels(frames, proc, min_pixels, max_pixels):
    """Qwen2-VL's video patchify over PIL-resized frames (the torchvision video processor does not import here)."""
    first = frames[0]
    h, w = smart_resize(first.height, first.width, factor=proc.patch_size * proc.merge_size, min_pixels=min_pixels, max_pixels=max_pixels)
    arr = []
    for f in frames:
        x = np.asarray(f.convert("RGB").resize((w, h), resample=Image.BICUBIC), dtype=np.uint8).transpose(2, 0, 1)
        x = (x.astype(np.float64) * (1 / 255)).astype(np.float32)
        mean = np.array(proc.image_mean, dtype=np.float32)
        std = np.array(proc.image_std, dtype=np.float32)
        arr.append(((x.T - mean) / std).T)
    patches = np.stack(arr)
    tp, ps, m = proc.temporal_patch_size, proc.patch_size, proc.merge_size
    if patches.shape[0] % tp:
        patches = np.concatenate([patches, np.repeat(patches[-1:], tp - patches.shape[0] % tp, axis=0)])
    c = patches.shape[1]
    gt, gh, gw = patches.shape[0] // tp, h // ps, w // ps
    patches = patches.reshape(gt, tp, c, gh // m, m, ps, gw // m, m, ps)
    patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return patches.reshape(gt * gh * gw, c * tp * ps * ps), [gt, gh, gw]


# The Pixel-Reasoner reference's prompt, written from its sources (experience_maker.py's tools,
# prompts_dataset.py's vcot trigger with the extra "\n\n" it prepends, Qwen-Agent's NousFnCallPrompt).
REFERENCE_TOOLS = [
    {"type": "function", "function": {"name": "crop_image_normalized", "description": "Zoom in on the image based on the bounding box coordinates. It is useful when the object or text in the image is too small to be seen.", "parameters": {"type": "object", "properties": {"bbox_2d": {"type": "array", "description": "coordinates for bounding box of the area you want to zoom in. Values should be within [0.0,1.0].", "items": {"type": "number"}}, "target_image": {"type": "number", "description": "The index of the image to crop. Index from 1 to the number of images. Choose 1 to operate on original image."}}, "required": ["bbox_2d", "target_image"]}}},
    {"type": "function", "function": {"name": "select_frames", "description": "Select frames from a video.", "parameters": {"type": "object", "properties": {"target_frames": {"type": "array", "description": "List of frame indices to select from the video (no more than 8 frames in total).", "items": {"type": "integer", "description": "Frame index from 1 to 16."}}}, "required": ["target_frames"]}}},
]
FN_CALL_TEMPLATE = """# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{tool_descs}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{{"name": <function-name>, "arguments": <args-json-object>}}
</tool_call>"""
VCOT = "\n\nGuidelines: Understand the given visual information and the user query. Determine if it is beneficial to employ the given visual operations (tools). For a video, we can look closer by `select_frames`. For an image, we can look closer by `crop_image`. Reason with the visual information step by step, and put your final answer within \\boxed{}."


def reference_messages(question_parts):
    """System turn and first user turn as the reference builds them: media first, then question + trigger."""
    tool_descs = "\n".join(json.dumps(t, ensure_ascii=False) for t in REFERENCE_TOOLS)
    system = "You are a helpful assistant." + "\n\n" + FN_CALL_TEMPLATE.format(tool_descs=tool_descs)
    media = [p for p in question_parts if p["type"] != "text"]
    text = "".join(p["text"] for p in question_parts if p["type"] == "text")
    return [{"role": "system", "content": system}, {"role": "user", "content": media + [{"type": "text", "text": text + f"\n\n{VCOT}"}]}]


def reference_crop(img, bbox):
    """The reference's crop_image_normalized: pad 0.1 around the box, clamp to the image, PIL crop; also the pixel box."""
    x1, y1, x2, y2 = bbox
    if not all(v < 1 for v in bbox):
        x1, x2, y1, y2 = x1 / img.width, x2 / img.width, y1 / img.height, y2 / img.height
    pad = 0.1
    box = [max(0.0, x1 - pad) * img.width, max(0.0, y1 - pad) * img.height, min(1.0, x2 + pad) * img.width, min(1.0, y2 + pad) * img.height]
    # PIL rounds a float box half to even, as Python's round does.
    return img.crop(box), [round(v) for v in box]


def snapshot_template(model_dir):
    """The snapshot's chat template, wherever it keeps it (the processor's files are not loaded here)."""
    import os
    if os.path.exists(f"{model_dir}/chat_template.jinja"):
        return open(f"{model_dir}/chat_template.jinja").read()
    if os.path.exists(f"{model_dir}/chat_template.json"):
        return json.load(open(f"{model_dir}/chat_template.json"))["chat_template"]
    return json.load(open(f"{model_dir}/tokenizer_config.json"))["chat_template"]


def generate(req):
    model_dir = req["model"]
    tok = AutoTokenizer.from_pretrained(model_dir)
    proc = image_processor(model_dir)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    cfg = model.config
    template_messages, images, videos = [], [], []
    messages = reference_messages(req["messages"][-1]["content"]) if req.get("reference_tools") else req["messages"]
    for m in messages:
        if isinstance(m["content"], str):
            template_messages.append(m)
            continue
        parts = []
        for p in m["content"]:
            if p["type"] == "image":
                images.append(Image.open(p["path"]).convert("RGB"))
                parts.append({"type": "image"})
            elif p["type"] == "video":
                videos.append(([Image.open(f).convert("RGB") for f in p["frames"]], p.get("fps", 2.0)))
                parts.append({"type": "video"})
            else:
                parts.append(p)
        template_messages.append({"role": m["role"], "content": parts})
    text = tok.apply_chat_template(template_messages, chat_template=snapshot_template(model_dir), add_generation_prompt=True, tokenize=False)
    text += req.get("assistant_prefix", "")
    for p in req.get("tail", []):
        if p["type"] == "image":
            images.append(Image.open(p["path"]).convert("RGB"))
            text += "<|vision_start|><|image_pad|><|vision_end|>"
        else:
            text += p["text"]
    kwargs = {}
    pads = {}
    if images:
        out = proc(images=images, return_tensors="np")
        kwargs["pixel_values"] = torch.tensor(out["pixel_values"])
        kwargs["image_grid_thw"] = torch.tensor(out["image_grid_thw"])
        pads["<|image_pad|>"] = [int(np.prod(g)) // proc.merge_size ** 2 for g in out["image_grid_thw"]]
    if videos:
        vp = req.get("video_pixels", {})
        values, grids, seconds = [], [], []
        for frames, fps in videos:
            v, g = video_pixels(frames, proc, vp.get("min", proc.size["shortest_edge"]), vp.get("max", proc.size["longest_edge"]))
            values.append(v)
            grids.append(g)
            seconds.append(proc.temporal_patch_size / fps)
        kwargs["pixel_values_videos"] = torch.tensor(np.concatenate(values))
        kwargs["video_grid_thw"] = torch.tensor(grids)
        kwargs["second_per_grid_ts"] = torch.tensor(seconds)
        pads["<|video_pad|>"] = [int(np.prod(g)) // proc.merge_size ** 2 for g in grids]
    for pad, counts in pads.items():
        pieces = text.split(pad)
        assert len(pieces) == len(counts) + 1, (pad, len(pieces), counts)
        text = pieces[0] + "".join(pad * n + rest for n, rest in zip(counts, pieces[1:]))
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    types = torch.zeros_like(ids, dtype=torch.int32)
    types[ids == cfg.image_token_id] = 1
    types[ids == cfg.video_token_id] = 2
    gen = model.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), mm_token_type_ids=types, max_new_tokens=req["max_new_tokens"],
        do_sample=False, output_logits=True, return_dict_in_generate=True, **kwargs,
    )
    new = gen.sequences[0, ids.shape[1]:].tolist()
    logprobs = [torch.log_softmax(l[0].double(), -1)[t].item() for l, t in zip(gen.logits, new)]
    top2 = [torch.topk(l[0], 2).values.tolist() for l in gen.logits]
    return {"prompt_ids": ids[0].tolist(), "tokens": new, "logprobs": logprobs, "margins": [a - b for a, b in top2]}


def checkpoint_to_module_name(name):
    """transformers 5.x modules are model.language_model.* and model.visual.*; checkpoints keep the legacy model.* and visual.*."""
    if name.startswith("model."):
        return "model.language_model." + name[len("model."):]
    if name.startswith("visual."):
        return "model." + name
    return name


def loss(req):
    """-sum_t w_t log p(ids[t] | ids[<t]) / sum_t w_t over a whole sequence (with its images), and d loss / d params."""
    model_dir = req["model"]
    proc = image_processor(model_dir)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    cfg = model.config
    ids = torch.tensor([req["ids"]])
    kwargs = {}
    if req.get("images"):
        out = proc(images=[Image.open(p).convert("RGB") for p in req["images"]], return_tensors="np")
        kwargs["pixel_values"] = torch.tensor(out["pixel_values"])
        kwargs["image_grid_thw"] = torch.tensor(out["image_grid_thw"])
    types = torch.zeros_like(ids, dtype=torch.int32)
    types[ids == cfg.image_token_id] = 1
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), mm_token_type_ids=types, **kwargs).logits.float()
    logp = torch.log_softmax(logits[0, :-1], -1).gather(-1, ids[0, 1:, None])[:, 0]
    w = torch.tensor(req["weights"][1:], dtype=torch.float32)
    value = -(logp * w).sum() / (w.sum() if req.get("normalise", True) else 1.0)
    value.backward()
    params = dict(model.named_parameters())
    grads = {}
    for name in req["params"]:
        g = params[checkpoint_to_module_name(name)].grad
        grads[name] = {"shape": list(g.shape), "data": g.flatten().tolist()}
    return {"loss": value.item(), "grads": grads}


def pg_loss(req):
    """The RL step's loss from DESIGN.md section 5 in torch: on every sampled token t of rollout i (T sampled
    tokens in all), w_t = A_i / T - beta (log pi(y_t) - log pi_ref(y_t)) / T with the KL part held constant,
    loss = -sum w_t log pi(y_t); and torch autograd's gradients of the named parameters."""
    proc = image_processor(req["model"])
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(req["model"], dtype=torch.float32).eval()
    # pi_ref is the reference checkpoint's language model reading the policy's visual features
    # (the project's RL keeps the reference's text weights only; with a frozen vision tower they are the base's).
    ref = Qwen2_5_VLForConditionalGeneration.from_pretrained(req["model"], dtype=torch.float32).eval()
    other = Qwen2_5_VLForConditionalGeneration.from_pretrained(req["reference"], dtype=torch.float32).eval()
    ref.model.language_model.load_state_dict(other.model.language_model.state_dict())
    ref.lm_head.load_state_dict(other.lm_head.state_dict())
    T, beta = req["sampled_tokens"], req["kl_coef"]

    def token_logprobs(m, r):
        ids = torch.tensor([r["ids"]])
        kwargs = {}
        if r.get("images"):
            out = proc(images=[Image.open(p).convert("RGB") for p in r["images"]], return_tensors="np")
            kwargs = {"pixel_values": torch.tensor(out["pixel_values"]), "image_grid_thw": torch.tensor(out["image_grid_thw"])}
        types = (ids == m.config.image_token_id).int()
        logits = m(input_ids=ids, attention_mask=torch.ones_like(ids), mm_token_type_ids=types, **kwargs).logits.float()
        return torch.log_softmax(logits[0, :-1], -1).gather(-1, ids[0, 1:, None])[:, 0]

    total = torch.zeros(())
    for r in req["rollouts"]:
        logp = token_logprobs(model, r)
        with torch.no_grad():
            logp_ref = token_logprobs(ref, r)
        sampled = torch.tensor(r["sampled"][1:], dtype=torch.float32)
        w = (r["advantage"] / T - beta * (logp - logp_ref).detach() / T) * sampled
        total = total - (w * logp).sum()
    total.backward()
    params = dict(model.named_parameters())
    grads = {n: {"shape": list(params[checkpoint_to_module_name(n)].grad.shape), "data": params[checkpoint_to_module_name(n)].grad.flatten().tolist()} for n in req["params"]}
    return {"loss": total.item(), "grads": grads}


def pixels(req):
    proc = image_processor(req["model"])
    out = proc(images=[Image.open(req["image"]).convert("RGB")], return_tensors="np")
    np.asarray(out["pixel_values"], dtype=np.float32).tofile(req["out"])
    return {"grid": out["image_grid_thw"][0].tolist(), "shape": list(out["pixel_values"].shape)}


def crop(req):
    img, _ = reference_crop(Image.open(req["image"]).convert("RGB"), req["bbox"])
    img.save(req["out"])
    pre = json.load(open(f"{req['model']}/preprocessor_config.json"))
    h, w = smart_resize(img.height, img.width, factor=pre["patch_size"] * pre["merge_size"], min_pixels=pre["min_pixels"], max_pixels=pre["max_pixels"])
    return {"size": [img.width, img.height], "resized": [w, h]}


if __name__ == "__main__":
    request = json.load(sys.stdin)
    result = {"generate": generate, "pixels": pixels, "crop": crop, "loss": loss, "pg_loss": pg_loss}[request["op"]](request)
    print(json.dumps(result))
