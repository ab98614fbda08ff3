"""The source article's ``DataGenerator``, ported faithfully to Keras 3: a baseline to measure.

Same logic as the article (https://stanford.edu/~shervine/blog/keras-how-to-generate-data-on-the-fly):
``np.empty`` float64 batch buffer, one ``np.load`` per sample, ``floor`` length,
``to_categorical`` labels, global ``np.random.shuffle``. Two changes only, both needed to
run at all: ``super().__init__()`` (Keras 3) and a ``data_dir`` argument instead of the
hard-coded ``'data/'``. Files of shape ``dim`` get their channel axis with ``reshape``.
Do not train with this class (it drops samples and doubles memory): it lives here, in a
module, so benchmarks and notebooks measure against the same baseline, in worker processes too.
"""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["ArticleDataGenerator"]


class ArticleDataGenerator(keras.utils.PyDataset):
    """The article's class; ``data_dir`` replaces its hard-coded ``'data/'``."""

    def __init__(self, list_IDs, labels, data_dir, batch_size=32, dim=(32, 32, 32),
                 n_channels=1, n_classes=10, shuffle=True, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim
        self.batch_size = batch_size
        self.labels = labels
        self.list_IDs = list_IDs
        self.data_dir = data_dir
        self.n_channels = n_channels
        self.n_classes = n_classes
        self.shuffle = shuffle
        self.on_epoch_end()

    def __len__(self):
        return int(np.floor(len(self.list_IDs) / self.batch_size))

    def __getitem__(self, index):
        indexes = self.indexes[index * self.batch_size:(index + 1) * self.batch_size]
        return self._generate([self.list_IDs[k] for k in indexes])

    def on_epoch_end(self):
        self.indexes = np.arange(len(self.list_IDs))
        if self.shuffle:
            np.random.shuffle(self.indexes)

    def _generate(self, ids):
        X = np.empty((self.batch_size, *self.dim, self.n_channels))
        y = np.empty((self.batch_size), dtype=int)
        for i, ID in enumerate(ids):
            X[i,] = np.load(self.data_dir + "/" + ID + ".npy").reshape(*self.dim, self.n_channels)
            y[i] = self.labels[ID]
        return X, keras.utils.to_categorical(y, num_classes=self.n_classes)
