"""Named presets: YAML search spaces and attack suites resolved by name or by file path.

The YAML files live in the repository's top-level `search_spaces/`, `attacks/` and `studies/` folders and are
shipped inside the wheel as `robustarch/_presets/<kind>/`, so names work after a plain `pip install .`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError, one_of

KINDS = ("search_spaces", "attacks", "studies")
_PACKAGE = Path(__file__).resolve().parent


def preset_dir(kind: str) -> Path:
    """The folder holding the presets of `kind` (installed copy first, then the source tree)."""
    if kind not in KINDS:
        raise ValueError(kind)
    for candidate in (_PACKAGE / "_presets" / kind, _PACKAGE.parent / kind):
        if candidate.is_dir():
            return candidate
    raise UserError(f"robustarch's {kind} presets are missing from the installation ({_PACKAGE})")


def preset_names(kind: str) -> list[str]:
    return sorted(p.stem for p in preset_dir(kind).glob("*.yaml"))


def resolve(kind: str, name_or_path: str | Path) -> Path:
    """A preset name (`quick`) or a YAML path (`my_suite.yaml`) → an existing file path."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    looks_like_path = path.suffix in (".yaml", ".yml") or "/" in text or "\\" in text
    if looks_like_path:
        if not path.is_file():
            raise UserError(f"{path}: no such YAML file")
        return path
    candidate = preset_dir(kind) / f"{text}.yaml"
    if candidate.is_file():
        return candidate
    label = {"search_spaces": "search space", "attacks": "attack suite", "studies": "study recipe"}[kind]
    raise UserError(f"unknown {label} {text!r}: use a YAML file path or one of {one_of(preset_names(kind))}")


def load_yaml(path: Path) -> Section:
    """Parse a YAML mapping safely into a `Section`; errors name the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}:{where} malformed YAML: {problem}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    lines: dict[str, int] = {}
    _index_lines(node, "", lines)
    return Section(data, "", path, lines)


def _index_lines(node: yaml.Node, prefix: str, lines: dict[str, int]) -> None:
    """Record the 1-based line of every field, keyed by its dotted path (`stages[1].width`)."""
    lines[prefix] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _index_lines(value, f"{prefix}.{key.value}" if prefix else str(key.value), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _index_lines(value, f"{prefix}[{i}]", lines)


_REQUIRED = object()


class Section:
    """One YAML mapping plus where it came from, so validation errors say file, line and field.

    Config is validated once, here at the edge, into dataclasses; inner code trusts the values.
    """

    def __init__(self, data: dict[str, Any], prefix: str, file: Path, lines: dict[str, int]):
        self.data, self.prefix, self.file, self._lines = data, prefix, file, lines

    def field(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def where(self, key: str | None = None) -> str:
        dotted = self.field(key) if key is not None else self.prefix
        line = self._lines.get(dotted) or self._lines.get(self.prefix)
        return f"{self.file}:{line}" if line else str(self.file)

    def error(self, key: str | None, message: str) -> UserError:
        name = self.field(key) if key is not None else (self.prefix or "top level")
        name = "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)  # one line, whatever the key
        return UserError(f"{self.where(key)}: field '{name}': {message}")

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.error(key, f"unknown field; allowed fields are {one_of(allowed)}")

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = _REQUIRED,
        *,
        choices: tuple | list | None = None,
        min: float | None = None,
        max: float | None = None,
        above: float | None = None,
    ) -> Any:
        """Read a scalar field, checking type, allowed values and range (`min`/`max` inclusive,
        `above` exclusive); a float must be finite."""
        if key not in self.data or self.data[key] is None:
            if default is _REQUIRED:
                raise self.error(key, "missing (required)")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise self.error(key, f"expected {names}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(key, f"got {value!r}; expected a finite number")
        if choices is not None and value not in choices:
            raise self.error(key, f"got {value!r}; allowed values are {one_of(choices)}")
        if min is not None and value < min:
            raise self.error(key, f"got {value!r}; must be >= {min}")
        if max is not None and value > max:
            raise self.error(key, f"got {value!r}; must be <= {max}")
        if above is not None and not value > above:
            raise self.error(key, f"got {value!r}; must be > {above}")
        return value

    def section(self, key: str, default: Any = _REQUIRED) -> Section:
        value = self.data.get(key)
        if value is None:
            if default is _REQUIRED:
                raise self.error(key, "missing (required)")
            value = default
        if not isinstance(value, dict):
            raise self.error(key, f"expected a mapping, got {value!r}")
        return Section(value, self.field(key), self.file, self._lines)

    def sections(self, key: str) -> list[Section]:
        value = self.data.get(key)
        if not isinstance(value, list) or not value:
            raise self.error(key, "expected a non-empty list")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise UserError(f"{self.where(key)}: field '{self.field(key)}[{i}]': expected a mapping, got {item!r}")
            out.append(Section(item, f"{self.field(key)}[{i}]", self.file, self._lines))
        return out
