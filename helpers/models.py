"""The two models the course trains, defined once for the notebooks and benchmarks.

- ``volume_cnn``: notebook 01's small 3-D CNN for the synthetic volumes; small on purpose,
  so an epoch takes seconds on a laptop CPU on every backend. It halves the resolution
  first (2x2x2 average pooling): a full-resolution first ``Conv3D`` is fast on TensorFlow's
  CPU kernels but 10-20x slower on JAX's (XLA) and PyTorch's, which would make the course
  a TensorFlow-only course on a laptop.
- ``article_cifar_cnn``: the second source article's CIFAR-10 CNN: three blocks of two 3x3
  convolutions (32, 64, 128 filters) and 2x2 max pooling, a dense layer of 128, softmax.

``initialize(model, seed)`` draws the initial weights with NumPy instead of the backend's
own random generator, so the same seed starts the same model on TensorFlow, JAX and
PyTorch (``keras.utils.set_random_seed`` seeds each backend, but each draws differently).

Both end in a float32 softmax, so they are numerically safe under the ``mixed_float16``
policy notebook 05 uses on a GPU, and come back compiled with Adam(``learning_rate``).
"""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["article_cifar_cnn", "initialize", "volume_cnn"]


def initialize(model: keras.Model, seed: int) -> keras.Model:
    """Set every kernel to Glorot-uniform draws from NumPy and every bias to zero.

    These are Keras' default initializers for ``Dense`` and ``Conv*`` layers, drawn from
    ``numpy.random.default_rng(seed)``: the same numbers on every backend. Other weights
    (none in the course's models) are left as they are. Returns ``model``.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for w in layer.trainable_weights:
            shape = tuple(w.shape)
            name = w.path.rsplit("/", 1)[-1]
            if name == "kernel" and len(shape) >= 2:
                receptive = int(np.prod(shape[:-2]))
                fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                w.assign(rng.uniform(-limit, limit, shape).astype(w.dtype))
            elif name == "bias":
                w.assign(np.zeros(shape, dtype=w.dtype))
    return model


def volume_cnn(dim: tuple[int, int, int] = (32, 32, 32), n_channels: int = 1,
               n_classes: int = 6, learning_rate: float = 3e-3,
               seed: int | None = 0) -> keras.Model:
    """Notebook 01's 3-D CNN (inputs 0-255, rescaled inside the model), compiled.

    ``seed``: initial weights drawn by ``initialize`` (the same on every backend); ``None``
    keeps Keras' own draw from the backend's random generator.
    """
    model = keras.Sequential([
        keras.Input((*dim, n_channels)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.AveragePooling3D(2),
        keras.layers.Conv3D(16, 3, activation="relu"),
        keras.layers.MaxPooling3D(2),
        keras.layers.Conv3D(32, 3, activation="relu"),
        keras.layers.Conv3D(64, 3, activation="relu"),
        keras.layers.GlobalAveragePooling3D(),
        keras.layers.Dense(n_classes, activation="softmax", dtype="float32"),
    ], name="volume_cnn")
    if seed is not None:
        initialize(model, seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def article_cifar_cnn(learning_rate: float = 1e-3) -> keras.Model:
    """The article's 6-convolution CIFAR-10 CNN (inputs in [0, 1]), compiled."""
    layers: list = [keras.Input((32, 32, 3))]
    for filters in (32, 64, 128):
        layers += [keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
                   keras.layers.Conv2D(filters, 3, padding="same", activation="relu"),
                   keras.layers.MaxPooling2D(2)]
    layers += [keras.layers.Flatten(),
               keras.layers.Dense(128, activation="relu"),
               keras.layers.Dense(10, activation="softmax", dtype="float32")]
    model = keras.Sequential(layers, name="article_cifar_cnn")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model
