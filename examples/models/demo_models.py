"""The demo's custom models: plain `mlflow.pyfunc.PythonModel`s with their own preprocessing, as a regulated team
writes them (no library estimator). Each version is the same class with other fitted parameters, so two versions
of one model give different answers to the same request.

Used by `make demo`, the integration tests and the benchmarks. Saved models carry this file as code
(`code_paths`), so loading one needs nothing but MLflow, numpy and pandas.
"""
from __future__ import annotations

import math

import mlflow.pyfunc
import numpy as np
import pandas as pd

RISK_FEATURES = ["age", "systolic_bp", "cholesterol", "bmi"]
READMISSION_FEATURES = ["prior_admissions", "length_of_stay", "comorbidities"]


class RiskScoreModel(mlflow.pyfunc.PythonModel):
    """Cardiovascular risk score: clip to plausible ranges, standardise, logistic link."""

    LIMITS = {"age": (18, 100), "systolic_bp": (70, 250), "cholesterol": (80, 400), "bmi": (12, 70)}

    def __init__(self, weights: list[float], bias: float, means: list[float], scales: list[float]):
        self.weights = np.asarray(weights, dtype=float)
        self.bias = float(bias)
        self.means = np.asarray(means, dtype=float)
        self.scales = np.asarray(scales, dtype=float)

    def preprocess(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in RISK_FEATURES if c not in frame.columns]
        if missing:
            raise ValueError(f"missing feature columns: {', '.join(missing)}")
        clipped = pd.DataFrame({c: frame[c].astype(float).clip(*self.LIMITS[c]) for c in RISK_FEATURES})
        return (clipped.to_numpy() - self.means) / self.scales

    def predict(self, context, model_input, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        z = self.preprocess(frame) @ self.weights + self.bias
        return [round(1.0 / (1.0 + math.exp(-v)), 6) for v in z]


class ReadmissionModel(mlflow.pyfunc.PythonModel):
    """30-day readmission: log-transformed counts, a linear score, and a risk band."""

    def __init__(self, weights: list[float], threshold: float):
        self.weights = np.asarray(weights, dtype=float)
        self.threshold = float(threshold)

    def predict(self, context, model_input, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        x = np.log1p(frame[READMISSION_FEATURES].astype(float).clip(lower=0).to_numpy())
        scores = x @ self.weights
        return [{"score": round(float(s), 6), "band": "high" if s >= self.threshold else "low"} for s in scores]


def risk_score_version(version: int) -> RiskScoreModel:
    """The fitted parameters of risk-score version N: each retraining moves the weights."""
    shift = 0.15 * (version - 1)
    return RiskScoreModel(weights=[0.8 + shift, 0.6, 0.4 - shift / 2, 0.3 + shift],
                          bias=-1.2 + shift, means=[55, 130, 200, 27], scales=[12, 18, 40, 5])


def readmission_version(version: int) -> ReadmissionModel:
    return ReadmissionModel(weights=[0.9, 0.35 + 0.1 * version, 0.5], threshold=1.5 + 0.2 * version)


BUILDERS = {"risk-score": risk_score_version, "readmission": readmission_version}

SAMPLE_INPUTS = {
    "risk-score": {"dataframe_split": {"columns": RISK_FEATURES, "data": [[63, 148, 240, 31.5], [41, 118, 180, 23.0]]}},
    "readmission": {"dataframe_split": {"columns": READMISSION_FEATURES, "data": [[3, 6, 2], [0, 2, 0]]}},
}


def build(model: str, version: int) -> mlflow.pyfunc.PythonModel:
    try:
        return BUILDERS[model](version)
    except KeyError:
        raise ValueError(f"unknown demo model {model!r}; known: {', '.join(sorted(BUILDERS))}") from None


def input_example(model: str) -> pd.DataFrame:
    split = SAMPLE_INPUTS[model]["dataframe_split"]
    return pd.DataFrame(split["data"], columns=split["columns"])


def save(model: str, version: int, path: str) -> None:
    """Write version N of a demo model as an MLflow model folder (what `ferry sync` puts on EFS, minus manifest)."""
    mlflow.pyfunc.save_model(path, python_model=build(model, version), code_paths=[__file__])
