"""A PyTorch training loop with a progress bar and a per-epoch history."""

import os
import sys
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from course._convert import to_numpy
from course._layers import explain


def accuracy(scores_or_labels, y) -> float:
    """Fraction of correct predictions.

    Parameters
    ----------
    scores_or_labels : (n, k) float array or (n,) int array, numpy or torch
        Class scores (the prediction is the class with the largest score, k >= 2),
        or predicted labels.
    y : (n,) int array, numpy or torch
        True labels.

    Returns
    -------
    float in [0, 1]
    """
    predicted = to_numpy(scores_or_labels)
    y = to_numpy(y).reshape(-1)
    if predicted.ndim == 2 and predicted.shape[1] > 1:
        predicted = predicted.argmax(axis=1)
    else:
        predicted = predicted.reshape(-1)
        # One score per example (a logit or a probability) has no argmax; guessing the
        # threshold would hide a bug, so ask for labels instead.
        if np.issubdtype(predicted.dtype, np.floating) and np.any(predicted != np.round(predicted)):
            raise ValueError(
                "accuracy got one non-integer score per example; pass labels instead, "
                "e.g. (scores > 0) for logits or (probabilities > 0.5) for probabilities"
            )
    if predicted.shape != y.shape:
        raise ValueError(f"{predicted.shape[0]} predictions for {y.shape[0]} labels")
    if y.size == 0:
        raise ValueError("accuracy of zero examples is undefined")
    return float(np.mean(predicted == y))


@dataclass
class History:
    """What `fit` measured after each epoch; every list has one entry per epoch.

    Attributes
    ----------
    loss : list of float
        Mean training loss over the epoch's minibatches, weighted by their sizes.
    train_accuracy : list of float
        Accuracy on the training minibatches during the epoch (empty unless the
        targets are class labels and the model outputs (n, k) class scores).
    test_loss : list of float
        Loss on the test data after the epoch (empty without test data).
    test_accuracy : list of float
        Accuracy on the test data after the epoch (empty without test data, or when
        accuracy does not apply, as for `train_accuracy`).
    """

    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[float]]:
        """The non-empty lists by name, e.g. for `course.plotting.plot_history`."""
        return {name: values for name, values in asdict(self).items() if values}

    def __len__(self) -> int:
        """Number of epochs recorded."""
        return len(self.loss)


def _model_dtype_and_device(model):
    parameter = next(model.parameters(), None)
    if parameter is None:
        return torch.get_default_dtype(), torch.device("cpu")
    return parameter.dtype, parameter.device


def _as_tensors(data, dtype, what) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        X, y = data
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a pair (X, y)") from None
    X = torch.as_tensor(X)
    y = torch.as_tensor(y)
    # numpy's default float64 would clash with the model's float32 weights.
    if X.is_floating_point():
        X = X.to(dtype)
    if y.is_floating_point():
        y = y.to(dtype)
    if len(X) != len(y):
        raise ValueError(f"{what}: X has {len(X)} examples but y has {len(y)}")
    return X, y


def _forward(model, X):
    """model(X); a layer that cannot take its input is named instead of PyTorch's
    "mat1 and mat2 shapes cannot be multiplied"."""
    try:
        return model(X)
    except RuntimeError as error:
        why = explain(model, X, error)
        if why is None:
            raise
        shape = tuple(X.shape)
        raise RuntimeError(f"the model cannot take a batch of shape {shape}: {why}") from None


def _is_classification(scores, y) -> bool:
    return scores.ndim == 2 and scores.shape[1] > 1 and not y.is_floating_point() and y.ndim == 1


def _evaluate(model, X, y, loss_fn, device, batch_size):
    # Loss and accuracy over all of (X, y), in batches, without gradients.
    total_loss, correct = 0.0, 0
    classification = False
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            X_batch = X[start : start + batch_size].to(device)
            y_batch = y[start : start + batch_size].to(device)
            scores = _forward(model, X_batch)
            total_loss += loss_fn(scores, y_batch).item() * len(X_batch)
            classification = _is_classification(scores, y_batch)
            if classification:
                correct += (scores.argmax(dim=1) == y_batch).sum().item()
    return total_loss / len(X), (correct / len(X) if classification else None)


def fit(
    model,
    train_data,
    *,
    loss_fn,
    optimizer,
    num_epochs: int,
    batch_size: int = 32,
    test_data=None,
    generator=None,
    device=None,
    progress: bool = True,
) -> History:
    """Train `model` by minibatch gradient descent and record loss and accuracy per epoch.

    Each epoch visits the training examples once, in a new random order, in minibatches
    of `batch_size`: forward pass, `loss_fn`, backward pass, `optimizer.step()`.
    Accuracy is recorded when the targets are class labels and the model returns (n, k)
    class scores, as with ``torch.nn.CrossEntropyLoss``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a (b, ...) float tensor of inputs to (b, k) scores.
    train_data : pair (X, y) of numpy arrays or tensors
        X: (n, ...) float array of inputs; y: (n,) int array of labels or (n, ...)
        float array of targets. Float data are converted to the model's dtype.
    loss_fn : callable
        ``loss_fn(scores, y_batch)`` returns the mean loss of a minibatch as a scalar tensor.
    optimizer : torch.optim.Optimizer
        Built on ``model.parameters()``.
    num_epochs : int
    batch_size : int
    test_data : pair (X, y), optional
        Evaluated after every epoch, in eval mode and without gradients.
    generator : torch.Generator, optional
        Source of the shuffling order; with a seeded generator (and a seeded
        ``torch.manual_seed`` for the initial weights) training is reproducible.
    device : torch.device or str, optional
        Where to train; the model is moved there. By default, where the model is.
    progress : bool
        Show a progress bar over the epochs with the latest loss and accuracies.

    Returns
    -------
    History
        One entry per epoch in each recorded list.
    """
    if device is not None:
        model.to(device)
    dtype, device = _model_dtype_and_device(model)
    X_train, y_train = _as_tensors(train_data, dtype, "train_data")
    test = None if test_data is None else _as_tensors(test_data, dtype, "test_data")
    loader = DataLoader(
        TensorDataset(X_train, y_train), batch_size=batch_size, shuffle=True, generator=generator
    )
    history = History()
    was_training = model.training
    # stdout, not stderr: nbgrader counts anything written to stderr as a failing cell.
    # The build and the grader set TQDM_DISABLE=1 so that no bar lands in a notebook's
    # outputs; tqdm's notebook widget ignores that variable, so it is honoured here.
    quiet = os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    epochs = tqdm(range(num_epochs), desc="epochs", file=sys.stdout, disable=quiet or not progress)
    for _ in epochs:
        model.train()
        total_loss, correct, classification = 0.0, 0, False
        for X_batch, y_batch in loader:
            X_batch, y_batch = X_batch.to(device), y_batch.to(device)
            scores = _forward(model, X_batch)
            loss = loss_fn(scores, y_batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(X_batch)
            classification = _is_classification(scores, y_batch)
            if classification:
                correct += (scores.argmax(dim=1) == y_batch).sum().item()
        history.loss.append(total_loss / len(X_train))
        postfix = {"loss": f"{history.loss[-1]:.4f}"}
        if classification:
            history.train_accuracy.append(correct / len(X_train))
            postfix["train_acc"] = f"{history.train_accuracy[-1]:.3f}"
        if test is not None:
            model.eval()
            test_loss, test_accuracy = _evaluate(model, *test, loss_fn, device, 1024)
            history.test_loss.append(test_loss)
            if test_accuracy is not None:
                history.test_accuracy.append(test_accuracy)
                postfix["test_acc"] = f"{test_accuracy:.3f}"
        epochs.set_postfix(postfix)
    epochs.close()
    model.train(was_training)
    return history


def predict(model, X, batch_size: int = 1024) -> np.ndarray:
    """The model's outputs for inputs X, in eval mode and without gradients.

    Parameters
    ----------
    model : torch.nn.Module
    X : (n, ...) float array, numpy or torch
        Converted to the model's dtype and device.
    batch_size : int
        Examples per forward pass, to bound memory.

    Returns
    -------
    scores : (n, k) numpy array
        Whatever the model returns, e.g. class scores; ``scores.argmax(axis=1)`` are the
        predicted labels.
    """
    dtype, device = _model_dtype_and_device(model)
    X = torch.as_tensor(X)
    if X.is_floating_point():
        X = X.to(dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs = [
                _forward(model, X[start : start + batch_size].to(device)).cpu()
                for start in range(0, len(X), batch_size)
            ]
    finally:
        model.train(was_training)
    return to_numpy(torch.cat(outputs))
