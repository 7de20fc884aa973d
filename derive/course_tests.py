"""The course-style test scripts that `make submission` runs against the zipped mlp.py.

They imitate the course's example tests (one network per script, `python script.py` in a bare
folder, every printed line True), so each must stand alone; they are rendered from one
template, templates/course_test.py.j2, one line per case below, into generated/course_tests/.
"""
SHAPES = ("(10, 2, 20, 5)", "(10, 2, 70, 5)", "(70, 30, 40, 60)")

# f_function, g_function, loss, seed: the combinations the course's tests are known to use.
CASES = (
    ("relu", "identity", "mse", 1),
    ("relu", "relu", "mse", 2),
    ("sigmoid", "relu", "mse", 3),
    ("relu", "sigmoid", "bce", 4),
    ("sigmoid", "sigmoid", "bce", 5),
    ("identity", "identity", "mse", 6),
)

MODULES = {"relu": "nn.ReLU()", "sigmoid": "nn.Sigmoid()", "identity": None}
TARGETS = {"mse": "torch.randn(batch_size, out_features)",
           "bce": "(torch.randn(batch_size, out_features) < 0.5) * 1.0"}
TORCH_LOSSES = {"mse": "F.mse_loss", "bce": "nn.BCELoss()"}


def outputs():
    result = []
    for f, g, loss, seed in CASES:
        name = "course_{}_{}_{}.py".format(f, g, loss)
        result.append(("course_test.py.j2", "course_tests/" + name, {
            "name": name, "f": f, "g": g, "loss": loss, "seed": seed, "shapes": SHAPES,
            "f_module": MODULES[f], "g_module": MODULES[g], "target": TARGETS[loss],
            "torch_loss": TORCH_LOSSES[loss]}))
    return result
