"""Data for the governance core: a synthetic lending population and loaders for real credit data."""

from governance.data.synthetic import (
    FAVOURABLE,
    FEATURES,
    LABEL,
    SYNTHETIC_SCHEMA,
    generate_population,
)

__all__ = [
    "FAVOURABLE",
    "FEATURES",
    "LABEL",
    "SYNTHETIC_SCHEMA",
    "generate_population",
]
