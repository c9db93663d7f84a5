"""Shared code of the bilevel benchmark, in four layers.

Data flows one way: a data set (``datasets/``) reads its files with
:mod:`~benchmark_utils.data` and builds one of the
:mod:`~benchmark_utils.problems`; the objective hands the problem to a
solver (``solvers/``), built on :mod:`~benchmark_utils.solver`; the results
are read by :mod:`~benchmark_utils.analysis`.

Foundations (used by every layer)
    ``validation``   parameter checks that raise clear ``ValueError``\\ s
    ``batches``      the minibatch convention (index tensors, contiguous
                     blocks read as views), the samplers that draw them and
                     a recorder that replays a drawn sequence
    ``provenance``   digests of this package and of the data files, added
                     to benchopt's cache key
    ``datasets``     what the hyper-cleaning data sets share: parameters,
                     their checks, the problem built from raw splits
    ``output_file``  benchopt's results file written under a name no
                     other run holds (two runs with one ``--output``)
    ``seeding``      a data set's seed: its own, or the repetition's
    ``threads``      one torch thread while problems are built and
                     solved
    ``memory``       reuse of freed memory for problems whose vectors
                     take megabytes

``data/``: files and loaders
    ``files``        data and cache folders, missing-file and content
                     errors, atomic downloads
    ``identity``     known files recognized by their md5 / sha256 (cached
                     per file state); ``BILEVEL_ALLOW_MODIFIED_DATA``
    ``features``     finite (and in-range) feature values, checked after
                     parsing
    ``idx``          MNIST / FashionMNIST IDX files, embedded MNIST
    ``svmlight``     svmlight files and ijcnn1
    ``news20``       the 20newsgroups archive and its vectorization
    ``cleaning``     train / validation draws, standardization, label
                     corruption, label classes, the cleaning F1 score

``problems/``: bilevel problems and exact tools on them
    ``base``         ``BilevelProblem``, the contract between data sets,
                     objective and solvers
    ``autograd``     autograd oracles (the default and the reference),
                     dense second-order matrices by ``torch.func``
    ``quadratic``    quadratic problem with a closed-form solution
    ``cleaning``     ``CleaningProblem``: what every hyper-cleaning
                     problem shares (splits, corruption mask, outer scale,
                     x-directions, metrics, value function), built from raw
                     features
    ``hyper_cleaning``  hyper-cleaning with a linear model, closed-form
                     oracles
    ``networks``     hyper-cleaning with an MLP or a CNN as the inner model
                     (nonconvex; torch.func / autograd oracles, closed
                     forms for the MLP)
    ``regularization``  regularization selection, dense or sparse
    ``implicit``     Neumann series (fixed or randomly truncated),
                     conjugate gradient, the inner solve
                     y*(x), the value function h(x) and its gradient

``solver/``: what solver files are built from
    ``base``         ``StochasticBilevelSolver``: benchopt's callback loop,
                     samplers, seeding, divergence; ``COMMON_PARAMETERS``
    ``stopping``     benchopt's stopping criterion, keeping diverged runs,
                     its timeout counted from the first logged point
    ``compiled_step``  whole iterations traced and compiled into one call
                     (``compile=True``, solvers with ``traceable_step``)
    ``counting``     oracle accounting (``oracle_calls``, ``epochs``)
    ``schedules``    step-size schedules
    ``optimizers``   SGD, heavy-ball momentum and Adam update rules
    ``variance_reduction``  SAGA memory tables, the STORM and SARAH
                     corrections, two-point hypergradient estimates
                     (joint Neumann chains on shared batches)
    ``storm``        the iteration MRBO and SUSTAIN share (STORM
                     directions, schedules, step)
    ``bias``         known fixed-point biases on a quadratic (truncated
                     series, penalty multipliers), for the convergence tests
    ``penalty``      directions of the penalty / value-function methods
    ``unrolling``    reverse-mode differentiation through unrolled inner
                     gradient steps (ITD), backtracking line search

``analysis/``: reading results
    ``results``      time to target, median curves, how runs ended
    ``plots``        what the custom plots of ``plots/`` share
    ``tuning``       the validation-only tuning CLI
    ``protocol``     the tuning protocol: one grid, schedule and work
                     budget for every solver (``experiments/tuned/``)
    ``defaults``     one setting per solver across the tuned problems
    ``ranking``      targets per data draw, work to target, the
                     performance profile
    ``figures``      per-problem figures and the profile's
    ``regenerate``   tuning, runs, figures and ranking in one command
    ``offline_page`` benchopt's HTML page with its scripts inlined
"""
