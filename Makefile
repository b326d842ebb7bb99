# prunelab: `make demo` and `make test` install what is missing, build, and run.
CARGO ?= cargo

.PHONY: demo test setup build bench install clean-runs

PREFIX ?= $(HOME)/.local

## Install what is missing (libtorch 2.13.0 CPU from PyPI, cached in ~/.cache/prunelab; apt packages).
setup:
	@scripts/system-packages.sh
	@scripts/libtorch.sh

build: setup
	$(CARGO) build --release

## Train the paper's student (N=500, M=2, K=6, 800k online SGD steps) into runs/quickstart/.
demo: build
	./target/release/prunelab run configs/quickstart.yaml --resume

## The whole test suite (release profile: the statistical tests train real students).
test: setup
	$(CARGO) test --release

## Speed figures quoted in the README.
bench: build
	./target/release/prunelab bench sgd --tensor
	./target/release/prunelab bench dpp --n 1000 --k 300

## A relocatable bundle under PREFIX (default ~/.local): bin/prunelab finds its libtorch in
## lib/prunelab relative to itself, so the folder can be moved or shared; completions, man page.
install: build
	PREFIX="$(PREFIX)" scripts/install.sh
