"""Bad input gets a clear error naming what was wrong and what was expected."""
import pytest
import torch

import mlp


def net(f="relu", g="sigmoid", shape=(3, 4, 4, 2)):
    return mlp.MLP(shape[0], shape[1], f, shape[2], shape[3], g)


@pytest.mark.parametrize("argument", ["f_function", "g_function"])
def test_unknown_activation_lists_the_valid_names(argument):
    kwargs = dict(linear_1_in_features=2, linear_1_out_features=3, f_function="relu",
                  linear_2_in_features=3, linear_2_out_features=1, g_function="relu")
    kwargs[argument] = "Relu"
    with pytest.raises(ValueError) as error:
        mlp.MLP(**kwargs)
    message = str(error.value)
    assert "'Relu'" in message and argument in message
    for name in ("identity", "relu", "sigmoid", "tanh", "leaky_relu", "softplus", "gelu"):
        assert name in message


def test_hidden_sizes_must_agree():
    with pytest.raises(ValueError, match=r"linear_1_out_features \(4\).*linear_2_in_features \(5\)"):
        mlp.MLP(3, 4, "relu", 5, 2, "identity")


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "3"])
def test_sizes_must_be_positive_ints(bad):
    with pytest.raises(ValueError, match="linear_1_in_features must be a positive int"):
        mlp.MLP(bad, 4, "relu", 4, 2, "identity")


@pytest.mark.parametrize("shape", [(5, 2), (5,), (5, 3, 1)])
def test_input_feature_count(shape):
    with pytest.raises(ValueError, match=r"x has shape .* expects \(batch_size, 3\)"):
        net().forward(torch.randn(*shape))


def test_loss_shapes_must_match():
    for loss in (mlp.mse_loss, mlp.bce_loss):
        with pytest.raises(ValueError, match=r"y has shape \(4, 2\) but y_hat has shape \(4, 3\)"):
            loss(torch.rand(4, 2), torch.rand(4, 3))


def test_backward_before_forward():
    n = net()
    with pytest.raises(RuntimeError, match="forward"):
        n.backward(torch.ones(5, 2))
    n.forward(torch.randn(5, 3))
    n.clear_grad_and_cache()
    with pytest.raises(RuntimeError, match="forward"):
        n.backward(torch.ones(5, 2))


def test_backward_gradient_shape():
    n = net()
    n.forward(torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"dJdy_hat has shape \(5, 3\) but y_hat has shape \(5, 2\)"):
        n.backward(torch.ones(5, 3))


@pytest.mark.parametrize("bad", [-0.01, 1.5])
def test_bce_refuses_outputs_outside_0_1(bad):
    y_hat = torch.full((2, 2), 0.5)
    y_hat[1, 1] = bad
    with pytest.raises(ValueError, match=r"y_hat in \[0, 1\]"):
        mlp.bce_loss(torch.zeros(2, 2), y_hat)


def test_nan_propagates_without_a_crash():
    n = net("relu", "sigmoid")
    x = torch.randn(4, 3)
    x[1, 0] = float("nan")
    y_hat = n.forward(x)
    assert torch.isnan(y_hat[1]).all() and torch.isfinite(y_hat[[0, 2, 3]]).all()
    J, dJdy_hat = mlp.bce_loss(torch.ones(4, 2), y_hat)
    assert torch.isnan(J)
    n.backward(dJdy_hat)
    assert torch.isnan(n.grads["dJdW1"]).any()
    J, dJdy_hat = mlp.mse_loss(torch.ones(4, 2), y_hat)
    assert torch.isnan(J)


def test_dtype_mismatch_is_a_clear_error():
    n = net()
    with pytest.raises(ValueError, match=r"x is torch.float64 on cpu but parameters\['W1'\] is torch.float32"):
        n.forward(torch.randn(5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="y is torch.float64 on cpu but y_hat is torch.float32"):
        mlp.mse_loss(torch.zeros(2, 2, dtype=torch.float64), torch.zeros(2, 2))
    n.parameters["b1"] = n.parameters["b1"].double()
    with pytest.raises(ValueError, match=r"parameters\['b1'\] is torch.float64"):
        n.forward(torch.randn(5, 3))


def test_not_a_tensor():
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        net().forward([[1.0, 2.0, 3.0]])


def test_float64_end_to_end():
    n = net("tanh", "sigmoid")
    n.parameters = {k: v.double() for k, v in n.parameters.items()}
    y_hat = n.forward(torch.randn(5, 3, dtype=torch.float64))
    J, d = mlp.bce_loss(torch.ones(5, 2, dtype=torch.float64), y_hat)
    n.backward(d)
    assert all(g.dtype == torch.float64 for g in n.grads.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_device_mismatch_and_match():
    n = net()
    with pytest.raises(ValueError, match="cuda"):
        n.forward(torch.randn(5, 3, device="cuda"))
    n.parameters = {k: v.cuda() for k, v in n.parameters.items()}
    y_hat = n.forward(torch.randn(5, 3, device="cuda"))
    J, d = mlp.bce_loss(torch.ones(5, 2, device="cuda"), y_hat)
    n.backward(d)
    assert n.grads["dJdW1"].is_cuda


@pytest.mark.parametrize("y, where", [(-1.0, "y[0, 1] = -1.0"), (2.0, "y[0, 1] = 2.0"),
                                      (float("nan"), "y[0, 1] = nan")])
def test_bce_refuses_targets_outside_0_1_or_nan(y, where):
    target = torch.tensor([[0.0, y], [1.0, 0.5]])
    with pytest.raises(ValueError, match=r"y \(the targets\) in \[0, 1\].*1 of its 4 values") as error:
        mlp.bce_loss(target, torch.full((2, 2), 0.3))
    assert where in str(error.value)


def test_bce_of_the_issue_is_refused_not_negative():
    with pytest.raises(ValueError, match=r"y\[0, 0\] = -1.0"):
        mlp.bce_loss(torch.tensor([[-1.0]]), torch.tensor([[0.3]]))


@pytest.mark.parametrize("bad", [["relu"], None, 3, mlp.ACTIVATIONS["relu"]["forward"]])
def test_activation_of_the_wrong_type_says_what_was_expected(bad):
    with pytest.raises(TypeError, match="f_function must be a string naming an activation.*expected one of: .*relu"):
        mlp.MLP(2, 3, bad, 3, 1, "relu")


def test_integral_sizes_of_other_types_are_accepted():
    np = pytest.importorskip("numpy")
    n = mlp.MLP(np.int64(3), np.int32(4), "relu", torch.tensor(4), 2, "sigmoid")
    assert n.parameters["W1"].shape == (4, 3) and n.parameters["W2"].shape == (2, 4)
    assert n.forward(torch.randn(5, 3)).shape == (5, 2)
    with pytest.raises(ValueError, match="positive int, got float64 "):
        mlp.MLP(np.float64(2.0), 4, "relu", 4, 2, "identity")


@pytest.mark.parametrize("change", [
    lambda n, x, y_hat: x.add_(1),
    lambda n, x, y_hat: x[0].zero_(),
    lambda n, x, y_hat: y_hat.clamp_(0.2, 0.8),  # sigmoid's backward reads its result
    lambda n, x, y_hat: n.parameters["W2"].mul_(2),
])
def test_inputs_changed_in_place_between_forward_and_backward_are_refused(change):
    n = net("relu", "sigmoid")
    x = torch.randn(5, 3)
    y_hat = n.forward(x)
    change(n, x, y_hat)
    with pytest.raises(RuntimeError, match="changed in place after forward"):
        n.backward(torch.ones(5, 2))


def test_unchanged_inputs_still_pass_after_reading_them():
    n = net("relu", "sigmoid")
    x = torch.randn(5, 3)
    y_hat = n.forward(x)
    x.sum(), y_hat.clone()  # reading is not changing
    n.backward(torch.ones(5, 2))


@pytest.mark.parametrize("loss", [mlp.mse_loss, mlp.bce_loss])
def test_gradients_are_plain_tensors_when_inputs_require_grad(loss):
    n = net("tanh", "sigmoid")
    for p in n.parameters.values():
        p.requires_grad_(True)
    x = torch.randn(5, 3, requires_grad=True)
    y_hat = n.forward(x)
    J, dJdy_hat = loss(torch.rand(5, 2), y_hat)
    assert not dJdy_hat.requires_grad
    n.backward(dJdy_hat)
    for name, g in n.grads.items():
        assert not g.requires_grad and g.grad_fn is None, name
    n.backward(dJdy_hat.detach().requires_grad_(True))
    assert not any(g.requires_grad for g in n.grads.values())
