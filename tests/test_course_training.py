"""Tests of course/training.py on the digits and the spiral."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import course
from course.data import load_digits, spiral
from course.training import History, accuracy, fit, predict


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny models gain nothing from several threads, and lose a lot when cores are shared.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def digits_net():
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def train_digits(digits, seed, num_epochs, **kwargs):
    X_train, X_test, y_train, y_test = digits
    course.set_seed(seed)
    net = digits_net()
    history = fit(
        net,
        (X_train, y_train),
        loss_fn=nn.CrossEntropyLoss(),
        optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
        num_epochs=num_epochs,
        test_data=(X_test, y_test),
        generator=torch.Generator().manual_seed(seed),
        **kwargs,
    )
    return net, history


def test_accuracy_of_scores_and_labels():
    scores = np.array([[0.1, 0.9], [2.0, -1.0], [0.0, 3.0], [5.0, 1.0]])
    y = np.array([1, 0, 0, 0])
    assert accuracy(scores, y) == 0.75
    assert accuracy(torch.tensor(scores), torch.tensor(y)) == 0.75
    assert accuracy(np.array([1, 0, 1, 1]), y) == 0.5
    assert accuracy(np.array([[1], [0], [0], [0]]), y) == 1.0
    assert accuracy(np.array([1.0, 0.0, 0.0, 0.0]), y) == 1.0
    assert isinstance(accuracy(scores, y), float)


def test_accuracy_refuses_ambiguous_or_mismatched_input():
    with pytest.raises(ValueError, match="scores > 0"):
        accuracy(np.array([0.2, 0.7]), np.array([0, 1]))
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        accuracy(np.array([0, 1, 1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="zero examples"):
        accuracy(np.zeros((0, 2)), np.zeros(0))


def test_history():
    history = History()
    assert len(history) == 0 and history.as_dict() == {}
    history.loss += [1.0, 0.5]
    history.test_accuracy += [0.5, 0.75]
    assert len(history) == 2
    assert history.as_dict() == {"loss": [1.0, 0.5], "test_accuracy": [0.5, 0.75]}


def test_fit_learns_the_digits(digits, capsys):
    net, history = train_digits(digits, seed=0, num_epochs=20, progress=True)
    assert isinstance(history, History)
    assert len(history.loss) == len(history.train_accuracy) == 20
    assert len(history.test_loss) == len(history.test_accuracy) == 20
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert history.test_accuracy[-1] >= 0.9
    assert history.train_accuracy[-1] > history.train_accuracy[0]
    # The progress bar goes to stdout: nbgrader fails a cell that writes to stderr.
    captured = capsys.readouterr()
    assert "test_acc" in captured.out and captured.err == ""
    # The test history is what predict and accuracy give for the final weights.
    X_train, X_test, y_train, y_test = digits
    assert accuracy(predict(net, X_test), y_test) == pytest.approx(history.test_accuracy[-1])
    assert net.training  # fit restores the mode the model had


def test_tqdm_disable_in_the_environment_silences_the_bar():
    """The build and the grader set TQDM_DISABLE=1: no bar may reach a notebook's outputs.

    tqdm reads the variable when it is imported, hence a fresh interpreter."""
    code = (
        "import numpy as np, torch\n"
        "from course.training import fit\n"
        "net = torch.nn.Linear(2, 2)\n"
        "X, y = np.zeros((8, 2), np.float32), np.arange(8) % 2\n"
        "fit(net, (X, y), loss_fn=torch.nn.CrossEntropyLoss(), num_epochs=2,\n"
        "    optimizer=torch.optim.SGD(net.parameters(), lr=0.1), progress=True)\n"
    )
    env = {**os.environ, "TQDM_DISABLE": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_fit_is_deterministic_given_the_seeds(digits):
    net1, history1 = train_digits(digits, seed=3, num_epochs=3, progress=False)
    net2, history2 = train_digits(digits, seed=3, num_epochs=3, progress=False)
    assert history1 == history2
    for p1, p2 in zip(net1.parameters(), net2.parameters(), strict=True):
        torch.testing.assert_close(p1, p2, rtol=0, atol=0)
    _, history3 = train_digits(digits, seed=4, num_epochs=3, progress=False)
    assert history3.loss != history1.loss


def test_fit_without_test_data_and_for_regression():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))  # float64, converted to the model's float32
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    history = fit(
        model,
        (X, y),
        loss_fn=nn.MSELoss(),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        num_epochs=10,
        batch_size=20,
        device="cpu",
        progress=False,
    )
    assert len(history.loss) == 10 and history.loss[-1] < 1e-3 < history.loss[0]
    # No class labels, so no accuracy; no test data, so no test curves.
    assert history.as_dict().keys() == {"loss"}
    with pytest.raises(ValueError, match="200 examples but y has 199"):
        fit(model, (X, y[:-1]), loss_fn=nn.MSELoss(), optimizer=None, num_epochs=1)
    with pytest.raises(TypeError, match="pair"):
        fit(model, X, loss_fn=nn.MSELoss(), optimizer=None, num_epochs=1)


def test_a_deeper_relu_net_learns_the_spiral_a_linear_model_does_not():
    for seed in (0, 1):
        rng = course.set_seed(seed)
        X_train, y_train = spiral(600, rng)
        X_test, y_test = spiral(500, rng)
        results = {}
        for name in ("linear", "relu"):
            torch.manual_seed(seed)
            if name == "linear":
                net = nn.Linear(2, 2)
            else:
                net = nn.Sequential(
                    nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2)
                )
            history = fit(
                net,
                (X_train, y_train),
                loss_fn=nn.CrossEntropyLoss(),
                optimizer=torch.optim.Adam(net.parameters(), lr=0.01),
                num_epochs=25 if name == "relu" else 10,
                test_data=(X_test, y_test),
                generator=torch.Generator().manual_seed(seed),
                progress=False,
            )
            results[name] = history.test_accuracy[-1]
        assert results["relu"] >= 0.97, results
        assert results["linear"] < 0.8, results


def test_predict_uses_eval_mode_and_batches():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    X = np.random.default_rng(0).standard_normal((10, 4))  # float64 input is fine
    scores = predict(net, X, batch_size=3)
    assert isinstance(scores, np.ndarray) and scores.shape == (10, 3)
    assert scores.dtype == np.float32
    with torch.no_grad():
        net.eval()
        expected = net(torch.as_tensor(X, dtype=torch.float32)).numpy()
        net.train()
    # float32 in batches of 3 against all at once: the sums may round apart by an ulp or two
    np.testing.assert_allclose(scores, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(predict(net, torch.as_tensor(X)), scores, rtol=1e-6, atol=1e-6)
    assert net.training


def test_a_layer_of_the_wrong_size_is_named_not_just_the_matrices():
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(4, 1))
    X, y = np.zeros((6, 2), dtype=np.float32), np.zeros((6, 1), dtype=np.float32)
    expected = (
        "the model cannot take a batch of shape (3, 2): layer 2 of the model, "
        "Linear(in_features=4, out_features=1, bias=True), expects 4 input features "
        "but gets 8 from the layer before it"
    )
    with pytest.raises(RuntimeError, match=re.escape(expected)):
        fit(
            model,
            (X, y),
            loss_fn=nn.MSELoss(),
            optimizer=torch.optim.SGD(model.parameters()),
            num_epochs=1,
            batch_size=3,
            progress=False,
        )
    with pytest.raises(RuntimeError, match=re.escape("layer 2 of the model")):
        predict(model, X)

    class Broken(nn.Module):
        def forward(self, X):
            raise RuntimeError("no layer of mine")

    # An error that no layer raised stays PyTorch's (or the model's) own.
    with pytest.raises(RuntimeError, match="^no layer of mine$"):
        fit(
            Broken(),
            (X, y),
            loss_fn=nn.MSELoss(),
            optimizer=torch.optim.SGD(model.parameters()),
            num_epochs=1,
            progress=False,
        )
