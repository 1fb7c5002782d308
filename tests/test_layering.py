"""The packages stay in layers: every import of every module (lazy and TYPE_CHECKING ones too,
read with ast from the source) goes down, never up, and never round in a cycle.

    bench                 the benchmark: may use anything
    gateway               the server: drives dialects, never names a vendor
    adapters              one dialect per vendor, and its migration client
    core                  vendor-neutral request, limits, errors, body parsing, replay store
    engine                the OCR
    bin_tables            the BIN table, with its own types
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "adapters", "gateway", "engine", "bin_tables", "bench")

# Which of our packages each may import (besides itself). Anything not listed is refused.
ALLOWED: dict[str, set[str]] = {
    "bin_tables": set(),
    "engine": {"bin_tables"},
    "core": {"engine", "bin_tables"},
    "adapters": {"core", "engine", "bin_tables"},
    "gateway": {"adapters", "core", "engine", "bin_tables"},
    "bench": {"gateway", "adapters", "core", "engine", "bin_tables"},
}

# A vendor's name as a module or imported name: adapters.tencent, tencent_auth, tencentcloud (its SDK).
VENDOR_NAME = re.compile(r"^(tencent|myqcloud|huawei|facepp|baidu|alibaba|aip$)|^hex(_|$)")
# gateway modules that may import a vendor by name: none. The dialect list comes from adapters.DIALECTS.
GATEWAY_VENDOR_ALLOWED: set[str] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names imported from it, line) for every import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = module_name(path).split(".")
    package_parts = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolved against this module's package
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            found.append((module, [alias.name for alias in node.names], node.lineno))
    return found


def all_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def package_edges() -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> where: "module:line" of each such import."""
    edges: dict[tuple[str, str], list[str]] = {}
    for name, path in all_modules().items():
        source = name.split(".")[0]
        for module, _, line in imports_of(path):
            target = module.split(".")[0]
            if target in PACKAGES and target != source:
                edges.setdefault((source, target), []).append(f"{name}:{line}")
    return edges


def cycles(edges) -> list[list[str]]:
    """Every elementary cycle's package list, found by a depth-first walk from each package."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    found = []

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                found.append([*path, start])
            elif nxt not in path and nxt > start:  # each cycle once, from its smallest package
                walk(start, nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def test_the_walk_sees_every_package():
    modules = all_modules()
    for package in PACKAGES:
        assert package in modules, package
    assert package_edges(), "no import between packages found: the walk is broken"


def test_no_cycle_between_packages():
    edges = package_edges()
    assert cycles(edges) == [], "\n".join(
        " -> ".join(cycle) + ": " + "; ".join(edges[(a, b)][0] for a, b in zip(cycle, cycle[1:]))
        for cycle in cycles(edges))


def test_every_import_goes_down_the_layers():
    wrong = [f"{source} imports {target} ({', '.join(where)})"
             for (source, target), where in sorted(package_edges().items())
             if target not in ALLOWED[source]]
    assert wrong == []


def test_the_gateway_never_names_a_vendor():
    named = []
    for name, path in all_modules().items():
        if not name.startswith("gateway") or name in GATEWAY_VENDOR_ALLOWED:
            continue
        for module, names, line in imports_of(path):
            words = [*module.split("."), *names]
            hits = [word for word in words if VENDOR_NAME.search(word)]
            if hits:
                named.append(f"{name}:{line} imports {module} ({', '.join(hits)})")
    assert named == []


def test_the_checks_catch_what_they_are_for():
    assert cycles({("a", "b"): [], ("b", "c"): [], ("c", "a"): []}) == [["a", "b", "c", "a"]]
    assert cycles({("a", "b"): [], ("b", "c"): []}) == []
    for word in ("tencent", "tencent_auth", "tencentcloud", "huaweicloudsdkocr", "hex", "hex_client", "facepplib", "aip"):
        assert VENDOR_NAME.search(word), word
    for word in ("hexlify", "binascii", "adapters", "migrate", "DIALECTS"):
        assert not VENDOR_NAME.search(word), word
