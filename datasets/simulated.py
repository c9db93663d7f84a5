from benchopt import BaseDataset

from benchmark_utils.problems.quadratic import QuadraticProblem
from benchmark_utils.seeding import dataset_seed
from benchmark_utils.validation import check_device, check_dtype


class Dataset(BaseDataset):
    """Quadratic bilevel problem with closed-form y*(x), h(x), grad h and x*.

    ``cond`` is the condition number of the inner Hessian; see
    ``benchmark_utils/problems/quadratic.py`` for the exact construction.
    """

    name = "simulated"
    requirements = ["pip::torch"]
    parameters = {
        "n_inner": [1000],
        "n_outer": [500],
        "dim_inner": [20],
        "dim_outer": [10],
        "cond": [10.0],
        "outer_reg": [0.1],
        "dtype": ["float64"],
        "device": ["cpu"],
        # None: a new problem at every repetition (benchmark_utils/seeding.py)
        "random_state": [None],
    }
    test_parameters = {"n_inner": [200], "n_outer": [100]}

    def get_data(self):
        problem = QuadraticProblem(
            n_inner=self.n_inner, n_outer=self.n_outer,
            dim_inner=self.dim_inner, dim_outer=self.dim_outer,
            cond=self.cond, outer_reg=self.outer_reg,
            random_state=dataset_seed(self),
            dtype=check_dtype(self.dtype), device=check_device(self.device),
        )
        return dict(problem=problem)
