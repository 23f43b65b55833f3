"""Traits derived from :class:`~lossviz_widget._core.settings.ViewSettings` (settings are declared there, once).

Each settings field becomes a synced trait of the same name, default and help on the widget; its
check runs as the trait's validation, so ``plot.smoothing = 1.5`` raises ``TraitError`` with the
settings' own message. :func:`view_settings` reads the traits back into a ``ViewSettings``.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from dataclasses import MISSING, fields
from typing import Any

from traitlets import Bool, Enum, Float, HasTraits, Int, TraitError, TraitType, Tuple, Unicode

from .._core.settings import ViewSettings, setting_of

__all__ = ["SETTING_NAMES", "check_options", "setting_traits", "validate_setting", "view_settings"]

SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(ViewSettings))


def _trait(hint: Any, default: Any, choices: tuple[str, ...] | None) -> TraitType[Any, Any]:
    """The trait type for a settings field's type hint."""
    if choices is not None:
        return Enum(choices, default)
    if hint is bool:
        return Bool(default)
    if hint is float:
        return Float(default)
    if hint is int:
        return Int(default)
    args = typing.get_args(hint)
    optional = isinstance(hint, types.UnionType) and type(None) in args
    inner = next((a for a in args if a is not type(None)), None) if optional else hint
    if inner is str:
        return Unicode(default, allow_none=True) if optional else Unicode(default)
    if typing.get_origin(inner) is tuple and typing.get_args(inner) == (float, float):
        return Tuple(Float(), Float(), default_value=default, allow_none=optional)
    if typing.get_origin(inner) is frozenset and typing.get_args(inner) == (str,):
        return Tuple()  # a tuple of names on the widget, a frozenset in the settings
    raise TypeError(f"no trait type for a view setting of type {hint!r}: add one in {__name__}")


def setting_traits() -> dict[str, TraitType[Any, Any]]:
    """One synced trait per :class:`ViewSettings` field, with its default and help."""
    hints = typing.get_type_hints(ViewSettings)
    traits = {}
    for f in fields(ViewSettings):
        default = f.default if f.default_factory is MISSING else f.default_factory()  # (every field has one)
        spec = setting_of(f)
        trait = _trait(hints[f.name], default, spec.choices)
        trait.help = spec.help
        traits[f.name] = trait.tag(sync=True)
    return traits


def validate_setting(name: str, value: Any) -> Any:
    """Run the settings' own check on a proposed trait value; its ``ValueError`` becomes ``TraitError``
    (a ``TypeError``, a value of the wrong kind, stays one)."""
    spec = setting_of(next(f for f in fields(ViewSettings) if f.name == name))
    if spec.check is None:
        return value
    try:
        checked = spec.check(value)
    except ValueError as exc:
        raise TraitError(str(exc)) from None
    return value if isinstance(checked, frozenset) else checked  # names stay a tuple on the widget


def view_settings(owner: HasTraits) -> ViewSettings:
    """The settings that ``owner``'s traits hold now."""
    return ViewSettings(**{name: getattr(owner, name) for name in SETTING_NAMES})


def check_options(cls: type[HasTraits], options: Iterable[str], known: Iterable[str] = ()) -> None:
    """``TypeError`` for a keyword that is neither a trait of ``cls`` nor in ``known``, naming the
    closest valid name (``LossPlot(smothing=0.9)`` -> "did you mean 'smoothing'?")."""
    valid = set(cls.class_trait_names()) | set(known)
    for name in options:
        if name not in valid:
            close = difflib.get_close_matches(name, sorted(valid), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {name!r}{hint}")
