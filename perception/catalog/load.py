"""Load and validate the catalog in ``datasets/catalog`` (classes, materials, CRMA lists).

Where the catalog is: the ``root`` argument, else ``$CRMSORT_DATASETS/catalog`` when the
environment variable ``CRMSORT_DATASETS`` is set (it names the ``datasets`` folder), else
``<repo>/datasets/catalog`` next to this package.

Every problem is reported as a :class:`~perception.errors.CatalogError` whose message has
one line per problem, ``<file>: <yaml path>: <what is wrong>``, e.g.
``classes.yaml: classes[3].size_m.length: must be > 0``.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from perception.catalog.models import (
    Catalog,
    ClassesFile,
    ClassSpec,
    CrmaFile,
    CrmaLists,
    MaterialsFile,
)
from perception.errors import CatalogError

ENV_VAR = "CRMSORT_DATASETS"
CLASSES_FILE = "classes.yaml"
MATERIALS_FILE = "materials.yaml"
CRMA_FILE = "crma.yaml"

_M = TypeVar("_M", bound=BaseModel)


def default_root() -> Path:
    """The catalog folder used when ``load_catalog`` gets no ``root`` (see module docstring)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env) / "catalog"
    return Path(__file__).resolve().parents[2] / "datasets" / "catalog"


def load_catalog(root: Path | None = None) -> Catalog:
    """Read ``classes.yaml``, ``materials.yaml`` and ``crma.yaml`` from ``root`` and check them.

    Checks beyond each entry's own fields: detector ids unique and 0..N-1 in file order,
    distractor ids ``distractor_id_base``.. in order, names unique, material ids unique with
    ``hsi_id`` 0..M-1, every class and appearance material known, every ``crm_targets``
    element flagged by the CRMA lists, every strategic element also critical.

    Raises ``CatalogError`` (missing file, YAML syntax, schema or cross-check failures).
    """
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        raise CatalogError(
            f"catalog folder {root} does not exist (set {ENV_VAR} to the datasets folder "
            "or pass root=)"
        )
    classes = _parse(root / CLASSES_FILE, ClassesFile)
    materials = _parse(root / MATERIALS_FILE, MaterialsFile)
    crma_file = _parse(root / CRMA_FILE, CrmaFile)
    crma = CrmaLists.from_file(crma_file)

    errors: list[str] = []
    errors += _check_materials(materials)
    errors += _check_crma(crma)
    mat_ids = {m.id for m in materials.materials}
    errors += _check_entries(classes.classes, "classes", 0, mat_ids, crma)
    errors += _check_entries(
        classes.distractors, "distractors", classes.distractor_id_base, mat_ids, crma
    )
    if len(classes.classes) > classes.distractor_id_base:
        errors.append(
            f"{CLASSES_FILE}: distractor_id_base: {classes.distractor_id_base} overlaps the "
            f"{len(classes.classes)} detector ids"
        )
    names: dict[str, str] = {}
    for section, entries in (("classes", classes.classes), ("distractors", classes.distractors)):
        for i, c in enumerate(entries):
            where = f"{section}[{i}]"
            if c.name in names:
                errors.append(
                    f"{CLASSES_FILE}: {where}.name: {c.name!r} already used by {names[c.name]}"
                )
            names.setdefault(c.name, where)
    if errors:
        raise CatalogError(f"invalid catalog in {root}:\n" + "\n".join(errors))
    return Catalog(
        root=root,
        classes=tuple(classes.classes),
        distractors=tuple(classes.distractors),
        materials={m.id: m for m in materials.materials},
        crma=crma,
        distractor_id_base=classes.distractor_id_base,
    )


# -- reading -----------------------------------------------------------------------------------


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loader (libyaml when present) that refuses duplicate mapping keys (PyYAML keeps
    the last one silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"duplicate key {key!r}",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"{path}: catalog file missing") from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc}") from exc
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CatalogError(f"{path.name}:{where}: invalid YAML: {problem} ({path})") from exc


def format_loc(loc: tuple[int | str, ...]) -> str:
    """Pydantic error location -> YAML path, e.g. ``('classes', 3, 'size_m', 'length')`` ->
    ``classes[3].size_m.length``."""
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _parse(path: Path, model: type[_M]) -> _M:
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise CatalogError(f"{path.name}: expected a mapping at the top level ({path})")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"{path.name}: {format_loc(tuple(err['loc']))}: {msg}")
        raise CatalogError(f"invalid catalog file {path}:\n" + "\n".join(lines)) from None


# -- cross checks ------------------------------------------------------------------------------


def _check_materials(materials: MaterialsFile) -> list[str]:
    errors: list[str] = []
    seen: set[str] = set()
    for i, m in enumerate(materials.materials):
        if m.id in seen:
            errors.append(f"{MATERIALS_FILE}: materials[{i}].id: duplicate {m.id!r}")
        seen.add(m.id)
        if m.hsi_id != i:
            errors.append(
                f"{MATERIALS_FILE}: materials[{i}].hsi_id: expected {i} (hsi ids are 0..M-1 in "
                f"file order), got {m.hsi_id}"
            )
    return errors


def _check_crma(crma: CrmaLists) -> list[str]:
    missing = sorted(crma.strategic_elements - crma.critical_elements)
    if missing:
        return [f"{CRMA_FILE}: strategic: {missing} are strategic but on no critical entry"]
    return []


def _check_entries(
    entries: list[ClassSpec], section: str, id_base: int, mat_ids: set[str], crma: CrmaLists
) -> list[str]:
    errors: list[str] = []
    for i, c in enumerate(entries):
        where = f"{CLASSES_FILE}: {section}[{i}]"
        if c.id != id_base + i:
            errors.append(
                f"{where}.id: expected {id_base + i} (ids are contiguous from {id_base} in file "
                f"order), got {c.id}"
            )
        if section == "classes" and c.distractor:
            errors.append(f"{where}.distractor: distractors go under 'distractors:'")
        if section == "distractors" and not c.distractor:
            errors.append(f"{where}.distractor: entries under 'distractors:' need distractor: true")
        for fmt_i, fmt in enumerate(c.formats):
            try:
                fmt.check_shape(c.shape)
            except ValueError as exc:
                sub = "size_m" if c.size_formats is None else f"size_formats[{fmt_i}]"
                errors.append(f"{where}.{sub}: {exc}")
        if c.material not in mat_ids:
            errors.append(
                f"{where}.material: unknown material {c.material!r} (see {MATERIALS_FILE})"
            )
        for j, look in enumerate(c.appearance):
            if look.material is not None and look.material not in mat_ids:
                errors.append(
                    f"{where}.appearance[{j}].material: unknown material {look.material!r} "
                    f"(see {MATERIALS_FILE})"
                )
        for j, sym in enumerate(c.crm_targets):
            if not crma.flags(sym):
                errors.append(
                    f"{where}.crm_targets[{j}]: {sym!r} is on neither CRMA list ({CRMA_FILE})"
                )
    return errors
