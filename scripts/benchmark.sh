#!/usr/bin/env bash
# Set up the environment, then print the benchmark table (throughput at the limit, hook overhead,
# token requests from parallel processes, memory). Takes about a minute.
source "$(dirname "$0")/_env.sh"
python benchmarks/run.py "$@"
