"""A scenario's YAML text read into plain data, with the line of every value, whatever the text holds.

`document(text, source)` composes the text into YAML nodes first, so that each value's line is
known and a key given twice is caught, and only then builds the data. Times stay strings (the YAML
timestamp type is turned off): `core.precedence` parses them.

Between the two steps the node graph is checked, because an alias is not a copy: PyYAML hands
back the very node the anchor names. So:

- an alias inside its own anchor (`a: &x [*x]`) makes a cycle, on which building the data, or
  walking it for lines, would recurse until Python gives up (`RecursionError`);
- aliases of aliases multiply (ten levels of ten aliases are ten billion values: the "billion
  laughs"), and walking every path to number its lines would never end;
- text nested too deeply exhausts the recursion of PyYAML's own composer.

Each of these is a problem at a line (`ScenarioError`), like any other. Pure: it reads the text
it is given.
"""

from __future__ import annotations

from typing import Any

import yaml

from detente.core.scenario import Path, ScenarioError, show

MAX_DEPTH = 64  # a scenario nests six or seven levels; deeper is not a scenario
MAX_VALUES = 100_000  # values once every alias is expanded; the January 2024 scenario has about 1,000


class _Loader(yaml.SafeLoader):
    """A safe loader that keeps times as strings (the scenario parses them itself)."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}


def document(text: str, source: str) -> tuple[Any, dict[Path, int], list[tuple[int, str, str]]]:
    """Return the data of a YAML text, the line of each value by path, and the keys given twice.

    Raises `ScenarioError` (file, line, problem) for text that is not YAML, and for a cyclic,
    too deep or too large document.
    """
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            deep = (loader.get_mark().line + 1, "", f"not valid YAML: nested more than {MAX_DEPTH} levels deep")
            raise ScenarioError(source, [deep]) from None
        if node is None:
            return None, {}, []
        problem = _check_graph(node)
        if problem is not None:
            raise ScenarioError(source, [problem])
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ScenarioError(source, [(line, "", f"not valid YAML: {exc.problem or exc.context}")]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [(1, "", f"not valid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    lines: dict[Path, int] = {}
    dupes: list[tuple[int, str, str]] = []
    _marks(node, (), lines, dupes)
    return data, lines, dupes


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_graph(root: yaml.Node) -> tuple[int, str, str] | None:
    """Return (line, path, problem) for a cycle, a nesting or a size over the limits; else None.

    Iterative, so that the check itself cannot exhaust the recursion it guards against.
    """
    stack = [(root, iter(_children(root)))]
    on_path = {id(root)}  # the node being walked and its ancestors
    count = 0
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            on_path.discard(id(node))
            continue
        line = child.start_mark.line + 1
        if id(child) in on_path:
            where = node.start_mark.line + 1
            return where, "", f"a YAML alias refers to the value at line {line}, which contains it"
        count += 1
        if count > MAX_VALUES:
            return line, "", f"more than {MAX_VALUES} values once YAML aliases are expanded"
        if _children(child):
            if len(stack) >= MAX_DEPTH:
                return line, "", f"nested more than {MAX_DEPTH} levels deep"
            stack.append((child, iter(_children(child))))
            on_path.add(id(child))
    return None


def _marks(node: yaml.Node, path: Path, out: dict[Path, int], dupes: list[tuple[int, str, str]]) -> None:
    # Recursive, but only on a graph `_check_graph` passed: no cycle, at most MAX_DEPTH deep.
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            sub = (*path, name)
            if name in seen:
                dupes.append((key.start_mark.line + 1, show(sub), f"key {name!r} appears twice"))
            seen.add(name)
            out[sub] = key.start_mark.line + 1
            _marks(value, sub, out, dupes)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _marks(item, (*path, index), out, dupes)
