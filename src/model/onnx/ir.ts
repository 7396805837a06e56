/**
 * The model graph as data: typed values, op nodes and parameters, kept in memory before it is
 * serialised to ONNX. The layer definitions build this IR once; serving exports it, and training
 * (reverse-mode differentiation) walks the same nodes.
 */
export type DType = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'uint8' | 'bool';
export type Dim = number | string;

/** ONNX TensorProto.DataType codes. */
export const DATA_TYPE: Record<DType, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 };

export interface ValueInfo {
  name: string;
  dtype: DType;
  shape: Dim[];
}

export type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array;

export interface ConstTensor {
  dtype: DType;
  dims: number[];
  data: TensorData;
}

/** A weight whose bytes live in an ONNX external-data file beside the graph (no 2 GB protobuf limit). */
export interface ExternalTensor {
  dtype: DType;
  dims: number[];
  external: { location: string; offset: number; length: number };
}

export type Attr =
  | { i: number }
  | { f: number }
  | { s: string }
  | { ints: number[] }
  | { floats: number[] }
  | { t: ConstTensor };

export interface OpNode {
  op: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
}

export interface ParamSpec {
  name: string;
  dims: number[];
  /** Element type when not the graph's float type (quantized weights: uint8 blocks). */
  dtype?: DType;
}

export class Graph {
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  readonly nodes: OpNode[] = [];
  /** Constants baked into the graph (shapes, masks, frequencies). */
  readonly constants = new Map<string, ConstTensor>();
  /** Trainable weights referenced by name; their values come from a WeightStore at export. */
  readonly params = new Map<string, ParamSpec>();
  private counter = 0;

  constructor(readonly name: string, readonly floatType: 'float32' | 'float64' = 'float32') {}

  fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  input(name: string, dtype: DType, shape: Dim[]): string {
    this.inputs.push({ name, dtype, shape });
    return name;
  }

  /** Marks `value` as graph output `name` (adding an Identity when the names differ). */
  output(value: string, name: string, dtype: DType, shape: Dim[]): void {
    if (value !== name) this.nodes.push({ op: 'Identity', domain: '', inputs: [value], outputs: [name], attrs: {} });
    this.outputs.push({ name, dtype, shape });
  }

  param(name: string, dims: number[], dtype?: DType): string {
    const existing = this.params.get(name);
    if (existing && existing.dims.join() !== dims.join()) throw new Error(`param ${name} redeclared with other dims`);
    this.params.set(name, { name, dims, ...(dtype ? { dtype } : {}) });
    return name;
  }

  op(op: string, inputs: string[], attrs: Record<string, Attr> = {}, hint?: string): string {
    return this.opN(op, inputs, 1, attrs, hint)[0]!;
  }

  opN(op: string, inputs: string[], nOutputs: number, attrs: Record<string, Attr> = {}, hint?: string, domain = ''): string[] {
    const base = this.fresh(hint ?? op.toLowerCase());
    const outputs = Array.from({ length: nOutputs }, (_, i) => (nOutputs === 1 ? base : `${base}:${i}`));
    this.nodes.push({ op, domain, inputs, outputs, attrs });
    return outputs;
  }

  constTensor(t: ConstTensor, hint = 'const'): string {
    const name = this.fresh(hint);
    this.constants.set(name, t);
    return name;
  }

  int64(values: number[], dims: number[] = [values.length]): string {
    return this.constTensor({ dtype: 'int64', dims, data: BigInt64Array.from(values.map((v) => BigInt(v))) }, 'i64');
  }

  scalarInt64(value: number): string {
    return this.int64([value], []);
  }

  float(values: number[] | Float32Array, dims: number[] = [values.length]): string {
    const data = this.floatType === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
    return this.constTensor({ dtype: this.floatType, dims, data }, 'f');
  }

  scalarFloat(value: number): string {
    return this.float([value], []);
  }
}
