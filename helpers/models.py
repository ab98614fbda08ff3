"""The two models the course trains, defined once for the notebooks and benchmarks.

- ``volume_cnn``: notebook 01's small 3-D CNN for the synthetic volumes; small on purpose,
  so an epoch takes seconds on a laptop CPU.
- ``article_cifar_cnn``: the second source article's CIFAR-10 CNN: three blocks of two 3x3
  convolutions (32, 64, 128 filters) and 2x2 max pooling, a dense layer of 128, softmax.

Both end in a float32 softmax, so they are numerically safe under the ``mixed_float16``
policy notebook 05 uses on a GPU, and come back compiled with Adam(``learning_rate``).
"""

from __future__ import annotations

import keras

__all__ = ["article_cifar_cnn", "volume_cnn"]


def volume_cnn(dim: tuple[int, int, int] = (32, 32, 32), n_channels: int = 1,
               n_classes: int = 6, learning_rate: float = 3e-3) -> keras.Model:
    """Notebook 01's 3-D CNN (inputs 0-255, rescaled inside the model), compiled."""
    model = keras.Sequential([
        keras.Input((*dim, n_channels)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv3D(8, 3, activation="relu"),
        keras.layers.MaxPooling3D(2),
        keras.layers.Conv3D(16, 3, activation="relu"),
        keras.layers.MaxPooling3D(2),
        keras.layers.Conv3D(32, 3, activation="relu"),
        keras.layers.GlobalAveragePooling3D(),
        keras.layers.Dense(n_classes, activation="softmax", dtype="float32"),
    ], name="volume_cnn")
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
