"""Hooks of ``benchopt test``: checks a test may need to skip, with reasons.

benchopt calls ``check_<test name>(...)`` before the test of that name.
"""
import pytest


def check_test_solver_install(solver):
    # The benchmark is installed with pip (see README); benchopt's conda
    # environment tests do not apply.
    pytest.skip("Installation is done with pip, not benchopt's conda envs.")


def check_test_dataset_install(dataset):
    pytest.skip("Installation is done with pip, not benchopt's conda envs.")


def check_test_dataset_get_data(dataset):
    # Real data sets need their files (see README, "Data"); without them the
    # loader's error says which file is missing and how to provide it.
    from benchopt.utils.parametrized_name_mixin import get_configs

    from benchmark_utils.data.files import DataFileError
    config = get_configs(dataset)[0]["dataset"]
    try:
        dataset.get_instance(**config).get_data()
    except DataFileError as error:
        pytest.skip(str(error))
