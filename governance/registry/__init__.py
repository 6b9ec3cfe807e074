"""The model registry: versioned, hash-pinned model artifacts with their feature schema and recipe.

Registration, codebooks (words for features and category codes), the fitted-model wrapper
every check scores through, and the structure of fitted tree ensembles and linear models that
the exact searches rely on.
"""

from governance.registry.codebook import Codebook, load_codebook, read_codebook, save_codebook
from governance.registry.model import DecisionModel, PredictStats
from governance.registry.model_registry import (
    Manifest,
    ModelRegistry,
    TrainingData,
    check_name,
    load_trusted,
)
from governance.registry.registration import register_from_data
from governance.registry.schema import FeatureSchema, FeatureSpec
from governance.registry.training import ESTIMATORS, TrainingRecipe
from governance.registry.tree_replay import TreeReplay
from governance.registry.trees import (
    CellKeys,
    Cells,
    ModelStructure,
    TreeBound,
    column_maps,
    model_structure,
)

__all__ = [
    "ESTIMATORS",
    "check_name",
    "column_maps",
    "load_codebook",
    "load_trusted",
    "model_structure",
    "read_codebook",
    "register_from_data",
    "save_codebook",
    "CellKeys",
    "Cells",
    "Codebook",
    "DecisionModel",
    "FeatureSchema",
    "FeatureSpec",
    "Manifest",
    "ModelRegistry",
    "ModelStructure",
    "PredictStats",
    "TrainingData",
    "TrainingRecipe",
    "TreeBound",
    "TreeReplay",
]
