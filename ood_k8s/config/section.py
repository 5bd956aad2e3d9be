# hot-path: imported by a one-shot entry point; stdlib only at import, NamedTuples, no postponed annotations
"""The section: a class of settings, each declared once with its default, documentation and check.

Each setting is declared with :func:`setting` in a :func:`section` class: its default, ``doc``
(shown by ``ood-k8s config example``), optionally ``check`` (a function returning an error text or
``None``) and ``secret`` (never printed).  :func:`section` stands in for ``dataclasses.dataclass``
(see there why), and :func:`fields`, :func:`replace` and :func:`is_section` for dataclasses'
functions.  :func:`add_setting` declares a plugin's settings after the fact.

No postponed annotations here or in the schema: the loader reads the section classes' annotations
as types, and evaluating them from strings would cost every poll a compile per setting.
"""

import typing
from typing import TYPE_CHECKING, Any, Callable, Optional

SECRET_MASK = "<redacted>"  # noqa: S105 - what is printed instead of a secret


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # the default of a setting every entry must give (a profile's name)


class Setting:
    """One setting of a section: default (or a factory of it), documentation, value check, secrecy.

    ``internal`` settings (where a configuration was read from) are neither read from files, nor
    printed, nor compared.
    """

    __slots__ = ("check", "default", "doc", "factory", "internal", "name", "secret")

    def __init__(self, default: Any, doc: str, check: Optional[Callable[[Any], Optional[str]]], secret: bool,
                 factory: Optional[Callable[[], Any]], internal: bool) -> None:
        self.name = ""  # set by @section
        self.default, self.factory, self.doc, self.check = default, factory, doc, check
        self.secret, self.internal = secret, internal

    @property
    def required(self) -> bool:
        return self.factory is None and self.default is REQUIRED

    def initial(self) -> Any:
        """The value of this setting when nothing sets it."""
        if self.factory is not None:
            return self.factory()
        if self.default is REQUIRED:
            raise TypeError(f"missing required argument: '{self.name}'")
        return self.default


def setting(default: Any = REQUIRED, doc: str = "", *, check: Optional[Callable[[Any], Optional[str]]] = None,
            secret: bool = False, factory: Optional[Callable[[], Any]] = None, internal: bool = False) -> Any:
    return Setting(default, doc, check, secret, factory, internal)


if TYPE_CHECKING:
    from dataclasses import dataclass as section
else:

    def section(cls: type) -> type:
        """Make ``cls`` a section of settings: its ``setting(...)`` attributes, in order, become
        ``__settings__``, and it gets a keyword ``__init__``, ``__repr__`` and ``__eq__`` over them.

        The sections were dataclasses; the standard decorator imports ``inspect`` and compiles three
        methods per class from source, ~20 ms of every OOD status poll for the 22 classes below.
        :func:`fields`, :func:`replace` and :func:`is_section` stand in for dataclasses' functions.
        Type checkers see ``dataclass``, which means the same for these classes.
        """
        settings = []
        for name, value in list(vars(cls).items()):
            if isinstance(value, Setting):
                value.name = name
                settings.append(value)
                delattr(cls, name)  # instances hold the values
        unset = set(cls.__annotations__) - {s.name for s in settings}
        if unset:
            raise TypeError(f"{cls.__name__}: {', '.join(sorted(unset))} must be declared with setting()")
        cls.__settings__ = tuple(settings)
        cls.__init__, cls.__repr__, cls.__eq__, cls.__hash__ = _init, _repr, _eq, None
        return cls

    def _init(self: Any, *args: Any, **values: Any) -> None:
        settings = self.__settings__
        if len(args) > len(settings):
            raise TypeError(f"{type(self).__qualname__}() takes {len(settings)} arguments, {len(args)} were given")
        for s, value in zip(settings, args):
            if s.name in values:
                raise TypeError(f"{type(self).__qualname__}() got multiple values for argument '{s.name}'")
            values[s.name] = value
        for s in settings:
            setattr(self, s.name, values.pop(s.name) if s.name in values else s.initial())
        if values:
            raise TypeError(f"{type(self).__qualname__}() got an unexpected keyword argument '{next(iter(values))}'")

    def _repr(self: Any) -> str:
        shown = ", ".join(f"{s.name}={getattr(self, s.name)!r}" for s in self.__settings__ if not s.internal)
        return f"{type(self).__qualname__}({shown})"

    def _eq(self: Any, other: Any) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, s.name) == getattr(other, s.name) for s in self.__settings__ if not s.internal)


def fields(obj: Any) -> tuple[Setting, ...]:
    """The settings of a section class or instance, in declaration order."""
    return obj.__settings__  # type: ignore[no-any-return]


def is_section(obj: Any) -> bool:
    """True for a section class or instance (what :func:`section` made)."""
    return hasattr(obj, "__settings__")


_S = typing.TypeVar("_S")


def replace(obj: _S, **changes: Any) -> _S:
    """A copy of the section ``obj`` with ``changes`` (as ``dataclasses.replace``)."""
    values = {s.name: getattr(obj, s.name) for s in fields(obj)}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(obj).__qualname__} has no setting '{sorted(unknown)[0]}'")
    values.update(changes)
    return type(obj)(**values)


def add_setting(owner: type, name: str, tp: Any, new: Setting) -> None:
    """Declare the setting ``name`` (of type ``tp``) of the section class ``owner`` after the fact: a
    plugin's settings, such as ``storage.<mode>`` of a registered home backend.  Instances made from
    now on have it."""
    if name in owner.__annotations__:
        raise ValueError(f"{owner.__qualname__} already has a setting '{name}'")
    if is_section(tp):
        tp.__annotations__.update(typing.get_type_hints(tp))  # the loader reads types: a plugin may postpone them
    new.name = name
    owner.__annotations__[name] = tp
    owner.__settings__ = (*owner.__settings__, new)  # type: ignore[attr-defined]


def remove_setting(owner: type, name: str) -> None:
    """Undo :func:`add_setting`."""
    owner.__settings__ = tuple(s for s in fields(owner) if s.name != name)  # type: ignore[attr-defined]
    owner.__annotations__.pop(name, None)


def to_dict(obj: Any, redact: bool = True) -> Any:
    """Plain data for printing; secret settings are masked when set."""
    if is_section(obj):
        out = {}
        for s in fields(obj):
            if s.internal:
                continue
            value = getattr(obj, s.name)
            if redact and s.secret and value:
                out[s.name] = SECRET_MASK
            else:
                out[s.name] = to_dict(value, redact)
        return out
    if isinstance(obj, list):
        return [to_dict(v, redact) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v, redact) for k, v in obj.items()}
    return obj


