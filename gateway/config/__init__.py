"""Site configuration: strict models, YAML with located errors, and the hash that pins a config."""

from gateway.config._limits import LimitTable, load_limit_table
from gateway.config._load import LoadedSite, load_site, site_model, substitute
from gateway.config._models import (
    PROJECT_CONFIG_DIR,
    STRICT,
    ClockConfig,
    EquipmentConfig,
    GatewaySection,
    Identifier,
    JournalConfig,
    ParticleLimitsConfig,
    SimulatorEntry,
    SiteBase,
    SupervisorConfig,
    data_file_path,
    existing_data_file,
    existing_file,
    resolve_path,
)
from gateway.config._sinks import BatchingConfig, RetryConfig, SinkConfig
from gateway.config._yaml import YamlDocument, load_yaml_model

__all__ = [
    "PROJECT_CONFIG_DIR",
    "STRICT",
    "BatchingConfig",
    "ClockConfig",
    "EquipmentConfig",
    "GatewaySection",
    "Identifier",
    "JournalConfig",
    "LimitTable",
    "LoadedSite",
    "ParticleLimitsConfig",
    "RetryConfig",
    "SimulatorEntry",
    "SinkConfig",
    "SiteBase",
    "SupervisorConfig",
    "YamlDocument",
    "data_file_path",
    "existing_data_file",
    "existing_file",
    "load_limit_table",
    "load_site",
    "load_yaml_model",
    "resolve_path",
    "site_model",
    "substitute",
]
