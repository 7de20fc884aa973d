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


HELDOUT_SEED = 2026
HELDOUT_DESCRIPTION = ("1000 random inputs (seed {}): 600 uniform on [-40, 40], 400 of random sign and "
                       "log-uniform magnitude in [1e-40, 2e4]; none used in choosing the accurate forms"
                       .format(HELDOUT_SEED))


def heldout_points(dtype):
    """Inputs the accurate forms were not chosen on, to check that the choice carries over."""
    rng = np.random.default_rng(HELDOUT_SEED)
    uniform = rng.uniform(-40.0, 40.0, 600)
    magnitudes = 10.0 ** rng.uniform(*LOG_RANGE, 400) * rng.choice([-1.0, 1.0], 400)
    values = np.concatenate([uniform, magnitudes]).astype(dtype)
    return np.setdiff1d(np.unique(values), points(dtype))
