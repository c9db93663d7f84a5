import numpy as np
from benchopt import BaseDataset

from benchmark_utils.data.svmlight import (
    download_ijcnn1,
    ijcnn1_files,
    load_ijcnn1,
)
from benchmark_utils.problems.regularization import (
    INNER_INITS,
    PENALTIES,
    RegularizationProblem,
)
from benchmark_utils.provenance import KeyedOnDataFiles
from benchmark_utils.validation import (
    check_choice,
    check_device,
    check_dtype,
    check_positive_int,
)

#: LIBSVM's ijcnn1.tr / ijcnn1.val sizes; ijcnn1.bz2 is their concatenation.
N_TRAIN = 35000


def train_val_indices(n_samples, split="contiguous", random_state=0):
    """Rows of ijcnn1.bz2 used for training and validation: in file order
    for the contiguous split (the file's labels are already well mixed), in
    a seeded random order for the random split."""
    check_choice(split, "split", ["contiguous", "random"])
    if split == "contiguous":
        return np.arange(N_TRAIN), np.arange(N_TRAIN, n_samples)
    seed = check_positive_int(random_state, "random_state", allow_zero=True)
    perm = np.random.default_rng(seed).permutation(n_samples)
    return perm[:N_TRAIN], perm[N_TRAIN:]


class Dataset(KeyedOnDataFiles, BaseDataset):
    """ijcnn1 (LIBSVM), regularization selection for logistic regression.

    Files ``ijcnn1.bz2`` (49990 samples) and ``ijcnn1.t.bz2`` (91701, the
    test set) in ``<data_home>/ijcnn1/``, downloaded by ``prepare()``
    (``benchopt prepare . -d ijcnn1``; a run downloads nothing) when
    missing. The 22 features are used as LIBSVM gives them (already scaled
    to [-1, 1]); labels -1 / +1, no bias. A file with another number of
    rows or features, or labels other than exactly {-1, +1}, is refused
    with an error naming it (``benchmark_utils/data/svmlight.py``).

    ``split="contiguous"`` (default): train = the first 35000 rows, validation
    = the last 14990, the sizes of LIBSVM's ijcnn1.tr and ijcnn1.val, which
    ijcnn1.bz2 concatenates (LIBSVM's description; the .tr / .val files are
    not at hand to compare row by row). The rows are consecutive windows of
    one time series (row i+1 repeats 9 of the 10 lagged values of row i, with
    no break over the whole file), so a random split would put nearly
    identical rows on both sides; ``split="random"`` draws a seeded
    (``random_state``) split of the same sizes for comparison.

    ``penalty="feature"``: one hyperparameter exp(x_k) per feature (22);
    ``"class"``: a single one (binary problem). ``value_function`` reports
    h(x) = f(x, y*(x)) (a warm-started Newton-CG solve, a few ms here).

    Start: W = 0 (``inner_init="zero"``, the default; ``"solved"``: W =
    y*(x0), solved when the data are loaded) and every x_k =
    ``outer_init``, by default -8.5, the best
    single penalty on the validation loss: h at a constant x = c, with
    exact inner solves, is 0.659 (c = 0), 0.318 (-4), 0.163 (-8), 0.1615
    (-8.5, the minimum), 0.164 (-9), 0.173 (-10), 0.187 (-16). For c >= -6
    the solved model predicts the majority class only (test accuracy
    0.905); at -8.5 it reaches 0.913. The bilevel solvers start from the
    answer of a grid search on one penalty, and their task is to improve on
    it with one penalty per feature (exact hypergradient descent from -8
    reaches h = 0.1215, validation accuracy 0.953, test accuracy 0.917).
    The inner problem (22 weights) is solved in milliseconds: from W = 0,
    Inner-Only reaches y*(x0) in 9 Newton steps, and StocBiO and
    Implicit-GD end 10 s runs at the same h(x) as from y*(x0); SOBA, with
    its small inner step, ends at h = 0.1575 from W = 0 against 0.1413
    from y*(x0) (docs/DATA.md).
    """

    name = "ijcnn1"
    requirements = ["pip::torch", "pip::scikit-learn", "pip::scipy"]
    parameters = {
        "penalty": ["feature"],
        "split": ["contiguous"],
        "random_state": [0],
        "outer_init": [-8.5],
        "value_function": [True],
        "inner_init": ["zero"],
        "dtype": ["float32"],
        "device": ["cpu"],
    }
    test_parameters = {"penalty": ["feature", "class"]}
    prepare_cache_ignore = "all"

    def data_files(self):
        return ijcnn1_files()

    def prepare(self):
        download_ijcnn1()

    def get_data(self):
        check_choice(self.penalty, "penalty", PENALTIES)
        check_choice(self.inner_init, "inner_init", INNER_INITS)
        check_choice(self.split, "split", ["contiguous", "random"])
        X, y, X_test, y_test = load_ijcnn1()
        train, val = train_val_indices(X.shape[0], self.split,
                                       self.random_state)
        problem = RegularizationProblem(
            X[train].toarray(), y[train], X[val].toarray(), y[val],
            X_test.toarray(), y_test, penalty=self.penalty,
            outer_init=self.outer_init, value_function=self.value_function,
            inner_init=self.inner_init, dtype=check_dtype(self.dtype),
            device=check_device(self.device),
        )
        return dict(problem=problem)
