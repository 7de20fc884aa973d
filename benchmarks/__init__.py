"""`make bench` (python -m benchmarks): the generated backward against autograd, torch.func and
the matrix-multiply floor; memory kept between forward and backward; `make derive` wall time;
gd.py's cost per iteration. Prints the table and writes it to BENCHMARKS.md.

Figures are reported, never asserted: tests/test_benchmarks.py only checks that the code runs
and that the rows are well formed.
"""
