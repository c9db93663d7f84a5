#!/usr/bin/env bash
# Regenerates the README's results tables, offline, from the paper configs
# at a reduced budget (repetitions R, seconds per run T). About 25 minutes on
# 2 CPU cores with the defaults. Needs BENCHOPT_DATA_HOME with fashion-mnist/,
# ijcnn1/ and 20newsgroups/ (MNIST runs on the embedded source).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BENCHOPT_DATA_HOME:?point BENCHOPT_DATA_HOME at the data folder}"
R=${R:-2}
T=${T:-20}
run() { benchopt run . --no-plot -r "$R" --timeout "$T" "$@"; }
table() { python benchmarks/results_table.py "$@"; }

# Seed 000 (and the speed comparison with the JAX reference): FashionMNIST
# p_c = 0.5, all solvers; MNIST (embedded) with Table 3's MNIST parameters.
run --config experiments/speed_fashion_mnist.yml --output readme_fashion
run --config experiments/seed000_hyper_cleaning.yml \
    -d "mnist[source=embedded,ratio=0.45]" \
    -s "F2SA[step_size=0.05,inner_ratio=1.0,outer_ratio=1.0,delta_lmbda=0.1,batch_size=64]" \
    -s "F2SA-Adam[step_size=0.0009,inner_ratio=1.0,outer_ratio=5.0,delta_lmbda=0.1,beta1=0.9,beta2=0.99,batch_size=64]" \
    -s "StocBiO[step_size=0.05,outer_ratio=1000.0,batch_size=64]" \
    -s "SABA[step_size=0.1,outer_ratio=1000.0,batch_size=64]" \
    --output readme_seed000_mnist
# Seed 000, ijcnn1 (Table 4 parameters).
run --config experiments/seed000_ijcnn1.yml --output readme_ijcnn1
# Seed 003: MinimaxOPT vs StocBiO on MNIST (embedded) and 20newsgroups.
run --config experiments/seed003_minimaxopt.yml \
    -d "mnist[source=embedded]" \
    -s "MinimaxOPT[step_size=0.1,outer_ratio=1000.0,optimizer=sgd,batch_size=64]" \
    -s "StocBiO[step_size=0.1,outer_ratio=0.1,batch_size=64]" \
    --output readme_seed003_mnist
run --config experiments/seed003_minimaxopt.yml -d "20newsgroups[penalty=feature]" \
    -s "MinimaxOPT[batch_size=full]" -s "StocBiO[batch_size=full]" \
    -s Implicit-GD -r 1 --output readme_seed003_news20
# Seed 004: BVFIM, 5000 / 5000, half the labels corrupted.
run --config experiments/seed004_bvfim.yml \
    -d "mnist[source=embedded,ratio=0.5]" \
    -d "fashion_mnist[n_train=5000,n_val=5000,ratio=0.5]" \
    -r 1 --output readme_seed004

table outputs/readme_fashion.parquet --target 0.72
table outputs/readme_fashion.parquet --target 0.75
table outputs/readme_seed000_mnist.parquet --target 0.8
table outputs/readme_ijcnn1.parquet --metric objective_value --target 0.3
table outputs/readme_seed003_mnist.parquet --target 0.8
table outputs/readme_seed003_news20.parquet --target 0.8
table outputs/readme_seed004.parquet --target 0.8
