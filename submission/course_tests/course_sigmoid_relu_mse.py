# Course-style check of mlp.py: sigmoid/relu with MSE loss against torch autograd.
# Run as `python course_sigmoid_relu_mse.py` from a folder holding only mlp.py and this script; every line
# printed must be True.
# Each shape prints 7 lines, in order: y_hat, J, dJdy_hat, dJdW1, dJdb1, dJdW2, dJdb2
# (shapes: (10, 2, 20, 5), then (10, 2, 70, 5), then (70, 30, 40, 60)).
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from mlp import MLP, mse_loss, bce_loss

torch.manual_seed(3)

for batch_size, in_features, hidden_features, out_features in [(10, 2, 20, 5), (10, 2, 70, 5), (70, 30, 40, 60)]:
    net = MLP(
        linear_1_in_features=in_features,
        linear_1_out_features=hidden_features,
        f_function='sigmoid',
        linear_2_in_features=hidden_features,
        linear_2_out_features=out_features,
        g_function='relu'
    )
    x = torch.randn(batch_size, in_features)
    y = torch.randn(batch_size, out_features)

    net.clear_grad_and_cache()
    y_hat = net.forward(x)
    J, dJdy_hat = mse_loss(y, y_hat)
    net.backward(dJdy_hat)

    #------------------------------------------------
    # compare the result with autograd
    net_autograd = nn.Sequential(
        OrderedDict([
            ('linear1', nn.Linear(in_features, hidden_features)),
            ('f', nn.Sigmoid()),
            ('linear2', nn.Linear(hidden_features, out_features)),
            ('g', nn.ReLU()),
        ])
    )
    net_autograd.linear1.weight.data = net.parameters['W1']
    net_autograd.linear1.bias.data = net.parameters['b1']
    net_autograd.linear2.weight.data = net.parameters['W2']
    net_autograd.linear2.bias.data = net.parameters['b2']

    y_hat_autograd = net_autograd(x)
    y_hat_autograd.retain_grad()

    J_autograd = F.mse_loss(y_hat_autograd, y)

    net_autograd.zero_grad()
    J_autograd.backward()

    print((y_hat_autograd - y_hat).norm() < 1e-3)
    print((J_autograd - J).norm() < 1e-3)
    print((y_hat_autograd.grad - dJdy_hat).norm() < 1e-3)
    print((net_autograd.linear1.weight.grad.data - net.grads['dJdW1']).norm() < 1e-3)
    print((net_autograd.linear1.bias.grad.data - net.grads['dJdb1']).norm() < 1e-3)
    print((net_autograd.linear2.weight.grad.data - net.grads['dJdW2']).norm() < 1e-3)
    print((net_autograd.linear2.bias.grad.data - net.grads['dJdb2']).norm() < 1e-3)
    #------------------------------------------------
