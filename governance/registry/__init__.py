"""The model registry: versioned, hash-pinned model artifacts with their feature schema and recipe.

Registration (from a recipe, or importing a model fitted elsewhere: a file or an MLflow
registry version), codebooks (words for
features and category codes), the fitted-model wrapper every check scores through, and the
structure of fitted tree ensembles and linear models that the exact searches rely on.
"""

from governance.registry.codebook import Codebook, load_codebook, read_codebook, save_codebook
from governance.registry.exact_paths import exact_paths
from governance.registry.forests import ColumnMaps, parse_forest, why_not_parsed
from governance.registry.importing import ImportReport, import_fitted, read_artifact
from governance.registry.mlflow_source import import_from_mlflow
from governance.registry.model import DecisionModel, PredictStats
from governance.registry.model_registry import (
    Manifest,
    ModelRegistry,
    ReferenceData,
    TrainingData,
    check_name,
    load_trusted,
    missing_training_data,
)
from governance.registry.registration import register_from_data
from governance.registry.schema import FeatureSchema, FeatureSpec
from governance.registry.training import CLONE, ESTIMATORS, TrainingRecipe
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
    "CLONE",
    "ESTIMATORS",
    "check_name",
    "column_maps",
    "exact_paths",
    "import_fitted",
    "import_from_mlflow",
    "load_codebook",
    "load_trusted",
    "missing_training_data",
    "model_structure",
    "parse_forest",
    "read_artifact",
    "read_codebook",
    "register_from_data",
    "save_codebook",
    "why_not_parsed",
    "CellKeys",
    "Cells",
    "Codebook",
    "ColumnMaps",
    "DecisionModel",
    "FeatureSchema",
    "FeatureSpec",
    "ImportReport",
    "Manifest",
    "ModelRegistry",
    "ModelStructure",
    "PredictStats",
    "ReferenceData",
    "TrainingData",
    "TrainingRecipe",
    "TreeBound",
    "TreeReplay",
]
