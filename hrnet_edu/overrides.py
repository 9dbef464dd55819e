"""Configs as text: ``key=value`` overrides from the command line, and dicts from checkpoints.

``apply_overrides(cfg, ["epochs=3", "model.width=8", "lr_steps=2,3"])`` returns a copy of a
``TrainConfig`` (or any frozen dataclass) with those values: dotted keys reach nested dataclasses,
each value is parsed according to the field's type (bool, int, float, str, tuples, ``X | None``).

``config_from_dict`` is the inverse of ``dataclasses.asdict(cfg)``, the form stored in every
checkpoint and ``config.json``. A config written by an earlier version still loads: a field it
lacks keeps its default, and the keys of ``OLD_KEYS`` (renamed or removed fields) are mapped.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Union

from hrnet_edu.configs import TrainConfig
from hrnet_edu.model import HRNetConfig

# Fields renamed (old → new) or removed (old → None) since checkpoints were first written.
OLD_KEYS: dict[type, dict[str, str | None]] = {
    HRNetConfig: {"num_blocks": "num_units"},
    TrainConfig: {"max_val_images": None},
}


def _parse_bool(text: str, key: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"override {key}={text!r}: expected a boolean (true/false/1/0)")


def _parse(text: str, hint, key: str):
    """Parse ``text`` as a value of type ``hint`` (bool, int, float, str, tuples, X | None)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if type(None) in args and text.strip().lower() in ("none", "null"):
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _parse(text, arg, key)
            except ValueError as e:
                errors.append(str(e))
        raise ValueError("; ".join(errors))
    if origin is tuple:
        items = [t.strip() for t in text.strip().strip("()[]").split(",") if t.strip()]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_parse(t, args[0], key) for t in items)
        if len(items) != len(args):
            raise ValueError(f"override {key}={text!r}: expected {len(args)} comma-separated values")
        return tuple(_parse(t, a, key) for t, a in zip(items, args))
    if hint is bool:
        return _parse_bool(text, key)
    if hint in (int, float):
        try:
            return hint(text)
        except ValueError:
            raise ValueError(f"override {key}={text!r}: expected {hint.__name__}") from None
    if hint is str:
        return text
    raise ValueError(f"override {key}: fields of type {hint} cannot be set from the command line")


def _replace_path(obj, keys: list[str], text: str, full_key: str):
    if not dataclasses.is_dataclass(obj):
        raise ValueError(f"unknown config key {full_key!r}: {type(obj).__name__} has no sub-fields")
    keys = [OLD_KEYS.get(type(obj), {}).get(keys[0]) or keys[0], *keys[1:]]  # model.num_blocks: num_units
    names = {f.name for f in dataclasses.fields(obj)}
    if keys[0] not in names:
        raise ValueError(
            f"unknown config key {full_key!r}; {type(obj).__name__} fields are: {', '.join(sorted(names))}"
        )
    hint = typing.get_type_hints(type(obj))[keys[0]]
    if len(keys) > 1:
        value = _replace_path(getattr(obj, keys[0]), keys[1:], text, full_key)
    else:
        value = _parse(text, hint, full_key)
    return dataclasses.replace(obj, **{keys[0]: value})


def apply_overrides(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """A copy of ``cfg`` with ``["key=value", "model.width=8", ...]`` applied (``cfg`` is untouched).

    Raises ValueError for a malformed item, an unknown key (listing the valid ones) or a value
    that does not parse as the field's type.
    """
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        cfg = _replace_path(cfg, key.strip().split("."), text, key.strip())
    return cfg


def _tuplify(value):
    """JSON gives lists where the dataclasses hold tuples (also nested ones)."""
    return tuple(_tuplify(v) for v in value) if isinstance(value, list | tuple) else value

def _current_keys(cls, data: dict) -> dict:
    """``data`` with the keys of ``OLD_KEYS[cls]`` renamed, or dropped where the field was removed."""
    renamed = OLD_KEYS.get(cls, {})
    return {renamed.get(k, k): v for k, v in data.items() if k not in renamed or renamed[k] is not None}


def _from_dict(cls, data: dict):
    hints = typing.get_type_hints(cls)
    data = _current_keys(cls, data)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue  # a checkpoint from an older version: keep the default
        value, hint = data[f.name], hints[f.name]
        sub = [a for a in (typing.get_args(hint) or (hint,)) if dataclasses.is_dataclass(a)]
        if sub and isinstance(value, dict):
            # a union of configs (model: HRNetConfig | BaselineConfig): the first whose fields hold every key
            fits = [a for a in sub if set(_current_keys(a, value)) <= {f.name for f in dataclasses.fields(a)}]
            value = _from_dict((fits or sub)[0], value)
        elif isinstance(value, list | tuple):
            value = _tuplify(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def config_from_dict(data: dict) -> TrainConfig:
    """The inverse of ``dataclasses.asdict(cfg)`` (as stored in checkpoints and ``config.json``)."""
    return _from_dict(TrainConfig, data)


def flatten(data: dict, prefix: str = "") -> dict:
    """{"model.width": 32, ...}: nested config dicts as dotted keys, lists as tuples."""
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = _tuplify(value)
    return out


def config_changes(stored: dict, cfg: TrainConfig) -> dict[str, tuple]:
    """{dotted key: (stored value, new value)} for every value ``cfg`` changes in a stored config.

    The stored dict is read as this version reads it (``config_from_dict``: renamed keys mapped,
    removed ones dropped, missing ones at their defaults), so a run written by an earlier
    version differs only where a value really changes.
    """
    old = flatten(dataclasses.asdict(config_from_dict(stored)))
    new = flatten(dataclasses.asdict(cfg))
    return {k: (old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)}
