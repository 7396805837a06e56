"""Serving-benchmark peer (e): Hugging Face transformers (PyTorch, CPU, fp32) with the Pixel-Reasoner
reference's tool loop, on a Hugging Face snapshot.

The reference's loop generates until </tool_call>, crops with PIL and runs the whole conversation
again through generate. In the benchmark's workload the assistant's call is given, so each request
is: crop the request's image with PIL (the reference's crop: pad 0.1, clamp, PIL crop), build
[system, user(image, question), assistant(call), user(result text, crop)] and run
model.generate(max_new_tokens=T, min_new_tokens=T, do_sample=False) over it. Requests run one after
another, as that loop does.

    python transformers_tool_loop.py SPEC.json
    python transformers_tool_loop.py --check      (exits 0 when torch, transformers and Pillow import)

SPEC (written by bench/peers/transformers.ts; every text is the engine's own):
    {"snapshot": DIR, "threads": N, "max_new_tokens": T, "system": TEXT, "call": TEXT,
     "requests": [{"image": PNG, "question": TEXT, "result_text": TEXT, "bbox": [x1, y1, x2, y2],
                   "crop_box": [left, top, right, bottom]}]}
("crop_box" is the engine's pixel box for the same call: the crop here must land on it.)

Progress goes to stderr; the last stdout line is one JSON object:
    {"requests", "tokens", "seconds", "ttft_ms": [...], "prompt_tokens": [...], "generated": [...],
     "processor", "threads", "torch", "transformers"}
A python without torch or transformers exits with status 3 and {"missing": MODULE} on stdout.
"""
import json
import os
import sys
import time

try:
    import torch
    import transformers
    from PIL import Image
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration
    from transformers.generation.streamers import BaseStreamer

    # The reference's crop and the snapshot's template, as the transformers oracle of the system tests has them.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test-system", "hf"))
    from oracle import reference_crop, snapshot_template
except ImportError as e:  # the wrapper turns this into an install hint
    print(json.dumps({"missing": e.name or str(e)}))
    sys.exit(3)


def log(s):
    print(f"[transformers] {s}", file=sys.stderr, flush=True)


class Inputs:
    """The snapshot's processor (AutoProcessor). Without torchvision, transformers 5 cannot build
    Qwen2.5-VL's processor (its video processor needs it); then the same steps are done by hand with
    the snapshot's tokenizer and (PIL) image processor: chat template, image features, each
    <|image_pad|> expanded to its grid's token count, mm_token_type_ids."""

    def __init__(self, model_dir, config):
        self.config = config
        try:
            self.processor = AutoProcessor.from_pretrained(model_dir)
            self.name = f"AutoProcessor ({type(self.processor).__name__}, {type(self.processor.image_processor).__name__})"
        except ImportError as e:
            if "torchvision" not in str(e).lower():
                raise
            from transformers import AutoImageProcessor, AutoTokenizer
            self.processor = None
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
            self.image_processor = AutoImageProcessor.from_pretrained(model_dir)
            self.template = snapshot_template(model_dir)
            self.name = f"tokenizer + {type(self.image_processor).__name__} (no torchvision for AutoProcessor)"

    def __call__(self, messages, images):
        if self.processor is not None:
            text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return dict(self.processor(text=[text], images=images, return_tensors="pt"))
        text = self.tokenizer.apply_chat_template(messages, chat_template=self.template, add_generation_prompt=True, tokenize=False)
        out = self.image_processor(images=images, return_tensors="pt")
        merge = self.image_processor.merge_size
        pieces = text.split("<|image_pad|>")
        assert len(pieces) == len(images) + 1, (len(pieces), len(images))
        counts = [int(g.prod()) // merge**2 for g in out["image_grid_thw"]]
        text = pieces[0] + "".join("<|image_pad|>" * n + rest for n, rest in zip(counts, pieces[1:]))
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        types = torch.zeros_like(ids, dtype=torch.int32)
        types[ids == self.config.image_token_id] = 1
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "mm_token_type_ids": types,
                "pixel_values": out["pixel_values"], "image_grid_thw": out["image_grid_thw"]}


class FirstToken(BaseStreamer):
    """generate() puts the prompt first, then each new token: the second put is the first token."""

    def __init__(self, on_first):
        self.calls = 0
        self.on_first = on_first

    def put(self, value):
        self.calls += 1
        if self.calls == 2:
            self.on_first()

    def end(self):
        pass


def main():
    if sys.argv[1] == "--check":
        print(json.dumps({"ok": True, "torch": torch.__version__, "transformers": transformers.__version__}))
        return
    spec = json.load(open(sys.argv[1]))
    torch.set_num_threads(spec["threads"])
    t_load = time.perf_counter()
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(spec["snapshot"], dtype=torch.float32).eval()
    inputs_for = Inputs(spec["snapshot"], model.config)
    log(f"loaded {spec['snapshot']} in {time.perf_counter() - t_load:.1f} s; torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{spec['threads']} threads; processor: {inputs_for.name}")
    images = [Image.open(r["image"]).convert("RGB") for r in spec["requests"]]
    T = spec["max_new_tokens"]

    def one_request(i, t0, ttft):
        r = spec["requests"][i]
        crop, box = reference_crop(images[i], r["bbox"])
        if box != r["crop_box"]:
            raise SystemExit(f"request {i}: the reference crop box {box} is not the engine's {r['crop_box']}")
        messages = [
            {"role": "system", "content": spec["system"]},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": r["question"]}]},
            {"role": "assistant", "content": spec["call"]},
            {"role": "user", "content": [{"type": "text", "text": r["result_text"]}, {"type": "image"}]},
        ]
        inputs = inputs_for(messages, [images[i], crop])
        streamer = FirstToken(lambda: ttft.append((time.perf_counter() - t0) * 1000))
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=T, min_new_tokens=T, do_sample=False, streamer=streamer)
        prompt = inputs["input_ids"].shape[1]
        return prompt, out.shape[1] - prompt

    t = time.perf_counter()
    one_request(0, t, [])  # warm-up, untimed
    log(f"warm-up request in {time.perf_counter() - t:.1f} s")
    ttft, prompts, generated = [], [], []
    t0 = time.perf_counter()
    for i in range(len(spec["requests"])):
        prompt, n = one_request(i, t0, ttft)
        prompts.append(prompt)
        generated.append(n)
        log(f"request {i + 1}/{len(spec['requests'])}: {prompt} prompt tokens, {n} generated, {time.perf_counter() - t0:.1f} s so far")
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "requests": len(generated), "tokens": sum(generated), "seconds": seconds, "ttft_ms": ttft,
        "prompt_tokens": prompts, "generated": generated, "processor": inputs_for.name,
        "threads": spec["threads"], "torch": torch.__version__, "transformers": transformers.__version__,
    }))


if __name__ == "__main__":
    main()
