#!/usr/bin/env bash
# Serving benchmark on a GPU machine (issue #27; docs/gpu.md). Run from the repository root:
#
#   scripts/gpu-bench.sh [bench args]        e.g. --model DIR --concurrency 16 --tokens 64
#
# Needs no network: node (>= 20) and a node_modules installed beforehand with the CUDA EP
# (npm ci, then ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install:
# .npmrc's ignore-scripts keeps npm from running it), an NVIDIA driver, CUDA 12 and cuDNN 9.
# Writes to $OUT (default artifacts/gpu-bench): gpu.txt, bench.json (the bench's JSON line),
# bench.log, nvidia-smi.csv (1 s samples during the bench), io-probe-<ep>.txt.
# Env: PIXELREASONER_EXECUTION_PROVIDERS (default cuda,cpu), GPU_BENCH_TIMEOUT (s, default 480),
# GPU_BENCH_PROBE=0 skips the IO-binding probe.
set -euo pipefail

die() { echo "gpu-bench: $*" >&2; exit 1; }

out="${OUT:-artifacts/gpu-bench}"
ort_bin=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
export PIXELREASONER_EXECUTION_PROVIDERS="${PIXELREASONER_EXECUTION_PROVIDERS:-cuda,cpu}"
eps=",$PIXELREASONER_EXECUTION_PROVIDERS,"

# --- prerequisites -------------------------------------------------------------------------
[[ -f package.json && -d src/engine ]] || die "run from the repository root"
command -v node >/dev/null || die "node not found (Node >= 20 is needed)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || die "Node >= 20 is needed, found $(node --version)"
[[ -d node_modules/onnxruntime-node && -d node_modules/tsx ]] \
  || die "no node_modules here, and this script installs nothing: on a machine with network run
  npm ci && ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install
  and bring node_modules along"
command -v nvidia-smi >/dev/null || die "nvidia-smi not found: no NVIDIA driver on this machine"
nvidia-smi -L >/dev/null || die "nvidia-smi sees no GPU"
if [[ $eps == *,cuda,* ]]; then
  for lib in libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so; do
    [[ -f $ort_bin/$lib ]] || die "$ort_bin/$lib missing (.npmrc's ignore-scripts skips the CUDA EP download);
  on a machine with network run
  ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install"
  done
  missing=$(ldd "$ort_bin/libonnxruntime_providers_cuda.so" | awk '/not found/ && $1 !~ /^libonnxruntime/ {print $1}' | tr '\n' ' ')
  [[ -z $missing ]] || die "the CUDA EP cannot load: $missing(put CUDA 12 and cuDNN 9 on LD_LIBRARY_PATH)"
fi
# Until the engine reads the variable, the bench would silently measure the CPU.
grep -rqs PIXELREASONER_EXECUTION_PROVIDERS src/ \
  || die "src/ does not read PIXELREASONER_EXECUTION_PROVIDERS yet, so the bench would run on the CPU (docs/gpu.md)"

mkdir -p "$out"

# --- what we run on -----------------------------------------------------------------------
{
  date -u +%FT%TZ
  nvidia-smi --query-gpu=name,driver_version,memory.total,pcie.link.gen.max,pcie.link.width.max --format=csv
  echo "node $(node --version), onnxruntime-node $(node -p 'require("./node_modules/onnxruntime-node/package.json").version')"
  echo "backends $(node -p 'JSON.stringify(require("./node_modules/onnxruntime-node/dist/backend.js").listSupportedBackends())')"
  echo "vulkan ICDs (WebGPU EP): $(find /usr/share/vulkan/icd.d /etc/vulkan/icd.d -name '*.json' 2>/dev/null | tr '\n' ' ')"
  echo "PIXELREASONER_EXECUTION_PROVIDERS=$PIXELREASONER_EXECUTION_PROVIDERS"
  echo "git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
} | tee "$out/gpu.txt"

# --- the benchmark ------------------------------------------------------------------------
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 1 > "$out/nvidia-smi.csv" &
smi=$!
trap 'kill "$smi" 2>/dev/null || true' EXIT

bench=(node --import tsx bench/serving.ts)
command -v npm >/dev/null && bench=(npm run --silent bench --)
status=0
timeout "${GPU_BENCH_TIMEOUT:-480}" "${bench[@]}" --json --skip-transformersjs "$@" \
  > "$out/bench.out" 2> >(tee "$out/bench.log" >&2) || status=$?
kill "$smi" 2>/dev/null || true
((status == 0)) || die "bench failed with status $status (124: timed out); log in $out/bench.log"
tail -n 1 "$out/bench.out" > "$out/bench.json"
node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$out/bench.json" \
  || die "the bench's last line is not JSON (see $out/bench.out)"
echo "gpu-bench: $(cat "$out/bench.json")"

# --- IO-binding probe: what this onnxruntime-node does with device outputs (not fatal) -----
[[ ${GPU_BENCH_PROBE:-1} == 0 ]] && exit 0
cat > "$out/io-probe.cjs" <<'EOF'
// node io-probe.cjs <ep>: the tiny committed decoder with device-located outputs (docs/gpu.md).
const root = process.cwd();
const ort = require(`${root}/node_modules/onnxruntime-node`);
const ep = process.argv[2];
const model = `${root}/models/default/onnx/decoder_kvpool.onnx`;
const feeds = (s, capacity, given = {}) => Object.fromEntries(s.inputMetadata.map((m) => {
  const shape = m.shape.map((d) => (typeof d === 'number' ? d : d === 'capacity' ? capacity : 1));
  const n = shape.reduce((a, b) => a * b, 1);
  return [m.name, given[m.name] ?? new ort.Tensor(m.type, m.type === 'int64' ? new BigInt64Array(n) : new Float32Array(n), shape)];
}));
const step = async (name, fn) => {
  try { console.log(`ok   ${name}: ${(await fn()) ?? ''}`); } catch (e) { console.log(`FAIL ${name}: ${String(e?.message ?? e).split('\n')[0]}`); }
};
(async () => {
  let plain, io, out;
  await step(`${ep}: session, CPU tensors in and out`, async () => {
    plain = await ort.InferenceSession.create(model, { executionProviders: [ep] });
    return `logits ${(await plain.run(feeds(plain, 8))).logits.location}`;
  });
  await step("preferredOutputLocation: new_* 'gpu-buffer', logits 'cpu'", async () => {
    const names = (await ort.InferenceSession.create(model)).outputNames;
    io = await ort.InferenceSession.create(model, {
      executionProviders: [ep], preferredOutputLocation: Object.fromEntries(names.map((n) => [n, n === 'logits' ? 'cpu' : 'gpu-buffer'])),
    });
    out = await io.run(feeds(io, 8));
    return `new_key.0 ${out['new_key.0'].location}, logits ${out.logits.location}`;
  });
  if (out?.['new_key.0'].location !== 'gpu-buffer') return console.log('skip the rest: no gpu-buffer output');
  const dev = out['new_key.0']; // [1, kvH, 1, D]: a pool of capacity 1
  await step('gpu-buffer output fed back as an input', async () => {
    const o = await io.run(feeds(io, 1, { 'past_key_values.0.key': dev }));
    return `new_key.0 ${o['new_key.0'].location}`;
  });
  await step('gpu-buffer tensor as a preallocated output (session without preferredOutputLocation)', async () => {
    if (!plain) throw new Error('no plain session');
    const o = await plain.run(feeds(plain, 8), { 'new_key.0': dev, logits: null });
    return `returned new_key.0 ${o['new_key.0'].location}`;
  });
  await step('getData() of a gpu-buffer output', async () => `${(await dev.getData()).length} values`);
})();
EOF
for ep in cuda webgpu; do
  { echo "--- io probe, $ep"; timeout 120 node "$out/io-probe.cjs" "$ep" 2>&1 || echo "(probe exited with status $?)"; } \
    | tee "$out/io-probe-$ep.txt"
done
