#!/usr/bin/env python3
"""Shequn's app-level dependency graph, read from the source with `ast` (nothing is imported).

Nodes are the apps (the first path component under ``src/shequn``: ``orders``, ``groups`` ...)
and the "entry" modules at the top of the package (``entry:cli``, ``entry:sweeper``, ...,
``entry:settings``; the package's own ``__init__`` is ``entry:shequn``). Two kinds of edges:

* imports: every ``import``/``from ... import`` of ``shequn.*`` anywhere in a file (module level,
  inside functions, under ``if TYPE_CHECKING:``), relative imports resolved, ``from pkg import
  mod`` counted as an import of ``pkg.mod``; plus ``importlib.import_module("shequn...")`` with a
  literal name.
* models: in every ``models.py`` (or ``models/`` package), the target of each ``ForeignKey``,
  ``OneToOneField`` and ``ManyToManyField`` (a class imported from another app, or an
  ``"app_label.Model"`` string).

Usage::

    python scripts/app_graph.py                 # every app pair with its sites
    python scripts/app_graph.py --brief         # counts only
    python scripts/app_graph.py --cycles        # strongly connected components, two-way pairs
    python scripts/app_graph.py --layers 'console,shop,flows,...'  # edges that point up
    python scripts/app_graph.py --layers-from pyproject.toml --strict  # the same, from the
                                                # import-linter contract; exit 1 if any
    python scripts/app_graph.py --json          # everything, machine-readable

``--layers`` takes the layers top first, separated by commas; inside a layer ``|`` separates
independent siblings (no edge allowed between them) and ``:`` siblings that may use each other,
as import-linter's ``layers`` contract does. Entry nodes sit above every layer. With ``--strict``
the exit status is 1 when an edge points up (or sideways between independent siblings).
Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT_PACKAGE = "shequn"
ENTRY_PREFIX = "entry:"
# Top-level names that are entry points, not apps, also when they are packages (``cli/``);
# a top-level module file is always an entry point.
ENTRY_NAMES = frozenset(
    {"api", "urls", "cli", "demo", "sweeper", "server", "celery", "wsgi", "settings"}
)
RELATION_FIELDS = frozenset({"ForeignKey", "OneToOneField", "ManyToManyField"})
DEFAULT_SRC = Path(__file__).resolve().parent.parent / "src" / ROOT_PACKAGE


@dataclass(frozen=True, order=True)
class Site:
    """One place in the source that creates an edge."""

    file: str  # relative to the repository (``src/shequn/orders/actions.py``)
    line: int
    target: str  # the imported module, or "app_label.Model" for a relation
    scope: str  # imports: module | function | type-checking | dynamic; relations: Class.field
    users: tuple[str, ...] = ()  # imports: the functions/classes that use what it binds


@dataclass
class Graph:
    nodes: list[str]
    imports: dict[tuple[str, str], list[Site]]
    models: dict[tuple[str, str], list[Site]]
    unresolved: list[Site]


# --------------------------------------------------------------------------------------------
# The package on disk


class Package:
    """The modules of the package: dotted name ↔ file, and which node each module belongs to."""

    def __init__(self, src: Path, entries: frozenset[str] = ENTRY_NAMES) -> None:
        self.src = src.resolve()
        self.entries = entries
        self.base = self.src.parent  # the directory that holds the package
        # sites are shown relative to the repository (``src/shequn/...``) when there is one
        self.shown_from = self.base.parent if self.base.name == "src" else self.base
        self.modules: dict[str, Path] = {}
        for path in sorted(self.src.rglob("*.py")):
            if "__pycache__" not in path.parts:
                self.modules[self.module_of(path)] = path
        self.apps = sorted(
            p.name
            for p in self.src.iterdir()
            if p.is_dir() and (p / "__init__.py").exists() and (p / "apps.py").exists()
        )
        self.labels = self._app_labels()

    def _app_labels(self) -> dict[str, str]:
        """Django app label → app directory, from each ``apps.py`` (``label = ...``)."""
        labels: dict[str, str] = {}
        for app in self.apps:
            tree = ast.parse((self.src / app / "apps.py").read_text(encoding="utf-8"))
            label = app
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "label" for t in node.targets)
                    and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)
                ):
                    label = node.value.value
            labels[label] = app
        return labels

    def node_of(self, module: str) -> str | None:
        """The graph node of a dotted module name, or None outside the package."""
        parts = module.split(".")
        if parts[0] != ROOT_PACKAGE:
            return None
        if len(parts) == 1:
            return ENTRY_PREFIX + ROOT_PACKAGE
        head = parts[1]
        # a package is an app (also without apps.py, as ``integrations``) unless named entry
        if (self.src / head).is_dir() and head not in self.entries:
            return head
        return ENTRY_PREFIX + head

    def module_of(self, path: Path) -> str:
        rel = path.relative_to(self.base).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)

    def rel(self, path: Path) -> str:
        return path.relative_to(self.shown_from).as_posix()


# --------------------------------------------------------------------------------------------
# Imports


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class ImportCollector(ast.NodeVisitor):
    """Every import of the package in one file, with its scope; and the names each binds."""

    def __init__(self, package: Package, module: str, is_package: bool) -> None:
        self.package = package
        self.module = module
        self.is_package = is_package
        self.depth = 0  # functions we are inside
        self.type_checking = 0  # `if TYPE_CHECKING:` blocks we are inside
        self.names: list[str] = []  # the enclosing classes and functions
        self.found: list[tuple[int, str, str, set[str]]] = []  # (line, module, scope, users)
        self.bindings: dict[str, str] = {}  # local name → module it comes from
        self.real_names: dict[str, str] = {}  # local name → its name there (`import X as Y`)
        self.top_level: dict[str, list[int]] = defaultdict(list)  # name → its imports (found)
        self.loads: list[tuple[str, str]] = []  # (name, where it is read)

    def where(self) -> str:
        return ".".join(self.names) or "<module>"

    def found_with_users(self) -> list[tuple[int, str, str, set[str]]]:
        """The imports found, each with the functions/classes that read the names it binds."""
        for name, where in self.loads:
            for index in self.top_level.get(name, ()):
                self.found[index][3].add(where)
        return self.found

    def scope(self) -> str:
        if self.depth:
            return "function"
        if self.type_checking:
            return "type-checking"
        return "module"

    def resolve_from(self, node: ast.ImportFrom) -> str | None:
        if not node.level:
            return node.module
        parts = self.module.split(".")
        if not self.is_package:
            parts = parts[:-1]
        if node.level > 1:
            parts = parts[: len(parts) - (node.level - 1)]
        if not parts:
            return None
        return ".".join(parts + ([node.module] if node.module else []))

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node, node.name)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._function(node, node.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node, None)

    def _function(self, node: ast.AST, name: str | None) -> None:
        self.depth += 1
        if name:
            self.names.append(name)
        self.generic_visit(node)
        if name:
            self.names.pop()
        self.depth -= 1

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.names.append(node.name)
        self.generic_visit(node)
        self.names.pop()

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.loads.append((node.id, self.where()))

    def _found(self, line: int, target: str, scope: str, binds: str | None) -> None:
        users = {self.where()} if self.depth else set()
        self.found.append((line, target, scope, users))
        if binds is not None and not self.depth:
            self.top_level[binds].append(len(self.found) - 1)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.type_checking += 1
            for child in node.body:
                self.visit(child)
            self.type_checking -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            bound = alias.asname or alias.name.split(".")[0]
            self._found(node.lineno, alias.name, self.scope(), bound)
            self.bindings[bound] = alias.name if alias.asname else bound

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self.resolve_from(node)
        if base is None:
            return
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            target = candidate if candidate in self.package.modules else base
            bound = None if alias.name == "*" else alias.asname or alias.name
            self._found(node.lineno, target, self.scope(), bound)
            if bound is not None:
                # a submodule binds the module; anything else binds an attribute of `base`
                self.bindings[bound] = target
                self.real_names[bound] = alias.name

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in {"import_module", "__import__"} and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                self._found(node.lineno, arg.value, "dynamic", None)
        self.generic_visit(node)


# --------------------------------------------------------------------------------------------
# Model relations


def _relation_target(call: ast.Call) -> ast.expr | None:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in RELATION_FIELDS:
        return None
    for keyword in call.keywords:
        if keyword.arg == "to":
            return keyword.value
    return call.args[0] if call.args else None


def _model_relations(
    package: Package, path: Path, tree: ast.Module, collector: ImportCollector
) -> Iterator[tuple[str | None, Site]]:
    """(target app or None when unresolved, site) for each relation field in a models file."""
    module = package.module_of(path)
    own = package.node_of(module)
    local_classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    label_of = {app: label for label, app in package.labels.items()}
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for stmt in cls.body:
            if not isinstance(stmt, ast.Assign | ast.AnnAssign) or stmt.value is None:
                continue
            if not isinstance(stmt.value, ast.Call):
                continue
            target = _relation_target(stmt.value)
            if target is None:
                continue
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            field = next((t.id for t in targets if isinstance(t, ast.Name)), "?")
            where = f"{cls.name}.{field}"
            line = stmt.lineno
            rel = package.rel(path)
            if isinstance(target, ast.Constant) and isinstance(target.value, str):
                text = target.value
                if text == "self" or "." not in text:
                    model = cls.name if text == "self" else text
                    yield own, Site(rel, line, f"{label_of.get(own or '', own)}.{model}", where)
                else:
                    label, model = text.split(".", 1)
                    app = package.labels.get(label)
                    yield app, Site(rel, line, text, where)
                continue
            bindings = collector.bindings
            if isinstance(target, ast.Name):
                name, origin = target.id, bindings.get(target.id)
                name = collector.real_names.get(name, name)
            elif isinstance(target, ast.Attribute):
                base = target.value
                name = target.attr
                origin = bindings.get(base.id) if isinstance(base, ast.Name) else None
                if isinstance(base, ast.Name) and base.id == "settings":
                    origin = f"django.conf.settings.{target.attr}"
            else:
                yield None, Site(rel, line, ast.unparse(target), where)
                continue
            if origin is None and name in local_classes:
                app = own
            elif origin is not None:
                app = package.node_of(origin)
            else:
                app = None
            shown = f"{label_of.get(app, app)}.{name}" if app else (origin or name)
            yield app, Site(rel, line, shown, where)


# --------------------------------------------------------------------------------------------
# Building the graph


def build(src: Path, entries: frozenset[str] = ENTRY_NAMES) -> Graph:
    package = Package(src, entries)
    imports: dict[tuple[str, str], list[Site]] = defaultdict(list)
    models: dict[tuple[str, str], list[Site]] = defaultdict(list)
    unresolved: list[Site] = []
    nodes: set[str] = set()
    for module, path in package.modules.items():
        source = package.node_of(module)
        if source is None:
            continue
        nodes.add(source)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        collector = ImportCollector(package, module, path.name == "__init__.py")
        collector.visit(tree)
        # one site per statement and imported module: `from m import a, b` is one site
        merged: dict[tuple[int, str, str], set[str]] = defaultdict(set)
        for line, target, scope, users in collector.found_with_users():
            merged[(line, target, scope)].update(users)
        for (line, target, scope), users in merged.items():
            dest = package.node_of(target)
            if dest is None or dest == source:
                continue
            nodes.add(dest)
            site = Site(package.rel(path), line, target, scope, tuple(sorted(users)))
            imports[(source, dest)].append(site)
        if path.name == "models.py" or (path.parent.name == "models" and path.suffix == ".py"):
            for app, site in _model_relations(package, path, tree, collector):
                if app is None:
                    if not site.target.startswith("django.conf.settings."):
                        unresolved.append(site)
                elif app != source:
                    models[(source, app)].append(site)
    return Graph(
        nodes=sorted(nodes),
        imports={k: sorted(v) for k, v in sorted(imports.items())},
        models={k: sorted(v) for k, v in sorted(models.items())},
        unresolved=sorted(unresolved),
    )


# --------------------------------------------------------------------------------------------
# Cycles


def tarjan(nodes: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative), each sorted, largest first."""
    succ: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        succ[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, iter(sorted(succ[root]))))
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(succ[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return sorted(components, key=lambda c: (-len(c), c))


def two_way(edges: dict[tuple[str, str], list[Site]]) -> list[tuple[str, str, int, int]]:
    """(a, b, sites a→b, sites b→a) for each pair with edges both ways, a < b."""
    return [
        (a, b, len(sites), len(edges[(b, a)]))
        for (a, b), sites in edges.items()
        if a < b and (b, a) in edges
    ]


# --------------------------------------------------------------------------------------------
# Layers


@dataclass
class Layers:
    rank: dict[str, int]  # node → layer number, 0 = top
    independent: dict[int, bool]  # layer number → siblings may not use each other

    @classmethod
    def parse(cls, text: str) -> Layers:
        return cls.of(part.strip() for part in text.split(","))

    @classmethod
    def of(cls, layers: Iterable[str]) -> Layers:
        """From layer strings, top first; ``shequn.`` prefixes and import-linter's parentheses
        (an optional layer) are dropped."""
        rank: dict[str, int] = {}
        independent: dict[int, bool] = {}
        for number, layer in enumerate(layers):
            sep = ":" if ":" in layer else "|"
            independent[number] = sep == "|"
            for name in layer.split(sep):
                name = name.strip().strip("()").removeprefix(ROOT_PACKAGE + ".")
                rank[name] = number
        return cls(rank, independent)

    @classmethod
    def from_toml(cls, path: Path) -> Layers:
        """The first ``layers`` contract of an import-linter TOML file (``pyproject.toml``)."""
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        contracts = data.get("tool", {}).get("importlinter", {}).get("contracts", [])
        for contract in contracts:
            if contract.get("type") == "layers":
                return cls.of(contract["layers"])
        raise SystemExit(f"{path}: no [[tool.importlinter.contracts]] of type 'layers'")

    def level(self, node: str) -> int | None:
        if node.startswith(ENTRY_PREFIX):
            return -1
        return self.rank.get(node)

    def upward(self, a: str, b: str) -> bool:
        """Does an edge a → b break the layering (b above a, or b an independent sibling)?"""
        la, lb = self.level(a), self.level(b)
        if la is None or lb is None:
            return False
        if lb < la:
            return True
        return la == lb and la >= 0 and self.independent.get(la, True)


# --------------------------------------------------------------------------------------------
# Output


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _counts(sites: list[Site]) -> str:
    by_scope: dict[str, int] = defaultdict(int)
    for site in sites:
        by_scope[site.scope if "." not in site.scope else "field"] += 1
    return ", ".join(f"{n} {scope}" for scope, n in sorted(by_scope.items()))


def _print_edges(title: str, edges: dict[tuple[str, str], list[Site]], brief: bool) -> None:
    total = sum(len(s) for s in edges.values())
    out(f"## {title}: {len(edges)} app pairs, {total} sites")
    width = max((len(a) + len(b) for a, b in edges), default=0) + 3
    for (a, b), sites in edges.items():
        out(f"{f'{a} → {b}':<{width}} {len(sites):>4}  ({_counts(sites)})")
        if not brief:
            for site in sites:
                extra = f"  [{site.scope}]" if site.scope != "module" else ""
                used = f"  in: {', '.join(site.users)}" if site.users else ""
                out(f"    {site.file}:{site.line} → {site.target}{extra}{used}")
    out()


def _print_cycles(graph: Graph) -> None:
    views = [
        ("imports", graph.imports),
        ("models", graph.models),
        ("imports + models", _merge(graph.imports, graph.models)),
    ]
    for title, edges in views:
        components = [c for c in tarjan(graph.nodes, edges) if len(c) > 1]
        out(f"## Strongly connected components ({title})")
        if not components:
            out("none")
        for component in components:
            out(f"{len(component)}: {', '.join(component)}")
        pairs = two_way(edges)
        out(f"## Two-way pairs ({title}): {len(pairs)}")
        for a, b, ab, ba in pairs:
            out(f"{a} ↔ {b}: {ab} / {ba}")
        out()


def _merge(*graphs: dict[tuple[str, str], list[Site]]) -> dict[tuple[str, str], list[Site]]:
    merged: dict[tuple[str, str], list[Site]] = defaultdict(list)
    for edges in graphs:
        for pair, sites in edges.items():
            merged[pair].extend(sites)
    return dict(sorted(merged.items()))


def _upward(
    layers: Layers, edges: dict[tuple[str, str], list[Site]]
) -> dict[tuple[str, str], list[Site]]:
    return {pair: sites for pair, sites in edges.items() if layers.upward(*pair)}


def _as_json(graph: Graph, layers: Layers | None) -> dict[str, object]:
    def edge_list(edges: dict[tuple[str, str], list[Site]]) -> list[dict[str, object]]:
        return [
            {
                "from": a,
                "to": b,
                "count": len(sites),
                "sites": [
                    {
                        "file": s.file,
                        "line": s.line,
                        "target": s.target,
                        "scope": s.scope,
                        "users": list(s.users),
                    }
                    for s in sites
                ],
            }
            for (a, b), sites in edges.items()
        ]

    union = _merge(graph.imports, graph.models)
    result: dict[str, object] = {
        "nodes": graph.nodes,
        "imports": edge_list(graph.imports),
        "models": edge_list(graph.models),
        "unresolved_relations": [
            {"file": s.file, "line": s.line, "target": s.target, "field": s.scope}
            for s in graph.unresolved
        ],
        "sccs": {
            "imports": [c for c in tarjan(graph.nodes, graph.imports) if len(c) > 1],
            "models": [c for c in tarjan(graph.nodes, graph.models) if len(c) > 1],
            "union": [c for c in tarjan(graph.nodes, union) if len(c) > 1],
        },
        "two_way": {
            "imports": [list(p) for p in two_way(graph.imports)],
            "models": [list(p) for p in two_way(graph.models)],
        },
    }
    if layers is not None:
        result["upward"] = {
            "imports": edge_list(_upward(layers, graph.imports)),
            "models": edge_list(_upward(layers, graph.models)),
            "unplaced": sorted(n for n in graph.nodes if layers.level(n) is None),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC, help="the package directory")
    parser.add_argument("--cycles", action="store_true", help="SCCs and two-way pairs")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--brief", action="store_true", help="counts only, no sites")
    parser.add_argument("--layers", help="layer order, top first: 'console|shop,flows,...'")
    parser.add_argument(
        "--layers-from",
        type=Path,
        metavar="TOML",
        help="take --layers from the import-linter layers contract in this file (pyproject.toml)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 on upward edges")
    parser.add_argument(
        "--entry",
        action="append",
        default=[],
        metavar="NAME",
        help=f"one more top-level package that is an entry node (always: {', '.join(sorted(ENTRY_NAMES))})",
    )
    args = parser.parse_args(argv)

    graph = build(args.src, ENTRY_NAMES | frozenset(args.entry))
    layers = (
        Layers.from_toml(args.layers_from)
        if args.layers_from
        else Layers.parse(args.layers)
        if args.layers
        else None
    )
    if args.json:
        json.dump(_as_json(graph, layers), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    elif args.cycles:
        _print_cycles(graph)
    elif layers is not None:
        unplaced = sorted(n for n in graph.nodes if layers.level(n) is None)
        if unplaced:
            out(f"not in any layer (ignored): {', '.join(unplaced)}\n")
        _print_edges("Upward imports", _upward(layers, graph.imports), args.brief)
        _print_edges("Upward model relations", _upward(layers, graph.models), args.brief)
    else:
        _print_edges("Imports", graph.imports, args.brief)
        _print_edges("Model relations", graph.models, args.brief)
        if graph.unresolved:
            out("## Unresolved relation targets")
            for site in graph.unresolved:
                out(f"    {site.file}:{site.line} {site.scope} → {site.target}")
    if layers is not None and args.strict:
        return 1 if _upward(layers, graph.imports) or _upward(layers, graph.models) else 0
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `| head`
        sys.stderr.close()
        sys.exit(1)
