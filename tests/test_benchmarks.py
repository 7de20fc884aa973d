"""The benchmark code runs at a tiny size and its rows are well formed; the memory accounting
counts storages, not tensors. No timing is asserted: figures are reported, never tested."""
import math

import torch

from benchmarks import memory, paths, run

TINY = {"tiny": (3, 2, 4, 2)}


def test_mlp_rows_are_well_formed():
    rows, measurements = run.time_mlp(sizes=TINY, min_run_time={"tiny": 0.01}, rounds=1)
    assert len(rows) == len(paths.PAIRS)
    assert len(measurements) == len(paths.PAIRS) * 3 + 1  # the floor is timed once per size
    for row in rows:
        assert row["size"] == "tiny" and row["shape"] == TINY["tiny"]
        assert set(row["seconds"]) == set(run.METHODS)
        for key in ("gen/autograd", "gen/floor", "func/autograd"):
            assert math.isfinite(row[key]) and row[key] > 0
    results = run.Results(timing=rows, memory=run.measure_memory(sizes=TINY))
    results.targets = run.targets(results)
    text = run.render(results, run.machine(), 0.0)
    assert "| tiny (3, 2, 4, 2) | relu/identity MSE |" in text
    assert "Machine: " in text and torch.__version__ in text


def test_three_paths_agree_on_the_gradients():
    for pair in paths.PAIRS + sum(paths.EXTRA_PAIRS.values(), ()):
        run._check_gradients(paths.make_case(TINY["tiny"], *pair))


def test_extra_pairs_run_at_their_size_only():
    extra = {"tiny": (("relu", "log_softmax", "nll"),)}
    rows, _ = run.time_mlp(sizes=TINY, min_run_time={"tiny": 0.01}, rounds=1, extra=extra)
    assert [r["pair"] for r in rows] == list(paths.PAIRS) + list(extra["tiny"])
    (memory_row,) = [r for r in run.measure_memory(sizes=TINY, extra=extra) if r["pair"][1] == "log_softmax"]
    assert memory_row["generated"] <= memory_row["autograd"]
    assert run._autograd_limit("mid", ("relu", "log_softmax", "nll")) == 1.00


def test_a_storage_counts_once():
    t = torch.zeros(10)
    assert memory.distinct_storage_bytes([t, t, t[2:], t.view(2, 5)]) == 40
    assert memory.distinct_storage_bytes([t, torch.zeros(3)], exclude=[t[1:]]) == 12
    assert memory.distinct_storage_bytes(memory.tensors_in({"a": t, "b": {"c": (t, [t])}})) == 40


def test_autograd_saved_twice_counts_once():
    x = torch.randn(8, requires_grad=True)

    def square_of_exp(x):
        e = torch.exp(x)  # exp saves its result e; e * e saves e twice
        return e * e

    assert memory.autograd_saved_bytes(square_of_exp, (x,)) == 8 * 4
    # x itself (the input) is not counted: x * x saves x twice, nothing else
    assert memory.autograd_saved_bytes(lambda x: x * x, (x,)) == 0


def test_memory_rows_count_the_cache_not_x_or_parameters():
    batch, n_in, hidden, n_out = TINY["tiny"]
    (row_identity, row_sigmoid) = run.measure_memory(sizes=TINY)
    # relu/identity: the backward needs z2 = relu(z1) only (x and the weights are not counted)
    assert row_identity["generated"] == batch * hidden * 4
    assert row_identity["autograd"] == batch * hidden * 4
    # relu/sigmoid: and y_hat, the sigmoid's result
    assert row_sigmoid["generated"] == (batch * hidden + batch * n_out) * 4
    assert row_sigmoid["generated"] <= row_sigmoid["autograd"]


def test_report_when_gd_is_missing():
    results = run.Results(gd={"error": "ImportError: no gd"})
    results.targets = run.targets(results)
    assert results.targets[-1].met is None
    assert "Not measured: ImportError: no gd" in run.render(results, "m", 0.0)


def test_report_gives_the_once_per_run_measurements_apart_from_a_step():
    timing = {"per_iteration": 0.004, "plain": 0.004, "size": 48, "iterations": 24, "repeats": 3}
    results = run.Results(gd=dict(timing, once_per_run=0.0128),
                          gd_vgg=dict(timing, once_per_run=-0.001))
    results.targets = run.targets(results)
    text = run.render(results, "m", 0.0)
    # 12.8 ms against 256 steps of 4 ms: 1.25% of a default run
    assert "add 12.8 ms to a run" in text and "1.2% of a 256-iteration run" in text
    assert "add -1 ms to a run" in text  # noise, said as it is
    assert "Ratio 1.00x" in text
    assert "`final_blur` off and `normalization` fixed" in text
    older = run.render(run.Results(gd=dict(timing, once_per_run=None)), "m", 0.0)
    assert "final_blur" not in older  # a gd.py without the options: nothing to say
    assert "without it (rotate 0)" not in text  # timed without a race to compare with


def test_report_gives_the_rotation_races_share_of_a_step():
    timing = {"per_iteration": 0.006, "plain": 0.004, "size": 48, "iterations": 256,
              "repeats": 3, "once_per_run": 0.01, "without_race": 0.004}
    text = run.render(run.Results(gd=timing), "m", 0.0)
    assert "Ratio 1.50x" in text
    assert "without it (rotate 0) a step takes 4 ms, ratio 1.00x" in text
    assert "the race adds 50% to a run" in text
