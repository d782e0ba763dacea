"""MLflow "models from code" definition of a guanxi model.

MLflow copies this file into every logged model and executes it when the model is loaded, so no
Python object is cloudpickled. The model's only artifact is a :class:`models.artifact.ModelBundle`
directory (``model.ubj`` + ``bundle.json``), logged under the artifact key ``"bundle"``. The file
imports :mod:`models.artifact`, so the guanxi package must be installed where the model is loaded.

``predict`` takes a pandas DataFrame with the bundle's feature columns and returns what the task
outputs (:meth:`models.artifact.ModelBundle.predict`): calibrated probabilities for a classifier,
raw predictions for a regression (float64 array, one per row).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from models.artifact import BUNDLE_FILE, ModelBundle
from models.uplift import UPLIFT_BUNDLE_KIND, UpliftBundle

__all__ = ["BUNDLE_ARTIFACT", "GuanxiModel"]

BUNDLE_ARTIFACT = "bundle"
"""Key of the bundle directory in the pyfunc model's ``artifacts``."""


class GuanxiModel(PythonModel):
    """Pyfunc wrapper that loads a :class:`~models.artifact.ModelBundle` from the artifacts.

    An uplift bundle (``bundle.json`` of kind :data:`models.uplift.UPLIFT_BUNDLE_KIND`) loads as a
    :class:`~models.uplift.UpliftBundle` and predicts the estimated uplift.
    """

    bundle: ModelBundle | UpliftBundle

    def load_context(self, context: Any) -> None:
        """Load the bundle from the model's ``bundle`` artifact.

        Parameters
        ----------
        context : mlflow.pyfunc.PythonModelContext
            Holds the local path of the ``bundle`` artifact.
        """
        path = Path(context.artifacts[BUNDLE_ARTIFACT])
        kind = json.loads((path / BUNDLE_FILE).read_text(encoding="utf-8")).get("kind")
        self.bundle = (
            UpliftBundle.load(path) if kind == UPLIFT_BUNDLE_KIND else ModelBundle.load(path)
        )

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Predict the rows of ``model_input`` (:meth:`~models.artifact.ModelBundle.predict`).

        Parameters
        ----------
        context : mlflow.pyfunc.PythonModelContext
            Unused (the bundle is loaded in :meth:`load_context`).
        model_input : pandas.DataFrame
            Rows with the bundle's feature columns.
        params : dict, optional
            Unused.

        Returns
        -------
        numpy.ndarray
            One probability (or, for a regression, one prediction) per row.
        """
        if isinstance(self.bundle, UpliftBundle):
            columns = self.bundle.feature_names
            return self.bundle.predict_uplift(model_input.loc[:, columns].to_numpy(np.float64))
        return self.bundle.predict(model_input)


set_model(GuanxiModel())
