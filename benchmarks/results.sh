#!/usr/bin/env bash
# Regenerates the runs, figures and tables of docs/RESULTS.md, offline:
#   BENCHOPT_DATA_HOME=/path/to/data bash benchmarks/results.sh
# About three hours on 2 CPU cores (two runs at a time, one thread
# each), most of it the 20newsgroups runs. The figures need matplotlib
# (`pip install matplotlib`; not a requirement of the benchmark itself).
# Needs fashion-mnist/, ijcnn1/ and 20newsgroups/ in BENCHOPT_DATA_HOME
# (MNIST runs on its embedded source). Every run ignores benchopt's cache,
# so that the numbers come from the code and data as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BENCHOPT_DATA_HOME:?point BENCHOPT_DATA_HOME at the data folder}"
run() { benchopt run . --no-plot --no-cache "$@" > "outputs/$2.log" 2>&1; }
python -c "import matplotlib" 2>/dev/null || {
    echo "benchmarks/results_figures.py needs matplotlib: pip install matplotlib" >&2
    exit 1
}
mkdir -p outputs

# Every solver at the settings the tuning protocol chose, one problem at a
# time (experiments/tuned/, written by benchmark_utils.analysis.protocol).
shopt -s nullglob
tuned=()
for config in experiments/tuned/*.yml; do
    name="tuned_$(basename "$config" .yml)"
    run --output "results_$name" --config "$config"
    tuned+=("$name")
done
run --output results_20newsgroups --config experiments/minimaxopt_20newsgroups.yml &
run --output results_ijcnn1 --config experiments/f2sa_adam_ijcnn1.yml &
wait
# The papers' own hyper-cleaning setups, on FashionMNIST (their MNIST lines
# need the full MNIST files).
run --output results_fsla_fashion_mnist --config experiments/fsla_hyper_cleaning.yml \
    -d "fashion_mnist[n_train=5000,n_val=5000,ratio=0.8]" --timeout 30 &
run --output results_bvfim_fashion_mnist --config experiments/bvfim_hyper_cleaning.yml \
    -d "fashion_mnist[n_train=5000,n_val=5000,ratio=0.5]" --timeout 30 &
wait
run --output results_minimaxopt_fashion_mnist --config experiments/minimaxopt_hyper_cleaning.yml \
    -d "fashion_mnist[n_train=20000,n_val=5000]" --timeout 60 &
# BVFIM's setup with its two-layer network (nonconvex inner problem)
run --output results_bvfim_mlp_fashion_mnist --config experiments/bvfim_mlp_hyper_cleaning.yml &
wait
run --output results_minimaxopt_mlp_mnist_embedded --config experiments/minimaxopt_mlp_hyper_cleaning.yml &
# FSLA's setup with its convolutional network
run --output results_fsla_cnn_fashion_mnist --config experiments/fsla_cnn_hyper_cleaning.yml &
wait

for f in "${tuned[@]}"; do
    python benchmarks/results_figures.py "outputs/results_$f.parquet" \
        --out docs/figures --metric objective_test_accuracy \
        --metric objective_value
done
python benchmarks/results_figures.py outputs/results_ijcnn1.parquet \
    outputs/results_20newsgroups.parquet --out docs/figures \
    --metric objective_test_accuracy --metric objective_value
for f in fsla_fashion_mnist bvfim_fashion_mnist minimaxopt_fashion_mnist \
        bvfim_mlp_fashion_mnist minimaxopt_mlp_mnist_embedded \
        fsla_cnn_fashion_mnist; do
    python benchmarks/results_figures.py "outputs/results_$f.parquet" \
        --out docs/figures --metric objective_test_accuracy \
        --metric objective_value --metric objective_cleaning_f1
done
for f in "${tuned[@]}" ijcnn1 20newsgroups fsla_fashion_mnist \
        bvfim_fashion_mnist minimaxopt_fashion_mnist bvfim_mlp_fashion_mnist \
        minimaxopt_mlp_mnist_embedded fsla_cnn_fashion_mnist; do
    python benchmarks/results_table.py "outputs/results_$f.parquet"
done
