"""Sessions file (TOML) -> frozen dataclasses.

Headless: never imports Textual or Rich, nor any other layer of tokentop (only ``tui.vocab``
and ``tui.paths``). :func:`load_config` validates everything and reports every problem at once
in one :class:`ConfigError` that names the file, the line, the session and the key.

- :mod:`tui.config.schema`: the dataclasses, whose fields declare the keys and their checks;
- :mod:`tui.config.validate`: the checks derived from those fields;
- :mod:`tui.config.locate`: line numbers of keys in the TOML text;
- :mod:`tui.config.load`: the file's layout (``[defaults]``, ``[[sessions]]``, ``[ui]``,
  ``[keymap]``) and where sessions files are found.
"""

from __future__ import annotations

from tui.config.errors import ConfigError, ConfigProblem
from tui.config.load import (
    default_config_path,
    example_config_path,
    load_config,
    load_default_config,
)
from tui.config.schema import (
    SIM_BASE_URLS,
    AlertRules,
    AppConfig,
    KeepRawEvents,
    OnDrop,
    ReconnectPolicy,
    Repeat,
    SessionConfig,
    StoreConfig,
    UiConfig,
)

__all__ = [
    "SIM_BASE_URLS",
    "AlertRules",
    "AppConfig",
    "ConfigError",
    "ConfigProblem",
    "KeepRawEvents",
    "OnDrop",
    "ReconnectPolicy",
    "Repeat",
    "SessionConfig",
    "StoreConfig",
    "UiConfig",
    "default_config_path",
    "example_config_path",
    "load_config",
    "load_default_config",
]
