"""YAML with line numbers, so every config error can say `FILE:LINE: path.to.field: message`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gateway.errors import ConfigError

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: a second `port:` silently winning is a classic site bug."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class YamlDocument:
    """A parsed YAML file that remembers on which line each value stands."""

    def __init__(self, path: Path, text: str | None = None) -> None:
        self.path = path
        try:
            self.text = path.read_text(encoding="utf-8") if text is None else text
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        self.lines: dict[Loc, int] = {}
        try:
            node = yaml.compose(self.text, Loader=_Loader)
            self.data: Any = yaml.load(self.text, Loader=_Loader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 0
            raise ConfigError(f"{path}:{line}: invalid YAML: {exc.problem or exc}") from exc
        if node is not None:
            self._index(node, ())

    def _index(self, node: yaml.Node, loc: Loc) -> None:
        self.lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                child = (*loc, key_node.value)
                self._index(value_node, child)
                self.lines[child] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, (*loc, i))

    def locate(self, loc: Loc) -> tuple[int, str]:
        """The line and dotted path of ``loc`` in this file.

        pydantic locs carry parts that are not keys of the file (a union's tag, a validator's name):
        they are dropped. A last part not in the file (a missing field) is kept, on its parent's line.
        """
        path: Loc = ()
        line = self.lines.get((), 1)
        for i, part in enumerate(loc):
            candidate = (*path, part)
            if candidate in self.lines:
                path = candidate
                line = self.lines[candidate]
            elif i == len(loc) - 1 and isinstance(part, str | int):
                path = candidate
        return line, ".".join(str(p) for p in path) or "(top level)"

    def errors(self, exc: ValidationError, prefix: Loc = ()) -> ConfigError:
        """One line per pydantic error, located in this file."""
        problems = []
        for err in exc.errors(include_url=False):
            line, where = self.locate((*prefix, *err["loc"]))
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling; `cgt-gateway schema` lists the fields)"
            elif err["type"] == "missing":
                msg = "field required"
            elif msg.startswith("Value error, "):
                msg = msg.removeprefix("Value error, ")
            problems.append(f"{self.path}:{line}: {where}: {msg}")
        return ConfigError(problems)


def load_yaml_model(path: Path, model: type[M], *, shape: str) -> M:
    """A data file (register map, node map, limit table) as ``model``; ConfigError lists every problem
    as ``FILE:LINE: path: message``. ``shape`` says what the file should look like when it is not even a
    mapping."""
    doc = YamlDocument(Path(path))
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{path}:1: (top level): {shape}")
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise doc.errors(exc) from None
