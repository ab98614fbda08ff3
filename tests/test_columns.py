"""WithColumns: a generator's batches plus per-sample columns, named for a model's inputs and
outputs, following the base's order, epochs and resumed positions."""

from __future__ import annotations

import pickle

import keras
import numpy as np
import pytest

from helpers.columns import WithColumns
from tests.protocol_dataset import ArrayRows

N = 22  # not a multiple of the batch size: the last batch is short


def _base(labels=True, **kwargs):
    x = np.arange(N * 3, dtype=np.float32).reshape(N, 3)
    y = (np.arange(N) % 2).astype(np.int64) if labels else None
    return ArrayRows(x, y, batch_size=4, seed=7, **kwargs)


def test_x_and_y_pass_through_and_columns_follow_the_base_order():
    base = _base()
    meta = np.arange(N, dtype=np.float64) * 10  # float64 -> float32
    code = np.arange(N, dtype=np.int32) + 100   # integer dtype kept
    ds = WithColumns(base, inputs={"img": "x", "meta": meta}, outputs={"cls": "y", "code": code})
    assert len(ds) == len(base) == 6
    for i in (0, 5):
        (inputs, outputs), (X, y) = ds[i], base[i]
        rows = base.batch_rows(i)
        assert np.array_equal(inputs["img"], X) and np.array_equal(outputs["cls"], y)
        assert inputs["meta"].dtype == np.float32 and np.array_equal(inputs["meta"], rows * 10)
        assert outputs["code"].dtype == np.int32 and np.array_equal(outputs["code"], rows + 100)
    assert len(ds[5][0]["meta"]) == N - 5 * 4
    plain_x, plain_y = WithColumns(base)[2]
    assert np.array_equal(plain_x, base[2][0]) and np.array_equal(plain_y, base[2][1])


def test_outputs_none_serves_the_inputs_alone_even_from_a_base_without_labels():
    base = _base(labels=False)
    ds = WithColumns(base, outputs=None)
    assert np.array_equal(ds[1], base[1])
    named = WithColumns(base, inputs={"img": "x", "row": np.arange(N)}, outputs=None)[1]
    assert set(named) == {"img", "row"} and np.array_equal(named["row"], base.batch_rows(1))


def test_sample_weight_as_array_and_per_output():
    base = _base()
    w = np.linspace(0, 1, N)
    _, _, weights = WithColumns(base, sample_weight=w)[3]
    assert weights.dtype == np.float32 and np.allclose(weights, w[base.batch_rows(3)])
    ds = WithColumns(base, outputs={"a": "y", "b": np.zeros(N)}, sample_weight={"b": w})
    _, outputs, weights = ds[0]
    assert set(weights) == {"a", "b"} and np.allclose(weights["b"], w[base.batch_rows(0)])
    assert np.array_equal(weights["a"], np.ones(4))  # Keras needs one for every output


@pytest.mark.parametrize("kwargs, match", [
    ({"inputs": {"meta": np.zeros(N - 1)}}, r"inputs\['meta'\] has 21 rows.*22 samples"),
    ({"outputs": "labels"}, r"outputs is 'labels'"),
    ({"outputs": {"t": np.array(["a"] * N)}}, r"outputs\['t'\].*numeric"),
    ({"outputs": None, "sample_weight": np.ones(N)}, "sample_weight needs outputs"),
    ({"sample_weight": np.r_[np.ones(N - 1), -1.0]}, r"sample_weight.*sample 21 has -1"),
    ({"sample_weight": np.r_[np.nan, np.ones(N - 1)]}, r"sample_weight.*finite.*sample 0"),
    ({"sample_weight": np.ones((N, 2))}, r"sample_weight: expected a 1-D"),
    ({"sample_weight": {"a": np.ones(N)}}, "outputs must be a dict"),
    ({"outputs": {"a": "y"}, "sample_weight": {"b": np.ones(N)}},
     r"sample_weight\['b'\]: no output of that name"),
])
def test_bad_columns_raise_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WithColumns(_base(), **kwargs)


def test_asking_for_y_from_a_base_without_labels_names_the_argument():
    with pytest.raises(ValueError, match="outputs asks for 'y'.*X alone"):
        WithColumns(_base(labels=False))
    with pytest.raises(ValueError, match="inputs asks for 'y'"):
        WithColumns(_base(labels=False), inputs={"a": "x", "b": "y"}, outputs=None)
    with pytest.raises(TypeError, match="has no __len__.*batch_rows"):
        WithColumns(keras.utils.PyDataset())


def test_position_and_epochs_are_the_base_s():
    base = _base()
    meta = np.arange(N) * 2.0
    ds = WithColumns(base, inputs={"x": "x", "meta": meta}, workers=2)
    assert ds.workers == 2 and base.workers == 1  # the wrapper's own kwargs
    ds.set_epoch(3, start_batch=2)
    reference = _base(epoch=3)
    assert (ds.epoch, ds.start_batch, len(ds), ds.batches_per_epoch) == (3, 2, 4, 6)
    for i in range(len(ds)):
        assert ds.batch_ids(i) == reference.batch_ids(i + 2)
        assert np.array_equal(ds[i][0]["meta"], meta[reference.batch_rows(i + 2)])
    ds.on_epoch_end()
    assert (base.epoch, base.start_batch, len(ds)) == (4, 0, 6)
    assert np.array_equal(ds.batch_rows(0), _base(epoch=4).batch_rows(0))


def test_pickles_with_its_columns():
    ds = WithColumns(_base(), inputs={"x": "x", "meta": np.arange(N)},
                     sample_weight=np.ones(N))
    copy = pickle.loads(pickle.dumps(ds))
    for a, b in zip(keras.tree.flatten(ds[4]), keras.tree.flatten(copy[4]), strict=True):
        assert np.array_equal(a, b)


def test_fit_and_predict_a_model_with_named_inputs_and_outputs():
    """Keras takes the dicts on the current backend; predict's rows follow the base."""
    base = _base(shuffle=False)
    meta = np.linspace(-1, 1, N)[:, None]
    inputs = {"x": keras.Input((3,), name="x"), "meta": keras.Input((1,), name="meta")}
    hidden = keras.layers.Concatenate()([inputs["x"], inputs["meta"]])
    model = keras.Model(inputs, {"cls": keras.layers.Dense(2, name="cls")(hidden),
                                 "reg": keras.layers.Dense(1, name="reg")(hidden)})
    model.compile("sgd", loss={"cls": keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), "reg": "mse"})
    train = WithColumns(base, inputs={"x": "x", "meta": meta},
                        outputs={"cls": "y", "reg": meta * 2},
                        sample_weight={"reg": np.linspace(0, 2, N)})  # cls: weight 1
    history = model.fit(train, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
    predicted = model.predict(WithColumns(base, inputs={"x": "x", "meta": meta}, outputs=None),
                              verbose=0)
    direct = model.predict({"x": base.x, "meta": meta}, verbose=0)
    assert np.allclose(predicted["reg"], direct["reg"], atol=1e-5)
