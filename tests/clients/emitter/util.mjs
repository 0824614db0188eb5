// Shared by the emitter test scripts: one call, as the Rust test describes it, applied to a
// Node emitter or a Node server (both have of/to/except and the same final calls).

// {"$bin": [bytes]} -> Buffer, recursively.
export function toNode(v) {
  if (Array.isArray(v)) return v.map(toNode);
  if (v && typeof v === 'object') {
    if (Array.isArray(v.$bin)) return Buffer.from(v.$bin);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toNode(x)]));
  }
  return v;
}

// Buffers (and ArrayBuffers) -> {"bin": [bytes]}, for reporting what a client received.
export function fromNode(v) {
  if (Buffer.isBuffer(v)) return { bin: [...v] };
  if (v instanceof ArrayBuffer) return { bin: [...new Uint8Array(v)] };
  if (Array.isArray(v)) return v.map(fromNode);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromNode(x)]));
  }
  return v;
}

// call: {nsp?, to: [room | [rooms]], except: [room | [rooms]], op, event?, args?, rooms?, close?}
export function apply(root, call) {
  if (call.op === 'sse') return root.of(call.nsp || '/').serverSideEmit(call.event, ...call.args);
  let target = root.of(call.nsp || '/');
  for (const r of call.to || []) target = target.to(r);
  for (const r of call.except || []) target = target.except(r);
  switch (call.op) {
    case 'emit': return target.emit(call.event, ...call.args);
    case 'join': return target.socketsJoin(call.rooms);
    case 'leave': return target.socketsLeave(call.rooms);
    case 'disconnect': return target.disconnectSockets(call.close);
    default: throw new Error('unknown op ' + call.op);
  }
}
