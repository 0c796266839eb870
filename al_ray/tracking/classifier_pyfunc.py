"""MLflow models-from-code script: a round's classifier as an MLflow pyfunc model.

:class:`~al_ray.tracking.registry.ModelRegistry` passes this file's path as
``python_model`` when it logs a round's model. MLflow copies the file into the
logged model and runs it whenever the model is loaded, so the model's code is
stored as source instead of a pickled ``PythonModel``. The classifier itself
is the file the loop saved with :func:`al_ray.loop.model_io.save_model`,
attached as the artifact ``classifier``. Loading it needs ``al_ray``
installed, because the pickle refers to al_ray's classifier classes.

Not meant for import: running the file calls :func:`mlflow.models.set_model`.
"""

from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

CLASSIFIER_ARTIFACT = "classifier"


class ClassifierModel(PythonModel):
    """Class probabilities of an al_ray classifier, one column per class name."""

    def load_context(self, context) -> None:
        with open(context.artifacts[CLASSIFIER_ARTIFACT], "rb") as stream:
            self.classifier = cloudpickle.load(stream)

    # The hint is the input MLflow's scoring server builds from a JSON request;
    # a NumPy array of shape (n_rows, n_features) works too.
    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Return probabilities, shape ``(n_rows, n_classes)``, columns named after the classes."""
        features = np.asarray(model_input, dtype=np.float64)
        probabilities = self.classifier.predict_proba(features)
        return pd.DataFrame(probabilities, columns=list(self.classifier.classes))


set_model(ClassifierModel())
