"""Chapter 03's tiered hints, one entry per exercise."""
from __future__ import annotations




from ...registry import set_hints


_GRAD = ("gradient returns the partial adjoint as a Tensor with the input's shape, built with needle ops from "
         "out_grad and node so it can be differentiated again.")
_MODULE = "A Module's parameters are nn.Parameter attributes created in __init__; forward builds its output from needle ops."
set_hints({
    "nn_library.xavier_uniform": (
        "a (fan_in, fan_out) Tensor drawn uniformly from [-a, a], with a chosen by Glorot and Bengio's rule",
        ["Xavier keeps the variance of activations and gradients equal across layers: the variance of each weight "
         "is 2 / (fan_in + fan_out) times gain squared. A uniform on [-a, a] has variance a^2 / 3.",
         "a = gain * sqrt(6 / (fan_in + fan_out)).",
         "init.rand draws the uniform: pass the two fans, low and high, and forward **kwargs (device, dtype, "
         "requires_grad)."]),
    "nn_library.xavier_normal": (
        "a (fan_in, fan_out) Tensor drawn from a zero-mean normal with Glorot and Bengio's standard deviation",
        ["Same idea as xavier_uniform: the weight variance is gain^2 * 2 / (fan_in + fan_out).",
         "std = gain * sqrt(2 / (fan_in + fan_out)).",
         "init.randn with mean 0 and that std, forwarding **kwargs."]),
    "nn_library.kaiming_uniform": (
        "a (fan_in, fan_out) Tensor drawn uniformly from [-bound, bound], with He's rule for ReLU networks",
        ["ReLU zeroes half its inputs, so He et al. double the variance: 2 / fan_in (the course's gain for ReLU is "
         "sqrt(2)). A uniform on [-b, b] has variance b^2 / 3.",
         "bound = sqrt(2) * sqrt(3 / fan_in).",
         "init.rand with low and high, forwarding **kwargs."]),
    "nn_library.kaiming_normal": (
        "a (fan_in, fan_out) Tensor drawn from a zero-mean normal with He's standard deviation for ReLU networks",
        ["The weight variance is 2 / fan_in.", "std = sqrt(2) / sqrt(fan_in).",
         "init.randn with mean 0 and that std, forwarding **kwargs."]),
    "nn_library.Linear": (
        "a fully connected layer: parameters weight (in, out) and bias (1, out), drawn in that order; forward "
        "maps (batch, in) to (batch, out)",
        [_MODULE + " The order of random draws is the order of creation, and the course's tests fix it: weight "
                   "first, then bias.",
         "weight = Parameter(kaiming_uniform(in_features, out_features)); the bias is drawn as kaiming_uniform("
         "out_features, 1) and reshaped to (1, out_features); forward = X W + b, b broadcast to the output shape.",
         "needle does not broadcast implicitly: broadcast_to the output's shape before adding. Pass device and "
         "dtype through to init; bias=False means no bias at all (None)."]),
    "nn_library.ReLU": (
        "the ReLU module: forward applies the rectifier elementwise",
        ["A module with no parameters; forward calls the op you wrote in chapter 02.",
         "needle.ops exposes that op as a function."]),
    "nn_library.Sequential": (
        "a container that applies its modules one after the other",
        ["__init__ keeps the modules (as self.modules, so parameters() finds them); forward feeds each module "
         "the previous one's output.", "A for-loop over self.modules, reassigning x each time."]),
    "nn_library.LogSumExp.compute": (
        "the forward of LogSumExp over self.axes on the raw array, stable for huge logits",
        ["log sum exp(z) overflows for large z. Subtract the maximum along the reduced axes first and add it back "
         "after the log: the value is the same.",
         "LSE(z) = m + log sum exp(z - m) with m = max over the axes (keepdims, broadcast to z's shape); the result "
         "has the reduced axes removed.",
         "array_api.max with keepdims=True, broadcast_to, exp, sum with keepdims=True, log, plus m, then reshape "
         "to the shape without the reduced axes (reduced_axes() above handles None and negative axes)."]),
    "nn_library.LogSumExp.gradient": (
        "the partial adjoint of LogSumExp with respect to its input",
        [_GRAD, "d LSE(z) / dz_i = exp(z_i - LSE(z)): the softmax of z along the reduced axes.",
         "Reshape the node and out_grad to the kept shape (1 at the reduced axes), broadcast both to z's shape; "
         "the adjoint is out_grad times exp(z - LSE), all with needle ops."]),
    "nn_library.LogSoftmax.compute": (
        "the forward of LogSoftmax on a raw (batch, classes) array: the log of the softmax of each row, stable for "
        "huge logits",
        ["log softmax(z)_i = z_i - log sum_j exp(z_j). The log-sum-exp needs the max trick to avoid overflow.",
         "With m the row maximum (keepdims): z - m - log(sum_j exp(z_j - m)) per row.",
         "array_api.max over axis 1 with keepdims=True, broadcast_to, exp, sum over axis 1 with keepdims=True, "
         "log, broadcast back, subtract."]),
    "nn_library.LogSoftmax.gradient": (
        "the partial adjoint of LogSoftmax with respect to its input",
        [_GRAD, "With s = softmax(z) = exp(node): the adjoint is out_grad - s * (row sum of out_grad).",
         "exp(node) gives the softmax; summation over axes=(1,), reshape to (batch, 1) and broadcast_to the shape; "
         "all with needle ops."]),
    "nn_library.SoftmaxLoss": (
        "the mean softmax cross-entropy of a (batch, classes) logits Tensor against integer labels y",
        ["Per row: the stable log-sum-exp of the logits minus the logit of the true class. The true logit is the "
         "row sum of the logits times a one-hot row.",
         "loss = mean over the batch of LSE(logits row) - sum_j logits_ij * onehot(y)_ij.",
         "init.one_hot(classes, y, device=..., dtype=...) builds the labels; ops.logsumexp and ops.summation with "
         "axes=(1,); sum the difference and divide by the batch size."]),
    "nn_library.LayerNorm1d": (
        "layer normalisation over the features of each row, with learnable weight (ones) and bias (zeros)",
        [_MODULE + " Normalise each row to mean 0 and variance 1, then scale and shift per feature.",
         "y = w * (x - E[x]) / sqrt(Var[x] + eps) + b, with the mean and the biased variance taken over each row.",
         "Row statistics: sum over axes (1,), divide by the feature count, reshape to (batch, 1), broadcast_to x's "
         "shape. Weight and bias are (dim,): reshape to (1, dim) and broadcast too."]),
    "nn_library.BatchNorm1d": (
        "batch normalisation of each feature over the batch, with running statistics for evaluation",
        [_MODULE + " In training, normalise with the batch's own statistics and update running averages; in eval "
                   "mode, use the running averages.",
         "Training: mean and biased variance over axis 0; running = (1 - momentum) * running + momentum * "
         "observed. y = w * (x - mean) / sqrt(var + eps) + b.",
         "The running statistics are plain Tensors, not Parameters, and must not hold a graph: update them from "
         "detached values. self.training says which mode."]),
    "nn_library.Flatten": (
        "flatten every axis but the first: (batch, ...) to (batch, product of the rest)",
        ["Only the shape changes.", "The new second axis is the product of X.shape[1:]; reshape to that."]),
    "nn_library.Dropout": (
        "in training, zero each element with probability p and rescale the rest; in eval mode, the identity",
        ["Rescaling by 1 / (1 - p) keeps the expected value of each element, so evaluation needs no change.",
         "A 0/1 mask that keeps each element with probability 1 - p: init.randb(*shape, p=1 - self.p). Multiply, "
         "then divide by 1 - p.", "Check self.training first."]),
    "nn_library.Residual": (
        "a skip connection: the wrapped module's output plus the module's input",
        ["Keep the wrapped module in __init__ (as self.fn); forward adds its result to the input.",
         "Both have the same shape, so Tensor addition needs no broadcast."]),
    "nn_library.SGD": (
        "one step of SGD with momentum and weight decay on every parameter that has a gradient",
        ["Weight decay adds weight_decay * p to the gradient; momentum keeps a running average u per parameter; "
         "the step moves p against u. Everything happens on detached data, so no graph grows across steps.",
         "g = grad + wd * p; u = momentum * u + (1 - momentum) * g (u starts at 0); p <- p - lr * u.",
         "Keep u in self.u keyed by the parameter's index; read p.grad.data and p.data (no graph) and assign "
         "p.data = ...; skip parameters whose grad is None."]),
    "nn_library.Adam": (
        "one Adam step (bias-corrected first and second moments, weight decay) on every parameter with a gradient",
        ["Adam keeps two moving averages per parameter, of the gradient and of its square, and divides one by the "
         "square root of the other. Both start at 0, so early averages are corrected for that bias. Work on "
         "detached data (no graph across steps).",
         "t <- t + 1 once per step; g = grad + wd * p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; "
         "m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t); p <- p - lr * m_hat / (sqrt(v_hat) + eps).",
         "self.m and self.v keyed by parameter index; p.grad.data and p.data; assign p.data."]),
    "nn_library.RandomFlipHorizontal": (
        "flip an (H, W, C) image left to right with probability p (one random draw per call, already made)",
        ["flip_img holds the coin toss; a horizontal flip reverses the W axis (the second one).",
         "numpy slicing with a step of -1 on axis 1 reverses it."]),
    "nn_library.RandomCrop": (
        "shift an (H, W, C) image by the drawn (shift_x, shift_y), filling with zeros: zero-pad, then crop H x W",
        ["Pad the image with `padding` zeros on each side of H and W, then take the H x W window displaced by the "
         "shifts from the centre.",
         "np.pad with ((p, p), (p, p), (0, 0)); the window starts at row p + shift_x and column p + shift_y."]),
    "nn_library.MNISTDataset": (
        "a Dataset of MNIST images (flat rows, with the transforms applied) and labels",
        ["__init__ reads both files once (your parse_mnist of chapter 01 lives in needle.data); __getitem__ returns "
         "(images, labels) for an index, which may be an int or an array of indices; __len__ counts the examples.",
         "The transforms work on (28, 28, 1) images: reshape each image to that, apply_transforms, reshape back "
         "to 784."]),
    "nn_library.DataLoader": (
        "iterate over a dataset in minibatches of Tensors, reshuffled on every pass when shuffle is set",
        ["self.ordering is a list of index arrays, one per batch. With shuffle, draw a fresh permutation at the "
         "start of each iteration (in __iter__) and split it into batches.",
         "np.array_split(np.random.permutation(n), range(batch_size, n, batch_size)) gives the batches.",
         "__iter__ is a generator: for each batch of indices, index the dataset and yield a tuple of Tensors."]),
    "nn_library.ResidualBlock": (
        "the MLP-ResNet residual block of the course's figure, modules created in the figure's order",
        ["A main path (linear, norm, ReLU, dropout, linear, norm) wrapped in Residual, then a ReLU after the sum.",
         "Sequential(Residual(Sequential(Linear(dim, hidden), norm(hidden), ReLU(), Dropout(p), Linear(hidden, "
         "dim), norm(dim))), ReLU())."]),
    "nn_library.MLPResNet": (
        "the MLP-ResNet of the course's figure: a first linear layer and ReLU, num_blocks residual blocks, a final "
        "linear layer, created in that order",
        ["The order of creation is the order of random draws, and the course's tests fix it.",
         "The blocks take hidden_dim with an inner width of hidden_dim // 2; the last layer maps hidden_dim to "
         "num_classes; wrap all of it in one Sequential."]),
    "nn_library.epoch": (
        "one pass over a DataLoader: train when an optimizer is given, evaluate otherwise; return (error rate, "
        "mean loss) over the samples",
        ["Put the model in training or evaluation mode first. Per batch: forward, softmax loss; with an optimizer, "
         "reset the gradients, backward and step. Accumulate errors and the loss weighted by the batch size.",
         "error rate = wrong predictions / samples (prediction = argmax of the logits); mean loss = sum of "
         "loss * batch size / samples.",
         "Read numbers with .numpy() (no graph kept alive between batches)."]),
    "nn_library.train_mnist": (
        "train an MLP-ResNet on MNIST for some epochs, then evaluate it once; return train error, train loss, test "
        "error, test loss",
        ["Build the two datasets from the files in data_dir, a shuffled training loader and an ordered test "
         "loader, the model and the optimizer; then call your epoch function.",
         "MLPResNet(784, hidden_dim); the optimizer gets model.parameters(), lr and weight_decay; the last training "
         "epoch's numbers and the test pass's numbers are the result."]),
})
