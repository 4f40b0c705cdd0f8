"""The layout of genjax.apps.comic: every module imports alone, no import cycle, no private
name imported from another module."""

import ast
import pathlib
import subprocess
import sys

import genjax

ROOT = pathlib.Path(genjax.__file__).parent
PACKAGE = "genjax.apps.comic"


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
COMIC = sorted(m for m in MODULES if m == PACKAGE or m.startswith(PACKAGE + "."))


def _imports(name: str, tree: ast.AST | None = None):
  """(imported genjax module, names taken from it, line) of every import statement in module
  `name` (its source, or `tree`), wherever it stands (inside functions and `if TYPE_CHECKING:`
  blocks too)."""
  path = MODULES[name]
  package = name if path.name == "__init__.py" else name.rpartition(".")[0]
  tree = ast.parse(path.read_text(), str(path)) if tree is None else tree
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for a in node.names:
        if a.name in MODULES:
          yield a.name, (), node.lineno
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                        + ([node.module] if node.module else []))
      for a in node.names:
        sub = f"{base}.{a.name}"
        if sub in MODULES:              # from package import module
          yield sub, (), node.lineno
        elif base in MODULES:           # from module import name
          yield base, (a.name,), node.lineno


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
  """Cycles met by a depth-first search of graph {node: [successors]} (each as a path)."""
  state, cycles = {}, []

  def visit(m, stack):
    state[m] = "open"
    stack.append(m)
    for t in graph.get(m, ()):
      if state.get(t) == "open":
        cycles.append(stack[stack.index(t):] + [t])
      elif t not in state:
        visit(t, stack)
    stack.pop()
    state[m] = "done"

  for m in sorted(graph):
    if m not in state:
      visit(m, [])
  return cycles


def _private_uses(name: str, source: str) -> list[str]:
  """`from x import _name` and `module._name` (of an imported genjax module) in `source`,
  the text of module `name`."""
  tree = ast.parse(source)
  found, module_aliases = [], set()
  for target, names, line in _imports(name, tree):
    found += [f"{name}:{line}: {target}.{n}" for n in names
              if n.startswith("_") and not n.startswith("__")]
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      module_aliases |= {(a.asname or a.name).split(".")[0] for a in node.names}
    elif isinstance(node, ast.ImportFrom):
      module_aliases |= {a.asname or a.name for a in node.names
                         if f"{node.module}.{a.name}" in MODULES}
  for node in ast.walk(tree):
    if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
        and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
        and node.value.id in module_aliases):
      found.append(f"{name}:{node.lineno}: {node.value.id}.{node.attr}")
  return found


def test_the_checks_find_what_they_look_for():
  assert {f"{PACKAGE}.translator", f"{PACKAGE}.train_translator", f"{PACKAGE}.styles"} <= set(COMIC)
  edges = {(m, n) for m, n, _ in _imports(f"{PACKAGE}.translator")}
  assert (f"{PACKAGE}.translator_net", ("Generator",)) in edges
  assert (f"{PACKAGE}.render", ()) in edges       # from genjax.apps.comic import render as ...
  assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c", "a"]]
  old = ("from typing import TYPE_CHECKING\nfrom genjax.apps.comic.styles import STYLES, _smooth\n"
         "from genjax.apps.comic import render as r\nx = r._layers\n")
  assert _private_uses(f"{PACKAGE}.translator_losses", old) == [
      f"{PACKAGE}.translator_losses:2: {PACKAGE}.styles._smooth",
      f"{PACKAGE}.translator_losses:4: r._layers"]


def test_no_import_cycle():
  """Every import of every genjax module counts (TYPE_CHECKING and function-level ones too):
  no cycle of the graph passes through genjax.apps.comic."""
  graph = {m: sorted({t for t, _, _ in _imports(m)} - {m}) for m in MODULES}
  comic_cycles = [c for c in _cycles(graph) if any(m.startswith(PACKAGE) for m in c)]
  assert comic_cycles == [], "\n".join(" -> ".join(c) for c in comic_cycles)


def test_no_private_name_from_another_module():
  found = [u for name in COMIC for u in _private_uses(name, MODULES[name].read_text())]
  assert found == [], found


# Forks one child per module from a parent that has imported only third-party libraries:
# each child imports its genjax module first, alone, as a fresh interpreter would.
_IMPORT_EACH = """
import importlib, os, sys, traceback
for lib in ("numpy", "jax", "jax.numpy", "flax.linen", "optax", "orbax.checkpoint", "grain",
            "PIL.Image", "ml_collections", "matplotlib.pyplot", "tensorboardX", "tqdm"):
  importlib.import_module(lib)
assert not [m for m in sys.modules if m == "genjax" or m.startswith("genjax.")]
failed = []
for name in sys.argv[1:]:
  pid = os.fork()
  if pid == 0:
    try:
      importlib.import_module(name)
    except BaseException:
      traceback.print_exc()
      os._exit(1)
    os._exit(0)
  if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
    failed.append(name)
print("FAILED", failed)
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_alone():
  proc = subprocess.run([sys.executable, "-c", _IMPORT_EACH, *COMIC], capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
  assert "FAILED []" in proc.stdout
