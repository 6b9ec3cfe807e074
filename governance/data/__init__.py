"""Data for the governance core: a synthetic lending population and loaders for real credit data."""

from governance.data.real import (
    Dataset,
    load_german,
    load_givemecredit,
    load_heloc,
    shared_data_dir,
)
from governance.data.synthetic import (
    FAVOURABLE,
    FEATURES,
    LABEL,
    SYNTHETIC_CODEBOOK,
    SYNTHETIC_SCHEMA,
    generate_population,
)

__all__ = [
    "FAVOURABLE",
    "FEATURES",
    "LABEL",
    "SYNTHETIC_CODEBOOK",
    "SYNTHETIC_SCHEMA",
    "Dataset",
    "generate_population",
    "load_german",
    "load_givemecredit",
    "load_heloc",
    "shared_data_dir",
]
