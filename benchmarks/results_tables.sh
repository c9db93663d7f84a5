#!/usr/bin/env bash
# Regenerates the results tables of docs/RESULTS.md, offline, from the paper configs
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

# F2SA-Adam report (and the speed comparison with the JAX reference):
# FashionMNIST p_c = 0.5, all solvers; MNIST (embedded) with the report's
# Table 3 MNIST parameters.
run --config experiments/speed_fashion_mnist.yml --output results_fashion
run --config experiments/f2sa_adam_hyper_cleaning.yml \
    -d "mnist[source=embedded,ratio=0.45]" \
    -s "F2SA[step_size=0.05,inner_ratio=1.0,outer_ratio=1.0,delta_lmbda=0.1,batch_size=64]" \
    -s "F2SA-Adam[step_size=0.0009,inner_ratio=1.0,outer_ratio=5.0,delta_lmbda=0.1,beta1=0.9,beta2=0.99,batch_size=64]" \
    -s "StocBiO[step_size=0.05,outer_ratio=1000.0,batch_size=64]" \
    -s "SABA[step_size=0.1,outer_ratio=1000.0,batch_size=64]" \
    --output results_f2sa_adam_mnist
# F2SA-Adam report, ijcnn1 (Table 4 parameters).
run --config experiments/f2sa_adam_ijcnn1.yml --output results_ijcnn1
# MinimaxOPT vs StocBiO on MNIST (embedded) and 20newsgroups.
run --config experiments/minimaxopt_hyper_cleaning.yml \
    -d "mnist[source=embedded]" \
    -s "MinimaxOPT[step_size=0.1,outer_ratio=1000.0,optimizer=sgd,batch_size=64]" \
    -s "StocBiO[step_size=0.1,outer_ratio=0.1,batch_size=64]" \
    --output results_minimaxopt_mnist
run --config experiments/minimaxopt_20newsgroups.yml -r 1 --output results_minimaxopt_news20
# BVFIM's paper setup: 5000 / 5000, half the labels corrupted.
run --config experiments/bvfim_hyper_cleaning.yml \
    -d "mnist[source=embedded,ratio=0.5]" \
    -d "fashion_mnist[n_train=5000,n_val=5000,ratio=0.5]" \
    -r 1 --output results_bvfim

table outputs/results_fashion.parquet --target 0.72
table outputs/results_fashion.parquet --target 0.75
table outputs/results_f2sa_adam_mnist.parquet --target 0.8
table outputs/results_ijcnn1.parquet --metric objective_value --target 0.3
table outputs/results_minimaxopt_mnist.parquet --target 0.8
table outputs/results_minimaxopt_news20.parquet --target 0.8
table outputs/results_bvfim.parquet --target 0.8
