"""Layer kinds from installed packages: plugins, used only when the user enables them.

A plugin is a distribution that offers `Op` entries through the entry point group `cnndsl.layers`, one entry
point per layer kind, named as the kind (`cbam = "cnndsl_cbam.entries:CBAM"`). Names are read from the installed
packages' metadata without importing anything, so a spec naming a kind of a plugin that is installed but not
enabled gets a hint naming it; the entries module is imported only when the user enables the plugin
(`--plugin NAME`, CNNDSL_PLUGINS=NAME,NAME or `enable`). A spec only names kinds: it never loads code.

Enabling registers the entries in the one registry (ops.REGISTRY) for the rest of the process, as `register`
does for an `Op` made in Python.
"""

from __future__ import annotations

import functools
import keyword
import os
import re
from dataclasses import dataclass, field, replace

from cnndsl.errors import CnnError, UsageError
from cnndsl.ops import ALIASES, REGISTRY
from cnndsl.ops.base import Op

GROUP = "cnndsl.layers"
ENVIRONMENT = "CNNDSL_PLUGINS"
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


@dataclass(frozen=True)
class Offer:
    """A layer kind an installed plugin offers: the kind's name, the plugin (its distribution's name) and
    the entry point's value (`module:attribute`), none of them imported."""

    kind: str
    plugin: str
    value: str
    entry_point: object = field(compare=False, repr=False)  # importlib.metadata.EntryPoint: loaded when enabled


def normalized(name: str) -> str:
    """A distribution's name as pip compares them: `cnndsl_CBAM` is `cnndsl-cbam`."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()


@functools.lru_cache(maxsize=1)
def offers() -> tuple[Offer, ...]:
    """Every layer kind the installed plugins offer, read from their metadata (nothing is imported).

    Read once per process: ~70 ms, paid only by an unknown layer's hint, `cnndsl layers` and enabling."""
    from importlib import metadata

    found, seen = [], set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"] or ""
        if normalized(name) in seen:  # a distribution on sys.path twice: the first wins, as importing does
            continue
        seen.add(normalized(name))
        found += [Offer(ep.name, name, ep.value, ep) for ep in dist.entry_points if ep.group == GROUP]
    return tuple(sorted(found, key=lambda o: (normalized(o.plugin), o.kind)))


def installed() -> dict[str, list[str]]:
    """The installed plugins (distribution name) and the kinds each offers."""
    out: dict[str, list[str]] = {}
    for offer in offers():
        out.setdefault(offer.plugin, []).append(offer.kind)
    return out


def enabled() -> dict[str, str]:
    """The kinds enabled so far (by a plugin or `register`), each with its plugin's name."""
    return dict(_ENABLED)


def plugin_of(kind: str) -> str | None:
    """The plugin an enabled kind came from; None for a built-in kind."""
    return _ENABLED.get(kind)


def torch_classes() -> dict[str, str]:
    """The torch module classes of the enabled kinds: class name → dotted path. Generated code imports these
    by path, and only these (codegen/vet.py)."""
    return {REGISTRY[k].torch_class.rpartition(".")[2]: REGISTRY[k].torch_class
            for k in _ENABLED if REGISTRY[k].torch_class}


def plugin_of_class(name: str) -> str | None:
    """The plugin whose kind compiles to the module class `name`."""
    return next((p for k, p in _ENABLED.items() if REGISTRY[k].torch_class.rpartition(".")[2] == name), None)


def offered_by(kind: str) -> list[str]:
    """The installed plugins, not enabled, that offer `kind`: the hint of an unknown layer."""
    return [o.plugin for o in offers() if o.kind == kind and _ENABLED.get(kind) != o.plugin]


def enabling_hint(kind: str) -> str | None:
    """`cbam` is a layer of the plugin cnndsl-cbam ...: how to enable the plugin that offers `kind`."""
    plugins = offered_by(kind)
    if not plugins:
        return None
    name = plugins[0]
    return (f"`{kind}` is a layer of the plugin {name}, installed but not enabled: run with `--plugin {name}` or "
            f"set {ENVIRONMENT}={name} (a spec never loads code by itself)")


def enable(*names: str, source: str = "--plugin") -> list[Op]:
    """Enables installed plugins by name: imports each one's entries and registers them. Names already enabled
    are passed over; a name that is not installed is a UsageError naming the installed ones. `source` is how
    the user named them, for the message."""
    done: list[Op] = []
    by_name = {normalized(p): p for p in installed()}
    for given in names:
        plugin = by_name.get(normalized(given))
        if plugin is None:
            have = ", ".join(installed()) or "none"
            named = f"{source}={given}" if source == ENVIRONMENT else f"{source} {given}"
            raise UsageError(f"{named}: no installed cnndsl plugin of that name",
                             hint=f"installed plugins: {have}; a plugin is a package offering entry points in the "
                             f"group `{GROUP}` (docs/plugins.md)")
        for offer in offers():
            if offer.plugin == plugin and _ENABLED.get(offer.kind) != plugin:
                done.append(register(_load(offer), plugin=plugin))
    return done


def enable_environment() -> list[Op]:
    """Enables the plugins CNNDSL_PLUGINS names (comma-separated); nothing when it is unset."""
    names = [n for n in os.environ.get(ENVIRONMENT, "").split(",") if n.strip()]
    return enable(*names, source=ENVIRONMENT) if names else []


def register(op: Op, plugin: str = "python") -> Op:
    """Adds a layer kind to the registry, as a plugin's entries are added: `check`, `layers`, the code generator
    and the builder see it from now on. Refuses a kind or alias that is taken, and a torch_class that is not a
    dotted path (`package.module.Class`)."""
    if not isinstance(op, Op):
        raise CnnError(f"plugin {plugin}: {op!r} is not a cnndsl.ops.Op", hint="see docs/plugins.md")
    for name in (op.name, *op.aliases):
        if not name.isidentifier() or keyword.iskeyword(name):
            raise CnnError(f"plugin {plugin}: `{name}` cannot be a layer name (a spec names layers with identifiers)")
        taken = REGISTRY.get(name) or REGISTRY.get(ALIASES.get(name, ""))
        if taken is not None and not (_ENABLED.get(taken.name) == plugin and taken.name == op.name):
            owner = _ENABLED.get(taken.name, "cnndsl")
            raise CnnError(f"plugin {plugin}: layer `{name}` is taken by {owner}'s `{taken.name}`",
                           hint="a plugin adds kinds and never replaces one: rename it")
    if op.torch_class and not _DOTTED.fullmatch(op.torch_class):
        raise CnnError(f"plugin {plugin}: torch_class {op.torch_class!r} of `{op.name}` is not a dotted path",
                       hint="write it as `package.module.Class`; generated code imports Class from package.module")
    if not op.keras_class:  # `check --keras` names rows by a class: the torch module's, as Keras would name it
        op = replace(op, keras=op.torch_class.rpartition(".")[2] or op.name.capitalize())
    REGISTRY[op.name] = op
    for alias in op.aliases:
        ALIASES[alias] = op.name
    _ENABLED[op.name] = plugin
    return op


def _load(offer: Offer) -> Op:
    """The Op an entry point names, imported now that its plugin is enabled."""
    try:
        op = offer.entry_point.load()
    except Exception as e:  # the plugin's own code failed: say whose, without a traceback
        raise CnnError(f"plugin {offer.plugin}: loading `{offer.kind}` ({offer.value}) failed: {type(e).__name__}: "
                       f"{e}", hint=f"a problem of the plugin {offer.plugin}, not of the spec") from None
    if not isinstance(op, Op) or op.name != offer.kind:
        raise CnnError(f"plugin {offer.plugin}: entry point `{offer.kind}` = {offer.value} must name an Op called "
                       f"`{offer.kind}`", hint="the entry point's name is the layer kind's (docs/plugins.md)")
    return op


_ENABLED: dict[str, str] = {}  # kind → plugin, beside REGISTRY: both grow as the user enables plugins
