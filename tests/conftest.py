"""Shared fixtures: small datasets in the real on-disk formats, built in a temporary folder."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from helpers.volumes import make_volume_dataset  # noqa: E402

# Tests whose outcome cannot depend on the Keras backend: files, archives, notebooks' shape,
# memory counters, or subprocesses that never import Keras' backend. `make test` runs them
# with the first backend only (`-m "not backend_independent"` for the others), which keeps
# the three-backend suite inside CI's time budget. Whole modules by name, or single tests.
BACKEND_INDEPENDENT_MODULES = {
    "test_archive", "test_atomic", "test_colab_links", "test_imagenette", "test_memory",
    "test_memory_study", "test_notebook_shape", "test_package", "test_partition",
    "test_portability", "test_progress", "test_readme", "test_reference_figures", "test_timing",
    "test_training_curves",
    "test_volumes",
    "test_distributed",  # its children run JAX whatever the backend of the tests
}
BACKEND_INDEPENDENT_TESTS = {
    "test_image_loaders.py::test_torch_loader_spawned_persistent_workers",  # torch's own workers
    "test_image_loaders.py::test_close_torch_loader_passes_on_only_other_errors_than_a_worker_killed_on_exit",
    # the generators' batches without labels and their resumed positions: numpy only
    "test_generator.py::test_without_labels_batches_are_x_alone",
    "test_generator.py::test_resumed_epoch_is_the_rest_of_the_uninterrupted_one",
    "test_generator.py::test_pickles_with_its_position",
    "test_generator.py::test_bad_start_batch_is_named_and_changes_nothing",
    "test_cifar.py::test_label_modes", "test_cifar.py::test_bad_label_mode_is_named",
    "test_cifar.py::test_resumed_epoch_is_the_rest_of_the_uninterrupted_one",
    "test_cifar.py::test_bad_start_batch_is_named", "test_cifar.py::test_pickles_with_its_position",
    "test_images.py::test_labels_none_serves_every_image_below_the_folder",
    "test_images.py::test_label_mode_none_keeps_the_classes_and_serves_x_alone",
    "test_images.py::test_bad_labels_are_named", "test_images.py::test_bad_start_batch_is_named",
    "test_images.py::test_resumed_epoch_is_the_rest_of_the_uninterrupted_one",
    "test_packed.py::test_without_labels_and_resumed_like_datagenerator",
    # WithColumns' batches are numpy arrays; only its fit() test goes through the backend
    *(f"test_columns.py::{name}" for name in (
        "test_x_and_y_pass_through_and_columns_follow_the_base_order",
        "test_outputs_none_serves_the_inputs_alone_even_from_a_base_without_labels",
        "test_sample_weight_as_array_and_per_output",
        "test_bad_columns_raise_naming_the_argument",
        "test_asking_for_y_from_a_base_without_labels_names_the_argument",
        "test_position_and_epochs_are_the_base_s", "test_pickles_with_its_columns")),
    *(f"test_endless.py::{name}" for name in (  # all but the fit() test
        "test_batch_i_depends_on_seed_and_i_alone", "test_has_no_length_and_no_negative_batches",
        "test_bad_arguments_are_named", "test_waves_hold_the_frequency_of_their_label")),
    "test_resume.py::test_latest_checkpoint_skips_partial_and_other_files",
    "test_backends.py::test_observe_keeps_findings_per_part_and_version",
    "test_backends.py::test_run_in_backend_keeps_its_result_for_the_same_script_and_versions",
    # the benchmark's CPU path: numpy loaders and tf.data, whatever Keras' backend
    "test_feed_gpu.py::test_cpu_path_measures_every_rung_and_computes_the_table",
    "test_feed_gpu.py::test_index_batches_serve_every_row_once_per_epoch_reshuffled",
    "test_feed_gpu.py::test_loader_cpu_seconds_counts_this_thread_only",
    "test_feed_gpu.py::test_gpu_busy_without_nvidia_smi_says_none",
    "test_resume.py::test_fit_resumable_refuses_what_cannot_resume",
    # HDF5Batches' rows, pickling and errors: h5py and numpy; spawned workers import Keras on
    # the numpy backend whatever the tests' backend. Only its fit() test goes through the backend
    *(f"test_hdf5.py::{name}" for name in (
        "test_every_row_once_per_epoch_reshuffled_and_seeded",
        "test_pickles_without_its_handle_and_reads_right_after_unpickling",
        "test_a_handle_opened_in_another_process_is_not_used",
        "test_missing_names_and_files_raise_errors_naming_them",
        "test_a_file_gone_before_a_worker_opens_it_is_named",
        "test_the_shared_handle_reads_the_same_batches_and_cannot_be_pickled",
        "test_the_module_imports_without_h5py",
        "test_spawned_worker_processes_unpickle_it_and_read_their_own_file")),
}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "backend_independent: same outcome on every Keras backend; run once")


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.path.stem
        test = f"{item.path.name}::{item.originalname}"
        if module in BACKEND_INDEPENDENT_MODULES or test in BACKEND_INDEPENDENT_TESTS:
            item.add_marker(pytest.mark.backend_independent)


@pytest.fixture(scope="session")
def volumes(tmp_path_factory):
    """A 60-sample, 16^3, 3-class volume dataset: (data_dir, partition, labels)."""
    data_dir = tmp_path_factory.mktemp("volumes")
    partition, labels = make_volume_dataset(data_dir, 60, dim=(16, 16, 16), n_classes=3,
                                            seed=1, progress=False)
    return data_dir, partition, labels
