"""Settings only from their own section: `[sources.clang] port`, never a bare `PORT` or `sources.port`.

dlt looks a setting up under ever shorter section paths, down to the root, and takes the first value found: for
`[sources.clang] host` it also reads `sources.host` and a bare `HOST` environment variable, which every
container has its share of (`PORT`, `HOST`, `URL`, `TIMEZONE`...). Worse, it asks each provider for every path
before the next provider, so a stray `PORT` in the environment beats `port` in `.dlt/config.toml`. dlt has no
switch for this, so a spec's `on_resolved` undoes it: for each field, the config providers are asked again
(`provider.get_value`, the same order as dlt's resolver) and where the value dlt took was found only outside
the section, the field gets the section's own value, or else the value it had before resolution (its default,
or what the caller passed in the spec's constructor).

In the section: `<top>.<section>.<key>` (`sources.clang.host`, `export.deployteq.host`), dlt's
`sources.<section>.<name>.<key>` and `sources.<name>.<key>`, and each of these under the pipeline's name.
Explicit values (a spec instance passed to a source, `explicit_value` of `resolve_configuration`) never come
from a provider and are kept; only an explicit value equal to a stray one found outside is taken for it.
A stray value that dlt cannot convert to the field's type (`PORT=http`) still fails in dlt, before this check.

Without `from __future__ import annotations`: dlt reads the field types of a configspec.
"""

from collections.abc import Iterator
from typing import Any, ClassVar

from dlt.common.configuration.container import Container
from dlt.common.configuration.exceptions import ConfigurationException
from dlt.common.configuration.providers import ConfigProvider
from dlt.common.configuration.specs import BaseConfiguration, configspec
from dlt.common.configuration.specs.base_configuration import (
    extract_inner_hint,
    is_base_configuration_inner_hint,
    is_secret_hint,
)
from dlt.common.configuration.specs.config_section_context import ConfigSectionContext
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
from dlt.common.configuration.utils import deserialize_value


def env_name(section: tuple[str, ...], key: str) -> str:
    """A setting's environment variable: `SOURCES__CLANG__HOST`."""
    return "__".join((*section, key)).upper()


def missing_setting(section: tuple[str, ...], key: str, kind: str = "setting") -> str:
    """The message for a required setting found nowhere in its section: `missing setting sources.clang.host
    (env SOURCES__CLANG__HOST)`."""
    return f"missing {kind} {'.'.join(section)}.{key} (env {env_name(section, key)})"


@configspec
class OwnSectionConfiguration(BaseConfiguration):
    """A spec whose settings are read only under `__own_section__` (for example `("sources", "clang")`); a spec
    without one (a shared base such as the SFTP settings) calls `keep_to_own_section` where it knows its
    section."""

    __own_section__: ClassVar[tuple[str, ...] | None] = None

    def __post_init__(self) -> None:
        # what the spec held before resolution: its defaults, or what its constructor was given
        self.__dict__["_before_resolution"] = {key: getattr(self, key) for key in self.get_resolvable_fields()}

    def on_resolved(self) -> None:
        # runs before the subclasses' on_resolved (dlt calls it down the class hierarchy): they check settled values
        if self.__own_section__:
            keep_to_own_section(self, *self.__own_section__)


def keep_to_own_section(config: BaseConfiguration, *section: str) -> None:
    """Set back each field of `config` whose value dlt found only outside `section` (see the module)."""
    context = Container()[ConfigSectionContext]
    # a source's spec is resolved in its (sources, <section>, <name>) context; other specs under `section` itself
    sections = tuple(context.sections) if tuple(context.sections[: len(section)]) == section else section
    own_paths = [path for path in _lookup_paths(sections) if len(path) >= len(section)]
    outside_paths = [section[:depth] for depth in range(len(section) - 1, -1, -1)]
    providers = [p for p in Container()[PluggableRunContext].providers.providers if not p.is_empty]
    before = config.__dict__.get("_before_resolution", {})
    for key, hint in config.get_resolvable_fields().items():
        inner_hint = extract_inner_hint(hint)
        if is_base_configuration_inner_hint(inner_hint):
            continue
        lookup = _Lookup(providers, key, hint, context.pipeline_name)
        own = lookup.first(own_paths)
        value = getattr(config, key)
        if own is not None and _same(value, key, own, inner_hint):
            continue
        # the value dlt took is one found outside the section: an explicit value (never looked up) would differ
        if any(_same(value, key, found, inner_hint) for found in lookup.every(outside_paths)):
            if own is not None:
                setattr(config, key, deserialize_value(key, own, inner_hint))
            else:
                setattr(config, key, before.get(key, config.__dataclass_fields__[key].default))


def _same(value: Any, key: str, found: Any, inner_hint: Any) -> bool:
    """Whether `value` is what dlt made of the provider's `found` (one that is not of the field's type is not)."""
    try:
        return bool(value == deserialize_value(key, found, inner_hint))
    except ConfigurationException:
        return False


def _lookup_paths(sections: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The section paths dlt's resolver tries, most specific first (dlt.common.configuration.resolve)."""
    paths = [sections[:n] for n in range(len(sections), -1, -1)]
    if len(sections) >= 3 and sections[0] == "sources" and sections[1] != sections[2]:
        paths.insert(2, (sections[0], sections[2]))  # dlt's compact layout: sources.<name>.<key>
    return paths


class _Lookup:
    """One field asked of the config providers as dlt's resolver asks them: under the pipeline's name first, then
    without; each provider for every path before the next provider."""

    def __init__(self, providers: list[ConfigProvider], key: str, hint: Any, pipeline_name: str | None) -> None:
        self.providers = [p for p in providers if p.supports_secrets or not is_secret_hint(hint)]
        self.key, self.hint = key, hint
        self.pipeline_names = (pipeline_name, None) if pipeline_name else (None,)

    def every(self, paths: list[tuple[str, ...]]) -> Iterator[Any]:
        for name in self.pipeline_names:
            for provider in self.providers:
                if name and not provider.supports_sections:
                    continue
                # a provider without sections holds root values only: () is the one path it is asked for
                for path in paths if provider.supports_sections else [p for p in paths if not p]:
                    value, _ = provider.get_value(self.key, self.hint, name, *path)
                    if value is not None:
                        yield value

    def first(self, paths: list[tuple[str, ...]]) -> Any:
        return next(self.every(paths), None)
