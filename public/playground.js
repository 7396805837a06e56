// Playground: sends the chat request, streams the answer, and draws each zoom on the image.
const $ = (id) => document.getElementById(id);
const state = { dataUrl: null, kind: null, images: [], frames: [] };

fetch('/v1/models').then((r) => r.json()).then((m) => { $('model').textContent = m.data?.[0]?.id ?? ''; }).catch(() => {});

const readAsDataUrl = (file) => new Promise((resolve, reject) => {
  const reader = new FileReader();
  reader.onload = () => resolve(reader.result);
  reader.onerror = () => reject(reader.error);
  reader.readAsDataURL(file);
});

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = reject;
    img.src = src;
  });
}

function toCanvas(source, w, h, canvas = document.createElement('canvas')) {
  canvas.width = w;
  canvas.height = h;
  canvas.getContext('2d').drawImage(source, 0, 0, w, h);
  return canvas;
}

/** Samples `n` frames uniformly (first and last included), like the server, for the frame strip. */
async function sampleVideoFrames(url, n = 16) {
  const video = document.createElement('video');
  video.muted = true;
  video.src = url;
  await new Promise((r) => { video.onloadeddata = r; });
  const frames = [];
  for (let k = 0; k < n; k++) {
    video.currentTime = (k * Math.max(0, video.duration - 0.05)) / (n - 1);
    await new Promise((r) => { video.onseeked = r; });
    frames.push(toCanvas(video, video.videoWidth, video.videoHeight));
  }
  return frames;
}

async function setFile(file) {
  state.dataUrl = await readAsDataUrl(file);
  state.kind = file.type.startsWith('video/') ? 'video' : 'image';
  $('boxes').innerHTML = '';
  $('crops').innerHTML = '';
  $('frames').innerHTML = '';
  if (state.kind === 'image') {
    const img = await loadImage(state.dataUrl);
    state.images = [toCanvas(img, img.naturalWidth, img.naturalHeight, $('original'))];
  } else {
    state.frames = await sampleVideoFrames(state.dataUrl);
    state.frames.forEach((c) => $('frames').append(c));
    state.images = [];
    const ctx = $('original').getContext('2d');
    ctx.clearRect(0, 0, $('original').width, $('original').height);
  }
}

$('file').addEventListener('change', (e) => e.target.files[0] && setFile(e.target.files[0]));
for (const ev of ['dragover', 'dragenter']) $('drop').addEventListener(ev, (e) => { e.preventDefault(); $('drop').classList.add('over'); });
$('drop').addEventListener('dragleave', () => $('drop').classList.remove('over'));
$('drop').addEventListener('drop', (e) => { e.preventDefault(); $('drop').classList.remove('over'); if (e.dataTransfer.files[0]) setFile(e.dataTransfer.files[0]); });

/** Draws a crop step: a box on its target image (the original is shown scaled) and the crop beside it. */
function showCrop(step) {
  const target = state.images[(step.target_image ?? 1) - 1];
  if (!target || !step.box) return;
  const [x1, y1, x2, y2] = step.box;
  const crop = document.createElement('canvas');
  crop.width = x2 - x1;
  crop.height = y2 - y1;
  crop.getContext('2d').drawImage(target, x1, y1, x2 - x1, y2 - y1, 0, 0, x2 - x1, y2 - y1);
  state.images.push(crop);
  const fig = document.createElement('figure');
  fig.append(crop, Object.assign(document.createElement('figcaption'), { textContent: `zoom ${step.index}: [${step.box.join(', ')}] of image ${step.target_image}` }));
  $('crops').append(fig);
  if ((step.target_image ?? 1) !== 1) return;
  const original = state.images[0];
  const box = document.createElement('div');
  box.className = 'box';
  box.dataset.step = String(step.index);
  Object.assign(box.style, {
    left: `${(100 * x1) / original.width}%`, top: `${(100 * y1) / original.height}%`,
    width: `${(100 * (x2 - x1)) / original.width}%`, height: `${(100 * (y2 - y1)) / original.height}%`,
  });
  box.append(Object.assign(document.createElement('span'), { textContent: String(step.index) }));
  $('boxes').append(box);
}

function showStep(step) {
  const li = document.createElement('li');
  if (!step.ok) {
    li.className = 'error';
    li.textContent = `${step.name || 'tool call'} failed: ${step.error}`;
  } else if (step.name === 'crop_image_normalized') {
    li.textContent = `zoom into [${step.box.join(', ')}] of image ${step.target_image} → ${step.result_size.join('x')}`;
    showCrop(step);
  } else {
    li.textContent = `selected frames ${step.frames.join(', ')}`;
    const strip = [...$('frames').children];
    step.frames.forEach((f) => strip[f - 1]?.classList.add('selected'));
  }
  $('steps').append(li);
}

$('ask').addEventListener('click', async () => {
  if (!state.dataUrl) { $('status').textContent = 'Pick an image or a video first.'; return; }
  $('answer').textContent = '';
  $('steps').innerHTML = '';
  $('boxes').innerHTML = '';
  $('crops').innerHTML = '';
  state.images = state.images.slice(0, 1);
  for (const c of $('frames').children) c.classList.remove('selected');
  const media = state.kind === 'video' ? { type: 'video_url', video_url: { url: state.dataUrl } } : { type: 'image_url', image_url: { url: state.dataUrl } };
  const messages = [{ role: 'user', content: [media, { type: 'text', text: $('question').value }] }];
  if ($('prefix').value) messages.push({ role: 'assistant', content: $('prefix').value });
  const headers = { 'content-type': 'application/json' };
  if ($('api-key').value) headers.authorization = `Bearer ${$('api-key').value}`;
  $('status').textContent = 'thinking…';
  const res = await fetch('/v1/chat/completions', {
    method: 'POST', headers,
    body: JSON.stringify({
      messages, stream: true, max_tokens: Number($('max-tokens').value), temperature: Number($('temperature').value),
      pixel_reasoning: { enabled: $('tools').checked }, stream_options: { include_usage: true },
    }),
  });
  if (!res.ok) { $('status').textContent = (await res.json()).error?.message ?? res.statusText; return; }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let at;
    while ((at = buffer.indexOf('\n\n')) >= 0) {
      const line = buffer.slice(0, at).replace(/^data: /, '');
      buffer = buffer.slice(at + 2);
      if (line === '[DONE]') continue;
      const chunk = JSON.parse(line);
      if (chunk.error) { $('status').textContent = chunk.error.message; continue; }
      if (chunk.usage) $('status').textContent = `done: ${chunk.usage.prompt_tokens} prompt + ${chunk.usage.completion_tokens} generated tokens`;
      for (const c of chunk.choices ?? []) {
        if (c.delta?.content) $('answer').textContent += c.delta.content;
        if (c.pixel_reasoning?.step) showStep(c.pixel_reasoning.step);
        if (c.finish_reason) $('status').textContent = `finish_reason: ${c.finish_reason}`;
      }
    }
  }
});
