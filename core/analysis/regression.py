"""Small pieces every fit of the analysis uses (no statistics of its own).

:func:`ols` fits a statsmodels formula with its small-sample warnings silenced (a handful of
models per group: statsmodels warns about kurtosis tests and the like); :func:`json_float` turns
a fitted number into a JSON value (NaN and inf become None).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import pandas as pd
import statsmodels.formula.api as smf


def json_float(x: Any) -> float | None:
    """A float for JSON: None, NaN and inf become None."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def ols(formula: str, data: pd.DataFrame):
    """``smf.ols(formula, data).fit()`` without statsmodels' small-sample warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smf.ols(formula, data=data).fit()
