"""Configuration: cuttlefish ``.conf`` and Erlang ``sys.config`` files -> :class:`Settings`.

>>> settings = load_config("etc/static.conf", environ={})
>>> settings.cluster.discovery.seeds
('n1@127.0.0.1', 'n2@127.0.0.1', 'n3@127.0.0.1')

Every key is described once, in :data:`pyekka.config.schema.KEYS` (type, defaults,
place in both syntaxes, doc); :func:`reference_markdown` prints the reference made
from it. Readers are pure apart from reading the one given file, and report every
problem as a :class:`ConfigError` naming the file, the line and the key.
"""

from pyekka.config.conf import read_conf
from pyekka.config.env import read_environ
from pyekka.config.erlang_config import read_erlang_config
from pyekka.config.errors import ConfigError, Origin
from pyekka.config.loader import load_config, read_overrides
from pyekka.config.reference import reference_markdown
from pyekka.config.schema import AUTOHEAL_DEFAULT_DELAY_MS, KEYS, STRATEGIES, Key
from pyekka.config.settings import (
    AutoclusterSettings,
    ClusterSettings,
    Discovery,
    DnsDiscovery,
    EtcdDiscovery,
    K8sDiscovery,
    ManualDiscovery,
    McastDiscovery,
    NodeSettings,
    Settings,
    StaticDiscovery,
    build_settings,
)

__all__ = [
    "AUTOHEAL_DEFAULT_DELAY_MS",
    "KEYS",
    "STRATEGIES",
    "AutoclusterSettings",
    "ClusterSettings",
    "ConfigError",
    "Discovery",
    "DnsDiscovery",
    "EtcdDiscovery",
    "K8sDiscovery",
    "Key",
    "ManualDiscovery",
    "McastDiscovery",
    "NodeSettings",
    "Origin",
    "Settings",
    "StaticDiscovery",
    "build_settings",
    "load_config",
    "read_conf",
    "read_environ",
    "read_erlang_config",
    "read_overrides",
    "reference_markdown",
]
