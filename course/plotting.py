"""Pictures of data, decision boundaries, training histories and images.

Every function draws into the matplotlib axes `ax` it is given (or a new figure when
`ax` is None) and returns the axes. None calls ``plt.show()``: a notebook shows the
figure at the end of the cell.
"""

import sys

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LinearSegmentedColormap, to_rgba

from course._convert import to_numpy


def _axes(ax):
    if ax is None:
        _, ax = plt.subplots()
    return ax


def _class_color(label) -> str:
    # The same colour for class c in points and in decision regions: matplotlib's cycle.
    return f"C{int(label) % 10}"


def plot_points(X, y, ax=None, **scatter_kwargs):
    """Scatter plot of 2-D points, one colour per class, with a legend.

    Parameters
    ----------
    X : (n, 2) float array
    y : (n,) int array
        Class labels; class c is drawn in matplotlib's colour ``f"C{c}"``.
    ax : matplotlib Axes, optional
    **scatter_kwargs
        Passed on to ``ax.scatter`` (e.g. ``s=10``, ``marker="x"``).

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    X = to_numpy(X)
    y = to_numpy(y).reshape(-1)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have shape (n, 2), got {X.shape}")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} points but y has {len(y)} labels")
    kwargs = {"s": 20, "edgecolors": "white", "linewidths": 0.5} | scatter_kwargs
    for label in np.unique(y):
        points = X[y == label]
        ax.scatter(
            points[:, 0], points[:, 1], color=_class_color(label), label=f"class {label}", **kwargs
        )
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend(loc="best")
    return ax


def _call_predict(predict, grid: np.ndarray) -> np.ndarray:
    # `predict` may be a numpy function, a torch module, or a function of tensors.
    torch = sys.modules.get("torch")  # only if the caller uses torch already
    if torch is not None and isinstance(predict, torch.nn.Module):
        parameter = next(predict.parameters(), None)
        device = parameter.device if parameter is not None else "cpu"
        was_training = predict.training
        predict.eval()
        try:
            with torch.no_grad():
                out = predict(torch.as_tensor(grid, dtype=torch.float32, device=device))
        finally:
            predict.train(was_training)
    else:
        try:
            out = predict(grid)
        except Exception as numpy_error:
            if torch is None:
                raise
            try:
                with torch.no_grad():
                    out = predict(torch.as_tensor(grid, dtype=torch.float32))
            except Exception:
                # Neither works: the error on numpy input is the one that explains the bug.
                raise numpy_error from None
    out = to_numpy(out)
    if not (np.issubdtype(out.dtype, np.number) or out.dtype == bool):
        raise TypeError(f"predict returned {type(out).__name__} of {out.dtype}, not numbers")
    out = out.astype(np.float64)
    if out.ndim == 2 and out.shape[1] > 1:
        return out.argmax(axis=1).astype(np.float64)  # class scores: the predicted class
    if out.size != len(grid):
        raise ValueError(
            f"predict returned {out.shape} for {len(grid)} points; expected (n,), (n, 1) or (n, k)"
        )
    return out.reshape(-1)


def plot_decision_boundary(
    predict,
    X,
    y,
    ax=None,
    *,
    resolution: int = 200,
    padding: float = 0.5,
    domain=None,
    levels=None,
):
    """Colour the plane by a classifier's output and draw its decision boundary and the data.

    Parameters
    ----------
    predict : callable
        Maps an (m, 2) float64 numpy array of points to labels or scores: (m,) or (m, 1)
        (labels 0/1, probabilities in [0, 1], or real-valued scores), or (m, k) class
        scores (their argmax is the label). May return a list, numpy array or torch
        tensor. A torch ``nn.Module``, or a callable that fails on numpy input, gets an
        (m, 2) float32 tensor instead.
    X : (n, 2) float array
        The data points, drawn on top.
    y : (n,) int array
        Their labels.
    ax : matplotlib Axes, optional
    resolution : int
        Grid points along each axis.
    padding : float
        Margin around the data when `domain` is None.
    domain : (xmin, xmax, ymin, ymax), optional
        The region to show, e.g. wider than the data to see how a model extrapolates.
    levels : int or sequence of float, optional
        Filled contour levels of real-valued scores (ignored for labels).

    Returns
    -------
    matplotlib Axes

    Notes
    -----
    The boundary is drawn at 0.5 for labels and probabilities (outputs in [0, 1]) and
    at 0 for scores that take negative values; between neighbouring classes for
    multi-class labels.
    """
    ax = _axes(ax)
    X_np = to_numpy(X)
    if domain is None:
        xmin, ymin = X_np.min(axis=0) - padding
        xmax, ymax = X_np.max(axis=0) + padding
    else:
        xmin, xmax, ymin, ymax = domain
    xx, yy = np.meshgrid(np.linspace(xmin, xmax, resolution), np.linspace(ymin, ymax, resolution))
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    z = _call_predict(predict, grid)
    zz = z.reshape(xx.shape)

    if np.all(z == np.round(z)):
        # Labels: one flat colour per class, the boundary between neighbouring classes.
        labels = np.union1d(np.unique(z), np.unique(to_numpy(y))).astype(int)
        bounds = np.arange(labels.min(), labels.max() + 2) - 0.5
        colors = [_class_color(label) for label in range(labels.min(), labels.max() + 1)]
        ax.contourf(xx, yy, zz, levels=bounds, colors=colors, alpha=0.25)
        # Only levels the output crosses: matplotlib warns about the others.
        inner = [level for level in bounds[1:-1] if z.min() < level < z.max()]
        if inner:
            ax.contour(xx, yy, zz, levels=inner, colors="k", linewidths=1.5)
    else:
        threshold = 0.5 if z.min() >= 0 and z.max() <= 1 else 0.0
        # Low scores in class 0's colour, high ones in class 1's, as in plot_points.
        cmap = LinearSegmentedColormap.from_list(
            "classes", [to_rgba("C0"), (1, 1, 1, 1), to_rgba("C1")]
        )
        if threshold == 0.0:
            # Centre the colour map on the boundary.
            extent = max(abs(z.min()), abs(z.max()))
            vmin, vmax = -extent, extent
        else:
            vmin, vmax = 0.0, 1.0
        ax.contourf(
            xx,
            yy,
            zz,
            levels=20 if levels is None else levels,
            cmap=cmap,
            vmin=vmin,
            vmax=vmax,
            alpha=0.5,
        )
        if z.min() < threshold < z.max():
            ax.contour(xx, yy, zz, levels=[threshold], colors="k", linewidths=1.5)
    plot_points(X, y, ax=ax)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    return ax


def plot_line(w, b, ax=None, **kw):
    """Draw the line ``w[0] * x1 + w[1] * x2 + b = 0`` across the current axes.

    Parameters
    ----------
    w : (2,) float array
        Normal vector of the line (not both entries zero).
    b : float
        Offset.
    ax : matplotlib Axes, optional
        The line spans its current x and y limits, which stay as they are.
    **kw
        Passed on to ``ax.plot`` (default: a black line).

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    w = to_numpy(w).astype(np.float64).reshape(-1)
    b = float(to_numpy(b).reshape(-1)[0])
    if w.shape != (2,):
        raise ValueError(f"w must have 2 entries, got {w.size}")
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    kw = {"color": "k"} | kw
    if abs(w[1]) > abs(w[0]):
        x1 = np.array(xlim)
        ax.plot(x1, -(w[0] * x1 + b) / w[1], **kw)
    elif w[0] != 0:
        # Steep or vertical: solve for x1 instead, so w[1] == 0 needs no special case.
        x2 = np.array(ylim)
        ax.plot(-(w[1] * x2 + b) / w[0], x2, **kw)
    else:
        raise ValueError("w = (0, 0) does not define a line")
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    return ax


def plot_history(history, ax=None):
    """Loss and accuracy per epoch.

    Parameters
    ----------
    history : course.training.History or mapping of str to list of float
        One list per quantity, one entry per epoch, e.g. ``{"loss": [...],
        "train_accuracy": [...], "test_accuracy": [...]}``. Names containing "loss"
        go on the left axis, names containing "acc" on a second axis on the right.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes
        The left (loss) axes; the accuracy axes is its twin.
    """
    ax = _axes(ax)
    curves = history.as_dict() if hasattr(history, "as_dict") else dict(history)
    losses = {k: v for k, v in curves.items() if "loss" in k.lower() and len(v)}
    accuracies = {k: v for k, v in curves.items() if "acc" in k.lower() and len(v)}
    if not losses and not accuracies:
        raise ValueError(f"no loss or accuracy curve in history (keys: {list(curves)})")
    lines = []
    for i, (name, values) in enumerate(losses.items()):
        epochs = np.arange(1, len(values) + 1)
        lines += ax.plot(epochs, to_numpy(values), color=f"C{i}", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if accuracies:
        right = ax.twinx()
        for i, (name, values) in enumerate(accuracies.items(), start=len(losses)):
            epochs = np.arange(1, len(values) + 1)
            lines += right.plot(epochs, to_numpy(values), color=f"C{i}", ls="--", label=name)
        right.set_ylabel("accuracy")
        right.set_ylim(0, 1.02)
        legend_ax = right  # the twin is drawn on top: a legend on `ax` would be covered
    else:
        legend_ax = ax
    # One legend for the curves of both axes.
    legend_ax.legend(lines, [line.get_label() for line in lines], loc="center right")
    return ax


def show_images(
    images, labels=None, *, titles=None, ncols: int = 10, shape=None, cmap="gray", axes=None
):
    """A grid of small grey-scale images.

    Parameters
    ----------
    images : (n, h, w) array, (n, 1, h, w) array, or (n, d) array of flattened images
        Numpy or torch. Flattened images are reshaped to `shape`, by default a square
        (an 8x8 digit for d = 64, 28x28 for d = 784).
    labels : (n,) array, optional
        Shown as the title of each image.
    titles : sequence of str, optional
        Titles instead of the labels, e.g. ``"3 (true 8)"``.
    ncols : int
        Images per row.
    shape : (h, w), optional
        Shape of one image, for flattened images that are not square.
    cmap : str
        Colour map.
    axes : array of matplotlib Axes, optional
        At least n of them; by default a new figure.

    Returns
    -------
    (m,) numpy array of matplotlib Axes
        One per grid cell (m >= n, spare cells hidden), in reading order.
    """
    images = to_numpy(images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]  # drop the channel of (n, 1, h, w) tensors
    if images.ndim == 2:
        if shape is None:
            side = int(round(np.sqrt(images.shape[1])))
            if side * side != images.shape[1]:
                raise ValueError(
                    f"images of {images.shape[1]} pixels are not square; pass shape=(h, w)"
                )
            shape = (side, side)
        images = images.reshape(len(images), *shape)
    if images.ndim != 3:
        raise ValueError(
            f"images must have shape (n, h, w), (n, 1, h, w) or (n, d), got {images.shape}"
        )
    n = len(images)
    if titles is None and labels is not None:
        titles = [str(label) for label in to_numpy(labels).reshape(-1)]
    if titles is not None and len(titles) != n:
        raise ValueError(f"{len(titles)} titles for {n} images")
    if axes is None:
        ncols = max(1, min(ncols, n))
        nrows = max(1, -(-n // ncols))
        _, axes = plt.subplots(nrows, ncols, figsize=(1.2 * ncols, 1.4 * nrows), squeeze=False)
    axes = np.asarray(axes).ravel()
    if len(axes) < n:
        raise ValueError(f"{n} images but only {len(axes)} axes")
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i < n:
            ax.imshow(images[i], cmap=cmap)
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    return axes
