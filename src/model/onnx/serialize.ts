import { ProtoWriter } from './protobuf-writer.js';
import { DATA_TYPE, type Attr, type ConstTensor, type ExternalTensor, type Graph, type ValueInfo } from './ir.js';


export interface OpsetImport {
  domain: string;
  version: number;
}

export const DEFAULT_OPSETS: OpsetImport[] = [
  { domain: '', version: 17 },
  { domain: 'com.microsoft', version: 1 },
];

/** Supplies parameter values at export (the graph only knows names and dims): bytes, or a place in an external-data file. */
export type WeightLookup = (name: string) => ConstTensor | ExternalTensor;

function tensorBytes(t: ConstTensor): Uint8Array {
  if (t.dtype === 'bool') return t.data as Uint8Array;
  const d = t.data;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function writeTensor(w: ProtoWriter, name: string, t: ConstTensor | ExternalTensor): void {
  w.packedInts(1, t.dims);
  w.int(2, DATA_TYPE[t.dtype]);
  w.string(8, name);
  if ('external' in t) {
    // TensorProto.external_data (13): key/value entries; data_location (14) = EXTERNAL.
    const entry = (key: string, value: string) => w.message(13, (e) => e.string(1, key).string(2, value));
    entry('location', t.external.location);
    entry('offset', String(t.external.offset));
    entry('length', String(t.external.length));
    w.int(14, 1);
  } else w.bytes(9, tensorBytes(t));
}

function writeValueInfo(w: ProtoWriter, v: ValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensorType) => {
      tensorType.int(1, DATA_TYPE[v.dtype]);
      tensorType.message(2, (shape) => {
        for (const d of v.shape) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

function writeAttr(w: ProtoWriter, name: string, a: Attr): void {
  w.string(1, name);
  if ('f' in a) w.float(2, a.f).int(20, 1);
  else if ('i' in a) w.int(3, a.i).int(20, 2);
  else if ('s' in a) w.string(4, a.s).int(20, 3);
  else if ('t' in a) w.message(5, (t) => writeTensor(t, '', a.t)).int(20, 4);
  else if ('floats' in a) w.packedFloats(7, a.floats).int(20, 6);
  else w.packedInts(8, a.ints).int(20, 7);
}

/** Serialises a graph to an ONNX ModelProto. Deterministic: same graph and weights, same bytes. */
export function serializeModel(graph: Graph, weights: WeightLookup, opsets: OpsetImport[] = DEFAULT_OPSETS): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, 8); // ir_version 8 (opset 17 era)
  w.string(2, 'pixel-reasoner-server');
  w.string(3, '0.1.0');
  w.message(7, (g) => {
    graph.nodes.forEach((n, i) =>
      g.message(1, (node) => {
        for (const inp of n.inputs) node.string(1, inp);
        for (const out of n.outputs) node.string(2, out);
        node.string(3, `${n.op}_${i}`);
        node.string(4, n.op);
        for (const [k, v] of Object.entries(n.attrs)) node.message(5, (a) => writeAttr(a, k, v));
        if (n.domain) node.string(7, n.domain);
      }),
    );
    g.string(2, graph.name);
    for (const name of [...graph.params.keys()].sort()) {
      const t = weights(name);
      const spec = graph.params.get(name)!;
      if (t.dims.join() !== spec.dims.join()) throw new Error(`weight ${name}: dims ${t.dims} != declared ${spec.dims}`);
      if (spec.dtype && t.dtype !== spec.dtype) throw new Error(`weight ${name}: dtype ${t.dtype} != declared ${spec.dtype}`);
      g.message(5, (tp) => writeTensor(tp, name, t));
    }
    for (const [name, t] of graph.constants) g.message(5, (tp) => writeTensor(tp, name, t));
    for (const v of graph.inputs) g.message(11, (vi) => writeValueInfo(vi, v));
    for (const v of graph.outputs) g.message(12, (vi) => writeValueInfo(vi, v));
  });
  for (const o of opsets) w.message(8, (os) => os.string(1, o.domain).int(2, o.version));
  return w.finish();
}
