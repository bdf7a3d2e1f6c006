"""The textbook: stateless forward/backward pairs, generic over NumPy/CuPy and float32/float64.

    out, cache = op_forward(x, *params, **options)
    dx, *dparams = op_backward(dout, cache)     # grads in the order of the forward's arguments

Shape key: N batch, C channels, F filters, T time, D input size, H hidden size,
L image locations, A attention size, V vocabulary.

Lines `# SOLUTION BEGIN` / `# SOLUTION END` inside a function mark the part that
`python -m rawcap.exercises make` replaces by a stub for students; Python ignores them.
"""
from .activations import (bias_relu_backward, bias_relu_forward, relu_backward, relu_forward, sigmoid, sigmoid_backward, sigmoid_forward,
                          tanh_backward, tanh_forward)
from .linear import affine_backward, affine_forward
from .batchnorm import batchnorm2d_backward, batchnorm2d_forward
from .attention import attention_backward, attention_forward
from .conv import conv2d_backward, conv2d_forward, conv2d_params_backward
from .distillation import distillation_backward, distillation_forward
from .dropout import dropout_backward, dropout_forward
from .label_smoothing import label_smoothing_backward, label_smoothing_forward
from .embedding import embedding_backward, embedding_forward
from .loss import softmax_cross_entropy_backward, softmax_cross_entropy_forward
from .lstm import (lstm_backward, lstm_forward, lstm_pointwise_backward, lstm_pointwise_forward,
                   lstm_step_backward, lstm_step_forward)
from .policy_gradient import policy_gradient_backward, policy_gradient_forward
from .pool import maxpool2d_backward, maxpool2d_forward
from .rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward
from .soft_cross_entropy import soft_cross_entropy_backward, soft_cross_entropy_forward
