"""Where the train step's time goes, op by op: XLA:CPU's per-thunk trace, grouped by kind.

    python -m benchmarks step_profile --config cifar [--steps 2] [--top 30] [--set K=V]
        [--json benchmark_results/step_profile.json]

Compiles the step as `train_step` does (benchmarks.common.compiled_train_step), runs one
warm-up step, then `--steps` steps under `jax.profiler.trace` with XLA:CPU's per-thunk
trace events on (--xla_cpu_enable_xprof_traceme=true, appended to XLA_FLAGS before jax
starts its backend). Each thunk (one fusion, convolution, matrix product, copy...) of the
step's program is one span, from its start to its end event (convolutions and matrix
products run asynchronously on the thread pool). The traced wall time is split among the
thunks running at each moment, equally (2 threads run thunks side by side): a thunk's
"ms / step" is its share, and the shares add up to the wall time, less the idle time when
no thunk runs (dispatch, between steps). Tracing costs a few us per thunk, and on a
machine shared with other processes every share grows with the load: compare the
percentages, not the milliseconds, across runs.

Each thunk is charged to a kind from the compiled HLO: convolutions (forward, input
gradient, weight gradient: an output the size of a kernel), matrix products (attention or
dense), layout copies / transposes, then by the jax.named_scope of its ops
(genjax.kernels.recompute.SCOPES: GroupNorm + SiLU forward, its recomputation, its
gradient, the recomputation ties, the dropout masks), attention's other ops, ops outside
the UNet (optimizer, EMA, loss, noise) and the UNet's other ops.
"""

import argparse
import collections
import gzip
import json
import os
import pathlib
import re
import tempfile
import time

TRACEME_FLAG = "--xla_cpu_enable_xprof_traceme=true"

_COMP = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTR = re.compile(r"^\s*(ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_CALLS = re.compile(r"calls=%?([\w.\-]+)")
_TARGET = re.compile(r'custom_call_target="([^"]*)"')
_TRIVIAL = {"parameter", "constant", "bitcast", "broadcast", "tuple", "get-tuple-element",
            "reshape", "iota"}
# Scope labels (genjax.kernels.recompute.SCOPES values) -> kind, checked in this order.
_SCOPE_KINDS = (("recompute_tie", "recompute tie"), ("dropout_mask", "dropout mask"),
                ("gn_silu_vjp", "GroupNorm+SiLU backward"),
                ("gn_silu_recompute", "GroupNorm+SiLU recompute"),
                ("gn_silu", "GroupNorm+SiLU forward"))


def _split_shape(rest: str) -> tuple[str, str]:
  """'f32[2,3]{1,0} add(...)' or '(f32[2], s32[]) fusion(...)' -> (shape, the rest)."""
  if rest.startswith("("):
    depth = 0
    for i, ch in enumerate(rest):
      depth += {"(": 1, ")": -1}.get(ch, 0)
      if depth == 0:
        return rest[:i + 1], rest[i + 1:].lstrip()
  shape, _, tail = rest.partition(" ")
  return shape, tail


def parse_hlo(text: str) -> tuple[dict, str]:
  """HLO text -> ({computation: {instruction: info}}, entry name); info has opcode, shape,
  op_name, calls, target, root."""
  comps, entry, current = {}, None, None
  for line in text.splitlines():
    m = _COMP.match(line)
    if m and "=" not in line.split("(")[0]:
      current = comps.setdefault(m.group(2), {})
      if m.group(1):
        entry = m.group(2)
      continue
    m = _INSTR.match(line)
    if current is None or not m:
      continue
    shape, tail = _split_shape(m.group(3))
    opcode = tail.split("(", 1)[0].strip()
    info = {"opcode": opcode, "shape": shape, "root": bool(m.group(1))}
    for key, rx in (("op_name", _OP_NAME), ("calls", _CALLS), ("target", _TARGET)):
      found = rx.search(tail)
      info[key] = found.group(1) if found else ""
    current[m.group(2)] = info
  return comps, entry


def _numel(shape: str) -> int:
  dims = re.match(r"\w+\[([\d,]*)\]", shape)
  if not dims:
    return 0
  n = 1
  for d in filter(None, dims.group(1).split(",")):
    n *= int(d)
  return n


def _scope_kind(op_names: list[str]) -> str | None:
  counts = collections.Counter()
  for name in op_names:
    for label, kind in _SCOPE_KINDS:
      if f"/{label}/" in name or name.endswith(f"/{label}"):
        counts[kind] += 1
        break
    else:
      if "/Dropout_" in name:  # the masks' random bits (genjax.models.layers)
        counts["dropout mask"] += 1
      elif "/Attention_" in name:
        counts["attention (other ops)"] += 1
      elif name and "(UNet)" not in name:
        counts["outside the UNet (optimizer, EMA, loss, noise)"] += 1
  return counts.most_common(1)[0][0] if counts else None


def classify(name: str, comps: dict, entry: str, kernel_numels: set[int]) -> dict:
  """The kind of ENTRY instruction `name` (see the module docstring) and its op_name."""
  info = comps[entry][name]
  body = comps.get(info["calls"], {}) if info["calls"] else {}
  ops = [info] + list(body.values())
  opcodes = {o["opcode"] for o in ops}
  root = next((o for o in body.values() if o["root"]), info)
  op_names = [o["op_name"] for o in ops if o["opcode"] not in _TRIVIAL and o["op_name"]]
  backward = "transpose(" in info["op_name"] or any("transpose(" in n for n in op_names)
  targets = " ".join(o["target"] for o in ops).lower()
  # The conv core's other implementations: 1x1 convolutions as matrix products, tap loops,
  # oneDNN custom calls (genjax.kernels.conv), named after the model's Conv layers.
  conv_named = any("conv_general_dilated" in n or "/Conv_" in n for n in op_names)
  if "convolution" in opcodes or ("custom-call" in opcodes and "conv" in targets) or (
      conv_named and opcodes & {"dot", "while", "custom-call"}):
    # A weight gradient's output has a kernel's size (no activation does in these UNets);
    # XLA often leaves its metadata empty.
    kind = ("conv weight grad" if _numel(info["shape"]) in kernel_numels
            else "conv input grad" if backward else "conv forward")
  elif "dot" in opcodes:
    kind = "matmul (attention)" if any("/Attention_" in n for n in op_names) else \
        "matmul (dense)"
  elif root["opcode"] in ("copy", "transpose"):
    kind = "transpose / copy"
  else:
    # The fusion's own name (its root's) first: XLA merges the backward pass's small
    # [B, C] ops with the forward pass's identical ones, which keep the forward's names.
    kind = (_scope_kind([info["op_name"]]) or _scope_kind(op_names)
            or ("concatenate" if root["opcode"] == "concatenate" else "other UNet ops"))
    if kind == "outside the UNet (optimizer, EMA, loss, noise)" and any(
        "(UNet)" in n for n in op_names):
      kind = "other UNet ops"
    if kind == "other UNet ops" and root["opcode"] == "concatenate":
      kind = "concatenate"
  return {"kind": kind, "op_name": info["op_name"] or (op_names[0] if op_names else ""),
          "shape": info["shape"], "opcode": info["opcode"]}


def thunk_spans(trace_dir: pathlib.Path) -> tuple[list, str]:
  """The newest perfetto trace under trace_dir -> ([(hlo_op, start us, end us)], module).

  A thunk's span runs from its start event to its "end: " event: convolutions, matrix
  products and other thunks that run asynchronously on the thread pool end long after
  their start event does."""
  files = sorted(trace_dir.rglob("perfetto_trace.json.gz"), key=os.path.getmtime)
  if not files:
    raise FileNotFoundError(f"no perfetto_trace.json.gz under {trace_dir}")
  events = json.load(gzip.open(files[-1]))["traceEvents"]
  starts = [e for e in events if e.get("ph") == "X" and "hlo_op" in e.get("args", {})]
  if not starts:
    raise RuntimeError(f"the trace has no per-thunk events: {TRACEME_FLAG} must be in "
                       "XLA_FLAGS before jax starts its CPU backend")
  module = collections.Counter(e["args"].get("hlo_module") for e in starts).most_common(1)[0][0]
  ends = collections.defaultdict(list)
  for e in events:
    if e.get("ph") == "X" and e.get("name", "").startswith("end: "):
      ends[e["name"][5:]].append(e["ts"] + e["dur"])
  by_name = collections.defaultdict(list)
  for e in starts:
    if e["args"].get("hlo_module") == module:
      by_name[e["name"]].append(e)
  spans = []
  for name, es in by_name.items():
    es.sort(key=lambda e: e["ts"])
    done = sorted(ends.get(name, []))
    for i, e in enumerate(es):  # the i-th start ends at the i-th end (one thunk, in order)
      stop = done[i] if i < len(done) and done[i] >= e["ts"] else e["ts"] + e["dur"]
      spans.append((name, e["ts"], stop))
  return spans, module


def share_of_wall(spans: list) -> tuple[dict, float]:
  """Splits the traced wall time among the thunks running at each moment, equally:
  ({hlo_op: us}, us with no thunk running). The shares add up to the wall time."""
  points = sorted([(t0, 1, i) for i, (_, t0, _) in enumerate(spans)] +
                  [(t1, 0, i) for i, (_, _, t1) in enumerate(spans)])
  shares, active, idle, last = collections.defaultdict(float), set(), 0.0, points[0][0]
  for t, is_start, i in points:
    if active:
      each = (t - last) / len(active)
      for j in active:
        shares[spans[j][0]] += each
    else:
      idle += t - last
    last = t
    (active.add if is_start else active.discard)(i)
  return dict(shares), idle


def profile(config_name: str, steps: int, overrides=(), hlo_path=None) -> dict:
  """Profiles `steps` train steps of a config; returns rows per thunk and per kind."""
  import jax  # noqa: PLC0415 (after XLA_FLAGS is set)
  import numpy as np  # noqa: PLC0415

  from benchmarks import common  # noqa: PLC0415
  from genjax import configs  # noqa: PLC0415
  config = configs.load(config_name, list(overrides))
  compiled, state, batch, abstract, _ = common.compiled_train_step(config)
  kernel_numels = {int(np.prod(a.shape)) for a in jax.tree.leaves(abstract.params)
                   if a.ndim == 4}
  text = compiled.as_text()
  if hlo_path:
    pathlib.Path(hlo_path).write_text(text)
  comps, entry = parse_hlo(text)
  state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  with tempfile.TemporaryDirectory() as d:
    cpu0, t0 = common.process_cpu_seconds(), time.perf_counter()
    with jax.profiler.trace(d, create_perfetto_trace=True):
      for _ in range(steps):
        state, metrics = compiled(state, batch)
        jax.block_until_ready((state, metrics))
    wall, cpu = time.perf_counter() - t0, common.process_cpu_seconds() - cpu0
    spans, module = thunk_spans(pathlib.Path(d))
  spans = [sp for sp in spans if sp[0] in comps[entry]]  # not the thunks of loop bodies
  shares, idle = share_of_wall(spans)
  rows = [{"thunk": name, "ms": us / 1e3 / steps,
           **classify(name, comps, entry, kernel_numels)} for name, us in shares.items()]
  total = sum(r["ms"] for r in rows)
  for r in rows:
    r["pct"] = 100 * r["ms"] / total
  rows.sort(key=lambda r: -r["ms"])
  kinds = collections.defaultdict(lambda: {"ms": 0.0, "thunks": 0})
  for r in rows:
    kinds[r["kind"]]["ms"] += r["ms"]
    kinds[r["kind"]]["thunks"] += 1
  kind_rows = sorted(({"kind": k, **v, "pct": 100 * v["ms"] / total} for k, v in kinds.items()),
                     key=lambda r: -r["ms"])
  return {"config": config_name, "overrides": list(overrides), "module": module,
          "steps_traced": steps, "thunk_ms_per_step": total,
          "idle_ms_per_step": idle / 1e3 / steps,
          "traced_wall_ms_per_step": 1e3 * wall / steps,
          "traced_cpu_ms_per_step": 1e3 * cpu / steps,
          "memory": common.memory_analysis(compiled), "kinds": kind_rows, "thunks": rows}


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--config", default="cifar")
  p.add_argument("--steps", type=int, default=2)
  p.add_argument("--top", type=int, default=30)
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
  p.add_argument("--json", default="benchmark_results/step_profile.json")
  p.add_argument("--hlo", default=None, help="also write the compiled HLO text here")
  args = p.parse_args(argv)
  flags = os.environ.get("XLA_FLAGS", "")
  if TRACEME_FLAG not in flags.split():  # appended: genjax's own flags stay (xla_flags)
    os.environ["XLA_FLAGS"] = f"{flags} {TRACEME_FLAG}".strip()
  from benchmarks import common  # noqa: PLC0415
  result = profile(args.config, args.steps, args.set, args.hlo)
  print(f"device: {common.device_info()}")
  print(f"{args.config}: {result['steps_traced']} traced steps; per step: wall "
        f"{result['traced_wall_ms_per_step']:.0f} ms = thunks {result['thunk_ms_per_step']:.0f}"
        f" ms + idle {result['idle_ms_per_step']:.0f} ms (+ before / after the first / last "
        f"thunk); process CPU {result['traced_cpu_ms_per_step']:.0f} ms")
  common.print_table(result["kinds"], [("kind", "kind", ""), ("thunks", "thunks", "d"),
                                       ("ms", "ms / step", ".1f"), ("pct", "%", ".1f")])
  print()
  top = [{**r, "op": r["op_name"].removeprefix("jit(train_step)/")[-70:]}
         for r in result["thunks"][:args.top]]
  common.print_table(top,
                     [("thunk", "thunk", ""), ("kind", "kind", ""), ("ms", "ms / step", ".1f"),
                      ("pct", "%", ".1f"), ("shape", "shape", ""), ("op", "op (jax name)", "")])
  common.write_json(args.json, {"benchmark": "step_profile", "device": common.device_info(),
                                **result})
  print(f"wrote {args.json}")
  return result


if __name__ == "__main__":
  import benchmarks
  benchmarks.setup()
  main()
