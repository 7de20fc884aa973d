"""The inputs every layer is measured at: +-[1e-40, 2e4] log-spaced, plus a grid of step 0.05
on [-20, 20], each rounded to the dtype (the true derivative is taken at the rounded input)."""
import numpy as np

LOG_POINTS_PER_SIGN = 1000
LOG_RANGE = (-40.0, np.log10(2e4))
GRID_STEP = 0.05
GRID_RANGE = (-20.0, 20.0)
DESCRIPTION = ("+-[1e-40, 2e4], {} log-spaced points per sign, plus a grid of step {} on [{:g}, {:g}]"
               .format(LOG_POINTS_PER_SIGN, GRID_STEP, *GRID_RANGE))


def points(dtype):
    """Sorted, distinct inputs as a numpy array of ``dtype`` (np.float32 or np.float64)."""
    magnitudes = np.logspace(*LOG_RANGE, LOG_POINTS_PER_SIGN)
    count = int(round((GRID_RANGE[1] - GRID_RANGE[0]) / GRID_STEP)) + 1
    # The grid from integers, so 0.05 * k carries one rounding, not k accumulated ones.
    grid = np.arange(count) * GRID_STEP + GRID_RANGE[0]
    values = np.concatenate([-magnitudes, magnitudes, grid]).astype(dtype)
    return np.unique(values)
