"""Read one inventory out of ValueBench's item bank and attach its scoring key.

Why a key file per inventory: ValueBench's ``value_orientation.csv``
(``questionnaire,item,value,agreement,question``; Ren et al. 2024, ValueBench)
says which value each item measures and its keying direction (``agreement``
+1/-1), but not the response scale or the scoring rule, and those differ by
instrument: the PVQ is scored as centered means on a 6-point "like me" scale,
the MFQ as plain means, the VSM as index formulas of item means. The project
writes those facts down in ``keys/<INVENTORY>.yaml``, checked against the CSV
row by row (position, opening words, dimension) so that a changed file cannot
be scored with the wrong key. Users pass their own key with ``key=``.

Rows are parsed by :mod:`aligngoals.data`'s ``valuebench`` format (one
reader for the file in the whole project); this module adds what a reader
cannot know: the key. :func:`to_records` turns a keyed instrument back into
:class:`aligngoals.data.records.QuestionnaireItem` records (with the key's ids
and keying).
"""

from __future__ import annotations

import csv
import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import Field, field_validator

from aligngoals.errors import ConfigError, DataError
from aligngoals.values.questionnaires.instrument import (
    Instrument,
    Item,
    Prompting,
    Scale,
    Scoring,
    _Strict,
    instrument_from_mapping,
    load_instrument_file,
    read_mapping,
    validate,
)

PathLike = Union[str, Path]

VALUEBENCH_COLUMNS = ("questionnaire", "item", "value", "agreement", "question")
VALUEBENCH_RELPATH = Path("valuebench") / "value_orientation.csv"

#: Friendly names for the value inventories (a value system name maps to its questionnaire).
ALIASES = {
    "schwartz": "PVQ40",
    "pvq": "PVQ40",
    "moral_foundations": "MFT08",
    "mfq": "MFT08",
    "mfq30": "MFT08",
    "mfq-30": "MFT08",
    "mfq2": "MFT23",
    "mfq-2": "MFT23",
    "hofstede": "VSM13",
    "vsm": "VSM13",
}


class KeyItem(_Strict):
    pos: int = Field(ge=1)
    """1-based position of the item among the inventory's rows in the CSV."""
    id: Optional[str] = None
    dimension: Optional[str] = None
    """The dimension the published key assigns; must equal the CSV's ``value``."""
    starts: Optional[str] = None
    """Opening words of the item text, checked so that a reordered file is caught."""
    reverse: Optional[bool] = None
    """Override ValueBench's ``agreement`` keying."""
    answer_code: Optional[Literal["reversed", "as_is"]] = None
    """Index rules: how an answer on the administered scale maps to the instrument's own answer code."""
    meta: dict[str, Any] = Field(default_factory=dict)


class InventoryKey(_Strict):
    inventory: str
    name: Optional[str] = None
    title: Optional[str] = None
    description: Optional[str] = None
    reference: Optional[str] = None
    license: Optional[str] = None
    scale: Scale
    prompt: Prompting = Field(default_factory=Prompting)
    scoring: Scoring
    notes: list[str] = Field(default_factory=list)
    items: Optional[list[KeyItem]] = None

    @field_validator("items")
    @classmethod
    def _unique_pos(cls, v: Optional[list[KeyItem]]) -> Optional[list[KeyItem]]:
        if v is not None:
            pos = [k.pos for k in v]
            dup = sorted({p for p in pos if pos.count(p) > 1})
            if dup:
                raise ValueError(f"item positions must be unique; repeated: {dup}")
        return v


# --- locating files ---------------------------------------------------------------------------
def _keys_dir():
    return resources.files("aligngoals.values.questionnaires").joinpath("keys")


def _instruments_dir():
    return resources.files("aligngoals.values.questionnaires").joinpath("instruments")


def builtin_keys() -> dict[str, Any]:
    """Inventory name -> packaged key file (``keys/<NAME>.yaml``)."""
    return {e.name[:-5]: e for e in _keys_dir().iterdir() if e.name.endswith(".yaml") and not e.name.startswith("_")}


def builtin_instruments() -> dict[str, Any]:
    """Name -> packaged instrument file written by this project (its own items)."""
    return {e.name[:-5]: e for e in _instruments_dir().iterdir() if e.name.endswith(".yaml")}


def default_data_dirs(data_dir: PathLike | None = None) -> list[Path]:
    """Where ``valuebench/value_orientation.csv`` is looked for, in order.

    ``data_dir`` (``--data-dir``), ``$ALIGNGOALS_DATA_DIR``, ``../shared/data``
    relative to the working directory (the project's convention), and the same
    path beside a source checkout.
    """
    out: list[Path] = []
    if data_dir is not None:
        out.append(Path(data_dir).expanduser())
    env = os.environ.get("ALIGNGOALS_DATA_DIR")
    if env:
        out.append(Path(env).expanduser())
    out.append(Path.cwd() / ".." / "shared" / "data")
    out.append(Path(__file__).resolve().parents[4].parent / "shared" / "data")
    return out


def find_valuebench_csv(data_dir: PathLike | None = None) -> Path:
    tried = []
    for d in default_data_dirs(data_dir):
        p = d / VALUEBENCH_RELPATH
        tried.append(str(p))
        if p.is_file():
            return p.resolve()
    raise DataError(
        "ValueBench's value_orientation.csv was not found (looked in: " + "; ".join(tried) + ").",
        hint="Pass --instrument PATH/TO/value_orientation.csv, or --data-dir DIR (containing valuebench/), "
        "or set ALIGNGOALS_DATA_DIR.",
    )


# --- reading the CSV -----------------------------------------------------------------------------
def read_inventory(path: PathLike, inventory: str) -> list:
    """The inventory's rows as :class:`~aligngoals.data.records.QuestionnaireItem` records, in file order.

    Parsing is :mod:`aligngoals.data`'s ``valuebench`` format (errors name file, line and field);
    ``meta.position`` is the 1-based position within the inventory, which key files refer to.
    """
    from aligngoals.data import load_records

    p = Path(path)
    if not p.is_file():
        raise DataError(f"ValueBench file {p} does not exist.", hint="Check the path.")
    return list(load_records(p, "valuebench", inventory=inventory))


def list_inventories(path: PathLike) -> dict[str, int]:
    """Inventory name -> number of items in a ValueBench CSV."""
    from aligngoals.data import load_records

    out: dict[str, int] = {}
    for r in load_records(Path(path), "valuebench"):
        out[r.instrument] = out.get(r.instrument, 0) + 1
    return out


def _norm(text: str) -> str:
    return " ".join(str(text).replace("\u2018", "'").replace("\u2019", "'").split()).lower()


def load_key(key: PathLike | None, inventory: str) -> tuple[InventoryKey, str]:
    """The key for ``inventory``: ``key`` if given, else the packaged one, else the generic fallback."""
    if key is not None:
        p = Path(key).expanduser()
        raw = read_mapping(p)
        k = validate(InventoryKey, raw, str(p))
        if k.inventory not in ("*", inventory):
            raise ConfigError(f"{p}: field 'inventory' is {k.inventory!r}, but inventory {inventory!r} was asked for.",
                              hint=f"Use a key written for {inventory}, or set 'inventory: {inventory}'.")
        return k, str(p)
    keys = builtin_keys()
    if inventory in keys:
        entry = keys[inventory]
        return validate(InventoryKey, yaml.safe_load(entry.read_text(encoding="utf-8")), f"built-in key {inventory}"), f"built-in:keys/{inventory}.yaml"
    entry = _keys_dir().joinpath("_generic.yaml")
    return validate(InventoryKey, yaml.safe_load(entry.read_text(encoding="utf-8")), "built-in generic key"), "built-in:keys/_generic.yaml"


def _check_key_covers(p: Path, inventory: str, rows: list, k: Any, key_where: str, by_pos: dict) -> None:
    """The key and the CSV list the same positions (else the CSV is another ValueBench version)."""
    if k.items is None:
        return
    beyond = [ki.pos for ki in k.items if ki.pos > len(rows)]
    if beyond:
        raise DataError(
            f"{p}: inventory {inventory} has {len(rows)} rows, but key {key_where} lists position(s) {beyond}.",
            hint="The CSV is not the ValueBench version the key was written for; pass a matching key with --key.",
        )
    extra = [r.meta["position"] for r in rows if r.meta["position"] not in by_pos]
    if extra:
        raise DataError(
            f"{p}: item(s) at position(s) {extra} of inventory {inventory} are not in key {key_where}.",
            hint="Every item must be keyed; add them to the key file (items: - {pos: N, ...}).",
        )


def _keying_check(k: Any, items: list[Item]) -> list[dict]:
    """Cross-check ValueBench's keying against the direction the index formulas imply."""
    keying_check: list[dict] = []
    for code, f in k.scoring.indices.items():
        for iid, w in f.terms.items():
            it = next((x for x in items if x.id == iid), None)
            if it is None or w == 0:
                continue
            # d(index)/d(agreement): -w when the code runs opposite to agreement, +w otherwise.
            implied = -1 if (w > 0) == it.reverse else 1
            if implied != it.meta["valuebench_agreement"]:
                keying_check.append({"item": iid, "index": code, "valuebench_agreement": it.meta["valuebench_agreement"],
                                     "implied_by_key": implied, "position": it.meta["valuebench_position"]})
    return keying_check


def load_valuebench(
    path: PathLike,
    inventory: str,
    key: PathLike | None = None,
) -> Instrument:
    """One ValueBench inventory as an :class:`Instrument`, keyed and scored by its key file.

    Keying: an item is reversed when the key says so (``reverse`` or, for index
    rules, ``answer_code: reversed``); otherwise when ValueBench's ``agreement``
    is -1. Under an index rule every key item must give ``answer_code``, because
    the formulas are written in the instrument's own answer codes, which is a
    different question from ValueBench's agreement direction; disagreements
    between the two are listed in ``instrument.source['keying_check']``.
    """
    p = Path(path)
    rows = read_inventory(p, inventory)
    k, key_where = load_key(key, inventory)
    items: list[Item] = []
    by_pos = {ki.pos: ki for ki in (k.items or [])}
    _check_key_covers(p, inventory, rows, k, key_where, by_pos)
    for r in rows:
        pos = int(r.meta["position"])
        agreement = int(r.meta["agreement"])
        text, dimension = r.text, r.dimension
        where = f"{p}: {inventory} item {pos} ({text[:40]!r}...)"
        ki = by_pos.get(pos)
        reverse = r.reverse
        item_id = r.item_id
        meta: dict[str, Any] = {"valuebench_position": pos, "valuebench_agreement": agreement,
                                "question": " ".join(str(r.meta.get("question") or "").split())}
        if ki is not None:
            if ki.starts is not None and not _norm(text).startswith(_norm(ki.starts)):
                raise DataError(
                    f"{p}: {inventory} item {pos}: field 'item' is {text[:60]!r}, which does not start with "
                    f"{ki.starts!r} as key {key_where} expects.",
                    hint="The CSV differs from the ValueBench version the key was written for; pass a matching key with --key.",
                )
            if ki.dimension is not None and ki.dimension != dimension:
                raise DataError(
                    f"{where}: field 'value' is {dimension!r}, but key {key_where} assigns position {pos} to {ki.dimension!r}.",
                    hint="Fix the key (or leave out 'dimension' there to use the CSV's value).",
                )
            if k.scoring.rule == "index" and ki.answer_code is None:
                raise ConfigError(
                    f"{key_where}: the item with pos {pos} has no 'answer_code'; index rules need it for every item.",
                    hint="Set answer_code: reversed (agreeing = the instrument's code 1) or as_is.",
                )
            if ki.answer_code is not None:
                reverse = ki.answer_code == "reversed"
            elif ki.reverse is not None:
                reverse = ki.reverse
            item_id = ki.id or item_id
            meta.update(ki.meta)
        elif k.scoring.rule == "index":
            raise ConfigError(f"{key_where}: an index rule needs an 'items' list mapping rows to the formula's item ids.",
                              hint="See keys/VSM13.yaml for an example.")
        items.append(Item(id=item_id, text=text, dimension=dimension, reverse=reverse, meta=meta))

    keying_check = _keying_check(k, items) if k.scoring.rule == "index" else []
    raw = {
        "name": k.name or inventory,
        "title": k.title,
        "description": k.description,
        "reference": k.reference,
        "license": k.license,
        "scale": k.scale.model_dump(),
        "prompt": k.prompt.model_dump(),
        "scoring": k.scoring.model_dump(),
        "items": [it.model_dump() for it in items],
        "notes": list(k.notes),
        "source": {"file": str(p), "inventory": inventory, "key": key_where, "keying_check": keying_check},
    }
    return instrument_from_mapping(raw, key_where)


def load_items_csv(path: PathLike, key: PathLike) -> Instrument:
    """A plain item CSV (``id,text,dimension[,reverse]``) scored with a key file (scale, prompt, scoring)."""
    p = Path(path)
    kp = Path(key).expanduser()
    raw_key = read_mapping(kp)
    raw_key.setdefault("inventory", "*")
    k = validate(InventoryKey, raw_key, str(kp))
    if k.items:
        raise ConfigError(f"{kp}: field 'items' is for ValueBench inventories; an item CSV carries its own items.",
                          hint="Remove 'items' from the key, or put id/dimension/reverse in the CSV.")
    items = []
    with open(p, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        for col in ("id", "text", "dimension"):
            if col not in header:
                raise DataError(f"{p}:1: the header lacks column {col!r}; found {header}.",
                                hint="An item CSV needs the columns id,text,dimension and optionally reverse.")
        for row in reader:
            where = f"{p}:{reader.line_num}"
            rev_raw = (row.get("reverse") or "").strip().lower()
            if rev_raw not in ("", "0", "1", "true", "false", "yes", "no", "-1"):
                raise DataError(f"{where}: field 'reverse' is {row.get('reverse')!r}; expected true/false, 1/0 or -1.",
                                hint="Mark reverse-keyed items with true (or 1); leave the others empty.")
            for col in ("id", "text", "dimension"):
                if not (row.get(col) or "").strip():
                    raise DataError(f"{where}: field {col!r} is empty.", hint="Every item needs an id, a text and a dimension.")
            items.append({"id": row["id"].strip(), "text": row["text"], "dimension": row["dimension"].strip(),
                          "reverse": rev_raw in ("1", "true", "yes", "-1"), "meta": {"line": reader.line_num}})
    raw = {"name": k.name or p.stem, "title": k.title, "description": k.description, "reference": k.reference,
           "license": k.license, "scale": k.scale.model_dump(), "prompt": k.prompt.model_dump(),
           "scoring": k.scoring.model_dump(), "items": items, "notes": list(k.notes),
           "source": {"file": str(p), "key": str(kp)}}
    return instrument_from_mapping(raw, str(p))


def _is_valuebench_csv(path: Path) -> bool:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), [])
    return all(c in header for c in VALUEBENCH_COLUMNS)


def resolve_instrument(
    instrument: str | None = None,
    *,
    inventory: str | None = None,
    key: PathLike | None = None,
    data_dir: PathLike | None = None,
) -> Instrument:
    """Turn ``--instrument`` / ``--inventory`` / ``--key`` into an :class:`Instrument`.

    * an instrument file (YAML/JSON with item texts);
    * a ValueBench CSV plus ``inventory`` (the key comes from ``key``, else ``keys/<inventory>.yaml``);
    * a plain item CSV plus ``key``;
    * a key file (YAML with ``inventory:``) - the items come from ValueBench in the data directory;
    * a built-in instrument name (``assistant_values``) or an inventory name or alias
      (``PVQ40``, ``schwartz``, ``MFT08``, ``moral_foundations``, ``MFT23``, ``VSM13``, ``hofstede``).
    """
    if not instrument and not inventory:
        raise ConfigError("No instrument given.",
                          hint="Pass --instrument FILE_OR_NAME (e.g. assistant_values, schwartz) or --inventory NAME (e.g. PVQ40).")
    if instrument:
        p = Path(instrument).expanduser()
        if p.is_file():
            suffix = p.suffix.lower()
            if suffix == ".csv":
                if _is_valuebench_csv(p):
                    if not inventory:
                        names = ", ".join(sorted(list_inventories(p)))
                        raise ConfigError(f"{p} is a ValueBench item bank with several inventories; say which one.",
                                          hint=f"Pass --inventory NAME, one of: {names}.")
                    return load_valuebench(p, inventory, key)
                if key is None:
                    raise ConfigError(f"{p} is an item CSV without scale or scoring rule.",
                                      hint="Pass --key KEY.yaml with 'scale:' and 'scoring:' (see docs/values.md).")
                return load_items_csv(p, key)
            if suffix in (".yaml", ".yml", ".json"):
                raw = read_mapping(p)
                if "inventory" in raw:
                    inv = inventory or raw["inventory"]
                    return load_valuebench(find_valuebench_csv(data_dir), inv, p)
                if inventory:
                    raise ConfigError(f"--inventory {inventory} applies to ValueBench item banks, not to the instrument file {p}.",
                                      hint="Drop --inventory, or pass the ValueBench CSV as --instrument.")
                return load_instrument_file(p)
            raise ConfigError(f"{p}: unknown instrument file type {suffix!r}.",
                              hint="Use an instrument YAML/JSON, or a CSV (ValueBench's item bank or id,text,dimension).")
        if any(s in instrument for s in ("/", "\\")) or instrument.lower().endswith((".csv", ".yaml", ".yml", ".json")):
            raise ConfigError(f"Instrument file {p} does not exist.", hint="Check the path.")
        builtins = builtin_instruments()
        if instrument in builtins:
            raw = yaml.safe_load(builtins[instrument].read_text(encoding="utf-8"))
            raw.setdefault("source", {"file": f"built-in:instruments/{instrument}.yaml"})
            return instrument_from_mapping(raw, f"built-in instrument {instrument}")
        inv = ALIASES.get(instrument.lower(), instrument)
        if inventory and inventory != inv:
            raise ConfigError(f"--instrument {instrument} and --inventory {inventory} disagree.",
                              hint="Pass one of them.")
        try:
            csv_path = find_valuebench_csv(data_dir)
        except DataError as exc:
            known = sorted(builtins) + sorted(ALIASES) + sorted(builtin_keys())
            raise ConfigError(f"Unknown instrument {instrument!r} (not a file or a built-in instrument), and {exc.message}",
                              hint=f"Built-in names: {', '.join(known)}. {exc.hint or ''}") from exc
        if inv not in list_inventories(csv_path):
            known = sorted(builtins) + sorted(ALIASES)
            raise ConfigError(f"Unknown instrument {instrument!r}.",
                              hint=f"Use a file path, a built-in name ({', '.join(known)}) or a ValueBench inventory "
                                   f"({', '.join(sorted(list_inventories(csv_path)))}).")
        return load_valuebench(csv_path, inv, key)
    return load_valuebench(find_valuebench_csv(data_dir), ALIASES.get(inventory.lower(), inventory), key)


def to_records(instrument: Instrument) -> list:
    """The instrument's items as :class:`aligngoals.data.records.QuestionnaireItem` records."""
    from aligngoals.data.records import QuestionnaireItem

    return [QuestionnaireItem(id=f"{instrument.name}:{it.id}", instrument=instrument.name, item_id=it.id, text=it.text,
                              dimension=it.dimension, reverse=it.reverse, meta=dict(it.meta)) for it in instrument.items]
