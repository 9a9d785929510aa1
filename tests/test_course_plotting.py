"""Tests of course/plotting.py, drawn with the Agg backend."""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402
from torch import nn  # noqa: E402

from course.plotting import (  # noqa: E402
    plot_decision_boundary,
    plot_history,
    plot_line,
    plot_points,
    show_images,
)
from course.training import History  # noqa: E402

X = np.array([[-1.0, -1.0], [-0.5, 0.5], [1.0, 0.2], [0.8, -1.0], [0.3, 1.0]])
y = np.array([0, 0, 1, 1, 1])


@pytest.fixture(autouse=True)
def close_figures():
    # Warnings are errors here: nbgrader fails a cell that prints one.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    plt.close("all")


def contour_sets(ax):
    filled = [c for c in ax.collections if isinstance(c, ContourSet) and c.filled]
    lines = [c for c in ax.collections if isinstance(c, ContourSet) and not c.filled]
    return filled, lines


def boundary_points(ax):
    _, lines = contour_sets(ax)
    assert len(lines) == 1, "expected one boundary"
    return np.concatenate([path.vertices for path in lines[0].get_paths()])


def test_plot_points():
    ax = plot_points(X, y, s=5)
    assert isinstance(ax, plt.Axes)
    assert len(ax.collections) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["class 0", "class 1"]
    class0, class1 = ax.collections
    np.testing.assert_array_equal(class0.get_offsets(), X[y == 0])
    np.testing.assert_array_equal(class1.get_offsets(), X[y == 1])
    np.testing.assert_allclose(class0.get_facecolor()[0], to_rgba("C0"))
    np.testing.assert_allclose(class1.get_facecolor()[0], to_rgba("C1"))
    assert class0.get_sizes()[0] == 5
    assert ax.get_aspect() == 1.0
    _, existing = plt.subplots()
    assert plot_points(torch.tensor(X), torch.tensor(y), ax=existing) is existing
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        plot_points(np.zeros((3, 3)), np.zeros(3))


def test_decision_boundary_of_a_numpy_label_function():
    ax = plot_decision_boundary(lambda P: (P[:, 0] > 0.1).astype(int), X, y, resolution=101)
    filled, _ = contour_sets(ax)
    assert len(filled) == 1
    np.testing.assert_allclose(boundary_points(ax)[:, 0], 0.1, atol=0.05)
    assert len(ax.collections) == 2 + 2  # regions, boundary, two classes of points
    assert ax.get_xlim() == pytest.approx((-1.5, 1.5))
    assert ax.get_ylim() == pytest.approx((-1.5, 1.5))


def test_decision_boundary_of_a_torch_module_with_scores():
    net = nn.Linear(2, 1)
    with torch.no_grad():
        net.weight[:] = torch.tensor([[0.0, 2.0]])
        net.bias[:] = torch.tensor([-1.0])
    net.train()
    ax = plot_decision_boundary(net, X, y, domain=(-3, 3, -2, 2))
    _, lines = contour_sets(ax)
    assert list(lines[0].levels) == [0.0]  # scores take negative values
    np.testing.assert_allclose(boundary_points(ax)[:, 1], 0.5, atol=0.03)
    assert ax.get_xlim() == (-3, 3) and ax.get_ylim() == (-2, 2)
    assert net.training  # the mode is restored


def test_decision_boundary_of_probabilities_class_scores_lists_and_tensor_functions():
    def probability(P):
        return 1 / (1 + np.exp(-4 * (P[:, 0] + P[:, 1])))

    ax = plot_decision_boundary(probability, X, y, levels=5)
    _, lines = contour_sets(ax)
    assert list(lines[0].levels) == [0.5]
    points = boundary_points(ax)
    np.testing.assert_allclose(points[:, 0] + points[:, 1], 0, atol=0.05)

    def class_scores(P):  # (n, 3) scores: the label is their argmax
        return np.stack([-P[:, 0], np.zeros(len(P)), P[:, 0]], axis=1)

    ax = plot_decision_boundary(class_scores, X, y)
    _, lines = contour_sets(ax)
    assert list(lines[0].levels) == [0.5, 1.5]

    ax = plot_decision_boundary(lambda P: [int(p[1] > 0) for p in P], X, y)
    np.testing.assert_allclose(boundary_points(ax)[:, 1], 0, atol=0.05)

    # Fails on numpy input (numpy's sum has no `dim`), so it gets a float32 tensor.
    ax = plot_decision_boundary(lambda P: P.sum(dim=1, keepdim=True), X, y)
    _, lines = contour_sets(ax)
    assert list(lines[0].levels) == [0.0]


def test_decision_boundary_of_a_constant_or_broken_classifier():
    ax = plot_decision_boundary(lambda P: np.zeros(len(P)), X, y)
    filled, lines = contour_sets(ax)
    assert len(filled) == 1 and lines == []  # no boundary to draw, and no warning
    with pytest.raises(ValueError, match="expected"):
        plot_decision_boundary(lambda P: np.zeros(3), X, y)
    with pytest.raises(TypeError, match="not numbers"):
        plot_decision_boundary(lambda P: np.array(["a"] * len(P)), X, y)
    # When numpy and tensor input both fail, the error on numpy input is the one shown.
    with pytest.raises(ValueError, match="reshape"):
        plot_decision_boundary(lambda P: P.reshape(7), X, y)


def test_plot_line():
    fig, ax = plt.subplots()
    ax.set_xlim(-2, 2)
    ax.set_ylim(-1, 3)
    w, b = np.array([1.0, 2.0]), -1.0
    assert plot_line(w, b, ax=ax, color="r") is ax
    (line,) = ax.lines
    x1, x2 = line.get_data()
    np.testing.assert_allclose(w[0] * x1 + w[1] * x2 + b, 0, atol=1e-12)
    assert (x1.min(), x1.max()) == (-2, 2)
    assert line.get_color() == "r"
    assert ax.get_xlim() == (-2, 2) and ax.get_ylim() == (-1, 3)

    plot_line([2.0, 0.0], 1.0, ax=ax)  # vertical: x1 = -0.5
    x1, x2 = ax.lines[1].get_data()
    np.testing.assert_allclose(x1, -0.5)
    assert (min(x2), max(x2)) == (-1, 3)
    assert ax.get_xlim() == (-2, 2) and ax.get_ylim() == (-1, 3)

    plot_line(torch.tensor([0.0, 1.0]), torch.tensor([0.5]), ax=ax)  # horizontal: x2 = -0.5
    np.testing.assert_allclose(ax.lines[2].get_data()[1], -0.5)
    assert isinstance(plot_line([1.0, 1.0], 0.0), plt.Axes)
    with pytest.raises(ValueError, match="line"):
        plot_line([0.0, 0.0], 1.0, ax=ax)


def test_plot_history_of_a_dict_and_of_a_history():
    curves = {"loss": [1.0, 0.5, 0.25], "train_accuracy": [0.5, 0.7, 0.9], "test_accuracy": []}
    ax = plot_history(curves)
    assert [line.get_label() for line in ax.lines] == ["loss"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3])
    assert ax.get_ylabel() == "loss"
    twins = [other for other in ax.figure.axes if other is not ax]
    assert len(twins) == 1
    assert [line.get_label() for line in twins[0].lines] == ["train_accuracy"]
    assert twins[0].get_ylabel() == "accuracy"
    legend = twins[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["loss", "train_accuracy"]

    history = History(loss=[2.0, 1.0], test_loss=[2.5, 1.5])
    ax = plot_history(history)
    assert [line.get_label() for line in ax.lines] == ["loss", "test_loss"]
    assert len(ax.figure.axes) == 1  # no accuracies, no twin axis
    with pytest.raises(ValueError, match="no loss or accuracy"):
        plot_history({"lr": [0.1]})


def test_show_images():
    digits = np.random.default_rng(0).random((12, 64))
    axes = show_images(digits, labels=np.arange(12), ncols=5)
    assert axes.shape == (15,)
    assert axes[0].images[0].get_array().shape == (8, 8)
    np.testing.assert_array_equal(axes[11].images[0].get_array(), digits[11].reshape(8, 8))
    assert [ax.get_title() for ax in axes[:3]] == ["0", "1", "2"]
    assert not axes[12].images and not axes[12].axison  # spare cells are blank

    axes = show_images(torch.zeros(3, 1, 5, 6), titles=["a", "b", "c"])
    assert axes.shape == (3,) and axes[2].get_title() == "c"
    assert axes[0].images[0].get_array().shape == (5, 6)

    axes = show_images(np.zeros((2, 6)), shape=(2, 3))
    assert axes[1].images[0].get_array().shape == (2, 3)
    _, given = plt.subplots(1, 2)
    assert list(show_images(np.zeros((2, 4, 4)), axes=given)) == list(given)

    with pytest.raises(ValueError, match="shape=\\(h, w\\)"):
        show_images(np.zeros((2, 6)))
    with pytest.raises(ValueError, match="2 titles for 3 images"):
        show_images(np.zeros((3, 4)), titles=["a", "b"])
    with pytest.raises(ValueError, match="only 2 axes"):
        show_images(np.zeros((3, 4)), axes=given)
